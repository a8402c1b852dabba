"""voxbox build --out s3://...: a real S3-compatible server (moto, in this process),
the build staged locally and uploaded shard by shard; the result read back equals a
local build byte for byte, kills (between shards, mid-upload) resume to the same bytes,
a corrupted object in the store is redone, and a held lease refuses a second build."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from pathlib import Path

import pytest

s3fs = pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

from voxbox.dataset.reader import open_dataset  # noqa: E402

from voxbox_build_fixtures import reference_build, subprocess_env, voxbox_cmd, write_pipeline  # noqa: E402

from conftest import S3_BUCKET as BUCKET  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return reference_build(tmp_path_factory.mktemp("remote"))


def _run(args, out, s3env, **env):
    return subprocess.run(voxbox_cmd(*args, "--out", out), env=subprocess_env(**s3env, **env),
                          capture_output=True, text=True, start_new_session=True, timeout=300)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files(root: Path) -> dict:
    """Every file of a built folder except provenance (it holds the date and command)."""
    return {p.relative_to(root).as_posix(): _sha(p.read_bytes()) for p in sorted(root.rglob("*"))
            if p.is_file() and p.name not in ("provenance.json",) and not p.name.endswith(".lock")}


def _download(fs, prefix: str, dest: Path) -> Path:
    fs.invalidate_cache()
    fs.get(f"{BUCKET}/{prefix}/", str(dest), recursive=True)
    return dest


def test_build_to_s3_equals_local_build(s3, setup, tmp_path):
    s3env, fs = s3
    tmp, args, ref = setup
    r = _run(args, f"s3://{BUCKET}/full", s3env)
    assert r.returncode == 0, r.stderr
    got = _download(fs, "full", tmp_path / "got")
    assert _files(got) == _files(ref)  # shards, index.json, journal, rejects, pipeline: same bytes
    assert not [k for k in fs.find(f"{BUCKET}/full") if k.endswith(".partial") or "/.journal/" in k
                or k.endswith(".voxbox-lock")]
    ds = open_dataset(got)
    assert len(list(ds.records("webdataset"))) == len(open_dataset(ref))
    # A rerun of a finished build verifies every shard in the store and uploads nothing new.
    again = _run(args, f"s3://{BUCKET}/full", s3env)
    assert again.returncode == 0 and "already finished and verified" in again.stderr
    assert _files(_download(fs, "full", tmp_path / "again")) == _files(ref)


def test_resume_checks_shards_by_their_stored_hash_without_reading_them(s3, setup, tmp_path, monkeypatch):
    """Each shard goes up with its journal sha256 as S3 metadata, so a resume verifies a
    terabyte of shards with one HEAD request each instead of downloading them. An object
    rewritten by anything else has no such metadata and is read and hashed as before."""
    from voxbox.shards import index as ix
    from voxbox.storage.output import RemoteOutput, Store

    s3env, fs = s3
    _, args, _ = setup
    assert _run(args, f"s3://{BUCKET}/hashed", s3env).returncode == 0
    fs.invalidate_cache()
    (tmp_path / "journal.jsonl").write_bytes(fs.cat_file(f"{BUCKET}/hashed/journal.jsonl"))
    entries = list(ix.Journal(tmp_path / "journal.jsonl").shards().values())
    files = [info for e in entries for info in e["files"].values()]
    assert len(files) >= 4
    assert all(fs.metadata(f"{BUCKET}/hashed/{i['path']}")["sha256"] == i["sha256"] for i in files)
    out = RemoteOutput(f"s3://{BUCKET}/hashed")
    try:
        real_sha256 = Store.sha256
        monkeypatch.setattr(Store, "sha256", lambda self, rel: pytest.fail(f"downloaded {rel} to hash it"))
        assert [out.verify(None, e) for e in entries] == [None] * len(entries)
        key = f"{BUCKET}/hashed/{files[0]['path']}"
        data = bytearray(fs.cat_file(key))
        data[len(data) // 2] ^= 0xFF
        fs.pipe_file(key, bytes(data))  # same size, other bytes, no voxbox metadata
        monkeypatch.setattr(Store, "sha256", real_sha256)
        damaged = next(e for e in entries if files[0] in e["files"].values())
        assert out.verify(None, damaged) == f"{files[0]['path']}: sha256 does not match the journal"
        monkeypatch.setenv("VOXBOX_VERIFY_REMOTE", "size")  # the user's choice: sizes are enough
        assert out.verify(None, damaged) is None
    finally:
        out.close()


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["shard_commit:2", "upload:3", "before_journal:2"])
def test_kill_and_resume_in_s3(s3, setup, tmp_path, moment):
    s3env, fs = s3
    tmp, args, ref = setup
    prefix = f"kill-{moment.replace(':', '-')}"
    killed = _run(args, f"s3://{BUCKET}/{prefix}", s3env, VOXBOX_KILL_AT=moment)
    assert killed.returncode == -9, killed.stderr
    fs.invalidate_cache()
    keys = fs.find(f"{BUCKET}/{prefix}")
    assert not any(k.endswith("/index.json") for k in keys)  # unfinished: no index
    if moment.startswith("upload"):
        assert any(k.endswith(".partial") for k in keys)  # the killed upload left only its temp key
    resumed = _run(args, f"s3://{BUCKET}/{prefix}", s3env, VOXBOX_LEASE_S="1")
    assert resumed.returncode == 0, resumed.stderr
    assert "took over the expired lease" in resumed.stderr
    if not moment.startswith("upload"):
        assert "already finished and verified" in resumed.stderr
    assert _files(_download(fs, prefix, tmp_path / "got")) == _files(ref)


@pytest.mark.slow
def test_corrupted_object_is_redone(s3, setup, tmp_path):
    s3env, fs = s3
    tmp, args, ref = setup
    assert _run(args, f"s3://{BUCKET}/corrupt", s3env, VOXBOX_KILL_AT="shard_commit:2").returncode == -9
    fs.invalidate_cache()
    tars = sorted(k for k in fs.find(f"{BUCKET}/corrupt/webdataset") if k.endswith(".tar"))
    data = bytearray(fs.cat_file(tars[0]))
    data[len(data) // 2] ^= 0xFF  # same size, other bytes: only the sha256 tells
    fs.pipe_file(tars[0], bytes(data))
    resumed = _run(args, f"s3://{BUCKET}/corrupt", s3env, VOXBOX_LEASE_S="1")
    assert resumed.returncode == 0, resumed.stderr
    assert "sha256 does not match the journal; redoing it" in resumed.stderr
    got = _files(_download(fs, "corrupt", tmp_path / "got"))
    want = _files(ref)
    assert got.pop("journal.jsonl") != want.pop("journal.jsonl")  # it says the shard was redone
    assert got == want


def test_live_lease_refuses_a_second_build(s3, setup):
    s3env, fs = s3
    _, args, _ = setup
    fs.pipe_file(f"{BUCKET}/leased/.voxbox-lock",
                 json.dumps({"owner": "x", "host": "elsewhere", "pid": 7, "renewed": time.time()}).encode())
    r = _run(args, f"s3://{BUCKET}/leased", s3env)
    assert r.returncode == 1
    assert "being written by another voxbox run (host elsewhere, pid 7" in r.stderr


def test_foreign_prefix_is_refused(s3, setup):
    s3env, fs = s3
    _, args, _ = setup
    fs.pipe_file(f"{BUCKET}/foreign/notes.txt", b"mine")
    r = _run(args, f"s3://{BUCKET}/foreign", s3env)
    assert r.returncode == 1 and "no voxbox build wrote" in r.stderr
    fs.invalidate_cache()
    assert fs.find(f"{BUCKET}/foreign") == [f"{BUCKET}/foreign/notes.txt"]


@pytest.mark.slow
def test_force_rebuild_with_another_pipeline(s3, setup, tmp_path):
    s3env, fs = s3
    tmp, args, ref = setup
    prefix = f"s3://{BUCKET}/force"
    assert _run(args, prefix, s3env).returncode == 0
    other = write_pipeline(tmp / "p2.yaml", shard_mb=1.0, shard_records=5)
    args2 = [a if a != str(tmp / "p.yaml") else str(other) for a in args]
    refused = _run(args2, prefix, s3env)
    assert refused.returncode == 1 and "--force" in refused.stderr
    forced = _run([*args2, "--force"], prefix, s3env)
    assert forced.returncode == 0, forced.stderr
    ref2 = tmp / "ref2"
    r = subprocess.run(voxbox_cmd(*args2, "--out", str(ref2)), env=subprocess_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = _files(_download(fs, "force", tmp_path / "got"))
    assert got == _files(ref2)  # the old pipeline's extra shards are gone


@pytest.mark.slow
def test_ray_build_to_s3_equals_local(s3, setup, tmp_path, monkeypatch):
    """With an object-store output each Ray task commits its shard on its own node and
    uploads it (no folder shared with the driver): the store holds a local build's bytes."""
    ray = pytest.importorskip("ray", reason="needs the ray extra: pip install 'voxbox[ray]'")
    import os

    from voxbox_build_fixtures import TESTS

    s3env, fs = s3
    tmp, args, ref = setup
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(TESTS), str(TESTS.parent)]))
    monkeypatch.setenv("RAY_DEDUP_LOGS", "0")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    try:
        r = _run([*args[:-2], "--engine", "ray", "--workers", "2"], f"s3://{BUCKET}/ray", s3env)
    finally:
        if ray.is_initialized():
            ray.shutdown()
    assert r.returncode == 0, r.stderr
    got, want = _files(_download(fs, "ray", tmp_path / "got")), _files(ref)
    del got["journal.jsonl"], want["journal.jsonl"]  # Ray journals shards in completion order
    assert got == want
    # Each Ray task uploaded its own shard (the staging folder holds none of them); the
    # mark it left is not journalled.
    lines = [json.loads(x) for x in (tmp_path / "got" / "journal.jsonl").read_text().splitlines()]
    assert len([e for e in lines if e["kind"] == "shard"]) == len(json.loads((ref / "index.json").read_text())["shards"])
    assert not any("uploaded" in e for e in lines)


@pytest.mark.slow
def test_build_to_the_hub_equals_local(setup, tmp_path):
    """--out hf://datasets/OWNER/NAME/PREFIX against the test Hub server: every upload a
    commit, the same bytes as a local build."""
    pytest.importorskip("huggingface_hub")
    import os

    from hub_server import DEFAULT_TOKEN, HubServer

    tmp, args, ref = setup
    with HubServer() as hub:
        env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": DEFAULT_TOKEN, "HF_HUB_DISABLE_XET": "1", "HF_HUB_OFFLINE": "0"}
        mk = subprocess.run([os.sys.executable, "-c", "from huggingface_hub import HfApi; "
                             "HfApi().create_repo('alice/built', repo_type='dataset')"],
                            env=subprocess_env(**env), capture_output=True, text=True, timeout=120)
        assert mk.returncode == 0, mk.stderr
        r = _run(args, "hf://datasets/alice/built/v1", env)
        assert r.returncode == 0, r.stderr
        files = hub.repo_files("dataset", "alice/built")
        # A rerun checks every shard against the Hub's own LFS sha256: no shard is downloaded.
        del hub.state.requests[:]
        again = _run(args, "hf://datasets/alice/built/v1", env)
        assert again.returncode == 0 and "already finished and verified" in again.stderr, again.stderr
        shard_reads = [p for m, p, _ in hub.state.requests if "/resolve/" in p and p.endswith((".tar", ".parquet"))]
        assert shard_reads == []
    got = {k[len("v1/"):]: _sha(v) for k, v in files.items() if k.startswith("v1/")}
    got.pop("provenance.json")
    assert got == _files(ref)


def test_storage_failure_is_one_clear_line(s3, setup):
    s3env, _ = s3
    _, args, _ = setup
    r = _run(args, "s3://no-such-bucket/x", s3env)
    assert r.returncode == 1, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: s3://no-such-bucket/x: ") and "rerun" in last and "Traceback" not in r.stderr


@pytest.mark.slow
def test_corpus_in_s3_and_output_in_s3_give_the_pinned_shards(s3, shared, tmp_path):
    """Object storage on both sides: LibriTTS-mini uploaded to S3 is read in place
    (--root s3://...) and built into S3; the stored shards are the pinned bytes of the local
    build (tests/test_pinned_output.py), and nothing names a local path."""
    from test_pinned_output import ANNOTATE, _check

    s3env, fs = s3
    base = shared / "data" / "real-speech" / "libritts-mini" / "LibriTTS"
    for p in sorted(base.rglob("*")):
        if p.is_file():
            fs.pipe(f"{BUCKET}/corpora/libritts-mini/{p.relative_to(base).as_posix()}", p.read_bytes())
    args = ["build", "--corpus", "libritts", "--root", f"s3://{BUCKET}/corpora/libritts-mini",
            "--stages", "annotate", "--workers", "1"]
    r = _run(args, f"s3://{BUCKET}/both", s3env)
    assert r.returncode == 0, r.stderr
    got = _download(fs, "both", tmp_path / "got")
    _check(got, ANNOTATE)
    provenance = (got / "provenance.json").read_text()
    assert f"s3://{BUCKET}/corpora/libritts-mini" in provenance and str(shared) not in provenance
