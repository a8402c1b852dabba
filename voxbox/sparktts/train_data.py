"""Training data for ``voxbox train sparktts``: examples, splits, epoch plans and packing.

Examples have one source, :mod:`voxbox.sparktts.export`: a built folder's records go
through ``export.examples_for`` (the very prompts and targets ``voxbox export
sparktts`` writes), and an export folder's rows are read as written (either style:
``prompt``/``target`` columns, or one ``text`` cut where the prompt ends). Either way the
prompt and target text is encoded with the model's own tokenizer, so the ids always
match the model being trained.

Encoded examples sit in one flat int32 array (:class:`ExampleTable`), a few bytes per
token instead of a Python list per example.

An epoch is an order of example indices: every training example once, or, with a mix
(``tts=1,controllable_tts=3``), each kind's share of the epoch drawn from that kind
(repeated passes when it needs more than it has, a fresh random subset each epoch when
it needs fewer). The order is cut into micro-batches of at most ``batch_tokens`` ids.

Packing: a micro-batch is one row holding whole examples back to back, no padding.
``position_ids`` restart at 0 for every example and no attention mask is passed, which
transformers reads as sequence boundaries (a block-diagonal causal mask for sdpa and
eager attention, varlen kernels for flash-attention), so no example attends to
another. Labels are -100 on prompts: the loss counts target tokens only, and because
every example starts with a prompt id, the last position of one example is never
trained to predict the first id of the next.
"""

from __future__ import annotations

import hashlib
import json
import math
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from voxbox.errors import VoxboxError
from voxbox.sparktts.export import SUMMARY_NAME, TASKS, Example, examples_for

IGNORE = -100  # label of positions the loss skips (transformers' convention)
DEFAULT_VAL_SPLITS = ("test", "dev", "validation", "valid", "val")
ENCODE_CHUNK = 256  # examples per tokenizer call
OPEN_BINS = 16  # micro-batches kept open while packing (first fit among them)


# ------------------------------------------------------------------------------------
# The example table
# ------------------------------------------------------------------------------------

@dataclass
class ExampleTable:
    """Encoded examples. Example ``i`` is ``ids[offsets[i]:offsets[i+1]]``; its first
    ``prompt_len[i]`` ids are the prompt, the rest the target."""

    ids: np.ndarray  # (total ids,) int32
    offsets: np.ndarray  # (n + 1,) int64
    prompt_len: np.ndarray  # (n,) int32
    task: np.ndarray  # (n,) int8, index into export.TASKS
    val: np.ndarray  # (n,) bool: validation example
    index: List[str]  # record index of each example

    def __len__(self) -> int:
        return len(self.prompt_len)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def example(self, i: int) -> Tuple[np.ndarray, int]:
        return self.ids[self.offsets[i]:self.offsets[i + 1]], int(self.prompt_len[i])

    def select(self, task: Optional[str] = None, val: bool = False) -> np.ndarray:
        """Indices of the training (or validation) examples, of one task or all."""
        keep = self.val == val
        if task is not None:
            keep &= self.task == TASKS.index(task)
        return np.flatnonzero(keep)

    def fingerprint(self) -> str:
        """sha256 of everything training depends on, to refuse resuming on other data."""
        h = hashlib.sha256()
        for a in (self.ids, self.offsets, self.prompt_len, self.task, self.val):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()


class _TableBuilder:
    def __init__(self) -> None:
        self.ids = array("i")
        self.offsets = [0]
        self.prompt_len = array("i")
        self.task = array("b")
        self.val: List[bool] = []
        self.index: List[str] = []

    def add(self, ex: Example, val: bool) -> None:
        self.ids.extend(ex.prompt_ids)
        self.ids.extend(ex.target_ids)
        self.offsets.append(len(self.ids))
        self.prompt_len.append(len(ex.prompt_ids))
        self.task.append(TASKS.index(ex.task))
        self.val.append(val)
        self.index.append(ex.index)

    def build(self) -> ExampleTable:
        return ExampleTable(np.frombuffer(self.ids, dtype=np.int32).copy(), np.asarray(self.offsets, np.int64),
                            np.frombuffer(self.prompt_len, dtype=np.int32).copy(),
                            np.frombuffer(self.task, dtype=np.int8).copy(), np.asarray(self.val, bool),
                            self.index)


# ------------------------------------------------------------------------------------
# Options: mix and splits
# ------------------------------------------------------------------------------------

def parse_mix(spec: Optional[str]) -> Optional[Dict[str, float]]:
    """``"tts=1,controllable_tts=3"`` -> shares summing to 1; None or ``"natural"``: every
    example once per epoch. A kind left out (or given 0) is not trained."""
    if spec is None or spec.strip().lower() in ("", "natural"):
        return None
    weights: Dict[str, float] = {}
    for part in spec.split(","):
        name, sep, value = part.strip().partition("=")
        name = name.strip()
        if not sep or name not in TASKS:
            raise VoxboxError(f"--mix: expected KIND=WEIGHT with KIND one of {', '.join(TASKS)}, got {part.strip()!r}")
        try:
            w = float(value)
        except ValueError:
            raise VoxboxError(f"--mix: weight of {name} is not a number: {value!r}") from None
        if not (w >= 0 and math.isfinite(w)):
            raise VoxboxError(f"--mix: weight of {name} must be a finite number >= 0, got {value}")
        weights[name] = w
    total = sum(weights.values())
    if total <= 0:
        raise VoxboxError("--mix: at least one example kind needs a weight above 0")
    return {t: weights[t] / total for t in TASKS if weights.get(t, 0) > 0}


def is_held_out(index: str, fraction: float) -> bool:
    """Deterministic hold-out of a record (both its examples go the same way)."""
    if fraction <= 0:
        return False
    h = int(hashlib.sha1(index.encode("utf-8")).hexdigest()[:8], 16)
    return h / 2 ** 32 < fraction


# ------------------------------------------------------------------------------------
# Reading the inputs
# ------------------------------------------------------------------------------------

def folder_kind(path: Path) -> str:
    """``built`` (voxbox build output) or ``export`` (voxbox export sparktts output)."""
    if not path.is_dir():
        raise VoxboxError(f"{path}: not a folder" if path.exists() else f"{path}: not found")
    if (path / "index.json").is_file():
        return "built"
    if (path / SUMMARY_NAME).is_file():
        return "export"
    raise VoxboxError(f"{path}: neither a built dataset (index.json) nor an `export sparktts` output "
                      f"({SUMMARY_NAME})")


def _built_examples(path: Path, tasks: Sequence[str], boundaries) -> Iterator[Union[Example, Tuple[str, str]]]:
    from voxbox.dataset.reader import open_dataset

    ds = open_dataset(path)
    for rec in ds.records():
        yield from examples_for(rec, tasks, boundaries)


def _export_files(path: Path) -> List[Path]:
    from voxbox.shards import index as ix

    try:
        summary = json.loads((path / SUMMARY_NAME).read_text(encoding="utf-8"))
        files = summary["files"]
    except (ValueError, KeyError, TypeError):
        raise VoxboxError(f"{path / SUMMARY_NAME}: not an `export sparktts` summary") from None
    out = []
    for f in files:
        p = path / str(f.get("path", ""))
        if p.parent != path or not p.is_file():
            raise VoxboxError(f"{path}: export file {f.get('path')!r} is missing; rerun `voxbox export sparktts`")
        if f.get("sha256") and ix.sha256_file(p) != f["sha256"]:
            raise VoxboxError(f"{p}: checksum differs from {SUMMARY_NAME}; the export is damaged, rerun it")
        out.append(p)
    return out


def _export_rows(path: Path) -> Iterator[dict]:
    for p in _export_files(path):
        if p.suffix == ".jsonl":
            with open(p, encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    try:
                        yield json.loads(line)
                    except ValueError:
                        raise VoxboxError(f"{p}:{n}: not a JSON line; the export is damaged, rerun it") from None
        else:
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(p)
            wanted = ("index", "split", "task", "text", "transcript", "prompt", "target")
            cols = [c for c in wanted if c in pf.schema_arrow.names]
            for batch in pf.iter_batches(columns=cols, batch_size=1024):
                yield from batch.to_pylist()


# Where the prompt ends in a ``--style text`` row (prompt + target in one ``text``): the
# first of these markers; the target never holds <|end_style_label|>, and a tts prompt
# holds the only <|end_global_token|> of its example.
PROMPT_END = {"tts": "<|end_global_token|>", "controllable_tts": "<|end_style_label|>"}


def _prompt_target(task: str, row: dict) -> Optional[Tuple[str, str, str]]:
    """(transcript, prompt, target) of an export row of either style; None if unusable."""
    if isinstance(row.get("prompt"), str) and isinstance(row.get("target"), str):
        return row.get("text") or "", row["prompt"], row["target"]
    text = row.get("text")
    if "transcript" not in row or not isinstance(text, str) or PROMPT_END[task] not in text:
        return None
    cut = text.index(PROMPT_END[task]) + len(PROMPT_END[task])
    return row.get("transcript") or "", text[:cut], text[cut:]


def _skipped(task: str, reason: str) -> Tuple[str, str]:
    """A (task, reason) skip, the form export.examples_for yields."""
    from voxbox import reasons

    return task, reasons.check(reason, "skip")


def _export_examples(path: Path, tasks: Sequence[str]) -> Iterator[Union[Example, Tuple[str, str]]]:
    for row in _export_rows(path):
        task = row.get("task")
        if task not in tasks and task in TASKS:
            continue
        parts = _prompt_target(task, row) if task in TASKS else None
        if parts is None or not parts[2]:
            yield _skipped(task if task in TASKS else "unknown", reason="bad_row")
            continue
        yield Example(str(row.get("index") or ""), str(row.get("split") or "train"), task, *parts)


@dataclass
class LoadOptions:
    tasks: Sequence[str] = TASKS
    val_splits: Sequence[str] = DEFAULT_VAL_SPLITS
    val_fraction: float = 0.0
    max_tokens: int = 1500
    boundaries: Optional[str] = None  # level boundaries JSON for records without stored levels


@dataclass
class _Counts:
    examples: Dict[str, Counter] = field(default_factory=lambda: {"train": Counter(), "validation": Counter()})
    skipped: Dict[str, Counter] = field(default_factory=dict)

    def skip(self, task: str, reason: str) -> None:
        from voxbox import reasons

        self.skipped.setdefault(task, Counter())[reasons.check(reason, "skip")] += 1


def load_examples(dirs: Sequence[Union[str, Path]], tokenizer, opts: LoadOptions) -> Tuple[ExampleTable, dict]:
    """Encode the examples of every input folder; returns the table and a summary
    (per folder: examples per role and task, skips per task and reason)."""
    from voxbox.annotate.levels import Boundaries
    from voxbox.progress import Progress

    bounds = Boundaries.load(opts.boundaries)
    val_splits = set(opts.val_splits)
    builder = _TableBuilder()
    sources = []
    with Progress("read examples", unit="ex") as bar:
        for d in dirs:
            path = Path(d)
            kind = folder_kind(path)
            items = (_built_examples(path, opts.tasks, bounds) if kind == "built"
                     else _export_examples(path, opts.tasks))
            counts = _Counts()
            for chunk in _chunks(items, ENCODE_CHUNK):
                _encode_chunk(chunk, tokenizer, opts, val_splits, builder, counts)
                bar.update(len(chunk))
            sources.append({"path": str(path), "kind": kind,
                            "examples": {role: dict(sorted(c.items())) for role, c in counts.examples.items()},
                            "skipped": {t: dict(sorted(c.items())) for t, c in sorted(counts.skipped.items())}})
    table = builder.build()
    return table, {"sources": sources, **table_counts(table)}


def _chunks(items: Iterator, n: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == n:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _encode_chunk(chunk: list, tokenizer, opts: LoadOptions, val_splits: set, builder: _TableBuilder,
                  counts: _Counts) -> None:
    exs = []
    for item in chunk:
        if isinstance(item, tuple):
            counts.skip(*item)
        else:
            exs.append(item)
    if not exs:
        return
    # Prompt and target meet at an added token, so encoding them apart equals encoding
    # the concatenation (the export's IdEncoder relies on the same fact).
    texts = [s for ex in exs for s in (ex.prompt, ex.target)]
    enc = tokenizer(texts, add_special_tokens=False)["input_ids"]
    for k, ex in enumerate(exs):
        ex.prompt_ids, ex.target_ids = enc[2 * k], enc[2 * k + 1]
        if len(ex.prompt_ids) + len(ex.target_ids) > opts.max_tokens:
            counts.skip(ex.task, reason="over_max_tokens")
            continue
        val = ex.split in val_splits or is_held_out(ex.index, opts.val_fraction)
        counts.examples["validation" if val else "train"][ex.task] += 1
        builder.add(ex, val)


def table_counts(table: ExampleTable) -> dict:
    """Examples and tokens per role and task."""
    out: dict = {}
    lengths = table.lengths
    targets = lengths - table.prompt_len
    for role, val in (("train", False), ("validation", True)):
        out[role] = {}
        for task in TASKS:
            idx = table.select(task, val)
            if len(idx):
                out[role][task] = {"examples": int(len(idx)), "tokens": int(lengths[idx].sum()),
                                   "target_tokens": int(targets[idx].sum())}
    return out


# ------------------------------------------------------------------------------------
# Epoch plans and packing
# ------------------------------------------------------------------------------------

def epoch_order(table: ExampleTable, mix: Optional[Dict[str, float]], seed: int, epoch: int) -> np.ndarray:
    """The training examples of one epoch, shuffled; with a mix, each kind's share drawn
    from that kind. Depends only on (table, mix, seed, epoch)."""
    rng = np.random.default_rng([seed, epoch])
    if mix is None:
        return rng.permutation(table.select())
    total = sum(len(table.select(t)) for t in mix)
    parts = []
    for task, share in mix.items():
        pool = table.select(task)
        want = int(round(share * total))
        if not len(pool) or not want:
            continue
        passes = [rng.permutation(pool) for _ in range(-(-want // len(pool)))]
        parts.append(np.concatenate(passes)[:want])
    return rng.permutation(np.concatenate(parts)) if parts else np.zeros(0, np.int64)


def pack(order: Sequence[int], lengths: np.ndarray, budget: int, open_bins: int = OPEN_BINS) -> List[np.ndarray]:
    """Cut ``order`` into micro-batches of at most ``budget`` ids: each example goes to the
    first open batch it fits; with ``open_bins`` open, the fullest one is closed. Keeps
    the shuffled order roughly intact while filling batches well."""
    bins: List[List[int]] = []
    room: List[int] = []
    out: List[np.ndarray] = []
    for i in order:
        n = int(lengths[i])
        if n > budget:
            raise ValueError(f"example of {n} ids does not fit a batch of {budget}")
        for b in range(len(bins)):
            if room[b] >= n:
                bins[b].append(int(i))
                room[b] -= n
                break
        else:
            if len(bins) == open_bins:
                full = int(np.argmin(room))
                out.append(np.asarray(bins.pop(full), np.int64))
                room.pop(full)
            bins.append([int(i)])
            room.append(budget - n)
    out.extend(np.asarray(b, np.int64) for b in bins)
    return out


@dataclass
class Plan:
    """Every micro-batch of the run, in training order, and where each epoch starts."""

    batches: List[np.ndarray]
    epoch_starts: List[int]

    def epoch_at(self, batches_done: int) -> float:
        """Epochs done (fractional) after ``batches_done`` micro-batches."""
        starts = self.epoch_starts + [len(self.batches)]
        for e in range(len(self.epoch_starts)):
            if batches_done < starts[e + 1]:
                span = max(starts[e + 1] - starts[e], 1)
                return e + (batches_done - starts[e]) / span
        return float(len(self.epoch_starts))


def make_plan(table: ExampleTable, mix: Optional[Dict[str, float]], batch_tokens: int, seed: int,
              epochs: Optional[int], max_batches: Optional[int]) -> Plan:
    """Epochs of packed micro-batches: ``epochs`` of them, cut at ``max_batches``; with
    ``epochs`` None, as many as ``max_batches`` needs."""
    if epochs is None and max_batches is None:
        raise ValueError("give epochs or max_batches")
    lengths = table.lengths
    batches: List[np.ndarray] = []
    starts: List[int] = []
    epoch = 0
    while (epochs is None or epoch < epochs) and (max_batches is None or len(batches) < max_batches):
        order = epoch_order(table, mix, seed, epoch)
        if not len(order):
            break
        starts.append(len(batches))
        batches.extend(pack(order, lengths, batch_tokens))
        epoch += 1
    if max_batches is not None:
        batches = batches[:max_batches]
    return Plan(batches, starts)


def eval_batches(table: ExampleTable, task: str, batch_tokens: int) -> List[np.ndarray]:
    """Validation examples of one task in table order, packed."""
    return pack(table.select(task, val=True), table.lengths, batch_tokens)


# ------------------------------------------------------------------------------------
# Collation
# ------------------------------------------------------------------------------------

def collate(table: ExampleTable, example_ids: Sequence[int]) -> dict:
    """One packed row: ``input_ids``, ``labels`` (-100 on prompts) and ``position_ids``
    restarting at 0 per example, each (1, L) int64; no attention mask (see module doc)."""
    import torch

    ids, labels, pos = [], [], []
    for i in example_ids:
        seq, n_prompt = table.example(int(i))
        lab = seq.astype(np.int64)
        lab[:n_prompt] = IGNORE
        ids.append(seq)
        labels.append(lab)
        pos.append(np.arange(len(seq), dtype=np.int64))
    return {
        "input_ids": torch.from_numpy(np.concatenate(ids).astype(np.int64))[None],
        "labels": torch.from_numpy(np.concatenate(labels))[None],
        "position_ids": torch.from_numpy(np.concatenate(pos))[None],
    }


class PackedBatches:
    """A map-style dataset whose item ``i`` is micro-batch ``i`` of a plan (example ids);
    :class:`Collator` turns it into tensors."""

    def __init__(self, batches: List[np.ndarray]):
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.batches[i]


class Collator:
    """DataLoader ``collate_fn`` for :class:`PackedBatches` with batch size 1."""

    def __init__(self, table: ExampleTable):
        self.table = table

    def __call__(self, items: List[np.ndarray]) -> dict:
        if len(items) != 1:
            raise ValueError("packed batches are loaded one at a time (batch size 1)")
        return collate(self.table, items[0])
