"""The "tokenize" stage (BiCodec global + semantic tokens) and `voxbox tokenize` / `detokenize`.

A thin adapter over :class:`spark_tokenize.BiCodecTokenizer`: it batches records
(padded batches give exactly the one-at-a-time tokens), fills ``global_tokens`` (32 ints)
and ``semantic_tokens`` (50 per second) and turns bad audio into a :class:`Rejection`
whose reason is the tokenizer's code (``audio_too_short``, ``silent_audio``, ...).

:func:`tokenize_manifest` runs the stage over a manifest on the build's engines
(:mod:`voxbox.build.manifest_run`): resumable from ``OUT.work/`` by the build's journal
rules, ``--engine local`` or ``ray``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple, Union

from voxbox.errors import VoxboxError
from voxbox.manifest import read_manifest
from voxbox.record import Result, Utterance
from voxbox.stages import Stage, StageOption


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
    """BiCodec tokens: 32 global + 50 semantic per second (batched)."""

    name = "tokenize"
    batched = True
    options = (
        StageOption("model_dir", Path, None, "Spark-TTS model folder (config.yaml, BiCodec/, "
                    "wav2vec2-large-xlsr-53/), e.g. from `voxbox fetch-model`"),
        StageOption("device", str, "cpu", "torch device: cpu or cuda (cuda:N)"),
        StageOption("batch_size", int, None, "clips per padded batch (tokens do not depend on it); "
                    "default: 16 on CUDA, 1 on CPU", minimum=1),
        StageOption("dtype", str, "float32", "float32 (exact) or bfloat16 (CUDA only, faster, tokens may "
                    "differ slightly); float16 breaks the model", choices=("float32", "bfloat16")),
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        if self.params["batch_size"] is None:
            self.params["batch_size"] = default_batch_size(self.params["device"])
        self.tokenizer = None
        if str(self.params["device"]).startswith("cuda"):
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
        from voxbox.limits import max_duration_s

        self.tokenizer.max_seconds = max_duration_s()  # a 3-hour file is refused from its header

    def process(self, rec: Utterance) -> Result:
        return self.process_batch([rec])[0]

    def process_batch(self, recs: Sequence[Utterance]) -> List[Result]:
        from spark_tokenize import TokenizerError

        self.ensure_setup()
        out: List[Optional[Result]] = [None] * len(recs)
        todo, items, rates = [], [], []
        for i, rec in enumerate(recs):
            if rec.source_path is None:
                out[i] = self.reject(rec, "no_audio_path", rec.missing_audio_detail())
                continue
            item = _audio_item(rec)
            if isinstance(item, Exception):
                out[i] = self.reject(rec, item.reason, str(item))
                continue
            todo.append(i)
            items.append(item[0])
            rates.append(item[1])
        results = self.tokenizer.tokenize_batch(items, sample_rates=rates, batch_size=self.params["batch_size"],
                                                errors="return")
        for i, res in zip(todo, results):
            if isinstance(res, TokenizerError):
                out[i] = self.reject(recs[i], res.reason, str(res))
            else:
                g, s = res
                out[i] = recs[i].replace(global_tokens=[int(v) for v in g.reshape(-1).tolist()],
                                         semantic_tokens=[int(v) for v in s.reshape(-1).tolist()])
        return out  # type: ignore[return-value]


def _audio_item(rec: Utterance):
    """(path, None) for a whole file; (channel-0 samples, rate) for a span or an archive
    member (read through voxbox.media); the MediaError when that read fails."""
    from voxbox import media

    if media.is_plain(rec):
        return rec.audio_path, None
    try:
        data, sr, _ = media.read_frames(rec, dtype="float64", always_2d=True)
    except media.MediaError as e:
        return e
    return data[:, 0].copy(), sr


# -- voxbox tokenize -------------------------------------------------------------------------

def tokenize_manifest(src: Union[str, Path], out: Union[str, Path], model_dir: Union[str, Path, None] = None,
                      device: str = "cpu", batch_size: Optional[int] = None, dtype: str = "float32",
                      limit: Optional[int] = None, chunk_batches: int = 4, engine: str = "local",
                      workers: int = 1, ray_address: Optional[str] = None, part_records: Optional[int] = None,
                      stage: Optional[TokenizeStage] = None, allow_absolute_paths: bool = False,
                      log=None) -> dict:
    """Tokenize every record of ``src`` into ``out``; rejects go to ``out``'s ``.rejects.jsonl``.

    Runs on the build's engines and is resumable by the build's journal rules (see
    :mod:`voxbox.build.manifest_run`). A task holds ``chunk_batches`` padded batches,
    sorted by length inside (less padding). Returns a summary with records, rejected,
    resumed_from, audio seconds, wall seconds and audio-seconds per second.
    """
    from voxbox.build.manifest_run import DEFAULT_PART_RECORDS, run_manifest

    if stage is None:
        stage = TokenizeStage(model_dir=model_dir, device=device, batch_size=batch_size, dtype=dtype)
    task = (batch_size or stage.params["batch_size"]) * max(1, chunk_batches)
    return run_manifest(src, out, [stage], engine=engine, workers=workers, batch_size=task, limit=limit,
                        part_records=part_records or max(DEFAULT_PART_RECORDS, task), ray_address=ray_address,
                        allow_absolute_paths=allow_absolute_paths, log=log)


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
