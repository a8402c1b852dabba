"""A dataset built into object storage or the Hub is read and validated in place: built to
a real S3 server (moto), ``open_dataset(URL)`` gives the local build's records, samples and
rejects in both formats, ``voxbox validate URL`` checks the stored shards' sha256 and
contents, damage in the store is named, storage failures are one line, and commands that
need the folder on this machine (publish, serve) refuse a URL with what to do instead."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

s3fs = pytest.importorskip("s3fs")
pytest.importorskip("moto.server")

from voxbox import storage  # noqa: E402
from voxbox.cli import main  # noqa: E402
from voxbox.dataset.reader import open_dataset  # noqa: E402
from voxbox.dataset.validate import validate  # noqa: E402
from voxbox.errors import VoxboxError  # noqa: E402

from voxbox_build_fixtures import reference_build, subprocess_env, voxbox_cmd  # noqa: E402

from conftest import S3_BUCKET as BUCKET  # noqa: E402


@pytest.fixture(scope="module")
def built(s3, tmp_path_factory):
    """(s3 file system, URL, local reference folder): one input built locally and to S3."""
    s3env, fs = s3
    _tmp, args, ref = reference_build(tmp_path_factory.mktemp("remote-read"))
    url = f"s3://{BUCKET}/read"
    r = subprocess.run(voxbox_cmd(*args, "--out", url), env=subprocess_env(**s3env),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    storage.forget()
    return fs, url, ref


@pytest.fixture
def fresh(monkeypatch):
    """No listing or block cached from an earlier test; fast retries."""
    monkeypatch.setenv("VOXBOX_REMOTE_BACKOFF_S", "0.01")
    monkeypatch.delenv(storage.blocks.CACHE_ENV, raising=False)
    storage.forget()
    yield
    storage.forget()


def _copy_prefix(fs, src: str, dst: str) -> None:
    fs.invalidate_cache()
    for key in fs.find(f"{BUCKET}/{src}"):
        fs.pipe_file(f"{BUCKET}/{dst}/{key[len(BUCKET) + len(src) + 2:]}", fs.cat_file(key))


def test_s3_build_reads_back_as_the_local_build(built, fresh):
    fs, url, ref = built
    got, want = open_dataset(url), open_dataset(ref)
    assert got.remote and str(got.path) == url and not want.remote
    assert got.index == want.index and got.pipeline_text == want.pipeline_text
    for fmt in ("parquet", "webdataset"):
        assert list(got.records(fmt)) == list(want.records(fmt))
        assert [(r.index, a, e) for r, a, e in got.samples(fmt)] == [(r.index, a, e) for r, a, e in want.samples(fmt)]
    assert list(got.rejects()) == list(want.rejects()) and want.index["rejects"]["count"] > 0
    assert [str(p) for p in got.shard_files("parquet")] == \
        [f"{url}/{p.relative_to(ref).as_posix()}" for p in want.shard_files("parquet")]
    some = [r.index for r in want.records()][1:3]
    assert got.audio_of(some) == want.audio_of(some)


def test_validate_an_s3_build(built, fresh, capsys):
    _fs, url, ref = built
    report, local = validate(url), validate(ref)
    assert report.ok, report.problems
    assert (report.records, report.shards, report.files) == (local.records, local.shards, local.files)
    assert report.audio_seconds == pytest.approx(local.audio_seconds)
    assert main(["validate", url, "--json"]) == 0
    assert '"ok": true' in capsys.readouterr().out


def test_damage_in_the_store_is_named(built, fresh, capsys):
    fs, _url, ref = built
    _copy_prefix(fs, "read", "damaged")
    index = open_dataset(ref).index
    tar = f"{BUCKET}/damaged/{index['shards'][0]['files']['webdataset']['path']}"
    data = bytearray(fs.cat_file(tar))
    data[700:760] = b"\x00" * 60  # same size, inside the first sample's audio
    fs.pipe_file(tar, bytes(data))
    fs.rm(f"{BUCKET}/damaged/{index['shards'][1]['files']['parquet']['path']}")
    assert main(["validate", f"s3://{BUCKET}/damaged"]) == 1
    cap = capsys.readouterr()
    assert cap.err.startswith(f"error: s3://{BUCKET}/damaged: ") and "problem(s)" in cap.err
    lines = cap.out.splitlines()
    assert f"{index['shards'][0]['files']['webdataset']['path']}: sha256 does not match the index" in lines
    assert f"{index['shards'][1]['files']['parquet']['path']}: missing" in lines


def test_storage_failures_are_one_line(built, fresh, capsys):
    fs, _url, _ref = built
    fs.pipe_file(f"{BUCKET}/unfinished/journal.jsonl", b"")
    for target, said in ((f"s3://{BUCKET}/nothing-here", f"s3://{BUCKET}/nothing-here: not found"),
                         (f"s3://{BUCKET}/unfinished", "not a built dataset (no index.json"),
                         ("s3://no-such-bucket-voxbox/x", "s3://no-such-bucket-voxbox/x: not found")):
        assert main(["validate", target]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and said in err and len(err.strip().splitlines()) == 1, err
        with pytest.raises(VoxboxError, match=re.escape(said)):
            open_dataset(target)


def test_unreachable_storage_is_retried_then_one_line(built, fresh, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("VOXBOX_REMOTE_TRIES", "2")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        assert main(["validate", f"s3://{BUCKET}/read"]) == 1
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: s3://{BUCKET}/read") and "after 2 tries" in err and "rerun later" in err
    assert len(err.splitlines()) == 1


def test_report_and_lhotse_export_read_an_s3_build(built, fresh, tmp_path):
    _fs, url, ref = built
    assert main(["report", url, "-o", str(tmp_path / "remote.html"), "-q"]) == 0
    assert main(["report", str(ref), "-o", str(tmp_path / "local.html"), "-q"]) == 0
    remote = (tmp_path / "remote.html").read_text().replace(url, "SRC")
    assert remote == (tmp_path / "local.html").read_text().replace(str(ref.resolve()), "SRC")
    pytest.importorskip("lhotse")
    assert main(["export", "lhotse", url, "-o", str(tmp_path / "lr"), "-f", "jsonl", "-q"]) == 0
    assert main(["export", "lhotse", str(ref), "-o", str(tmp_path / "ll"), "-f", "jsonl", "-q"]) == 0
    got, want = (json.loads((tmp_path / d / "summary.json").read_text()) for d in ("lr", "ll"))
    assert got.pop("dataset") == url and want.pop("dataset") == str(ref)
    for summary in (got, want):
        summary["splits"]["train"].pop("read_with")  # names the output folder
    assert got == want and got["records"] == len(open_dataset(ref))


def test_dedup_and_speakers_read_an_s3_build(built, fresh, tmp_path):
    """`voxbox dedup` and `voxbox speakers` take where a build wrote its dataset, as they
    take a folder: same report, same predicted speakers as from the local copy."""
    from voxbox.manifest import read_manifest

    _fs, url, ref = built
    for src, name in ((url, "remote"), (str(ref), "local")):
        assert main(["dedup", src, "-o", str(tmp_path / f"{name}.json"), "-q"]) == 0
        assert main(["speakers", src, "-o", str(tmp_path / f"{name}.jsonl"), "--all", "-q"]) == 0
    remote, local = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("remote", "local"))
    assert remote.pop("inputs") == [url] and local.pop("inputs") == [str(ref)]
    assert remote == local and remote["records"] == len(open_dataset(ref))
    got, want = (list(read_manifest(tmp_path / f"{n}.jsonl")) for n in ("remote", "local"))
    assert got == want and len(got) == len(open_dataset(ref)) and all(r.speaker_source == "predicted" for r in got)
    assert main(["dedup", f"s3://{BUCKET}/nothing-here", "-o", str(tmp_path / "x.json"), "-q"]) == 1


@pytest.mark.parametrize("args", [["publish", "{url}", "--repo-id", "alice/x", "--dry-run"], ["serve", "{url}"]])
def test_commands_that_need_a_local_folder_refuse_a_url(built, fresh, capsys, args):
    _fs, url, _ref = built
    assert main([a.format(url=url) for a in args]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {url}: voxbox {args[0]} needs the built folder on this machine; ")
    assert "copy" in err and len(err.splitlines()) == 1


def test_memory_build_in_process(sample, fresh, monkeypatch, capsys):
    """memory:// (fsspec's in-process store): built, opened and validated in one process;
    a shard read the storage refuses mid-run is the storage's one line, in the reader and
    in validate."""
    import fsspec

    url = "memory://voxbox-remote-read/sample"
    assert main(["build", "--corpus", "sample", "--out", url, "-j", "1", "-q"]) == 0
    storage.forget()
    got, want = open_dataset(url), open_dataset(sample)
    assert list(got.records()) == list(want.records())
    assert validate(url).ok
    memfs = fsspec.filesystem("memory")  # the cached instance the storage layer uses
    index = got.index
    index["shards"][0]["files"]["parquet"]["path"] = "../../elsewhere/x.parquet"
    for key in memfs.find("/voxbox-remote-read/sample"):
        memfs.pipe_file(key.replace("/sample/", "/outside/"), memfs.cat_file(key))
    memfs.pipe_file("/voxbox-remote-read/outside/index.json", json.dumps(index).encode())
    storage.forget()
    capsys.readouterr()
    assert main(["validate", "memory://voxbox-remote-read/outside"]) == 1
    assert capsys.readouterr().err.strip() == ("error: memory://voxbox-remote-read/outside: index.json names a "
                                               "file outside the dataset (../../elsewhere/x.parquet); refusing it")
    storage.forget()
    plain = memfs.cat_file

    def denied(path, *args, **kwargs):
        if path.endswith((".tar", ".parquet")):
            raise PermissionError(f"{path}: no")
        return plain(path, *args, **kwargs)

    monkeypatch.setattr(memfs, "cat_file", denied)
    ds = open_dataset(url)
    for fmt in ("parquet", "webdataset"):
        with pytest.raises(storage.StorageError) as e:
            list(ds.records(fmt))
        assert e.value.reason == "remote_denied" and f"{url}/{fmt}/" in str(e.value)
    capsys.readouterr()
    assert main(["validate", url]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {url}/webdataset/") and "access denied" in err and len(err.splitlines()) == 1


@pytest.fixture
def hub(monkeypatch, tmp_path):
    pytest.importorskip("huggingface_hub")
    from huggingface_hub import constants

    from hub_server import HubServer

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    with HubServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        storage.forget()
        yield server
    storage.forget()


def test_a_dataset_on_the_hub_reads_at_a_pinned_revision(built, fresh, hub):
    _fs, _url, ref = built
    files = {f"v1/{p.relative_to(ref).as_posix()}": p.read_bytes() for p in sorted(ref.rglob("*")) if p.is_file()}
    sha = hub.state.add_files("dataset", "alice/built", files)
    hub.state.add_files("dataset", "alice/built", {"v1/index.json": b"{}"})  # a later commit breaks it
    url = f"hf://datasets/alice/built@{sha}/v1"
    got = open_dataset(url)
    assert list(got.records("webdataset")) == list(open_dataset(ref).records("webdataset"))
    assert validate(url).ok
    with pytest.raises(VoxboxError, match="unknown index format"):
        open_dataset("hf://datasets/alice/built/v1")  # no revision: the head commit
    hub.state.add_files("dataset", "alice/private", files, private=True)
    with pytest.raises(storage.StorageError) as e:
        open_dataset("hf://datasets/alice/private/v1")
    assert e.value.reason == "remote_missing" and "if it is private or gated, set HF_TOKEN" in str(e.value)
