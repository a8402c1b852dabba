"""A non-editable install must carry the pipelines, the corpus catalog and the sample corpus,
and build the sample corpus from any folder with no access to the repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile

import pytest

from conftest import REPO

SAMPLE = "voxbox/sources/sample_corpus"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(REPO)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (whl,) = out.glob("voxbox-*.whl")
    return whl


@pytest.mark.slow
def test_wheel_ships_pipelines_catalog_and_sample_corpus(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "voxbox/pipelines/voxbox.yaml" in names
    assert "voxbox/manifests/libritts.yaml" in names and "voxbox/manifests/sample.yaml" in names
    assert "spark_tokenize/__init__.py" in names
    for model in ("gender_ge2e.json", "gender_ge2e.recipe.yaml", "gender_f0.json"):
        assert f"voxbox/models/{model}" in names, f"shipped {model} missing"
    assert "voxbox/labels/classifier.py" in names
    for asset in ("index.html", "app.js", "app.css", "favicon.svg"):  # voxbox serve works offline
        assert f"voxbox/serve/static/{asset}" in names
    assert "voxbox/build/corrections.py" in names
    assert not any(n.startswith("tests/") for n in names)
    flacs = [n for n in names if n.startswith(SAMPLE) and n.endswith(".flac")]
    texts = [n for n in names if n.startswith(SAMPLE) and n.endswith(".normalized.txt")]
    assert len(flacs) == len(texts) == 6
    assert {f"{SAMPLE}/LICENSE.txt", f"{SAMPLE}/README.md", f"{SAMPLE}/LibriTTS/speakers.tsv"} <= names


@pytest.mark.slow
def test_installed_wheel_builds_the_sample_corpus_anywhere(wheel, tmp_path):
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                           str(site), str(wheel)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VOXBOX_CATALOG")}
    env.update(PYTHONPATH=str(site), HF_HUB_OFFLINE="1", VOXBOX_PROGRESS="0")
    where = subprocess.run([sys.executable, "-c", "import voxbox; print(voxbox.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True)
    assert where.stdout.strip().startswith(str(site)), where.stdout + where.stderr
    r = subprocess.run([sys.executable, "-m", "voxbox", "build", "--corpus", "sample", "--out", "out/sample",
                        "-j", "1", "--json"], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["ok"] and result["totals"]["records"] == 6 and result["tokens"] is False
    r = subprocess.run([sys.executable, "-m", "voxbox", "corpora", "--json"], cwd=work, env=env,
                       capture_output=True, text=True)
    assert {"name": "sample", "download": "bundled"}.items() <= next(
        c for c in json.loads(r.stdout)["corpora"] if c["name"] == "sample").items()
