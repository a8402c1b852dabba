"""A non-editable install must carry the pipelines and the corpus catalog."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from conftest import REPO


def test_wheel_ships_pipelines_and_catalog(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path), str(REPO)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("voxbox-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "voxbox/pipelines/voxbox.yaml" in names
    assert "voxbox/manifests/libritts.yaml" in names
    assert "spark_tokenize/__init__.py" in names
    for model in ("gender_ge2e.json", "gender_ge2e.recipe.yaml", "gender_f0.json"):
        assert f"voxbox/models/{model}" in names, f"shipped {model} missing"
    assert "voxbox/labels/classifier.py" in names
    assert not any(n.startswith("tests/") for n in names)
