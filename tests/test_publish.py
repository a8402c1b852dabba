"""`voxbox publish` against a local Hub-compatible server (tests/hub_server.py).

The server speaks the same HTTP API as the Hub for what huggingface_hub (with
HF_HUB_DISABLE_XET=1) and datasets use, so these tests exercise the real client code
paths: preupload, LFS batch + basic transfer, NDJSON commits, tree listing, resolve.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hub_server import DEFAULT_TOKEN, HubServer

from voxbox.errors import VoxboxError
from voxbox.record import Rejection, Utterance, make_index

REPO_ROOT = Path(__file__).resolve().parents[1]
# huggingface_hub streams LFS uploads with a call httpx2 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Use .content=:DeprecationWarning")


def make_built_dataset(out_dir: Path, *, n: int = 12, shard_records: int = 3, seed: int = 0,
                       text_suffix: str = "") -> Path:
    """A small built folder with varied, fully annotated records over two corpora."""
    from voxbox.shards import write_dataset

    rng = np.random.default_rng(seed)
    src = out_dir.parent / (out_dir.name + "-src")
    src.mkdir(parents=True, exist_ok=True)
    levels = ("very_low", "low", "moderate", "high", "very_high")
    recs = []
    for i in range(n):
        zh = i % 3 == 2
        corpus = "aishell3" if zh else "vctk"
        dur = 0.4 + 0.1 * (i % 5)
        sr = 16000
        name = f"{corpus}_{i:03d}.wav"
        t = np.arange(int(dur * sr)) / sr
        wav = 0.3 * np.sin(2 * np.pi * (110 + 15 * i) * t) + 0.01 * rng.standard_normal(len(t))
        sf.write(src / name, wav.astype(np.float32), sr, subtype="PCM_16")
        female = i % 2 == 1
        pitch = (200.0 + 8 * i) if female else (100.0 + 6 * i)
        recs.append(Utterance(
            index=make_index(corpus, name), split="test" if i == 0 else "train", language="zh" if zh else "en",
            age="Youth-Adult", gender="female" if female else "male", emotion="UNKNOWN", pitch=pitch,
            pitch_std=0.15, speed=1.5 + 0.6 * i, duration=round(dur, 2), speech_duration=round(dur * 0.9, 3),
            syllable_num=4 + i, text=("你好世界" if zh else f"hello world number {i}") + text_suffix,
            syllables="x", wav_path=f"{corpus}/{name}", corpus=corpus, speaker=f"spk{i % 4}", source_path=name,
            corpus_root=str(src), sample_rate=sr, num_samples=len(t), channels=1,
            license="Apache-2.0" if zh else "CC BY 4.0",
            gender_source="predicted" if zh else "native", gender_model="builtin" if zh else None,
            gender_confidence=(0.55 + 0.03 * i) if zh else None,
            pitch_level=levels[i % 5], speed_level=levels[(i * 2) % 5], pitch_std_level="moderate",
            global_tokens=[int(x) for x in rng.integers(0, 4096, 32)],
            semantic_tokens=[int(x) for x in rng.integers(0, 8192, int(round(dur * 50)))],
        ))
    rejects = [Rejection("annotate", "bad1.wav", "audio_too_short", "vctk_bad1"),
               Rejection("annotate", "bad2.wav", "audio_too_short", "vctk_bad2"),
               Rejection("prepare", "bad3.wav", "unreadable_audio", "vctk_bad3")]
    write_dataset(recs, out_dir, name="tiny", shard_records=shard_records, rejects=rejects)
    return out_dir


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return make_built_dataset(tmp_path_factory.mktemp("pub") / "built")


@pytest.fixture
def hub():
    with HubServer() as server:
        yield server


@pytest.fixture
def online(monkeypatch):
    """conftest makes every library offline; publishing tests talk to 127.0.0.1 only."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)


def local_upload_set(folder: Path) -> dict:
    idx = json.loads((folder / "index.json").read_text())
    files = {f["path"]: (folder / f["path"]).read_bytes() for s in idx["shards"] for f in s["files"].values()}
    for name in ("index.json", "provenance.json", "rejects.jsonl"):
        files[name] = (folder / name).read_bytes()
    return files


def cli_env(hub: HubServer, tmp_path: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HF_DATASETS_OFFLINE")}
    env.update(HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET="1", HF_HOME=str(tmp_path / "hf-home"),
               VOXBOX_PROGRESS="0", PYTHONPATH=str(REPO_ROOT))
    env.update(extra)
    return env


def run_cli(args, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "voxbox", *args], env=env, capture_output=True, text=True,
                          timeout=300)


# ------------------------------------------------------------------------------------


def test_publish_creates_repo_and_uploads_everything(built, hub, online):
    from voxbox.release.publish import publish

    res = publish(built, "alice/tiny", token=DEFAULT_TOKEN, endpoint=hub.url, progress=False)
    repo = hub.state.repos[("dataset", "alice/tiny")]
    assert repo.private is False
    remote = hub.repo_files("dataset", "alice/tiny")
    local = local_upload_set(built)
    for path, data in local.items():
        assert remote[path] == data, path
    assert set(remote) == set(local) | {"README.md", ".gitattributes"}
    assert sorted(res.uploaded) == sorted(set(local) | {"README.md"})
    # Shards are LFS objects (checked by sha256), metadata regular files.
    shard_paths = [p for p in local if p.startswith(("parquet/", "webdataset/"))]
    lfs_oids = {oid for _repo, oid in hub.state.lfs_uploads}
    assert lfs_oids == {hashlib.sha256(local[p]).hexdigest() for p in shard_paths}
    # The card is committed last, with the index, so it never points at missing shards.
    assert set(hub.state.commits[-1][1]) >= {"README.md", "index.json"}
    assert all(p.startswith(("parquet/", "webdataset/")) for _r, paths in hub.state.commits[:-1] for p in paths)
    assert "up to date" not in res.summary()


def test_republish_unchanged_uploads_nothing(built, hub, online):
    from voxbox.release.publish import publish

    publish(built, "alice/tiny", token=DEFAULT_TOKEN, endpoint=hub.url, progress=False)
    commits, puts, seen = len(hub.state.commits), len(hub.state.lfs_uploads), len(hub.state.requests)
    res = publish(built, "alice/tiny", token=DEFAULT_TOKEN, endpoint=hub.url, progress=False)
    assert res.uploaded == [] and res.deleted == [] and res.commits == 0
    assert len(hub.state.commits) == commits and len(hub.state.lfs_uploads) == puts
    writes = [r for r in hub.state.requests[seen:] if r[0] in ("POST", "PUT") and "/whoami" not in r[1]
              and "/repos/create" not in r[1]]
    assert writes == []
    assert "up to date" in res.summary()


def test_interrupted_upload_resumes_with_only_missing_files(built, hub, online):
    from voxbox.release.publish import publish

    hub.state.fail_commits_after = 2  # two shard batches land, the third dies
    with pytest.raises(VoxboxError) as err:
        publish(built, "alice/tiny", token=DEFAULT_TOKEN, endpoint=hub.url, batch_files=3, progress=False)
    msg = str(err.value)
    assert "\n" not in msg and "rerun" in msg and "500" in msg
    first = hub.repo_files("dataset", "alice/tiny")
    committed = {p for _r, paths in hub.state.commits for p in paths}
    assert len(committed) == 6 and committed <= set(first)
    assert "README.md" not in first and "index.json" not in first
    puts_before = {oid for _r, oid in hub.state.lfs_uploads}

    hub.state.fail_commits_after = None
    n_commits = len(hub.state.commits)
    res = publish(built, "alice/tiny", token=DEFAULT_TOKEN, endpoint=hub.url, batch_files=3, progress=False)
    local = local_upload_set(built)
    again = {p for _r, paths in hub.state.commits[n_commits:] for p in paths}
    assert not (again & committed), "files committed before the interruption were uploaded again"
    assert again == (set(local) | {"README.md"}) - committed
    assert set(res.unchanged) == committed
    # Objects sent before the failed commit are not sent a second time either.
    puts_after = [oid for _r, oid in hub.state.lfs_uploads][len(puts_before):]
    assert not set(puts_after) & puts_before
    remote = hub.repo_files("dataset", "alice/tiny")
    assert all(remote[p] == d for p, d in local.items())


def test_dry_run_changes_nothing(built, hub, online):
    from voxbox.release.publish import publish

    res = publish(built, "alice/tiny", endpoint=hub.url, dry_run=True, batch_files=4, progress=False)
    assert ("dataset", "alice/tiny") not in hub.state.repos and hub.state.commits == []
    n_files = len(local_upload_set(built)) + 1
    # 10 shard files (the test split is a shard of its own) in batches of 4, then metadata
    assert len(res.uploaded) == n_files and res.commits == 4
    assert "would upload" in res.summary()
    publish(built, "alice/tiny", token=DEFAULT_TOKEN, endpoint=hub.url, progress=False)
    commits = len(hub.state.commits)
    res = publish(built, "alice/tiny", token=DEFAULT_TOKEN, endpoint=hub.url, dry_run=True, progress=False)
    assert res.uploaded == [] and len(res.unchanged) == n_files and len(hub.state.commits) == commits


def test_changed_folder_replaces_stale_shards(built, hub, online, tmp_path):
    from voxbox.release.publish import publish

    publish(built, "alice/tiny", token=DEFAULT_TOKEN, endpoint=hub.url, progress=False)
    other = make_built_dataset(tmp_path / "built2", n=7, shard_records=4, seed=1, text_suffix=" again")
    res = publish(other, "alice/tiny", token=DEFAULT_TOKEN, endpoint=hub.url, progress=False)
    remote = hub.repo_files("dataset", "alice/tiny")
    local = local_upload_set(other)
    shards = lambda paths: {p for p in paths if p.startswith(("parquet/", "webdataset/"))}  # noqa: E731
    assert shards(remote) == shards(local)
    assert res.deleted and set(res.deleted) == shards(local_upload_set(built)) - shards(local)
    assert all(remote[p] == d for p, d in local.items())
    assert "rejects.jsonl" in res.unchanged  # same rejects in both builds


@pytest.mark.slow
def test_private_repo_and_branch(built, hub, online):
    from huggingface_hub import HfApi

    from voxbox.release.publish import publish

    res = publish(built, "voxorg/tiny", private=True, revision="v1", token=DEFAULT_TOKEN, endpoint=hub.url,
                  progress=False)
    assert res.revision == "v1"
    repo = hub.state.repos[("dataset", "voxorg/tiny")]
    assert repo.private is True
    assert set(hub.repo_files("dataset", "voxorg/tiny", "main")) == {".gitattributes"}
    assert "README.md" in hub.repo_files("dataset", "voxorg/tiny", "v1")
    assert res.notes == []
    # --private does not change an existing public repo, and says so.
    publish(built, "alice/pub", token=DEFAULT_TOKEN, endpoint=hub.url, progress=False)
    again = publish(built, "alice/pub", private=True, token=DEFAULT_TOKEN, endpoint=hub.url, progress=False)
    assert hub.state.repos[("dataset", "alice/pub")].private is False
    assert "stays public" in again.summary()
    anonymous = HfApi(endpoint=hub.url, token=False)
    from huggingface_hub.errors import RepositoryNotFoundError

    with pytest.raises(RepositoryNotFoundError):
        anonymous.dataset_info("voxorg/tiny")


def test_errors_are_one_line_and_name_the_problem(built, hub, online):
    from voxbox.release.publish import publish

    cases = [
        (dict(token="hf_not_a_valid_token_at_all", endpoint=hub.url), "authentication failed"),
        (dict(token=None, endpoint=hub.url), "no Hugging Face token"),
        (dict(token=DEFAULT_TOKEN, endpoint="http://127.0.0.1:9"), "cannot reach the Hub at http://127.0.0.1:9"),
    ]
    for kwargs, expected in cases:
        with pytest.raises(VoxboxError) as err:
            publish(built, "alice/tiny", progress=False, **kwargs)
        assert expected in str(err.value) and "\n" not in str(err.value)
        assert "hf_not_a_valid_token_at_all" not in str(err.value)
    with pytest.raises(VoxboxError, match="no write access"):
        publish(built, "bob/tiny", token=DEFAULT_TOKEN, endpoint=hub.url, progress=False)
    with pytest.raises(VoxboxError, match="OWNER/NAME"):
        publish(built, "just-a-name", token=DEFAULT_TOKEN, endpoint=hub.url, progress=False)
    assert ("dataset", "alice/tiny") not in hub.state.repos


def test_anonymous_dry_run_against_a_dead_endpoint_fails_at_once(built, online, caplog):
    # Without a token there is no whoami probe; the paged listing used to retry for ~25 s.
    from voxbox.release.publish import publish

    with pytest.raises(VoxboxError, match="cannot reach the Hub at http://127.0.0.1:9"):
        publish(built, "alice/tiny", endpoint="http://127.0.0.1:9", dry_run=True, progress=False)
    assert "Retry" not in caplog.text
    with pytest.raises(VoxboxError, match="--endpoint must be an http"):
        publish(built, "alice/tiny", endpoint="huggingface.co", dry_run=True, progress=False)


@pytest.mark.slow
def test_cli_publish_never_prints_the_token_and_load_dataset_reads_it_back(built, hub, tmp_path):
    env = cli_env(hub, tmp_path, HF_HUB_VERBOSITY="debug")
    r = run_cli(["publish", str(built), "--repo-id", "alice/tiny", "--token", DEFAULT_TOKEN], env)
    assert r.returncode == 0, r.stderr
    assert "published to" in r.stdout
    assert DEFAULT_TOKEN not in r.stdout + r.stderr

    # Token from HF_TOKEN, wrong: one clear line, no token, exit 1.
    bad = "hf_wrongTokenValue42"
    r = run_cli(["publish", str(built), "--repo-id", "alice/tiny"], cli_env(hub, tmp_path, HF_TOKEN=bad))
    assert r.returncode == 1
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("error: authentication failed")
    assert bad not in r.stdout + r.stderr

    r = run_cli(["publish", str(built), "--repo-id", "alice/tiny", "--token", DEFAULT_TOKEN],
                cli_env(hub, tmp_path, HF_ENDPOINT="http://127.0.0.1:9"))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "cannot reach the Hub" in r.stderr
    assert DEFAULT_TOKEN not in r.stdout + r.stderr

    # `datasets` reads the published Parquet back through the same server (default config),
    # each corpus split as its own Hub split: the recipe's test row is not in train.
    code = (
        "import json, datasets\n"
        "d = datasets.load_dataset('alice/tiny', split='train')\n"
        "t = datasets.load_dataset('alice/tiny', split='test')\n"
        "a = d.cast_column('audio', datasets.Audio(decode=False))[0]['audio']\n"
        "from voxbox.dataset.reader import hf_webdataset_features\n"
        "w = datasets.load_dataset('webdataset', data_files='hf://datasets/alice/tiny/webdataset/*.tar',"
        " split='train', features=hf_webdataset_features(decode_audio=False))\n"
        "print(json.dumps({'n': len(d), 'cols': d.column_names, 'index': list(d['index']), 'test': list(t['index']),"
        " 'g': list(d['global_tokens'][0]), 'speed': list(d['speed']), 'audio': a['bytes'].hex(),"
        " 'wds': [j['index'] for j in w['json']]}))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], env=cli_env(hub, tmp_path), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout.strip().splitlines()[-1])
    from voxbox.dataset.reader import open_dataset

    every = list(open_dataset(built).records())
    recs = [x for x in every if x.split == "train"]
    assert got["n"] == len(recs) == 11 and got["test"] == [x.index for x in every if x.split == "test"]
    assert got["index"] == [x.index for x in recs]
    assert got["wds"] == [x.index for x in every]  # the glob over every tar, splits included
    assert got["g"] == recs[0].global_tokens and got["speed"] == [x.speed for x in recs]
    assert {"audio", "text", "semantic_tokens", "pitch_level"} <= set(got["cols"])
    wav, sr = sf.read(io.BytesIO(bytes.fromhex(got["audio"])))
    assert sr == 16000 and len(wav) == recs[0].num_samples


def test_a_shard_damaged_after_the_build_is_not_published(hub, online, tmp_path):
    from voxbox.errors import VoxboxError
    from voxbox.release.publish import publish

    folder = make_built_dataset(tmp_path / "ds")
    shard = sorted((folder / "parquet").glob("*.parquet"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, different bytes
    shard.write_bytes(bytes(data))
    with pytest.raises(VoxboxError, match="differ from index.json.*voxbox validate"):
        publish(folder, "alice/damaged", token=DEFAULT_TOKEN, endpoint=hub.url, progress=False)
    assert not any(p.startswith("parquet/") for p in hub.repo_files("dataset", "alice/damaged"))


@pytest.mark.slow
def test_publish_with_xet_enabled_falls_back_to_lfs_where_the_server_has_no_xet(built, hub, tmp_path):
    """Real users publish with hf_xet installed and Xet on (voxbox does not turn it off), so
    huggingface_hub asks for a Xet write token first. The local server has no Xet storage
    (404), as a Hub-compatible mirror may not: publish then uploads through LFS, and a rerun
    finds everything in place. The Xet transfer itself needs the real Hub (see the README)."""
    pytest.importorskip("hf_xet")
    env = {k: v for k, v in cli_env(hub, tmp_path).items() if k != "HF_HUB_DISABLE_XET"}
    r = run_cli(["publish", str(built), "--repo-id", "alice/xet", "--token", DEFAULT_TOKEN, "--json"], env)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["uploaded"]
    import huggingface_hub

    if int(huggingface_hub.__version__.split(".")[0]) >= 2:  # 2.x asks for a Xet token whatever the server says
        assert any("offers no Xet storage" in n for n in res["notes"]), res["notes"]
    assert set(local_upload_set(built)) <= set(hub.repo_files("dataset", "alice/xet"))
    r = run_cli(["publish", str(built), "--repo-id", "alice/xet", "--token", DEFAULT_TOKEN, "--json"], env)
    assert r.returncode == 0 and json.loads(r.stdout)["uploaded"] == []


ODD_TOKENS = ["hf_secretpart\nline2abcd", "hf_sec ret/+%&=\u00e9tail", "hf_tab\tsecretX", "hf_\r\nInjected: 1234",
              "hf_nul\x00zzzz", "hf_\u2028sep_abcd"]


@pytest.mark.parametrize("token", ODD_TOKENS)
def test_an_odd_token_is_refused_before_any_request_and_never_printed(built, hub, online, monkeypatch, token):
    # A newline used to reach the HTTP library, whose error printed it escaped (b'Bearer x\\ny').
    from voxbox.release.hub import fetch_model
    from voxbox.release.publish import publish

    calls = [lambda: publish(built, "alice/tiny", token=token, endpoint=hub.url, progress=False),
             lambda: fetch_model("alice/model", built.parent / "m", token=token, endpoint=hub.url)]
    if "\x00" not in token:  # an environment variable cannot hold NUL
        monkeypatch.setenv("HF_TOKEN", token)
        calls.append(lambda: publish(built, "alice/tiny", endpoint=hub.url, progress=False))
    pieces = [p for p in token.replace("\u2028", "\n").split() if len(p) >= 4 and p != "hf_"]
    for call in calls:
        with pytest.raises(VoxboxError, match="contains a .*it was not sent anywhere") as err:
            call()
        msg = str(err.value)
        assert "\n" not in msg and not any(p in msg for p in pieces + ["secret", "Injected", "zzzz", "abcd"])
    assert hub.state.requests == []


def test_hub_errors_scrub_every_escaped_form_of_the_token():
    from urllib.parse import quote, quote_plus

    from voxbox.release.hub import explain

    token = "hf_a/b+c%d=e'f\"g\\h~tail"   # valid (printable ASCII) but changed by every escaping
    texts = [f"GET https://hub/api?token={quote(token, safe='')}", f"url with {quote_plus(token)}",
             f"Illegal header value {('Bearer ' + token).encode()!r}", f"value {token!r}", f"raw {token}",
             'json {"token": ' + json.dumps(token) + "}"]
    for text in texts:
        msg = str(explain(RuntimeError(text), action="check the token", endpoint="http://hub", token=token))
        assert "tail" not in msg and "hf_a" not in msg, msg
        assert "***" in msg
