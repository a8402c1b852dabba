"""Shared test set-up.

Real data lives in ../shared beside the checkout (read-only in CI); tests never write
there and never copy it into the repo. Temporary files go to pytest's tmp_path.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("VOXBOX_SHARED", REPO.parent / "shared")).resolve()

# Keep torch from oversubscribing the 2-core CI box, and keep every library offline.
os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("NLTK_DATA", "/nonexistent")  # prove nothing needs NLTK downloads


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.exists():
        pytest.fail(f"shared data not found at {SHARED} (set VOXBOX_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def tiny_bicodec(shared) -> Path:
    return shared / "fixtures" / "bicodec-tiny"


@pytest.fixture(scope="session")
def sample(tmp_path_factory) -> Path:
    """The shipped sample corpus, built without models (as the README's first command does).
    Shared by the reader tests; read it, never write into it."""
    from voxbox.cli import main

    out = tmp_path_factory.mktemp("built") / "sample"
    assert main(["build", "--corpus", "sample", "--out", str(out), "-j", "1", "-q"]) == 0
    return out


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    """12 records with tokens over 5 shards (one of them the test split); sources in f"{tiny}-src"."""
    from test_publish import make_built_dataset

    return make_built_dataset(tmp_path_factory.mktemp("built-tiny") / "tiny")


S3_BUCKET = "voxbox-test"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """(endpoint env, an s3fs file system) of a moto S3 server on 127.0.0.1 with bucket
    S3_BUCKET; the endpoint and keys are in this process's environment while it lives."""
    s3fs = pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem(endpoint_url=env["AWS_ENDPOINT_URL"], key="testing", secret="testing")
    if not fs.exists(S3_BUCKET):  # moto keeps its buckets in this process across servers
        fs.mkdir(S3_BUCKET)
    yield env, fs
    mp.undo()
    s3fs.S3FileSystem.clear_instance_cache()
    server.stop()
