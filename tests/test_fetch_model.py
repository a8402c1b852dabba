"""`voxbox fetch-model` against a local Hub-compatible server serving a fake model repo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub_server import DEFAULT_TOKEN, HubServer

from voxbox.errors import VoxboxError

REPO_ROOT = Path(__file__).resolve().parents[1]

# The official Spark-TTS-0.5B file list, with tiny stand-in contents.
FAKE_MODEL = {
    "config.yaml": b"highpass_cutoff_freq: 40\nsample_rate: 16000\nsegment_duration: 2.4\n",
    "README.md": b"# Spark-TTS-0.5B (test copy)\n",
    "BiCodec/config.yaml": b"audio_tokenizer:\n  mel_params: {}\n",
    "BiCodec/model.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + os.urandom(64),
    "LLM/config.json": b'{"model_type": "qwen2"}',
    "LLM/model.safetensors": os.urandom(256),
    "LLM/tokenizer.json": b'{"version": "1.0"}',
    "LLM/tokenizer_config.json": b"{}",
    "wav2vec2-large-xlsr-53/config.json": b'{"model_type": "wav2vec2"}',
    "wav2vec2-large-xlsr-53/preprocessor_config.json": b'{"do_normalize": true}',
    "wav2vec2-large-xlsr-53/pytorch_model.bin": os.urandom(300),
}


@pytest.fixture
def hub():
    with HubServer() as server:
        server.add_files("model", "SparkAudio/Spark-TTS-0.5B", FAKE_MODEL)
        yield server


@pytest.fixture
def online(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


def resolve_gets(hub: HubServer, since: int = 0):
    return [r for r in hub.state.requests[since:] if r[0] == "GET" and "/resolve/" in r[1]]


def test_fetch_model_downloads_the_layout_and_resumes(hub, online, tmp_path):
    from voxbox.release.hub import fetch_model, missing_model_files

    dest = tmp_path / "Spark-TTS-0.5B"
    out = fetch_model(dest=dest, endpoint=hub.url)
    assert out == dest
    for path, data in FAKE_MODEL.items():
        assert (dest / path).read_bytes() == data, path
    assert missing_model_files(dest) == []

    # A rerun checks the files against the Hub and downloads nothing again.
    seen = len(hub.state.requests)
    fetch_model(dest=dest, endpoint=hub.url)
    assert resolve_gets(hub, seen) == []

    # A damaged file is fetched again.
    (dest / "LLM/config.json").write_bytes(b"garbage")
    (dest / "BiCodec/model.safetensors").unlink()
    seen = len(hub.state.requests)
    fetch_model(dest=dest, endpoint=hub.url)
    assert (dest / "BiCodec/model.safetensors").read_bytes() == FAKE_MODEL["BiCodec/model.safetensors"]
    got = {r[1].split("/resolve/")[1].split("/", 1)[1] for r in resolve_gets(hub, seen)}
    assert "BiCodec/model.safetensors" in got and "config.yaml" not in got


def test_tokenizer_only_skips_the_llm(hub, online, tmp_path):
    from voxbox.release.hub import TOKENIZER_PARTS, fetch_model, missing_model_files

    dest = tmp_path / "tok"
    fetch_model("SparkAudio/Spark-TTS-0.5B", dest, endpoint=hub.url, tokenizer_only=True)
    assert not (dest / "LLM").exists()
    assert missing_model_files(dest, TOKENIZER_PARTS) == []
    assert "LLM/config.json" in missing_model_files(dest)


def test_incomplete_repo_names_what_is_missing(hub, online, tmp_path):
    from voxbox.release.hub import fetch_model

    partial = {k: v for k, v in FAKE_MODEL.items()
               if not k.startswith("LLM/") and k != "BiCodec/model.safetensors"}
    hub.add_files("model", "someone/not-quite-spark", partial)
    with pytest.raises(VoxboxError) as err:
        fetch_model("someone/not-quite-spark", tmp_path / "m", endpoint=hub.url)
    msg = str(err.value)
    assert "\n" not in msg and "not a Spark-TTS model folder" in msg
    assert "BiCodec/model.safetensors" in msg and "LLM/config.json" in msg
    assert "wav2vec2-large-xlsr-53/config.json" not in msg


def test_private_repo_needs_a_token(hub, online, tmp_path):
    from voxbox.release.hub import fetch_model

    hub.add_files("model", "alice/private-spark", FAKE_MODEL, private=True)
    with pytest.raises(VoxboxError, match="not found .* or it is private"):
        fetch_model("alice/private-spark", tmp_path / "a", endpoint=hub.url)
    fetch_model("alice/private-spark", tmp_path / "b", endpoint=hub.url, token=DEFAULT_TOKEN)
    assert (tmp_path / "b" / "BiCodec" / "config.yaml").exists()


@pytest.mark.slow
def test_cli_fetch_model(hub, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN")}
    env.update(HF_ENDPOINT=hub.url, HF_HUB_DISABLE_XET="1", HF_HOME=str(tmp_path / "hf-home"),
               PYTHONPATH=str(REPO_ROOT))
    dest = tmp_path / "cli-model"
    r = subprocess.run([sys.executable, "-m", "voxbox", "fetch-model", "--model-dir", str(dest)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "SparkAudio/Spark-TTS-0.5B is ready in" in r.stdout
    assert (dest / "wav2vec2-large-xlsr-53" / "pytorch_model.bin").read_bytes() == \
        FAKE_MODEL["wav2vec2-large-xlsr-53/pytorch_model.bin"]

    r = subprocess.run([sys.executable, "-m", "voxbox", "fetch-model", "--repo-id", "nobody/nothing", "--model-dir",
                        str(tmp_path / "x")], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert r.stderr.startswith("error: cannot download nobody/nothing: model repo nobody/nothing not found")

    env["HF_ENDPOINT"] = "http://127.0.0.1:9"
    r = subprocess.run([sys.executable, "-m", "voxbox", "fetch-model", "--model-dir", str(tmp_path / "y")], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [r.stderr.strip()] and "cannot reach the Hub" in r.stderr
