"""An adversarial corpus, made at test time: every odd file a careless user or an
attacker can put in a corpus folder, next to a few good clips, plus manifests with
malformed records.

``make_corpus(root)`` lays out a ``folder``-recipe corpus (audio + sidecar ``.txt``) and
returns what `voxbox prepare` must make of it: for every input (each audio file and each
file the layout does not explain) either a record or a rejection with a given reason.
Nothing may hang, crash, or drop an input silently: inputs = records + rejects.
``bad_records`` gives malformed manifest lines; ``held_lock`` a process holding an
output lock, as a concurrent voxbox run would.
"""

from __future__ import annotations

import contextlib

import json
import os
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import numpy as np
import soundfile as sf

SR = 16000
DEEP = 1100  # folder levels: deeper than Python's recursion limit


def speech_like(seconds: float = 1.2, sr: int = SR, f0: float = 140.0, seed: int = 0,
                level: float = 0.5) -> np.ndarray:
    """A voiced, syllable-like signal (harmonics of a gliding f0, 4 Hz envelope) in
    [-level, level]: pitch trackers and the RMS trimmer treat it as speech."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f = f0 * (1 + 0.08 * np.sin(2 * np.pi * 1.3 * t))
    phase = 2 * np.pi * np.cumsum(f) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 8))
    env = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t) ** 2
    x = x * env + 0.003 * rng.standard_normal(len(t))
    return level * x / np.max(np.abs(x))


def write_float_wav(path: Path, x: np.ndarray, sr: int, bits: int = 32) -> None:
    """A WAVE_FORMAT_IEEE_FLOAT file as scipy.io.wavfile writes it from a float array."""
    data = np.asarray(x, dtype="<f4" if bits == 32 else "<f8")
    channels = 1 if data.ndim == 1 else data.shape[1]
    raw = data.tobytes()
    fmt = struct.pack("<HHIIHH", 3, channels, sr, sr * channels * bits // 8, channels * bits // 8, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(raw)) + raw
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)


@dataclass
class Corpus:
    root: Path
    records: Set[str] = field(default_factory=set)             # paths prepare must turn into records
    rejects: Dict[str, str] = field(default_factory=dict)      # path -> the reason prepare must give
    notes: Dict[str, str] = field(default_factory=dict)        # path -> what the file is, for messages

    @property
    def inputs(self) -> Set[str]:
        return self.records | set(self.rejects)

    def clip(self, rel: str, text: Optional[str] = "hello world", **kw) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if text is not None:
            p.with_suffix(".txt").write_text(text, encoding="utf-8")
        return p


def _good(c: Corpus) -> None:
    for i, (name, subtype) in enumerate([("good16.wav", "PCM_16"), ("good24.wav", "PCM_24"),
                                         ("spk2/good_b.flac", "PCM_16")]):
        sf.write(c.clip(name, f"good clip number {i}"), speech_like(seed=i, f0=120 + 40 * i), SR, subtype=subtype)
        c.records.add(name)


def _odd_audio(c: Corpus) -> None:
    """Sample formats FLAC cannot hold as they are, and headers nothing can store."""
    x = speech_like(seed=7, f0=180)
    write_float_wav(c.clip("float32.wav"), x, SR, 32)
    write_float_wav(c.clip("float64.wav"), x, SR, 64)
    write_float_wav(c.clip("float_hot.wav"), 3.2 * x, SR, 32)          # peak 1.6: beyond full scale
    sf.write(c.clip("pcm32.wav"), (x * (2**31 - 1)).astype(np.int32), SR, subtype="PCM_32")
    c.records |= {"float32.wav", "float64.wav", "float_hot.wav", "pcm32.wav"}
    sf.write(c.clip("ch10.wav"), np.tile(x[:, None], (1, 10)) * 0.3, SR, subtype="PCM_16")
    c.rejects["ch10.wav"] = "too_many_channels"
    sf.write(c.clip("sr720k.wav"), speech_like(0.2, 720_000), 720_000, subtype="PCM_16")
    c.rejects["sr720k.wav"] = "unsupported_sample_rate"
    c.clip("empty.wav").write_bytes(b"")
    c.rejects["empty.wav"] = "empty_file"
    sf.write(c.clip("trunc.wav"), x, SR, subtype="PCM_16")
    with open(c.root / "trunc.wav", "r+b") as fh:
        fh.truncate(4000)
    c.rejects["trunc.wav"] = "truncated_audio"


def _special_files(c: Corpus) -> None:
    """FIFOs, devices, sockets and links where files should be."""
    os.mkfifo(c.clip("fifo.wav"))
    c.rejects["fifo.wav"] = "not_a_regular_file"
    sf.write(c.clip("fifotext.wav", None), speech_like(seed=3), SR, subtype="PCM_16")
    os.mkfifo(c.root / "fifotext.txt")
    c.rejects["fifotext.wav"] = "not_a_regular_file"
    sf.write(c.clip("zerotext.wav", None), speech_like(seed=4), SR, subtype="PCM_16")
    (c.root / "zerotext.txt").symlink_to("/dev/zero")
    c.rejects["zerotext.wav"] = "not_a_regular_file"
    c.clip("devzero.wav").symlink_to("/dev/zero")
    c.rejects["devzero.wav"] = "not_a_regular_file"
    c.clip("selflink.wav").symlink_to("selflink.wav")
    c.rejects["selflink.wav"] = "symlink_loop"
    c.clip("dangling.wav").symlink_to("nowhere.wav")
    c.rejects["dangling.wav"] = "missing_audio"
    (c.root / "loopdir").symlink_to("loopdir")
    c.rejects["loopdir"] = "symlink_loop"
    (c.root / "rootlink").symlink_to("/")
    c.rejects["rootlink"] = "link_to_ancestor"
    (c.root / "sub").mkdir()
    (c.root / "sub" / "up").symlink_to("..")
    c.rejects["sub/up"] = "link_to_ancestor"
    sock = c.root / "sock.wav"
    c.clip("sock.wav")
    s = socket.socket(socket.AF_UNIX)
    try:
        cwd = os.getcwd()
        os.chdir(c.root)  # AF_UNIX paths are limited to ~108 bytes
        try:
            s.bind("sock.wav")
        finally:
            os.chdir(cwd)
        c.rejects["sock.wav"] = "not_a_regular_file"
    except OSError:
        sock.with_suffix(".txt").unlink()
    finally:
        s.close()


def _odd_text(c: Corpus) -> None:
    sf.write(c.clip("bigtext.wav", None), speech_like(seed=5), SR, subtype="PCM_16")
    (c.root / "bigtext.txt").write_text("word " * 60_000, encoding="utf-8")   # 300 KB of transcript
    c.rejects["bigtext.wav"] = "text_too_long"
    sf.write(c.clip("notutf8.wav", None), speech_like(seed=6), SR, subtype="PCM_16")
    (c.root / "notutf8.txt").write_bytes(b"caf\xe9 \xff")
    c.rejects["notutf8.wav"] = "text_not_utf8"
    sf.write(c.clip("notext.wav", None), speech_like(seed=8), SR, subtype="PCM_16")
    c.rejects["notext.wav"] = "missing_transcript"
    (c.root / "README").write_text("not audio")
    c.rejects["README"] = "unexplained_file"
    (c.root / "orphan.txt").write_text("a transcript without audio")
    c.rejects["orphan.txt"] = "unexplained_file"


def _deep(c: Corpus, levels: int) -> None:
    """A clip ``levels`` folders down (no recursion may be needed to find it)."""
    fd = os.open(c.root, os.O_RDONLY)
    try:
        for _ in range(levels):  # os.makedirs itself recurses once per level
            os.mkdir("d", dir_fd=fd)
            inner = os.open("d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = inner
    finally:
        os.close(fd)
    name = "/".join(["d"] * levels + ["deep.wav"])
    with open(c.clip(name, "deep down"), "wb") as fh:  # libsndfile refuses paths over 1 KiB itself
        sf.write(fh, speech_like(seed=9), SR, format="WAV", subtype="PCM_16")
    c.records.add(name)


def make_corpus(root: Path, deep: int = DEEP) -> Corpus:
    """The adversarial folder corpus (see the module docstring)."""
    root.mkdir(parents=True, exist_ok=True)
    c = Corpus(root)
    _good(c)
    _odd_audio(c)
    _special_files(c)
    _odd_text(c)
    if deep:
        _deep(c, deep)
    return c


def long_clip(c: Corpus, seconds: float = 3.0) -> str:
    """A clip longer than a test's duration cap (set VOXBOX_MAX_DURATION_S below ``seconds``)."""
    sf.write(c.clip("long.wav", "a long one"), speech_like(seconds, seed=10), SR, subtype="PCM_16")
    c.rejects["long.wav"] = "too_long"
    return "long.wav"


def make_metadata_corpus(root: Path) -> Tuple[Corpus, Path]:
    """A ``folder`` corpus described by a CSV with one field over the csv module's
    128 KiB default limit; returns the corpus and the CSV path."""
    root.mkdir(parents=True, exist_ok=True)
    c = Corpus(root)
    rows = ["path,text"]
    for i in range(3):
        sf.write(root / f"m{i}.wav", speech_like(seed=20 + i), SR, subtype="PCM_16")
        rows.append(f"m{i}.wav,metadata clip {i}")
        c.records.add(f"m{i}.wav")
    sf.write(root / "huge.wav", speech_like(seed=30), SR, subtype="PCM_16")
    rows.insert(2, 'huge.wav,"' + "x" * 200_000 + '"')
    c.rejects["huge.wav"] = "text_too_long"
    meta = root / "meta.csv"
    meta.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return c, meta


# ---------------------------------------------------------------------------------------
# Malformed manifest records
# ---------------------------------------------------------------------------------------

def bad_records(good: dict) -> List[Tuple[str, str]]:
    """(JSONL line, the field its rejection must name) for records that are broken in one
    field each, made from a good record; plus lines that are no record at all."""
    def with_(**changes) -> str:
        d = dict(good)
        d.update(changes)
        return json.dumps(d)

    idx = good["index"]
    return [
        (with_(index=idx + "a", sample_rate="abc"), "sample_rate"),
        (with_(index=12345), "index"),
        (with_(index=idx + ".b"), "index"),
        (with_(index="x" * 300), "index"),
        (with_(index=idx + "c", num_samples=1e30), "num_samples"),
        (with_(index=idx + "d").replace('"num_samples": ' + json.dumps(good["num_samples"]),
                                          '"num_samples": NaN'), "num_samples"),
        (with_(index=idx + "e", global_tokens=[1, "x"]), "global_tokens"),
        (with_(index=idx + "f", channels="two"), "channels"),
        (with_(index=idx + "0", duration="fast"), "duration"),
        (with_(index=idx + "1", extra="not a dict"), "extra"),
        (with_(index=idx + "2", text="x" * 100_000), "text"),
        (with_(index=idx + "3", source_path=None, wav_path=None), "source_path"),
        ('{"index": "broken json', "line"),
        ("[1, 2, 3]", "line"),
        (json.dumps({"text": "no index"}), "index"),
    ]


def remove_deep(root: Path) -> None:
    """Remove the deep chain of folders made by :func:`make_corpus`: ``shutil.rmtree``
    (pytest's clean-up too) recurses once per level and fails on it."""
    from voxbox.sources.extract import remove_tree

    remove_tree(root / "d")


@contextlib.contextmanager
def held_lock(target: Path):
    """Another process holds the output lock on ``target`` inside the block (killed, not
    released, at its end: what a killed run leaves). Yields its pid."""
    import subprocess
    import sys

    from voxbox_build_fixtures import subprocess_env

    code = ("import sys, time\nfrom voxbox.lock import OutputLock\n"
            "OutputLock(sys.argv[1]).__enter__()\nprint('held', flush=True)\ntime.sleep(120)\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(target)], env=subprocess_env(), stdout=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline().strip() == "held"
        yield p.pid
    finally:
        p.kill()
        p.wait()
        p.stdout.close()


def busy(target: Path, pid: int) -> str:
    """The one-line refusal a run gives while ``pid`` holds ``target``."""
    return f"{target} is being written by another voxbox run (pid {pid})"
