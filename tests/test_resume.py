"""Crash safety for real: SIGKILL a build subprocess at chosen moments, rerun, and
compare with an uninterrupted build byte for byte.

The moments are made exact with the VOXBOX_KILL_AT hook (voxbox.build.engine.common): the
build SIGKILLs its own process group when it reaches the named point for the N-th time.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from voxbox.dataset.reader import open_dataset

from voxbox_build_fixtures import reference_build, shard_bytes, subprocess_env, voxbox_cmd


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return reference_build(tmp_path_factory.mktemp("resume"))


def _run(args, out, **env):
    return subprocess.run(voxbox_cmd(*args, "--out", str(out)), env=subprocess_env(**env),
                          capture_output=True, text=True, start_new_session=True)


@pytest.mark.parametrize("moment", [
    "stage:tiny:2",        # during annotation, in the middle of the first shard's batches
    "shard_write:4",       # in the middle of writing shard 1 (tmp files open)
    "before_journal:2",    # shard 1 renamed into place but not yet in the journal
    "shard_commit:3",      # between shards, after the 3rd journal line
])
@pytest.mark.slow
def test_kill_and_resume_gives_identical_output(setup, moment):
    tmp, args, ref = setup
    out = tmp / f"out-{moment.replace(':', '-')}"
    killed = _run(args, out, VOXBOX_KILL_AT=moment)
    assert killed.returncode == -9, killed.stderr
    assert not (out / "index.json").exists()
    resumed = _run(args, out)
    assert resumed.returncode == 0, resumed.stderr
    assert shard_bytes(out) == shard_bytes(ref)
    assert not list(out.rglob("*.partial")) and not (out / ".work").exists()
    ds, ref_ds = open_dataset(out), open_dataset(ref)
    keys = [r.index for r in ds.records("webdataset")]
    assert len(keys) == len(set(keys)) == len(ref_ds)
    assert keys == [r.index for r in ref_ds.records("parquet")]
    assert [r.to_dict() for r in ds.rejects()] == [r.to_dict() for r in ref_ds.rejects()]
    if moment.startswith(("shard_commit", "before_journal")):
        assert "already finished and verified" in resumed.stderr


@pytest.mark.slow
def test_corrupted_finished_shard_is_redone(setup):
    tmp, args, ref = setup
    out = tmp / "corrupt"
    assert _run(args, out, VOXBOX_KILL_AT="shard_commit:2").returncode == -9
    journal = [json.loads(x) for x in (out / "journal.jsonl").read_text().splitlines()]
    first = next(e for e in journal if e["kind"] == "shard")
    victim = out / first["files"]["parquet"]["path"]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    # A torn journal line from the crash is ignored, not fatal.
    with open(out / "journal.jsonl", "a") as fh:
        fh.write('{"kind":"shard","shard":')
    resumed = _run(args, out)
    assert resumed.returncode == 0, resumed.stderr
    assert "sha256 does not match" in resumed.stderr and "redoing" in resumed.stderr
    assert shard_bytes(out) == shard_bytes(ref)


@pytest.mark.slow
def test_kill_during_real_annotation(shared, tmp_path):
    """The real annotate stage, killed after its 2nd batch, then resumed."""
    root = shared / "data" / "real-speech" / "libritts-mini"
    args = ["build", "--corpus", "libritts", "--root", str(root), "--stages", "annotate", "--batch-size", "2",
            "--shard-records", "2", "--workers", "1"]
    ref, out = tmp_path / "ref", tmp_path / "out"
    r = _run(args, ref)
    assert r.returncode == 0, r.stderr
    assert _run(args, out, VOXBOX_KILL_AT="stage:annotate:2").returncode == -9
    assert (out / "journal.jsonl").exists() and not (out / "index.json").exists()
    resumed = _run(args, out)
    assert resumed.returncode == 0, resumed.stderr
    assert shard_bytes(out) == shard_bytes(ref)
    recs = list(open_dataset(out).records())
    assert len(recs) == 6 and all(r.pitch is not None for r in recs)
