"""Remote roots (issue 13, capability 3): ``--root hf://datasets/OWNER/NAME/PATH`` and any
fsspec URL, listed and read in place through voxbox/storage, against the test Hub server
(tests/hub_server.py) and fsspec's memory filesystem."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from corpus_fixtures import Clips
from hub_server import DEFAULT_TOKEN, DEFAULT_USER, HubServer
from test_archives import emilia_tar, shard_digests
from voxbox import storage
from voxbox.errors import VoxboxError
from voxbox.record import Rejection, Utterance
from voxbox.sources.corpora import get_recipe

REPO_ID = "voxorg/emilia-mini"
TAR = "Emilia/EN/EN-B000000.tar"


@pytest.fixture
def hub(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # worker processes read it again
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("VOXBOX_REMOTE_BACKOFF_S", "0.01")
    monkeypatch.delenv(storage.blocks.CACHE_ENV, raising=False)
    with HubServer() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        storage.forget()
        yield server
    storage.forget()


@pytest.fixture
def corpus(tmp_path, shared) -> Path:
    """A local Emilia-layout corpus: one WebDataset tar of four mp3 + json members."""
    root = tmp_path / "corpus"
    emilia_tar(Clips(shared), root)
    return root


def resolve_gets(hub: HubServer, since: int = 0):
    return [r for r in hub.state.requests[since:] if r[0] == "GET" and "/resolve/" in r[1]]


def head(hub: HubServer, repo_id: str = REPO_ID) -> str:
    return hub.state.repos[("dataset", repo_id)].branches["main"]


def cli(args, env_extra=None, timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(PYTHONPATH=str(REPO), VOXBOX_PROGRESS="0", **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "voxbox", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def records(results):
    recs = [r for r in results if isinstance(r, Utterance)]
    return recs, [r for r in results if isinstance(r, Rejection)]


@pytest.mark.slow
def test_emilia_tar_builds_the_same_shards_from_a_folder_and_from_the_hub(hub, corpus, tmp_path):
    """The done-when check: the same tar, local and on the Hub, gives byte-identical shards
    (annotate runs on audio read by range; two worker processes read the Hub themselves)."""
    hub.add_files("dataset", REPO_ID, {TAR: (corpus / TAR).read_bytes()})
    url = f"hf://datasets/{REPO_ID}"
    local = cli(["build", "--corpus", "emilia", "--root", str(corpus), "-o", str(tmp_path / "local"),
                 "--stages", "annotate", "-j", "2"])
    assert local.returncode == 0, local.stderr
    remote = cli(["build", "--corpus", "emilia", "--root", url, "-o", str(tmp_path / "remote"),
                  "--stages", "annotate", "-j", "2", "--cache", str(tmp_path / "cache")])
    assert remote.returncode == 0, remote.stderr
    a, b = shard_digests(tmp_path / "local"), shard_digests(tmp_path / "remote")
    assert a == b and len(a) == 2
    index = json.loads((tmp_path / "remote" / "index.json").read_text())
    assert index["totals"]["records"] == 4
    provenance = json.loads((tmp_path / "remote" / "provenance.json").read_text())
    # The source is named by its URL, pinned to the commit that was read.
    assert provenance["sources"] == [{"corpus": "emilia", "root": f"{url}@{head(hub)}"}]
    assert "--cache" not in provenance["command"] and str(tmp_path / "cache") not in json.dumps(provenance)
    assert resolve_gets(hub) and all(r[2] == 206 for r in resolve_gets(hub))  # range reads only


def test_prepare_from_the_hub_equals_local_and_keeps_no_token(hub, corpus, tmp_path, monkeypatch):
    hub.add_files("dataset", REPO_ID, {TAR: (corpus / TAR).read_bytes(), "README.md": b"# mini\n"})
    monkeypatch.setenv("HF_TOKEN", DEFAULT_TOKEN)
    local, _ = records(get_recipe("emilia").prepare(corpus, workers=1))
    remote, rejected = records(get_recipe("emilia").prepare(f"hf://datasets/{REPO_ID}/", workers=2))
    assert len(remote) == 4 and not rejected  # the repo's README.md is outside the layout's folders
    for a, b in zip(local, remote):
        assert b.corpus_root == f"hf://datasets/{REPO_ID}@{head(hub)}"  # pinned to the commit read
        assert {**a.to_dict(), "corpus_root": None} == {**b.to_dict(), "corpus_root": None}
    assert DEFAULT_TOKEN not in json.dumps([r.to_dict() for r in remote])


def test_a_manifest_keeps_reading_the_commit_it_was_prepared_from(hub, corpus, tmp_path, shared):
    """A new commit after prepare (the tar replaced) does not change what a build of the
    prepared records reads: the root was pinned to the commit it listed."""
    from voxbox.build.pipeline import load_pipeline
    from voxbox.build.run import build

    hub.add_files("dataset", REPO_ID, {TAR: (corpus / TAR).read_bytes()})
    prepared = list(get_recipe("emilia").prepare(f"hf://datasets/{REPO_ID}", workers=1))
    other = emilia_tar(Clips(shared), tmp_path / "other", n=2)  # different members and bytes
    hub.add_files("dataset", REPO_ID, {TAR: other.read_bytes()}, message="replace the tar")
    storage.forget()
    pipe = load_pipeline(stages=[])
    build(get_recipe("emilia").prepare(corpus), tmp_path / "local", pipe, workers=1)
    build(prepared, tmp_path / "remote", pipe, workers=1)
    assert shard_digests(tmp_path / "local") == shard_digests(tmp_path / "remote")


def test_a_subfolder_of_a_repo_is_a_root(hub, corpus):
    hub.add_files("dataset", REPO_ID, {f"mirror/{TAR}": (corpus / TAR).read_bytes()})
    recs, rejected = records(get_recipe("emilia").prepare(f"hf://datasets/{REPO_ID}/mirror", workers=1))
    assert len(recs) == 4 and not rejected
    assert recs[0].source_path.startswith(TAR + "/")
    assert recs[0].corpus_root == f"hf://datasets/{REPO_ID}@{head(hub)}/mirror"
    first = head(hub)
    hub.add_files("dataset", REPO_ID, {"README.md": b"# later\n"})
    storage.forget()
    given = f"hf://datasets/{REPO_ID}@{first}/mirror"  # an explicit revision is kept as given
    assert records(get_recipe("emilia").prepare(given, workers=1))[0][0].corpus_root == given


@pytest.mark.slow
def test_cache_serves_a_rerun_without_range_requests(hub, corpus, tmp_path):
    hub.add_files("dataset", REPO_ID, {TAR: (corpus / TAR).read_bytes()})
    cache = tmp_path / "cache"
    args = ["prepare", "emilia", "--root", f"hf://datasets/{REPO_ID}", "--cache", str(cache)]
    first = cli(args + ["-o", str(tmp_path / "m1.jsonl")])
    assert first.returncode == 0, first.stderr
    reads = len(resolve_gets(hub))
    assert reads >= 1 and list((cache / "blocks").rglob("*.0"))
    since = len(hub.state.requests)
    second = cli(args + ["-o", str(tmp_path / "m2.jsonl")])
    assert second.returncode == 0, second.stderr
    assert resolve_gets(hub, since) == []  # every byte came from the cache
    assert (tmp_path / "m1.jsonl").read_bytes() == (tmp_path / "m2.jsonl").read_bytes()
    assert str(cache) not in (tmp_path / "m2.jsonl").read_text()  # records never name the cache


@pytest.mark.slow
def test_a_build_from_a_remote_manifest_reads_the_cache(hub, corpus, tmp_path):
    """Records with an hf:// corpus_root, built from a manifest in worker processes that
    share the prepare's cache: not one range request."""
    hub.add_files("dataset", REPO_ID, {TAR: (corpus / TAR).read_bytes()})
    cache = tmp_path / "cache"
    prepared = cli(["prepare", "emilia", "--root", f"hf://datasets/{REPO_ID}", "--cache", str(cache),
                    "-o", str(tmp_path / "m1.jsonl")])
    assert prepared.returncode == 0, prepared.stderr
    since = len(hub.state.requests)
    built = cli(["build", "--manifest", str(tmp_path / "m1.jsonl"), "-o", str(tmp_path / "out"), "--stages", "",
                 "-j", "2", "--cache", str(cache)])
    assert built.returncode == 0, built.stderr
    assert resolve_gets(hub, since) == [] and json.loads((tmp_path / "out" / "index.json").read_text())[
        "totals"]["records"] == 4


def test_a_transient_5xx_is_retried(hub, corpus, tmp_path):
    """voxbox's own retries (huggingface_hub's are not in the way): three 502s, then the
    fourth and last try reads the range."""
    hub.add_files("dataset", REPO_ID, {TAR: (corpus / TAR).read_bytes()})
    hub.state.fail_resolves, hub.state.fail_resolve_status = 3, 502
    recs, rejected = records(get_recipe("emilia").prepare(f"hf://datasets/{REPO_ID}", workers=1))
    assert len(recs) == 4 and not rejected
    assert [r[2] for r in resolve_gets(hub)] == [502, 502, 502, 206]


def test_a_storage_that_stays_down_stops_after_bounded_tries(hub, corpus, tmp_path):
    hub.add_files("dataset", REPO_ID, {TAR: (corpus / TAR).read_bytes()})
    hub.state.fail_resolves, hub.state.fail_resolve_status = 100, 503
    with pytest.raises(storage.StorageError) as e:
        list(get_recipe("emilia").prepare(f"hf://datasets/{REPO_ID}", workers=1))
    assert e.value.reason == "remote_unavailable" and "after 4 tries" in str(e.value) and "\n" not in str(e.value)
    assert len(resolve_gets(hub)) == 4


@pytest.mark.parametrize("token", [None, DEFAULT_TOKEN])
def test_a_gated_repo_is_one_line_naming_the_access_page(hub, corpus, monkeypatch, token):
    hub.add_files("dataset", "voxorg/gated-emilia", {TAR: (corpus / TAR).read_bytes()}, gated=True)
    if token:
        monkeypatch.setenv("HF_TOKEN", token)
    with pytest.raises(VoxboxError) as e:
        list(get_recipe("emilia").prepare("hf://datasets/voxorg/gated-emilia", workers=1))
    msg = str(e.value)
    assert "\n" not in msg and f"request access at {hub.url}/datasets/voxorg/gated-emilia" in msg
    assert ("your token has no access" if token else "no Hugging Face token is set") in msg
    assert DEFAULT_TOKEN not in msg
    hub.state.gated_access[("dataset", "voxorg/gated-emilia")] = [DEFAULT_USER]  # access granted
    if token:
        storage.forget()
        assert len(records(get_recipe("emilia").prepare("hf://datasets/voxorg/gated-emilia", workers=1))[0]) == 4


def test_gated_repo_through_the_cli(hub, corpus, tmp_path):
    hub.add_files("dataset", "voxorg/gated-emilia", {TAR: (corpus / TAR).read_bytes()}, gated=True)
    res = cli(["prepare", "emilia", "--root", "hf://datasets/voxorg/gated-emilia", "-o", str(tmp_path / "m.jsonl")])
    assert res.returncode == 1
    lines = [l for l in res.stderr.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and "hf://datasets/voxorg/gated-emilia" in lines[0] and "request access at" in lines[0]
    assert "Traceback" not in res.stderr and not (tmp_path / "m.jsonl").exists()


def test_missing_repo_and_missing_path_are_one_line_errors(hub, corpus):
    hub.add_files("dataset", REPO_ID, {TAR: (corpus / TAR).read_bytes()})
    for url, why in (("hf://datasets/voxorg/no-such-repo", "no such repo"),
                     (f"hf://datasets/{REPO_ID}/no/such/folder", "no such file or folder in the repo")):
        with pytest.raises(VoxboxError) as e:
            list(get_recipe("emilia").prepare(url, workers=1))
        msg = str(e.value)
        assert "\n" not in msg and why in msg
        assert url.replace(REPO_ID, f"{REPO_ID}@{head(hub)}") in msg if REPO_ID in url else url in msg


# ------------------------------------------------------------------------------------
# Not Hub-specific: any fsspec URL (memory:// here)
# ------------------------------------------------------------------------------------


@pytest.fixture
def memfs(corpus):
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe(f"/voxbox-test/{TAR}", (corpus / TAR).read_bytes())
    storage.forget()
    yield fs
    fs.rm("/voxbox-test", recursive=True)
    storage.forget()


def test_memory_root_builds_the_same_shards_and_fingerprint(memfs, corpus, tmp_path):
    """A storage without ETags (memory://) signs files by sampled content, as local files:
    the input fingerprint matches the local build's too."""
    from voxbox.build.run import build, load_pipeline

    pipe = load_pipeline(stages=[])
    build(get_recipe("emilia").prepare(corpus), tmp_path / "local", pipe, workers=1)
    build(get_recipe("emilia").prepare("memory://voxbox-test"), tmp_path / "mem", pipe, workers=1)
    assert shard_digests(tmp_path / "local") == shard_digests(tmp_path / "mem")
    fingerprints = [json.loads((tmp_path / d / "index.json").read_text())["fingerprint"] for d in ("local", "mem")]
    assert fingerprints[0] == fingerprints[1]


def test_extract_option_needs_a_local_root(memfs):
    with pytest.raises(VoxboxError, match="extract=true needs a local --root"):
        list(get_recipe("emilia", extract=True).prepare("memory://voxbox-test", workers=1))


def test_retries_are_bounded_and_only_for_transient_failures(memfs, monkeypatch):
    monkeypatch.setenv("VOXBOX_REMOTE_BACKOFF_S", "0")
    monkeypatch.setenv("VOXBOX_REMOTE_TRIES", "3")
    calls = []
    real = memfs.cat_file

    class Unavailable(Exception):
        def __init__(self, status):
            super().__init__(f"HTTP {status}")
            self.status_code = status

    def flaky(path, start=None, end=None, **kw):
        calls.append(path)
        if len(calls) <= failures:
            raise Unavailable(status)
        return real(path, start=start, end=end, **kw)

    monkeypatch.setattr(memfs, "cat_file", flaky)
    tar = storage.root_path("memory://voxbox-test") / TAR
    failures, status = 2, 503  # two failures, then the third try succeeds
    assert storage.read_range(tar, 0, 512) == memfs.cat_file(f"/voxbox-test/{TAR}", 0, 512) and len(calls) == 4
    storage.forget()
    calls.clear()
    failures = 99  # never recovers: three tries, then a retryable rejection code
    with pytest.raises(storage.StorageError) as e:
        storage.read_range(storage.root_path("memory://voxbox-test") / TAR, 0, 512)
    assert e.value.reason == "remote_unavailable" and len(calls) == 3
    storage.forget()
    calls.clear()
    status = 400  # not transient: one try only
    with pytest.raises(storage.StorageError) as e:
        storage.read_range(storage.root_path("memory://voxbox-test") / TAR, 0, 512)
    assert e.value.reason == "remote_error" and len(calls) == 1


def test_an_outage_costs_one_try_per_read_after_three_reads_failed(memfs, monkeypatch):
    monkeypatch.setenv("VOXBOX_REMOTE_BACKOFF_S", "0")
    calls = []
    real = memfs.cat_file

    def down(path, start=None, end=None, **kw):
        calls.append(path)
        raise ConnectionResetError("connection reset by peer")

    tar = storage.root_path("memory://voxbox-test") / TAR

    def tries_per_read(n):
        out = []
        for _ in range(n):
            calls.clear()
            with pytest.raises(storage.StorageError):
                storage.read_range(tar, 0, 512)
            out.append(len(calls))
        return out

    monkeypatch.setattr(memfs, "cat_file", down)
    assert tries_per_read(5) == [4, 4, 4, 1, 1]
    monkeypatch.setattr(memfs, "cat_file", real)
    assert len(storage.read_range(tar, 0, 512)) == 512  # back: a success ends the outage
    storage.forget()
    monkeypatch.setattr(memfs, "cat_file", down)
    assert tries_per_read(1) == [4]


def test_an_unreachable_member_is_a_retryable_rejection_in_the_stages(memfs, monkeypatch):
    from voxbox import media
    from voxbox.reasons import REASONS

    recs, _ = records(get_recipe("emilia").prepare("memory://voxbox-test", workers=1))
    storage.forget()
    media.forget_archives()
    monkeypatch.setenv("VOXBOX_REMOTE_BACKOFF_S", "0")

    def down(*a, **k):
        raise ConnectionResetError("connection reset by peer")

    monkeypatch.setattr(memfs, "cat_file", down)
    with pytest.raises(media.MediaError) as e:
        media.read_frames(recs[0])
    assert e.value.reason == "remote_unavailable" and REASONS["remote_unavailable"].retryable


def test_remote_path_and_urls():
    assert storage.is_url("hf://datasets/a/b") and storage.is_url("s3://bucket/x")
    assert not storage.is_url("/data/corpus") and not storage.is_url(str(Path("hf://x")))
    assert storage.redact("s3://key:secret@bucket/a/b") == "s3://bucket/a/b"
    assert storage.redact("hf://datasets/a/b@refs%2Fpr%2F1/x") == "hf://datasets/a/b@refs%2Fpr%2F1/x"
    assert storage.root_path("file:///tmp/x") == Path("/tmp/x")
    assert isinstance(storage.root_path("~/x"), Path)
    from voxbox.storage.url import hub_page

    assert hub_page("hf://datasets/amphion/Emilia-Dataset/Emilia/EN", "https://huggingface.co") == \
        "https://huggingface.co/datasets/amphion/Emilia-Dataset"
    root = storage.root_path("memory://voxbox-none")
    assert str(root / "a" / "b.tar") == "memory://voxbox-none/a/b.tar"
    with pytest.raises(ValueError):
        root / "../escape"
    assert not hasattr(root, "__fspath__")  # never handed to open() as a local path


@pytest.mark.slow
def test_plain_files_under_a_remote_root_give_the_pinned_shards(shared, tmp_path):
    """Whole audio files (LibriTTS flac + transcripts, read by recipes that join paths as
    strings) under a remote root give exactly the pinned shards of the local build."""
    import fsspec

    from test_pinned_output import ANNOTATE, _check
    from voxbox.build.pipeline import load_pipeline
    from voxbox.build.run import build
    from voxbox.build.sources import corpus_source

    base = shared / "data" / "real-speech" / "libritts-mini" / "LibriTTS"
    fs = fsspec.filesystem("memory")
    for p in sorted(base.rglob("*")):
        if p.is_file():
            fs.pipe(f"/libritts-mini/{p.relative_to(base).as_posix()}", p.read_bytes())
    storage.forget()
    try:
        source = list(corpus_source("libritts", root="memory://libritts-mini"))
        assert {r.corpus_root for r in source if isinstance(r, Utterance)} == {"memory://libritts-mini"}
        build(source, tmp_path / "out", load_pipeline(stages=["annotate"]), workers=1)
        _check(tmp_path / "out", ANNOTATE)
    finally:
        fs.rm("/libritts-mini", recursive=True)
        storage.forget()
