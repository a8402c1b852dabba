"""Helpers for the `voxbox serve` tests: a small real built dataset and a real server process.

The dataset is built by `voxbox build --manifest` (real annotate stage, real BiCodec
tokenize stage with the tiny fixture model) from the six LibriTTS clips in ../shared plus
a tiny synthetic corpus in tmp that adds rejects: one clip too short to annotate (a
readable file, so the rejects view can play it) and one broken file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def env(**extra) -> dict:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(REPO), e.get("PYTHONPATH", "")])
    e["VOXBOX_PROGRESS"] = "0"
    e.setdefault("OMP_NUM_THREADS", "1")
    e.update(extra)
    return e


def mixed_manifest(tmp: Path, shared: Path) -> Path:
    """LibriTTS-mini records (native genders) + a synthetic corpus with two rejects."""
    import soundfile as sf

    from voxbox.manifest import write_manifest
    from voxbox.record import Utterance, make_index
    from voxbox.sources.corpora import get_recipe

    recs: List = [r for r in get_recipe("libritts").prepare(shared / "data/real-speech/libritts-mini/LibriTTS")
                  if isinstance(r, Utterance)]
    root = tmp / "tones"
    root.mkdir(parents=True, exist_ok=True)
    sr = 16000
    t = np.arange(int(sr * 1.2)) / sr
    clips = {"long_tone.wav": 0.4 * np.sin(2 * np.pi * 180 * t), "short.wav": 0.4 * np.sin(2 * np.pi * 200 * t[:800])}
    for name, y in clips.items():
        sf.write(str(root / name), y, sr, subtype="PCM_16")
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    for name in ("long_tone.wav", "short.wav", "broken.wav"):
        recs.append(Utterance(index=make_index("tones", name), corpus="tones", source_path=name,
                              corpus_root=str(root), text="a tone", language="en", gender="female",
                              speaker="tone", sample_rate=sr, num_samples=16000, channels=1))
    path = tmp / "manifest.jsonl"
    write_manifest(path, recs)
    return path


def build(manifest: Path, out: Path, model_dir: Optional[Path], *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "voxbox", "build", "--manifest", str(manifest), "--out", str(out), "--workers", "1"]
    if model_dir is not None:
        cmd += ["--model-dir", str(model_dir)]
    res = subprocess.run(cmd + list(extra), env=env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return res


class Server:
    """`python -m voxbox serve ...` in a subprocess, on a free port; its URL from stderr."""

    def __init__(self, *args: str, timeout: float = 120.0, **env_extra):
        self.proc = subprocess.Popen([sys.executable, "-m", "voxbox", "serve", *args, "--port", "0"],
                                     env=env(**env_extra), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     text=True)
        self.lines: List[str] = []
        self.url: Optional[str] = None
        ready = threading.Event()

        def pump():
            for line in self.proc.stderr:
                self.lines.append(line)
                m = re.search(r"at (http://\S+/)", line)
                if m and self.url is None:
                    self.url = m.group(1)
                    ready.set()
            ready.set()

        self._thread = threading.Thread(target=pump, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.2):
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("voxbox serve did not start: " + "".join(self.lines))
        if self.url is None:
            self.stop()
            raise AssertionError("voxbox serve exited: " + "".join(self.lines))
        self._wait_listening()

    def _wait_listening(self) -> None:
        import httpx

        for _ in range(100):
            try:
                httpx.get(self.url + "api/info", timeout=5)
                return
            except httpx.HTTPError:
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._thread.join(timeout=5)

    @property
    def log(self) -> str:
        return "".join(self.lines)
