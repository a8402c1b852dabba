"""The README's main command and its "Reading it back" section, run verbatim.

The set-up command builds the shipped sample corpus (the install part is left to CI); then
every code block of "Reading it back" runs in order, in a fresh folder, as a user would
paste it: ```bash lines through the voxbox CLI, ```python blocks as scripts.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import REPO

pytest.importorskip("datasets")
pytest.importorskip("lhotse")


def section(text: str, heading: str) -> str:
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def blocks(text: str):
    """``(language, code)`` of each fenced block, in order."""
    return re.findall(r"```(\w+)\n(.*?)```", text, flags=re.S)


def voxbox_lines(code: str):
    """The voxbox commands of a bash block (joined continuation lines, comments dropped)."""
    code = code.replace("\\\n", " ")
    for line in code.splitlines():
        line = line.split(" #")[0].strip()
        if line.startswith("voxbox "):
            yield shlex.split(line)[1:]


@pytest.mark.slow
def test_readme_main_command_and_reading_it_back(tmp_path):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "VOXBOX_PROGRESS": "0"}

    def run(args, what):
        r = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"{what}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
        return r.stdout

    (setup_lang, setup), *_ = blocks(section(readme, "Set-up: two commands"))
    assert setup.strip().startswith("bash scripts/install.sh && voxbox build --corpus sample --out out/sample")
    for args in voxbox_lines(setup.split("&&", 1)[1]):
        run([sys.executable, "-m", "voxbox", *args], f"voxbox {' '.join(args)}")
    assert (tmp_path / "out" / "sample" / "index.json").is_file()

    reading = blocks(section(readme, "Reading it back"))
    assert [lang for lang, _ in reading].count("python") >= 4, "the three readers (datasets, torch, lhotse)"
    outputs = []
    for lang, code in reading:
        if lang == "bash":
            for args in voxbox_lines(code):
                outputs.append(run([sys.executable, "-m", "voxbox", *args], f"voxbox {' '.join(args)}"))
        elif lang == "python":
            outputs.append(run([sys.executable, "-c", code], code))
    text = "\n".join(outputs)
    assert "(73201,) 24000 8455_210777_000067_000000" in text  # hf_dataset: decoded array, rate, utt_id
    assert "torch.Size([1, 73201])" in text or "(1, 73201)" in text  # lhotse decodes the Shar audio
    assert (tmp_path / "out" / "from-lhotse" / "index.json").is_file()  # and builds from a CutSet
