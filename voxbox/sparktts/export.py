"""Spark-TTS training examples from a built dataset (``voxbox export sparktts``).

For every record with BiCodec tokens, the two examples SparkVox builds per clip
(spec voxbox.md section 5, sparktts.md 7.4), as prompt/target text in the exact token
format:

- ``tts`` (zero-shot TTS): prompt ``<|task_tts|><|start_content|>TEXT<|end_content|>``
  + the 32 global tokens; target ``<|start_semantic_token|>`` + semantic tokens +
  ``<|im_end|>``.
- ``controllable_tts``: prompt with gender, pitch level and speed level; target with the
  value chain (``pitch_value``, ``speed_value``), then global and semantic tokens.

``style="text"`` writes one ``text`` column instead (prompt + target as the model sees
them), the format SFT trainers read. Optionally with token ids for a given tokenizer
(``tokenizer_dir``). Output is sharded
JSONL or Parquet, one shard series per split, in dataset order, so the same input gives
the same bytes. Records that cannot give an example are skipped with a counted reason,
printed and written to ``summary.json``.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

from voxbox.errors import VoxboxError
from voxbox.record import Utterance, audio_seconds, format_reason_counts

TASKS = ("tts", "controllable_tts")
FORMATS = ("jsonl", "parquet")
SUMMARY_NAME = "summary.json"
MAX_SPEED = 10.0  # SparkVox drops clips above 10 syllables/s
_SHARD_RE = re.compile(r"^sparktts-[A-Za-z0-9_.-]+-\d{6}\.(jsonl|parquet)(\.partial)?$")


class NoExample(Exception):
    """A record gives no example for a task (counted as skipped); ``args[0]`` is the reason code."""


@dataclass
class Example:
    index: str
    split: str
    task: str
    text: str
    prompt: str
    target: str
    prompt_ids: Optional[List[int]] = None
    target_ids: Optional[List[int]] = None

    def row(self, with_ids: bool, style: str = "prompt") -> dict:
        """The stored row. ``prompt`` style: ``text`` (transcript), ``prompt``, ``target``
        (+ ``prompt_ids``, ``target_ids``). ``text`` style, for trainers that read one text
        field: ``transcript``, ``text`` = prompt + target exactly as the model sees it
        (+ ``input_ids`` and ``prompt_length``, the number of prompt ids to mask in the loss)."""
        row = {"index": self.index, "split": self.split, "task": self.task}
        if style == "text":
            row.update(transcript=self.text, text=self.prompt + self.target)
            if with_ids:
                row.update(input_ids=self.prompt_ids + self.target_ids, prompt_length=len(self.prompt_ids))
            return row
        row.update(text=self.text, prompt=self.prompt, target=self.target)
        if with_ids:
            row.update(prompt_ids=self.prompt_ids, target_ids=self.target_ids)
        return row


# ------------------------------------------------------------------------------------
# Per-record example builders
# ------------------------------------------------------------------------------------

def _tokens(rec: Utterance) -> Tuple[List[int], List[int]]:
    from spark_tokenize import prompts as P

    if not rec.global_tokens or not rec.semantic_tokens:
        raise NoExample("no_tokens")
    if len(rec.global_tokens) != P.N_GLOBAL_TOKENS:
        raise NoExample("bad_global_tokens")
    glob = [int(t) for t in rec.global_tokens]
    sem = [int(t) for t in rec.semantic_tokens]
    if min(glob) < 0 or max(glob) >= P.GLOBAL_CODEBOOK or min(sem) < 0 or max(sem) >= P.SEMANTIC_CODEBOOK:
        raise NoExample("token_out_of_range")
    return glob, sem


def _text(rec: Utterance) -> str:
    if rec.text is None or not rec.text.strip():
        raise NoExample("no_text")
    return rec.text


def _speed(rec: Utterance) -> Optional[float]:
    """Speed recomputed from syllables and speech duration as SparkVox does, else the stored one."""
    if rec.syllable_num is not None and rec.speech_duration:
        return rec.syllable_num / rec.speech_duration
    return rec.speed


def _check_speed(rec: Utterance) -> None:
    speed = _speed(rec)
    if speed is not None and speed > MAX_SPEED:
        raise NoExample("speed_over_10")


def tts_example(rec: Utterance) -> Tuple[str, str]:
    """(prompt, target) of the zero-shot TTS example; raises NoExample(reason)."""
    from spark_tokenize import prompts as P

    text = _text(rec)
    glob, sem = _tokens(rec)
    _check_speed(rec)
    # The zero-shot training prompt is the clone prompt without a reference transcript.
    return P.clone_prompt(text, glob), P.tts_target(sem)


def control_attributes(rec: Utterance, boundaries=None) -> Tuple[str, str, str, int, int]:
    """(gender, pitch level, speed level, pitch value, speed value) for the control example.

    Uses the record's levels and values (set by voxbox annotate); when they are missing
    but the raw pitch/speed are known, derives them with :mod:`voxbox.annotate.levels`
    and ``boundaries`` (a ``levels.Boundaries``; VoxBox's when None).
    """
    from spark_tokenize import prompts as P

    gender = (rec.gender or "").lower()
    if gender not in P.GENDER_MAP:
        raise NoExample("no_gender")
    speed = _speed(rec)
    if speed is not None and speed > MAX_SPEED:
        raise NoExample("speed_over_10")
    pitch_level, speed_level = rec.pitch_level, rec.speed_level
    pitch_value, speed_value = rec.pitch_value, rec.speed_value
    if boundaries is None and (pitch_level is None or pitch_value is None or speed_level is None
                               or speed_value is None):
        from voxbox.annotate.levels import Boundaries

        boundaries = Boundaries()
    if pitch_level is None or pitch_value is None:
        if rec.pitch is None or (isinstance(rec.pitch, float) and math.isnan(rec.pitch)):
            raise NoExample("no_pitch")
        pitch_level, pitch_value = _derive_pitch(rec.pitch, gender, boundaries)
    if speed_level is None or speed_value is None:
        if speed is None:
            raise NoExample("no_speed")
        speed_level, speed_value = _derive_speed(speed, rec, boundaries)
    if pitch_level not in P.LEVELS_MAP or speed_level not in P.LEVELS_MAP:
        raise NoExample("bad_level")
    return gender, pitch_level, speed_level, int(pitch_value), int(speed_value)


def _derive_pitch(pitch_hz: float, gender: str, boundaries) -> Tuple[str, int]:
    from voxbox.annotate import levels

    bounds = boundaries.bounds("pitch", gender)
    if bounds is None or pitch_hz <= 0:
        raise NoExample("no_pitch")
    return levels.level(levels.pitch_mel(pitch_hz), bounds), levels.pitch_value(pitch_hz)


def _derive_speed(speed: float, rec: Utterance, boundaries) -> Tuple[str, int]:
    from voxbox.annotate import levels

    bounds = boundaries.bounds("speed", levels.speed_group(rec))
    if bounds is None:
        raise NoExample("no_speed_boundaries")
    return levels.level(levels.clip_speed(speed), bounds), levels.speed_value(speed)


def control_example(rec: Utterance, boundaries=None) -> Tuple[str, str]:
    """(prompt, target) of the controllable-TTS example; raises NoExample(reason)."""
    from spark_tokenize import prompts as P

    text = _text(rec)
    glob, sem = _tokens(rec)
    gender, pitch_level, speed_level, pitch_value, speed_value = control_attributes(rec, boundaries)
    return (P.control_prompt(text, gender, pitch_level, speed_level),
            P.control_target(pitch_value, speed_value, glob, sem))


def examples_for(rec: Utterance, tasks: Sequence[str] = TASKS,
                 boundaries=None) -> Iterator[Union[Example, Tuple[str, str]]]:
    """Yield an Example per task, or ``(task, reason)`` for each task the record cannot give."""
    for task in tasks:
        try:
            if task == "tts":
                prompt, target = tts_example(rec)
            else:
                prompt, target = control_example(rec, boundaries)
        except NoExample as s:
            yield task, s.args[0]
            continue
        yield Example(rec.index, rec.split or "train", task, rec.text, prompt, target)


# ------------------------------------------------------------------------------------
# Token ids
# ------------------------------------------------------------------------------------

class IdEncoder:
    """Prompt/target -> ids with a Spark-TTS tokenizer folder (an ``LLM/`` folder or a model folder)."""

    def __init__(self, tokenizer_dir: Union[str, Path]):
        from transformers import AutoTokenizer

        from spark_tokenize.errors import TokenizerError
        from spark_tokenize.tts import check_tokenizer

        path = Path(tokenizer_dir)
        if (path / "LLM").is_dir():
            path = path / "LLM"
        if not path.is_dir():
            raise VoxboxError(f"{tokenizer_dir}: tokenizer folder not found")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path))
            check_tokenizer(self.tokenizer, path)
        except TokenizerError as e:
            raise VoxboxError(str(e)) from None
        except (OSError, ValueError) as e:
            # transformers raises ValueError when the folder holds no tokenizer files at all
            raise VoxboxError(f"{path}: cannot load a tokenizer ({str(e).splitlines()[0].strip()}); "
                              "give a Spark-TTS model folder (with LLM/) or its LLM/ folder") from None
        self.path = path

    def __call__(self, ex: Example) -> Example:
        # Prompt and target meet at an added token, so encoding them apart equals
        # encoding the concatenation.
        enc = self.tokenizer([ex.prompt, ex.target], add_special_tokens=False)["input_ids"]
        ex.prompt_ids, ex.target_ids = list(enc[0]), list(enc[1])
        return ex


# ------------------------------------------------------------------------------------
# Writers
# ------------------------------------------------------------------------------------

def _arrow_schema(with_ids: bool, style: str = "prompt"):
    import pyarrow as pa

    ids = pa.list_(pa.int32())
    if style == "text":
        cols = [pa.field(k, pa.string()) for k in ("index", "split", "task", "transcript", "text")]
        if with_ids:
            cols += [pa.field("input_ids", ids), pa.field("prompt_length", pa.int32())]
        return pa.schema(cols)
    cols = [pa.field(k, pa.string()) for k in ("index", "split", "task", "text", "prompt", "target")]
    if with_ids:
        cols += [pa.field("prompt_ids", ids), pa.field("target_ids", ids)]
    return pa.schema(cols)


class _ShardSeries:
    """Shards of one split: ``sparktts-<split>-000000.<ext>``, ``shard_size`` examples each."""

    def __init__(self, out: Path, split: str, fmt: str, shard_size: int, with_ids: bool, style: str = "prompt"):
        self.out, self.split, self.fmt = out, split, fmt
        self.shard_size, self.with_ids, self.style = shard_size, with_ids, style
        self.n_shard = 0
        self.rows: List[dict] = []
        self.files: List[dict] = []

    def add(self, row: dict) -> None:
        self.rows.append(row)
        if len(self.rows) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        from voxbox.shards import index as ix

        if not self.rows:
            return
        name = f"sparktts-{self.split}-{self.n_shard:06d}.{self.fmt}"
        final = self.out / name
        tmp = self.out / (name + ".partial")
        if self.fmt == "jsonl":
            with open(tmp, "w", encoding="utf-8") as fh:
                for row in self.rows:
                    fh.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pylist(self.rows, schema=_arrow_schema(self.with_ids, self.style))
            pq.write_table(table, tmp, compression="zstd", row_group_size=1000)
        ix.commit_file(tmp, final)
        self.files.append({"path": name, "split": self.split, "examples": len(self.rows),
                           "sha256": ix.sha256_file(final)})
        self.rows = []
        self.n_shard += 1


def _safe_split(split: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]", "_", split or "train")
    return s or "train"


STYLES = ("prompt", "text")


@dataclass
class _Run:
    """What one export writes into, and what it has counted."""

    out: Path
    fmt: str
    style: str
    shard_size: int
    encoder: Optional["IdEncoder"]
    max_tokens: Optional[int]
    series: Dict[str, _ShardSeries]
    made: Counter
    skipped: Dict[str, Counter]
    records: int = 0

    def add(self, ex: Example) -> None:
        if self.encoder is not None:
            self.encoder(ex)
            if self.max_tokens is not None and len(ex.prompt_ids) + len(ex.target_ids) > self.max_tokens:
                self.skipped[ex.task]["over_max_tokens"] += 1
                return
        split = _safe_split(ex.split)
        if split not in self.series:
            self.series[split] = _ShardSeries(self.out, split, self.fmt, self.shard_size, self.encoder is not None,
                                              self.style)
        self.series[split].add(ex.row(self.encoder is not None, self.style))
        self.made[ex.task] += 1


def _check_args(fmt: str, tasks: Sequence[str], shard_size: int, max_tokens: Optional[int],
                tokenizer_dir, style: str) -> Tuple[str, ...]:
    if fmt not in FORMATS:
        raise VoxboxError(f"unknown export format {fmt!r}: use jsonl or parquet")
    if style not in STYLES:
        raise VoxboxError(f"unknown style {style!r}: use prompt (prompt/target columns) or text (one text column)")
    tasks = tuple(tasks)
    bad = [t for t in tasks if t not in TASKS]
    if bad or not tasks:
        raise VoxboxError(f"unknown task(s) {', '.join(bad) or '(none)'}: use {', '.join(TASKS)}")
    if shard_size < 1:
        raise VoxboxError(f"shard size must be at least 1, got {shard_size}")
    if max_tokens is not None and max_tokens < 1:
        raise VoxboxError(f"--max-tokens must be at least 1, got {max_tokens}")
    if max_tokens is not None and tokenizer_dir is None:
        raise VoxboxError("--max-tokens counts token ids and needs --tokenizer")
    return tasks


def export_sparktts(dataset_dir: Union[str, Path], out_dir: Union[str, Path], *, fmt: str = "jsonl",
                    tasks: Sequence[str] = TASKS, tokenizer_dir: Optional[Union[str, Path]] = None,
                    shard_size: int = 50_000, overwrite: bool = False,
                    boundaries: Optional[Union[str, Path]] = None, max_tokens: Optional[int] = None,
                    style: str = "prompt") -> dict:
    """Write Spark-TTS training examples for a built dataset; returns the summary dict.

    ``fmt``: ``jsonl`` or ``parquet``. ``tasks``: subset of ``tts``, ``controllable_tts``.
    ``style``: ``prompt`` (``prompt`` + ``target`` columns) or ``text`` (one ``text`` column,
    prompt + target concatenated, what SFT trainers such as TRL's read; see
    :meth:`Example.row`). ``tokenizer_dir``: add token ids encoded with that tokenizer
    (it must have the Spark-TTS token layout). ``shard_size``: examples per file.
    ``boundaries``: a level boundaries JSON (``voxbox annotate`` format) for records
    that have raw pitch/speed but no levels; VoxBox's boundaries when None.
    ``max_tokens``: skip examples longer than this many ids, prompt and target together
    (SparkVox trains with at most 1500); needs ``tokenizer_dir``. ``overwrite``: replace
    an earlier export in ``out_dir`` (``--force``).
    """
    from voxbox.annotate.levels import Boundaries
    from voxbox.dataset.reader import open_dataset

    tasks = _check_args(fmt, tasks, shard_size, max_tokens, tokenizer_dir, style)
    ds = open_dataset(dataset_dir)
    # Every example's target is semantic tokens: without any, the export would be empty.
    # (Stops at the first tokenized record; records are read without their audio.)
    if not any(r.semantic_tokens for r in ds.records()):
        raise VoxboxError(f"{ds.path}: no record has BiCodec tokens, so there is nothing to export; "
                          "build it with --model-dir (the tokenize stage)")
    # Everything that can fail on bad input is loaded before the output folder is touched.
    encoder = IdEncoder(tokenizer_dir) if tokenizer_dir is not None else None
    bounds = Boundaries.load(boundaries)
    out = Path(out_dir)
    from voxbox.lock import OutputLock
    from voxbox.shards import index as ix

    with OutputLock(out):  # two exports into one folder would mix their files
        _prepare_out(out, overwrite)
        run = _Run(out, fmt, style, shard_size, encoder, max_tokens, {}, Counter(), {t: Counter() for t in tasks})
        _write_examples(ds, run, tasks, bounds)
        summary = _summary(run, ds, tasks, boundaries)
        ix.write_text_atomic(out / SUMMARY_NAME, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return summary


def _write_examples(ds, run: _Run, tasks: Tuple[str, ...], bounds) -> None:
    from voxbox.progress import Progress

    with Progress("export sparktts", total=len(ds)) as bar:
        for rec in ds.records():
            run.records += 1
            for item in examples_for(rec, tasks, bounds):
                if isinstance(item, tuple):
                    run.skipped[item[0]][item[1]] += 1
                else:
                    run.add(item)
            bar.update(1, audio_seconds=audio_seconds(rec))
    for split in sorted(run.series):
        run.series[split].flush()


def _summary(run: _Run, ds, tasks: Tuple[str, ...], boundaries) -> dict:
    return {
        "format": run.fmt,
        "style": run.style,
        "dataset": str(ds.path),
        "dataset_name": ds.name,
        "records": run.records,
        "tasks": list(tasks),
        "examples": {t: run.made.get(t, 0) for t in tasks},
        "skipped": {t: dict(sorted(run.skipped[t].items())) for t in tasks},
        "token_ids": run.encoder is not None,
        "tokenizer": str(run.encoder.path) if run.encoder is not None else None,
        "boundaries": str(boundaries) if boundaries is not None else "voxbox",
        "max_tokens": run.max_tokens,
        "files": [f for split in sorted(run.series) for f in run.series[split].files],
    }


def _prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise VoxboxError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    ours = [p for p in out.iterdir() if _SHARD_RE.match(p.name) or p.name == SUMMARY_NAME]
    if ours and not overwrite:
        raise VoxboxError(f"{out}: already holds an export; pass --force to replace it")
    for p in ours:
        p.unlink()


def format_export_summary(summary: dict) -> str:
    """Human-readable lines: examples per task, skips per task and reason, files."""
    lines = [f"{summary['records']} records -> "
             + ", ".join(f"{n} {t}" for t, n in summary["examples"].items())
             + f" examples in {len(summary['files'])} {summary['format']} file(s)"]
    for task, reasons in summary["skipped"].items():
        if reasons:
            lines.append(f"skipped {task}: {format_reason_counts(reasons)}")
    return "\n".join(lines)
