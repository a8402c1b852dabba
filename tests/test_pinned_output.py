"""Pinned bytes: the shards built from the shipped real speech (libritts-mini) never change
by accident.

Where the values come from: main at d126894 (the code before issue 10's executor and
build split were merged) built the same input the same way (``_build`` below, 1 worker)
and gave exactly these sha256 values; the refactored code gives the same. (Before that,
the code at 2d5c0b1, before issue 10's layout move, gave the values this file first pinned,
and the refactor reproduced them too; main's stored-record layout change,
``shards.finalize.RECORD_FORMAT``, then changed them deliberately, and so did issue 12:
record format 3 adds speaker_source, gender_clip(_confidence), duplicate_of and
embedding(_model), and the default annotate checks the native genders with the GE2E gender
model, filling gender_clip; record format 4 (issue 13, the ASR plug-in) adds text_source,
asr_model, asr_text, asr_wer and asr_cer, null in these builds with their reasons: every
other stored value was checked equal to record format 3's.) A refactor must leave
them alone. A deliberate change of the output (record fields, their order or rounding,
the FLAC or shard encoders, an annotation value) must update them here, and its commit
must say so.

Two things of the environment enter the bytes and are handled explicitly:
- records may store ``corpus_root`` (the layout of 2d5c0b1 did); an absolute path would tie
  the bytes to where ../shared sits, so the build runs from the corpus folder with
  ``corpus_root = "LibriTTS"``;
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
    "webdataset/voxbox-000000.tar": "f23ad5d1957b37faf4fd179af2e306577f2ab54ea260b0e13092e1e67b3d41d0",
    "parquet/voxbox-000000.parquet": "561e0ff51e3ff19350c8f34bd689b719eda34b8a2ad1043997c4d8d577c257c2",
    "parquet rows": "0f75471480fed283708bffda78ddfef7e89c813a91a23409c636d1fb616944b6",
}
ANNOTATE_TOKENIZE = {  # tokens from ../shared/fixtures/bicodec-tiny
    "webdataset/voxbox-000000.tar": "bb7d9985016a9e368fd3eb3eae5dedda68c55bb72edd357c9b73e5e30d835754",
    "parquet/voxbox-000000.parquet": "30f03d7c56ec438f60f6eaeec847d170221a12f434b5c36fe070dd314a42ea75",
    "parquet rows": "99a062e9f6338337814a2949f823173255405b5d163d9a40fab3d45d3de66abe",
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
