"""voxbox.dataset.reader: the reader every later command uses."""

from __future__ import annotations

import io
import tarfile

import pytest

from voxbox.dataset.reader import decode_audio, hf_record_features, open_dataset
from voxbox.errors import VoxboxError
from voxbox.shards import write_dataset
from voxbox.shards.finalize import shard_record

from voxbox_build_fixtures import make_corpus


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ds")
    recs = make_corpus(tmp / "c", n=7)
    out = tmp / "out"
    write_dataset(recs, out, name="reader", shard_records=3)
    return recs, out


def test_facts(built):
    recs, out = built
    ds = open_dataset(out)
    assert (ds.name, ds.formats, ds.audio_format, len(ds)) == ("reader", ["webdataset", "parquet"], "flac", 7)
    assert [s["records"] for s in ds.shards] == [3, 3, 1]
    assert [p.name for p in ds.shard_files("parquet")] == [f"reader-00000{i}.parquet" for i in range(3)]
    secs = sum(r.num_samples / r.sample_rate for r in recs)
    assert abs(ds.index["totals"]["audio_seconds"] - secs) < 1e-6 and abs(ds.hours - secs / 3600) < 1e-6
    assert ds.pipeline is None  # write_dataset folders have no pipeline
    assert ds.provenance["versions"]["voxbox"]
    assert list(ds.rejects()) == []
    assert "records=7" in repr(ds)


def test_records_and_samples_agree_across_formats(built):
    recs, out = built
    ds = open_dataset(out)
    by_index = {r.index: r for r in recs}
    a = list(ds.samples("parquet"))
    b = list(ds.samples("webdataset"))
    assert [(r, audio, ext) for r, audio, ext in a] == [(r, audio, ext) for r, audio, ext in b]
    for rec, audio, ext in a:
        samples, sr = decode_audio(audio)
        assert rec == shard_record(by_index[rec.index], ext)
        assert samples.shape == (rec.num_samples, rec.channels) and sr == rec.sample_rate and ext == "flac"
    assert list(ds.records()) == [r for r, _, _ in a]


def test_hf_record_features_match_parquet_columns(built):
    import pyarrow.parquet as pq

    _, out = built
    cols = pq.ParquetFile(open_dataset(out).shard_files("parquet")[0]).schema_arrow.names
    assert ["audio", *hf_record_features().keys()] == cols


def test_malformed_sample_is_a_clear_error(built, tmp_path):
    _, out = built
    bad = tmp_path / "bad"
    import shutil

    shutil.copytree(out, bad)
    tar = open_dataset(bad).shard_files("webdataset")[0]
    with tarfile.open(tar) as t:
        members = [(m, t.extractfile(m).read()) for m in t.getmembers()]
    with tarfile.open(tar, "w", format=tarfile.USTAR_FORMAT) as t:
        for m, d in members[1:]:  # drop the first sample's audio
            t.addfile(m, io.BytesIO(d))
    with pytest.raises(VoxboxError, match="audio members"):
        list(open_dataset(bad).samples("webdataset"))
    with pytest.raises(VoxboxError, match="has no csv"):
        list(open_dataset(bad).records("csv"))


def test_damaged_shards_are_one_clear_error_that_points_at_validate(built, tmp_path):
    # Report/export/synth read through here; a cut shard once surfaced as a raw ArrowInvalid.
    import shutil

    _, out = built
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    for fmt in ("parquet", "webdataset"):
        shard = open_dataset(bad).shard_files(fmt)[0]
        shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 3])
        for read in (open_dataset(bad).records, open_dataset(bad).samples):
            with pytest.raises(VoxboxError, match=r"shard cannot be read .*voxbox validate"):
                list(read(fmt))
    shard.unlink()
    with pytest.raises(VoxboxError, match="shard cannot be read"):
        list(open_dataset(bad).samples("webdataset"))
