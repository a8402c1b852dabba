"""Helpers for the build/shards/validate/resume tests: tiny synthetic corpora and a
tiny real stage. Imported by the tests and, through PYTHONPATH, by build subprocesses.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import List, Optional

import numpy as np

from voxbox import reasons
from voxbox.record import Utterance, make_index

from voxbox.manifest import write_manifest
from voxbox.stages import Stage, StageOption
from voxbox.dataset.validate import expected_semantic_tokens as expected_semantic  # noqa: F401 - used by tests

TESTS = Path(__file__).resolve().parent


def make_corpus(root: Path, n: int = 12, corpus: str = "synth", seed: int = 0,
                bad: bool = False, reject_every: int = 0) -> List[Utterance]:
    """Write ``n`` short WAVs (16/24 kHz, 16-bit; one 24-bit stereo; one FLAC) under
    ``root`` and return their records with header facts, as a recipe would."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    recs = []
    for i in range(n):
        sr = 16000 if i % 2 == 0 else 24000
        secs = 0.4 + 0.1 * (i % 5)
        t = np.arange(int(sr * secs)) / sr
        y = 0.3 * np.sin(2 * np.pi * (120 + 15 * i) * t) + 0.01 * rng.standard_normal(t.size)
        subtype, ext = "PCM_16", "wav"
        if i == 3:
            y = np.stack([y, 0.5 * y], axis=1)
            subtype = "PCM_24"
        if i == 5:
            ext, subtype = "flac", "PCM_16"
        rel = f"spk{i % 3}/utt{i:03d}.{ext}"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(root / rel), y, sr, subtype=subtype)
        info = sf.info(str(root / rel))
        text = f"utterance number {i}" + (" REJECT" if reject_every and i % reject_every == 1 else "")
        recs.append(Utterance(
            index=make_index(corpus, rel), corpus=corpus, source_path=rel, corpus_root=str(root),
            speaker=f"spk{i % 3}", text=text, language="en", gender=("female", "male")[i % 2],
            sample_rate=info.samplerate, num_samples=info.frames, channels=info.channels,
            duration=round(info.frames / info.samplerate, 2)))
    if bad:
        (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
        recs.append(Utterance(index=make_index(corpus, "broken.wav"), corpus=corpus, source_path="broken.wav",
                              corpus_root=str(root), text="broken", sample_rate=16000, num_samples=16000,
                              channels=1))
    return recs


def write_corpus_manifest(tmp: Path, **kw) -> Path:
    recs = make_corpus(tmp / "corpus", **kw)
    path = tmp / "manifest.jsonl"
    write_manifest(path, recs)
    return path


# A plug-in stage defines its own codes, as any stage outside voxbox would.
reasons.define("tiny_reject", "reject", "test stage: the text asks for a rejection")


class TinyStage(Stage):
    """A small real stage: reads the audio, sets loudness-like and level fields,
    optional fake tokens with the right shapes, rejects texts containing REJECT."""

    name = "tiny"
    options = (StageOption("tokens", bool, False, "add fake tokens of the right shapes"),
               StageOption("sleep", float, 0.0, "seconds to sleep per record (slow-stage tests)", minimum=0),
               StageOption("busy_dir", Path, None, "folder where each worker leaves a file named by its pid "
                                                   "when it starts a record (kill tests)"))

    def process(self, rec: Utterance):
        import soundfile as sf

        if rec.text and "REJECT" in rec.text:
            return self.reject(rec, "tiny_reject", "text asks for it")
        if self.params["busy_dir"]:
            (Path(self.params["busy_dir"]) / str(os.getpid())).touch()
        if self.params["sleep"]:
            time.sleep(self.params["sleep"])
        y, sr = sf.read(str(rec.audio_path), dtype="float32", always_2d=True)
        rms = float(np.sqrt(np.mean(y[:, 0] ** 2)))
        changes = dict(loudness=round(20 * np.log10(max(rms, 1e-9)), 4),
                       pitch_level=("low", "moderate", "high")[int(rec.index[-1], 16) % 3])
        if self.params["tokens"]:
            seed = int(hashlib.sha1(rec.index.encode()).hexdigest()[:8], 16)
            changes["global_tokens"] = [(seed + 97 * k) % 4096 for k in range(32)]
            changes["semantic_tokens"] = [(seed + 31 * k) % 8192
                                          for k in range(expected_semantic(rec.num_samples, rec.sample_rate))]
        return rec.replace(**changes)


def _process_kind() -> str:
    """'main' in the build's own process, 'worker' in a spawned worker."""
    import multiprocessing

    return "main" if multiprocessing.parent_process() is None else "worker"


class DeviceStage(Stage):
    """Stands in for a GPU stage on a CPU box: asks for a GPU (``resources``), notes on each
    record whether the build's own process or a worker ran it, leaves its pid in ``setup_log`` at every model
    load, and rejects texts containing REJECT (batched, like the tokenizer)."""

    name = "device"
    batched = True
    options = (StageOption("setup_log", Path, None, "file that gets a line (the pid) per setup"),)

    def __init__(self, **params):
        super().__init__(**params)
        self.resources = {"num_gpus": 1}

    def setup(self) -> None:
        if self.params["setup_log"]:
            with open(self.params["setup_log"], "a") as fh:
                fh.write(f"{os.getpid()}\n")

    def process(self, rec: Utterance):
        return self.process_batch([rec])[0]

    def process_batch(self, recs):
        self.ensure_setup()
        return [self.reject(r, "tiny_reject", "text asks for it") if r.text and "REJECT" in r.text
                else r.replace(extra={**(r.extra or {}), "ran_in": _process_kind()}) for r in recs]


class TinyBatchStage(TinyStage):
    """Batched variant, like the tokenizer; fails the whole batch when it sees BOOM,
    to exercise the record-by-record retry."""

    name = "tinybatch"
    batched = True

    def process(self, rec: Utterance):
        if rec.text and "BOOM" in rec.text:
            raise RuntimeError("boom")
        return super().process(rec)

    def process_batch(self, recs):
        if any(r.text and "BOOM" in r.text for r in recs):
            raise RuntimeError("batch boom")
        return [self.process(r) for r in recs]


class BrokenModelStage(TinyBatchStage):
    """A model stage whose model does not load (setup fails with the user's message)."""

    name = "brokenmodel"

    def setup(self) -> None:
        from voxbox.errors import VoxboxError

        raise VoxboxError("the model folder /models/x has no config.yaml")


class GateStage(Stage):
    """Holds the record ``index`` until the build's journal lists ``shards`` committed
    shards (at most ``wait_s``; then it fails the record). An engine that streams shards
    finishes the others meanwhile; one that waits for a window of shards never does."""

    name = "gate"
    options = (StageOption("journal", Path, None, "the build's journal.jsonl"),
               StageOption("index", str, "", "the record to hold"),
               StageOption("shards", int, 1, "committed shards to wait for", minimum=0),
               StageOption("wait_s", float, 120.0, "give up after this long", minimum=0))

    def process(self, rec: Utterance):
        if rec.index != self.params["index"]:
            return rec
        deadline = time.monotonic() + self.params["wait_s"]
        while journalled_shards(Path(self.params["journal"])) < self.params["shards"]:
            if time.monotonic() > deadline:
                raise RuntimeError("gate: the other shards never finished")
            time.sleep(0.05)
        return rec


def journalled_shards(journal: Path) -> int:
    try:
        lines = journal.read_text().splitlines()
    except OSError:
        return 0
    return sum(1 for line in lines if '"kind":"shard"' in line.replace(" ", ""))


def write_pipeline(path: Path, stages: Optional[list] = None, **output) -> Path:
    import yaml

    doc = {
        "name": "synth",
        "stages": stages if stages is not None else [
            {"stage": "voxbox_build_fixtures:TinyStage", "params": {"tokens": True}}],
        "output": {"formats": ["webdataset", "parquet"], "audio_format": "flac", "shard_mb": 0.05,
                   "shard_records": 4, **output},
        "engine": {"batch_size": 3},
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def subprocess_env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(TESTS.parent), env.get("PYTHONPATH", "")])
    env["VOXBOX_PROGRESS"] = "0"
    env.update(extra)
    return env


def voxbox_cmd(*args: str) -> list:
    return [sys.executable, "-m", "voxbox", *args]


def shard_bytes(out: Path) -> dict:
    """{relative path: bytes} of every shard file and the index, for byte comparisons."""
    files = {}
    for sub in ("webdataset", "parquet"):
        for p in sorted((out / sub).glob("*")):
            files[f"{sub}/{p.name}"] = p.read_bytes()
    files["index.json"] = (out / "index.json").read_bytes()
    files["rejects.jsonl"] = (out / "rejects.jsonl").read_bytes()
    return files


def index_json(out: Path) -> dict:
    return json.loads((out / "index.json").read_text())


def reference_build(tmp: Path):
    """(tmp, build args without --out, the reference folder they built): 14 records, every
    5th rejected, shards of 3 records, one worker. Resume tests rebuild and compare."""
    import subprocess

    manifest = write_corpus_manifest(tmp, n=14, reject_every=5)
    pfile = write_pipeline(tmp / "p.yaml", shard_mb=1.0, shard_records=3)
    args = ["build", "--manifest", str(manifest), "--pipeline", str(pfile), "--workers", "1"]
    ref = tmp / "ref"
    r = subprocess.run(voxbox_cmd(*args, "--out", str(ref)), env=subprocess_env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return tmp, args, ref
