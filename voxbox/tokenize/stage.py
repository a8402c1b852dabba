"""The "tokenize" stage (BiCodec global + semantic tokens) and `voxbox tokenize` / `detokenize`.

A thin adapter over :class:`spark_tokenize.BiCodecTokenizer`: it batches records
(padded batches give exactly the one-at-a-time tokens), fills ``global_tokens`` (32 ints)
and ``semantic_tokens`` (50 per second) and turns bad audio into a :class:`Rejection`
whose reason is the tokenizer's code (``audio_too_short``, ``silent_audio``, ...).

:func:`tokenize_manifest` runs the stage over a manifest and can resume: finished
records go, in input order, to a journal next to the output
(``OUT.tokenize-progress.jsonl``, flushed after every chunk). A rerun with the same
input, model and output skips what the journal holds; the final manifest and the
rejects file are written from the journal at the end and the journal is removed.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path
from typing import Any, Iterator, List, Optional, Sequence, Tuple, Union

from voxbox.errors import VoxboxError
from voxbox.record import Rejection, Result, Utterance, audio_seconds
from voxbox.manifest import ManifestWriter, RejectsWriter, check_manifest_out, open_manifest, read_manifest, rejects_path
from voxbox.stages import Stage

JOURNAL_SUFFIX = ".tokenize-progress.jsonl"


def default_batch_size(device: str) -> int:
    """Padded batches pay off on a GPU (2.6x at 16 clips, H200, float32) but not on a
    CPU, where one clip at a time was faster (batches of 8 ran at 0.63x on 2 cores;
    benchmarks/bench_tokenize.py)."""
    return 16 if str(device).startswith("cuda") else 1


def _check_safetensors_header(path: Path) -> None:
    """A truncated or foreign weights file, found by its header alone (no tensor is read)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            size = os.fstat(fh.fileno()).st_size
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            ok = 0 < n <= size - 8
            if ok:
                header = json.loads(fh.read(n))
                ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
                ok = bool(ends) and max(ends) == size - 8 - n  # the data ends where the file does
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        ok = False
    if not ok:
        raise VoxboxError(f"{path}: not a complete safetensors file (truncated or corrupted); "
                          "download the model again")


class TokenizeStage(Stage):
    name = "tokenize"
    batched = True

    def __init__(self, model_dir: Union[str, os.PathLike, None] = None, device: str = "cpu",
                 batch_size: Optional[int] = None, dtype: str = "float32", **params: Any):
        if batch_size is None:
            batch_size = default_batch_size(device)
        super().__init__(model_dir=None if model_dir is None else str(model_dir), device=device,
                         batch_size=int(batch_size), dtype=dtype, **params)
        self.tokenizer = None
        if str(device).startswith("cuda"):
            self.resources = {"num_gpus": 1}  # tells GPU-aware engines (Ray) to reserve one

    def check(self) -> None:
        from spark_tokenize.bicodec.checkpoint import ModelLayout
        from spark_tokenize.errors import TokenizerError

        if not self.params.get("model_dir"):
            raise VoxboxError("the tokenize stage needs model_dir (a Spark-TTS model folder; "
                              "see `voxbox fetch-model`)")
        layout = ModelLayout(Path(self.params["model_dir"]))
        try:
            layout.check()
        except TokenizerError as e:
            raise VoxboxError(str(e)) from None
        for weights in (layout.bicodec_weights, layout.wav2vec2_dir / "model.safetensors"):
            if weights.is_file():
                _check_safetensors_header(weights)

    def setup(self) -> None:
        from spark_tokenize import BiCodecTokenizer, TokenizerError

        if not self.params.get("model_dir"):
            raise VoxboxError("the tokenize stage needs model_dir (a Spark-TTS model folder; "
                              "see `voxbox fetch-model`)")
        try:
            self.tokenizer = BiCodecTokenizer(self.params["model_dir"], device=self.params["device"],
                                              dtype=self.params["dtype"])
        except TokenizerError as e:
            raise VoxboxError(str(e)) from None

    def process(self, rec: Utterance) -> Result:
        return self.process_batch([rec])[0]

    def process_batch(self, recs: Sequence[Utterance]) -> List[Result]:
        from spark_tokenize import TokenizerError

        self.ensure_setup()
        out: List[Optional[Result]] = [None] * len(recs)
        todo, paths = [], []
        for i, rec in enumerate(recs):
            if rec.source_path is None:
                out[i] = self.reject(rec, "no_audio_path", rec.missing_audio_detail())
                continue
            todo.append(i)
            paths.append(rec.audio_path)
        results = self.tokenizer.tokenize_batch(paths, batch_size=self.params["batch_size"], errors="return")
        for i, res in zip(todo, results):
            if isinstance(res, TokenizerError):
                out[i] = self.reject(recs[i], res.reason, str(res))
            else:
                g, s = res
                out[i] = recs[i].replace(global_tokens=[int(v) for v in g.reshape(-1).tolist()],
                                         semantic_tokens=[int(v) for v in s.reshape(-1).tolist()])
        return out  # type: ignore[return-value]


# -- manifest runner with resume -----------------------------------------------------------

def journal_path(out: Union[str, Path]) -> Path:
    out = Path(out)
    return out.with_name(out.name + JOURNAL_SUFFIX)


def _read_journal(path: Path, header: dict) -> Tuple[int, int]:
    """Check the journal belongs to this run; drop a torn last line. Returns (entries, bytes kept)."""
    entries, keep = 0, 0
    with open(path, "rb") as fh:
        first = fh.readline()
        try:
            found = json.loads(first)
        except json.JSONDecodeError:
            found = None
        if not first.endswith(b"\n") or not isinstance(found, dict) or found.get("header") != header:
            raise VoxboxError(
                f"{path} is the progress journal of a different tokenize run (other input, model or "
                f"settings); rerun with the same arguments, or delete it to start over")
        keep = len(first)
        for line in fh:
            if not line.endswith(b"\n"):
                break  # torn by an interruption: redo that chunk
            try:
                json.loads(line)
            except json.JSONDecodeError:
                break
            entries += 1
            keep += len(line)
    return entries, keep


def _journal_entries(path: Path) -> Iterator[dict]:
    with open(path, "r", encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            yield json.loads(line)


def tokenize_manifest(src: Union[str, Path], out: Union[str, Path], model_dir: Union[str, Path],
                      device: str = "cpu", batch_size: Optional[int] = None, dtype: str = "float32",
                      limit: Optional[int] = None, chunk_batches: int = 4,
                      stage: Optional[TokenizeStage] = None) -> dict:
    """Tokenize every record of ``src`` into ``out``; rejects go to ``out``'s ``.rejects.jsonl``.

    Resumable (see the module docstring). Returns a summary with records, rejected,
    audio seconds, wall seconds and audio-seconds per second.
    """
    from voxbox.progress import Progress

    src, out = Path(src), Path(out)
    if not src.exists():
        raise VoxboxError(f"{src}: manifest not found")
    if src.resolve() == out.resolve():
        raise VoxboxError(f"{out}: output must differ from the input manifest")
    check_manifest_out(out)  # written last: a bad --out must not waste the whole run
    if batch_size is None:
        batch_size = default_batch_size(device)
    if batch_size < 1:
        raise VoxboxError("batch size must be at least 1")
    header = {"src": str(src.resolve()), "model_dir": str(Path(model_dir).resolve()), "dtype": dtype,
              "limit": limit}
    total, records = open_manifest(src, limit)
    jpath = journal_path(out)
    done, keep = _read_journal(jpath, header) if jpath.exists() else (0, None)
    stage = stage or TokenizeStage(model_dir=model_dir, device=device, batch_size=batch_size, dtype=dtype)
    if done < total:
        # Load the model before writing anything: a bad model folder must not leave a
        # journal behind that then blocks the corrected command.
        stage.ensure_setup()
    if keep is not None:
        with open(jpath, "r+b") as fh:
            fh.truncate(keep)
    else:
        jpath.parent.mkdir(parents=True, exist_ok=True)
        jpath.write_text(json.dumps({"header": header}) + "\n", encoding="utf-8")
    records = itertools.islice(records, done, None)

    chunk = max(1, batch_size * chunk_batches)  # sorted by length inside: less padding
    audio_s, t0 = 0.0, time.perf_counter()
    with Progress("tokenize", total=total) as bar, open(jpath, "a", encoding="utf-8") as journal:
        bar.update(done)
        while True:
            recs = list(itertools.islice(records, chunk))
            if not recs:
                break
            lines = []
            for res in stage.safe_process_batch(recs):
                if isinstance(res, Rejection):
                    lines.append(json.dumps({"rejection": res.to_dict()}, ensure_ascii=False))
                    bar.update(1)
                else:
                    secs = audio_seconds(res)
                    audio_s += secs
                    lines.append(json.dumps({"record": res.to_dict()}, ensure_ascii=False))
                    bar.update(1, audio_seconds=secs)
            journal.write("\n".join(lines) + "\n")
            journal.flush()
    wall = time.perf_counter() - t0

    rej_path = rejects_path(out)
    with ManifestWriter(out) as writer, RejectsWriter(rej_path) as rejects:
        for entry in _journal_entries(jpath):
            if "record" in entry:
                writer.write(Utterance.from_dict(entry["record"]))
            else:
                rejects.write(Rejection.from_dict(entry["rejection"]))
        if rejects.count and not writer.count:
            # No empty manifest (raising inside the writer's block discards it), the rejects
            # file stays, and the journal goes so that a rerun after fixing the audio redoes it.
            jpath.unlink()
            raise VoxboxError(f"every record was rejected, nothing to write: {rejects.summary()}")
        summary = {"records": writer.count, "rejected": rejects.count, "resumed_from": done,
                   "audio_seconds": round(audio_s, 3), "wall_seconds": round(wall, 3),
                   "audio_seconds_per_second": round(audio_s / wall, 3) if wall > 0 and audio_s else 0.0,
                   "rejects": str(rej_path) if rejects.count else None, "reject_summary": rejects.summary()}
    jpath.unlink()
    return summary


# -- detokenize ----------------------------------------------------------------------------

def load_tokens(token_file: Optional[Union[str, Path]] = None, manifest: Optional[Union[str, Path]] = None,
                index: Optional[str] = None) -> Tuple[list, list, str]:
    """Tokens from a JSON file ({"global_tokens": [...], "semantic_tokens": [...]}) or from the
    record of ``manifest`` whose ``index`` matches (or the N-th record when ``index`` is a number)."""
    if (token_file is None) == (manifest is None):
        raise VoxboxError("give either a token file or a manifest with --index")
    if token_file is not None:
        p = Path(token_file)
        if not p.is_file():
            raise VoxboxError(f"{p}: " + ("is a folder; give a token JSON file or a manifest with --index"
                                          if p.is_dir() else "token file not found"))
        if p.name.endswith((".jsonl", ".jsonl.gz", ".parquet")):
            raise VoxboxError(f"{p}: is a manifest; pick a record with --index (its index or 0-based position)")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise VoxboxError(f"{p}: not valid JSON ({e.msg})") from None
        if not isinstance(data, dict) or "global_tokens" not in data or "semantic_tokens" not in data:
            raise VoxboxError(f"{p}: expected an object with global_tokens and semantic_tokens")
        return data["global_tokens"], data["semantic_tokens"], p.stem
    if index is None:
        raise VoxboxError("--index is required with a manifest (a record index, or a 0-based position)")
    for pos, rec in enumerate(read_manifest(manifest)):
        if rec.index == index or (index.isdigit() and pos == int(index)):
            if rec.global_tokens is None or rec.semantic_tokens is None:
                raise VoxboxError(f"{manifest}: record {rec.index} has no tokens (run `voxbox tokenize` first)")
            return rec.global_tokens, rec.semantic_tokens, rec.index or str(pos)
    raise VoxboxError(f"{manifest}: no record with index {index}")


def detokenize_to_wav(out: Union[str, Path], model_dir: Union[str, Path], token_file=None, manifest=None,
                      index: Optional[str] = None, device: str = "cpu") -> dict:
    """Decode one token set to a 16 kHz wav file."""
    import soundfile as sf

    from spark_tokenize import BiCodecTokenizer, TokenizerError

    out = Path(out)
    if out.suffix.lower() not in (".wav", ".flac"):
        raise VoxboxError(f"{out}: write .wav or .flac")
    if out.is_dir():
        raise VoxboxError(f"{out}: is a folder; give a file name such as {out / 'rec.wav'}")
    g, s, name = load_tokens(token_file, manifest, index)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        tok = BiCodecTokenizer(model_dir, device=device)
        wav = tok.detokenize(g, s)
    except TokenizerError as e:
        raise VoxboxError(str(e)) from None
    try:  # opened by Python so a failure says why (libsndfile only says "System error")
        fh = open(out, "wb")
    except OSError as e:
        raise VoxboxError(f"{out}: cannot write the audio ({e.strerror})") from None
    with fh:
        sf.write(fh, wav, 16000, format=out.suffix[1:].upper(), subtype="PCM_16")
    return {"name": name, "path": str(out), "seconds": round(len(wav) / 16000, 3)}
