"""Shard writers: both formats, stock readers, determinism, lossless audio."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf

from voxbox.dataset.reader import decode_audio, hf_webdataset_features, open_dataset
from voxbox.record import Utterance
from voxbox.shards import plan_shards, write_dataset
from voxbox.shards.finalize import shard_record
from voxbox.shards.index import sha256_file

from voxbox_build_fixtures import make_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    recs = make_corpus(root, n=10, bad=True)
    # Tokens and dict fields travel through both formats.
    recs = [r.replace(global_tokens=list(range(i, i + 32)), semantic_tokens=[i] * 7,
                      null_reasons={"pitch": "no_voiced_frames"} if i % 2 else None,
                      extra={"native_emotion": "calm"} if i == 2 else None)
            for i, r in enumerate(recs)]
    return root, recs


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    _, recs = corpus
    out = tmp_path_factory.mktemp("built")
    # Records in reverse order: the writer must sort them by index.
    write_dataset(list(reversed(recs)), out, name="synth", shard_mb=0.1, shard_records=4)
    return out


def test_layout_index_and_rejects(built, corpus):
    _, recs = corpus
    ds = open_dataset(built)
    idx = ds.index
    good = [r for r in recs if r.source_path != "broken.wav"]
    assert idx["totals"]["records"] == len(good) == len(ds)
    assert idx["totals"]["shards"] == len(idx["shards"]) >= 3  # cut by the 4-record cap
    assert all(s["records"] <= 4 for s in idx["shards"])
    assert idx["rejects"]["count"] == 1
    assert idx["rejects"]["by_reason"] == {"shard: unreadable_audio": 1}
    rej = list(ds.rejects())
    assert rej[0].path == "broken.wav" and rej[0].stage == "shard"
    expected_secs = sum(r.num_samples / r.sample_rate for r in good)
    assert abs(idx["totals"]["audio_seconds"] - expected_secs) < 1e-6
    for s in idx["shards"]:
        for fmt in ("webdataset", "parquet"):
            f = s["files"][fmt]
            assert f["path"] == f"{fmt}/synth-{s['shard']:06d}.{'tar' if fmt == 'webdataset' else 'parquet'}"
            assert sha256_file(built / f["path"]) == f["sha256"]
    assert idx["summary"]["gender"] == {"female": 5, "male": 5}


def test_records_sorted_same_in_both_formats_and_roundtrip(built, corpus):
    _, recs = corpus
    by_index = {r.index: r for r in recs}
    ds = open_dataset(built)
    pq_recs = list(ds.records("parquet"))
    wds_recs = list(ds.records("webdataset"))
    assert [r.index for r in pq_recs] == sorted(r.index for r in recs if r.source_path != "broken.wav")
    assert pq_recs == wds_recs
    for r in pq_recs:
        # Every field, tokens and dicts included, as the shard stores it (wav_path filled,
        # corpus_root left out, every null explained: voxbox.shards.finalize).
        assert r == shard_record(by_index[r.index], "flac")


def test_flac_is_lossless_and_keeps_channels(built, corpus):
    root, recs = corpus
    ds = open_dataset(built)
    n = 0
    for rec, audio, ext in ds.samples("webdataset"):
        assert ext == "flac" and audio[:4] == b"fLaC"
        got, sr = decode_audio(audio, dtype="int32")
        assert rec.corpus_root is None  # the builder's folder stays out of the shards
        src, src_sr = sf.read(str(root / rec.source_path), dtype="int32", always_2d=True)
        assert sr == src_sr and got.shape == src.shape
        np.testing.assert_array_equal(got, src)
        n += 1
    assert n == 10


def test_original_audio_bytes(corpus, tmp_path):
    root, recs = corpus
    write_dataset(recs[:4], tmp_path, name="orig", audio_format="original", formats=["parquet"])
    ds = open_dataset(tmp_path)
    assert ds.formats == ["parquet"] and not (tmp_path / "webdataset").exists()
    for rec, audio, ext in ds.samples():
        assert audio == (root / rec.source_path).read_bytes()
        assert ext == rec.source_path.rsplit(".", 1)[-1]
        assert rec.wav_path == f"{rec.corpus}/{rec.index}.{ext}"


def test_byte_identical_rebuild(corpus, built, tmp_path):
    _, recs = corpus
    write_dataset(recs, tmp_path, name="synth", shard_mb=0.1, shard_records=4)
    for p in sorted(built.rglob("*")):
        if p.is_file() and p.name != "provenance.json":
            assert (tmp_path / p.relative_to(built)).read_bytes() == p.read_bytes(), p.name


def test_tar_metadata_is_fixed_and_keys_have_no_dots(built):
    ds = open_dataset(built)
    for path in ds.shard_files("webdataset"):
        with tarfile.open(path) as tar:
            members = tar.getmembers()
        assert len(members) % 2 == 0
        for m in members:
            assert (m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) == (0, 0, 0, "", "", 0o644)
            key, _, ext = m.name.partition(".")
            assert "." not in key and ext in ("flac", "json")


def test_stock_webdataset_reader(built):
    import webdataset as wds

    ds = open_dataset(built)
    urls = [str(p) for p in ds.shard_files("webdataset")]
    samples = list(wds.WebDataset(urls, shardshuffle=False, empty_check=False))
    assert [s["__key__"] for s in samples] == [r.index for r in ds.records()]
    first = samples[0]
    rec = json.loads(first["json"])
    assert rec["index"] == first["__key__"] and len(rec["global_tokens"]) == 32
    data, sr = sf.read(io.BytesIO(first["flac"]))
    assert sr in (16000, 24000) and len(data) > 0


def test_hf_datasets_loads_both_formats(built, tmp_path):
    import datasets

    ds = open_dataset(built)
    expected = [r.index for r in ds.records()]
    cache = str(tmp_path / "hf")
    w = datasets.load_dataset("webdataset", data_files={"train": [str(p) for p in ds.shard_files("webdataset")]},
                              split="train", cache_dir=cache, features=hf_webdataset_features(decode_audio=False))
    assert w["__key__"] == expected
    assert w[0]["flac"][:4] == b"fLaC"
    assert w[0]["json"]["global_tokens"] == list(range(w[0]["json"]["global_tokens"][0],
                                                       w[0]["json"]["global_tokens"][0] + 32))
    p = datasets.load_dataset("parquet", data_files={"train": [str(x) for x in ds.shard_files("parquet")]},
                              split="train", cache_dir=cache)
    assert isinstance(p.features["audio"], datasets.Audio)
    assert p.features["semantic_tokens"].feature.dtype == "int32"
    p = p.cast_column("audio", datasets.Audio(decode=False))
    assert p["index"] == expected
    row = p[0]
    assert row["audio"]["path"] == f"{expected[0]}.flac" and row["audio"]["bytes"][:4] == b"fLaC"


def test_parquet_row_groups_of_100(corpus, tmp_path):
    root, recs = corpus
    base = recs[0]
    many = [base.replace(index=f"synth_{i:016x}") for i in range(230)]
    write_dataset(many, tmp_path, name="rg", formats=["parquet"], shard_mb=1000)
    pf = pq.ParquetFile(open_dataset(tmp_path).shard_files("parquet")[0])
    assert [pf.metadata.row_group(i).num_rows for i in range(pf.num_row_groups)] == [100, 100, 30]
    assert b"huggingface" in pf.schema_arrow.metadata
    assert "created_by" not in json.dumps(pf.schema_arrow.metadata[b"huggingface"].decode())


def test_plan_depends_only_on_input():
    items = [(f"c_{i:04d}", 1000 + 10 * i) for i in range(50)]
    a = plan_shards(items, shard_mb=0.01, shard_records=7)
    b = plan_shards(list(reversed(items)), shard_mb=0.01, shard_records=7)
    assert a == b
    assert [i for s in a for i in s] == sorted(i for i, _ in items)
    assert all(len(s) <= 7 for s in a)
    assert all(sum(1000 + 10 * int(i[2:]) for i in s) <= 10_000 or len(s) == 1 for s in a)


def test_duplicate_index_rejected(corpus, tmp_path):
    _, recs = corpus
    write_dataset([recs[0], recs[0], recs[1]], tmp_path, name="dup")
    ds = open_dataset(tmp_path)
    assert len(ds) == 2
    assert [r.reason for r in ds.rejects()] == ["duplicate_index"]


def test_open_dataset_errors(tmp_path):
    from voxbox.errors import VoxboxError

    with pytest.raises(VoxboxError, match="no such dataset folder"):
        open_dataset(tmp_path / "missing")
    with pytest.raises(VoxboxError, match="not a built dataset"):
        open_dataset(tmp_path)
    write_dataset([], tmp_path / "empty", name="e")
    ds = open_dataset(tmp_path / "empty")
    assert len(ds) == 0 and list(ds.records()) == []
    with pytest.raises(VoxboxError, match="has no parquet"):
        write_dataset([], tmp_path / "w", name="w", formats=["webdataset"])
        open_dataset(tmp_path / "w").shard_files("parquet")
    with pytest.raises(VoxboxError, match="unknown output format"):
        write_dataset([], tmp_path / "x", formats=["csv"])
    assert Utterance  # noqa: B018 - imported for the fixtures' types


# ------------------------------------------------- issue 11: sources FLAC cannot hold as is

def _encode(tmp_path, name, write):
    from voxbox.shards.encode import encode_record

    path = tmp_path / name
    write(path)
    rec = Utterance(index=f"t_{name.replace('.', '_')}", source_path=name, corpus_root=str(tmp_path))
    return encode_record(rec, "flac")


def _stored(res):
    data, sr = sf.read(io.BytesIO(res.audio), dtype="float64", always_2d=True)
    return data[:, 0], sf.info(io.BytesIO(res.audio)).subtype


@pytest.mark.parametrize("bits", [32, 64])
def test_float_wavs_are_scaled_into_flac_not_stored_as_silence(tmp_path, bits):
    # libsndfile reads float samples as integers without scaling: this was ~0 in the shard.
    from adversarial import speech_like, write_float_wav

    x = speech_like(level=0.5)
    res = _encode(tmp_path, f"f{bits}.wav", lambda p: write_float_wav(p, x, 16000, bits))
    got, subtype = _stored(res)
    assert res.ext == "flac" and subtype == "PCM_24"
    assert np.max(np.abs(got - x)) <= 2 ** -23
    note = res.record.extra["stored_audio"]
    assert note["source"] == ("FLOAT" if bits == 32 else "DOUBLE") and note["lossless"] is False
    assert "rounded to 24 bits" in note["detail"] and note["gain"] == 1.0


def test_float_that_24_bits_hold_exactly_is_lossless_and_unannotated(tmp_path):
    from adversarial import speech_like, write_float_wav

    x = np.round(speech_like() * 32767) / 32768     # a float file made from 16-bit audio
    res = _encode(tmp_path, "f.wav", lambda p: write_float_wav(p, x, 16000))
    got, _ = _stored(res)
    assert np.array_equal(got, x) and "stored_audio" not in (res.record.extra or {})


def test_float_beyond_full_scale_is_scaled_down_and_the_gain_recorded(tmp_path):
    from adversarial import speech_like, write_float_wav

    x = 1.6 * speech_like(level=1.0)
    res = _encode(tmp_path, "hot.wav", lambda p: write_float_wav(p, x, 16000))
    got, _ = _stored(res)
    gain = res.record.extra["stored_audio"]["gain"]
    assert gain == pytest.approx(1 / 1.6, rel=1e-6)
    assert np.max(np.abs(got)) < 1.0 and np.max(np.abs(got / gain - x)) < 2e-6
    assert "beyond full scale" in res.record.extra["stored_audio"]["detail"]


def test_32_bit_pcm_is_rounded_to_24_bits_and_says_so_or_kept_exact(tmp_path):
    from adversarial import speech_like

    x = (speech_like() * (2 ** 31 - 1)).astype(np.int32)
    res = _encode(tmp_path, "p32.wav", lambda p: sf.write(p, x, 16000, subtype="PCM_32"))
    stored = sf.read(io.BytesIO(res.audio), dtype="int32")[0]
    assert np.array_equal(stored >> 8, np.minimum((x.astype(np.int64) + 128) >> 8, 2 ** 23 - 1))
    assert res.record.extra["stored_audio"]["source"] == "PCM_32"
    assert "32-bit integer samples rounded to 24 bits" in res.record.extra["stored_audio"]["detail"]
    padded = (x >> 8) << 8                          # 24-bit audio in a 32-bit container
    res = _encode(tmp_path, "p24in32.wav", lambda p: sf.write(p, padded, 16000, subtype="PCM_32"))
    assert np.array_equal(sf.read(io.BytesIO(res.audio), dtype="int32")[0], padded)
    assert "stored_audio" not in (res.record.extra or {})


@pytest.mark.parametrize("case,reason", [("ch10", "too_many_channels"), ("sr720k", "unsupported_sample_rate"),
                                         ("fifo", "not_a_regular_file"), ("devzero", "not_a_regular_file"),
                                         ("nan", "non_finite_samples")])
def test_audio_no_shard_can_hold_or_that_is_no_file_is_a_rejection(tmp_path, case, reason):
    import os

    from adversarial import speech_like, write_float_wav

    writers = {
        "ch10": lambda p: sf.write(p, np.tile(speech_like()[:, None], (1, 10)) * 0.3, 16000, subtype="PCM_16"),
        "sr720k": lambda p: sf.write(p, speech_like(0.1, 720_000), 720_000, subtype="PCM_16"),
        "fifo": lambda p: os.mkfifo(p),
        "devzero": lambda p: p.symlink_to("/dev/zero"),
        "nan": lambda p: write_float_wav(p, np.where(np.arange(16000) == 5, np.nan, speech_like(1.0)), 16000),
    }
    res = _encode(tmp_path, f"{case}.wav", writers[case])
    assert res.reason == reason and res.detail
