"""``voxbox build --out URL`` retries its uploads like reads: a store whose every operation
fails once (and whose moves and removals succeed but lose their answer once) still gets a
local build's bytes; an upload that keeps failing ends the build in one line, keeps the
shards already stored, and a rerun resumes to the same bytes."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from voxbox.cli import main

from voxbox_build_fixtures import reference_build

PREFIX = "/voxbox-flaky"
# Operations that do their work and then lose the answer (the retry must be harmless).
LOST_ANSWER = ("mv", "rm")


class FlakyFS(MemoryFileSystem):
    """fsspec's in-memory store (the same objects as memory://) behind ``flakymem://``:
    the first call of each operation on each path fails with a connection reset; a put of
    a key containing ``doomed`` always fails. Calls made inside another call are not
    touched (fsspec's mv calls rm, put_file calls open)."""

    protocol = "flakymem"
    injected: Counter = Counter()
    seen: set = set()
    doomed = None
    depth = 0

    @classmethod
    def _strip_protocol(cls, path):
        path = str(path)
        if path.startswith("flakymem://"):
            path = "memory://" + path[len("flakymem://"):]
        return super()._strip_protocol(path)


def _flaky(name: str):
    plain = getattr(MemoryFileSystem, name)

    def method(self, *args, **kwargs):
        outer = FlakyFS.depth == 0
        key = (name, *map(str, args))
        first = outer and key not in FlakyFS.seen
        FlakyFS.seen.add(key)
        if outer and name == "put_file" and FlakyFS.doomed and FlakyFS.doomed in str(args[1]):
            FlakyFS.injected["doomed"] += 1
            raise ConnectionResetError(f"injected: {name} {args[1]}")
        if first and name not in LOST_ANSWER:
            FlakyFS.injected[name] += 1
            raise ConnectionResetError(f"injected: {name} {args}")
        FlakyFS.depth += 1
        try:
            out = plain(self, *args, **kwargs)
        finally:
            FlakyFS.depth -= 1
        if first:
            FlakyFS.injected[name] += 1
            raise ConnectionResetError(f"injected after the work: {name} {args}")
        return out

    return method


for _name in ("put_file", "mv", "info", "cat_file", "rm", "find", "exists", "open"):
    setattr(FlakyFS, _name, _flaky(_name))


@pytest.fixture
def flaky(monkeypatch):
    fsspec.register_implementation("flakymem", FlakyFS, clobber=True)
    monkeypatch.setenv("VOXBOX_REMOTE_BACKOFF_S", "0.01")
    monkeypatch.delenv("VOXBOX_REMOTE_TRIES", raising=False)
    FlakyFS.injected, FlakyFS.seen, FlakyFS.doomed = Counter(), set(), None
    yield FlakyFS
    MemoryFileSystem().rm(PREFIX, recursive=True) if MemoryFileSystem().exists(PREFIX) else None


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return reference_build(tmp_path_factory.mktemp("flaky"))


def _stored(prefix: str) -> dict:
    """{relative key: sha256} of what the store holds, provenance left out (it has the date)."""
    fs = MemoryFileSystem()
    root = f"{PREFIX}/{prefix}"
    return {k[len(root) + 1:]: hashlib.sha256(fs.cat_file(k)).hexdigest() for k in sorted(fs.find(root))
            if not k.endswith("provenance.json")}


def _local(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "provenance.json"
            and not p.name.endswith(".lock")}


def test_every_operation_failing_once_still_gives_the_local_bytes(flaky, setup):
    _tmp, args, ref = setup
    assert main([*args, "--out", f"flakymem:/{PREFIX}/once", "-q"]) == 0
    assert _stored("once") == _local(ref)
    for op in ("put_file", "mv", "info", "cat_file", "rm", "find", "exists"):
        assert flaky.injected[op] > 0, (op, flaky.injected)
    # A rerun verifies every stored shard by sha256 (reads through open, failing once each).
    assert main([*args, "--out", f"flakymem:/{PREFIX}/once", "-q"]) == 0
    assert flaky.injected["open"] > 0 and _stored("once") == _local(ref)


def test_an_upload_that_keeps_failing_is_one_line_and_loses_nothing(flaky, setup, capsys):
    _tmp, args, ref = setup
    out = f"flakymem:/{PREFIX}/doomed"
    flaky.doomed = "-000002."  # every upload of the third shard's files fails
    assert main([*args, "--out", out, "-q"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {out}: uploading ") and "failed after 4 tries" in err and "rerun" in err, err
    assert len(err.splitlines()) == 1
    assert flaky.injected["doomed"] == 4
    stored, want = _stored("doomed"), _local(ref)
    done = [k for k in want if k.split("/")[0] in ("webdataset", "parquet") and ("-000000." in k or "-000001." in k)]
    assert done and all(stored.get(k) == want[k] for k in done)  # the shards stored before stay
    lines = [json.loads(MemoryFileSystem().cat_file(f"{PREFIX}/doomed/{k}")) for k in stored if k.startswith(".journal/")]
    assert [e["shard"] for e in lines if e["kind"] == "shard"] == [0, 1] and "index.json" not in stored
    flaky.doomed = None
    assert main([*args, "--out", out, "-q"]) == 0
    assert _stored("doomed") == want
