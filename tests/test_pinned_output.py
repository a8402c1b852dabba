"""Pinned bytes: the shards built from the shipped real speech (libritts-mini) never change
by accident.

Where the values come from: the code at commit 2d5c0b1 (before issue 10's layout move and
refactor) built the same input the same way (``_build`` below, 1 worker) and gave exactly
these sha256 values; the current code gives the same. A refactor must leave them alone.
A deliberate change of the output (record fields, their order or rounding, the FLAC or
shard encoders, an annotation value) must update them here, and its commit must say so.

Two things of the environment enter the bytes and are handled explicitly:
- records store ``corpus_root``; an absolute path would tie the bytes to where ../shared
  sits, so the build runs from the corpus folder with ``corpus_root = "LibriTTS"``;
- a Parquet file names the pyarrow version that wrote it (``created_by``); under another
  pyarrow than the one pinned, the Parquet shard is checked by its decoded rows instead
  (a digest of every row, audio by sha256), the tar shard still byte for byte.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

PYARROW_PINNED = "26.0.1"  # the pyarrow that wrote the pinned Parquet bytes

# shard -> sha256 of the file, and of the Parquet rows (see _parquet_rows_sha256).
ANNOTATE = {
    "webdataset/voxbox-000000.tar": "b662f56eae2d029ba73563c9cb9d69489515abfca7fb9a47f5dcc0368fcb83e8",
    "parquet/voxbox-000000.parquet": "894808fc2403111ba1b26343cc987029e082da6bbc76515014aba917371dca86",
    "parquet rows": "52529eab0b84aeb2e62796c075166d2218d9d43bd519510f20ccdc9c0f4bbc53",
}
ANNOTATE_TOKENIZE = {  # tokens from ../shared/fixtures/bicodec-tiny
    "webdataset/voxbox-000000.tar": "905842593157bcd122c938f84c95305a4bc1f323f63b29457f14092e42098208",
    "parquet/voxbox-000000.parquet": "77080081b2fb16ce1bf4e2c8f9037dc2108d145cb28077a5be914643cfef3d9e",
    "parquet rows": "b51b9eb2e07c6e235e7c7d3f02f9fd6d654206532709fd8f234aac97208f4082",
}


def _build(shared: Path, out: Path, monkeypatch, model_dir=None) -> None:
    from voxbox.build.run import build
    from voxbox.build.pipeline import load_pipeline
    from voxbox.build.sources import corpus_source

    base = shared / "data" / "real-speech" / "libritts-mini"
    monkeypatch.chdir(base)  # corpus_root "LibriTTS" resolves from here
    source = [r.replace(corpus_root="LibriTTS") if hasattr(r, "corpus_root") else r
              for r in corpus_source("libritts", root=base / "LibriTTS")]
    pipe = load_pipeline(model_dir=model_dir, stages=None if model_dir else ["annotate"])
    build(source, out, pipe, workers=1)


def _parquet_rows_sha256(path: Path) -> str:
    import pyarrow.parquet as pq

    h = hashlib.sha256()
    for row in pq.read_table(path).to_pylist():
        audio = row.pop("audio")
        row["audio"] = {"path": audio["path"], "sha256": hashlib.sha256(audio["bytes"]).hexdigest()}
        h.update((json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n").encode())
    return h.hexdigest()


def _check(out: Path, pinned: dict) -> None:
    import pyarrow

    shards = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.suffix in (".tar", ".parquet"))
    assert shards == sorted(k for k in pinned if k != "parquet rows")
    for rel in shards:
        if rel.endswith(".parquet") and pyarrow.__version__ != PYARROW_PINNED:
            got, want = _parquet_rows_sha256(out / rel), pinned["parquet rows"]
        else:
            got, want = hashlib.sha256((out / rel).read_bytes()).hexdigest(), pinned[rel]
        assert got == want, (f"{rel}: the output bytes changed. If that is deliberate (a record-format or "
                             f"encoder change), update the pinned value in {Path(__file__).name}")
    if pyarrow.__version__ == PYARROW_PINNED:
        parquet = next(out / rel for rel in shards if rel.endswith(".parquet"))
        assert _parquet_rows_sha256(parquet) == pinned["parquet rows"]


def test_annotated_shards_are_pinned(shared, tmp_path, monkeypatch):
    out = tmp_path / "annotated"
    _build(shared, out, monkeypatch)
    _check(out, ANNOTATE)


@pytest.mark.slow
def test_annotated_and_tokenized_shards_are_pinned(shared, tiny_bicodec, tmp_path, monkeypatch):
    out = tmp_path / "tokenized"
    _build(shared, out, monkeypatch, model_dir=tiny_bicodec)
    _check(out, ANNOTATE_TOKENIZE)
