"""The adversarial corpus (tests/adversarial.py) through every command: nothing hangs,
crashes or drops an input, and inputs = records + rejects for prepare, annotate,
tokenize and build. Commands run as subprocesses with a timeout: a FIFO read used to
block forever."""

from __future__ import annotations

import sys
import subprocess
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from adversarial import busy, held_lock, long_clip, make_corpus, make_metadata_corpus, remove_deep, speech_like
from voxbox.manifest import read_manifest, read_rejects, rejects_path
from voxbox_build_fixtures import subprocess_env, voxbox_cmd


def run(*args: str, timeout: float = 300, **env) -> subprocess.CompletedProcess:
    return subprocess.run(voxbox_cmd(*args), env=subprocess_env(**env), capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """The corpus and its prepared manifest (a 2.5 s duration cap makes long.wav too long)."""
    tmp = tmp_path_factory.mktemp("adv")
    c = make_corpus(tmp / "corpus")
    long_clip(c)
    out = tmp / "m.jsonl"
    r = run("prepare", "folder", "--root", str(c.root), "--out", str(out), "-j", "2", VOXBOX_MAX_DURATION_S="2.5")
    yield c, out, r
    remove_deep(c.root)


def test_prepare_gives_every_odd_file_a_record_or_a_reason(prepared):
    c, out, r = prepared
    assert r.returncode == 0, r.stderr
    recs = list(read_manifest(out))
    rejs = list(read_rejects(rejects_path(out)))
    assert {x.source_path for x in recs} == c.records
    assert {x.path: x.reason for x in rejs} == c.rejects
    assert len(recs) + len(rejs) == len(c.inputs)           # inputs = records + rejects
    by_path = {x.path: x.detail for x in rejs}
    assert "FIFO" in by_path["fifo.wav"] and "fifotext.txt: a FIFO" in by_path["fifotext.wav"]
    assert "character device" in by_path["zerotext.wav"]
    assert by_path["rootlink"].startswith("a link to /, a folder that holds the corpus")
    assert "the cap is 2.5 s" in by_path["long.wav"] and "VOXBOX_MAX_DURATION_S" in by_path["long.wav"]
    assert f"{len(recs)} records" in r.stdout and "error" not in r.stderr


def test_csv_field_over_128_kib_is_a_rejection_naming_file_and_line(tmp_path):
    c, meta = make_metadata_corpus(tmp_path / "meta")
    out = tmp_path / "m.jsonl"
    r = run("prepare", "folder", "--root", str(c.root), "-O", "metadata=meta.csv", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert {x.source_path for x in read_manifest(out)} == c.records
    (rej,) = read_rejects(rejects_path(out))
    assert (rej.path, rej.reason) == ("huge.wav", "text_too_long") and rej.detail.startswith("meta.csv:3: ")


def test_a_long_clip_is_refused_from_its_header_before_decoding(tmp_path):
    # A 3-hour clip took 4.8 GB before it was rejected as silent. An hour of 16-bit audio
    # as a sparse file: decoding it would allocate ~460 MB of float64.
    from voxbox.annotate.frontend import AudioError, read_audio
    from voxbox.record import Utterance
    from voxbox.shards.encode import encode_record

    path = tmp_path / "hour.wav"
    with sf.SoundFile(path, "w", 16000, 1, subtype="PCM_16") as f:
        f.write(speech_like(0.5))
    frames = 3600 * 16000
    with open(path, "r+b") as fh:   # grow the data chunk to an hour, sparsely
        fh.seek(40)
        fh.write(int(frames * 2).to_bytes(4, "little"))
        fh.seek(4)
        fh.write(int(36 + frames * 2).to_bytes(4, "little"))
        fh.truncate(44 + frames * 2)
    tracemalloc.start()
    try:
        with pytest.raises(AudioError, match=r"3600\.0 s; the cap is 1800 s") as e:
            read_audio(path)
        rej = encode_record(Utterance(index="t_h", source_path="hour.wav", corpus_root=str(tmp_path)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert e.value.reason == "too_long" and rej.reason == "too_long"
    assert peak < 20 * 2**20


def test_workers_can_read_a_path_longer_than_libsndfile_allows(prepared):
    # libsndfile refuses file names over 1 KiB; the 1,100-folder-deep clip is read through
    # the open file instead.
    from voxbox.annotate.frontend import read_audio

    c, _, _ = prepared
    deep = next(p for p in c.records if p.startswith("d/"))
    audio, sr, _ = read_audio(c.root / deep)
    assert sr == 16000 and np.allclose(audio, speech_like(seed=9), atol=1e-4)


# ------------------------------------------------------------------ a full disk (/dev/full)

@pytest.mark.parametrize("name", ["m.parquet", "m.jsonl", "m.jsonl.gz"])
def test_a_full_disk_is_one_line_naming_the_manifest_and_leaves_no_partial(tmp_path, name):
    # The work file is a link to /dev/full: every write fails with ENOSPC. pyarrow's error
    # used to be an internal "error: OSError: ..." and its writer then printed
    # "Exception ignored ..." at exit.
    c, _ = make_metadata_corpus(tmp_path / "corpus")
    out = tmp_path / "out" / name
    out.parent.mkdir()
    (out.parent / (name + ".partial")).symlink_to("/dev/full")
    r = run("prepare", "folder", "--root", str(c.root), "-O", "metadata=meta.csv", "--out", str(out))
    assert r.returncode == 1
    assert r.stderr.strip() == f"error: {out}: cannot write the manifest (no space left on the device; " \
                               "free some space and rerun)"
    assert not [p.name for p in out.parent.iterdir() if p.name.startswith(name)]   # no manifest, no .partial


def test_a_shard_that_fails_on_a_full_disk_leaves_no_writer_behind(tmp_path):
    out = tmp_path / "out"
    (out / "webdataset").mkdir(parents=True)
    (out / "webdataset" / "x-000000.tar.partial").symlink_to("/dev/full")
    code = (
        "import numpy as np, sys\n"
        "from pathlib import Path\n"
        "from voxbox.errors import VoxboxError\n"
        "from voxbox.record import Utterance\n"
        "from voxbox.shards.encode import EncodedSample\n"
        "from voxbox.shards.writer import ShardCommitter\n"
        f"c = ShardCommitter(Path({str(out)!r}), 'x', 0, ('webdataset', 'parquet'))\n"
        "try:\n"
        "    for i in range(40):\n"
        "        c.add(EncodedSample(Utterance(index=f'x_{i:04d}'), np.random.default_rng(i).bytes(50_000), 'flac'))\n"
        "    c.commit()\n"
        "except VoxboxError as e:\n"
        "    print(e)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0 and "no space left on" in r.stdout
    assert r.stderr == ""                     # not "Exception ignored in: ParquetWriter.__del__"
    assert not list((out / "parquet").iterdir())


# ------------------------------------------------------------ malformed manifest records

def _with_bad_lines(prepared, tmp_path):
    """The prepared manifest plus one malformed record per kind, with its rejects file;
    returns (manifest, number of inputs, {line number: field the reject must name})."""
    import json
    import shutil

    from adversarial import bad_records

    _, m, _ = prepared
    lines = m.read_text(encoding="utf-8").splitlines()
    good = json.loads(lines[0])
    bad = bad_records(good)
    out = tmp_path / "mixed.jsonl"
    out.write_text("\n".join(lines + [line for line, _ in bad]) + "\n", encoding="utf-8")
    shutil.copy(rejects_path(m), rejects_path(out))
    fields = {len(lines) + 1 + i: field for i, (_, field) in enumerate(bad)}
    n_rejects = sum(1 for _ in read_rejects(rejects_path(m)))
    return out, len(lines) + len(bad) + n_rejects, fields


@pytest.mark.slow
def test_build_over_bad_records_rejects_each_naming_line_and_field(prepared, tmp_path):
    import json

    out_dir = tmp_path / "built"
    m, inputs, fields = _with_bad_lines(prepared, tmp_path)
    r = run("build", "--manifest", str(m), "--out", str(out_dir), "--stages", "", "-j", "1")
    assert r.returncode == 0, r.stderr
    index = json.loads((out_dir / "index.json").read_text())
    rejs = list(read_rejects(out_dir / "rejects.jsonl"))
    assert index["totals"]["records"] + index["rejects"]["count"] == inputs
    details = [x.detail for x in rejs if x.stage == "manifest"]
    for line, field in fields.items():
        hit = [d for d in details if d.startswith(f"mixed.jsonl:{line}: ")]
        assert len(hit) == 1, (line, field, details)
        assert field == "line" or f"field '{field}'" in hit[0], hit[0]
    assert run("validate", str(out_dir)).returncode == 0
    from voxbox.dataset.reader import decode_audio, open_dataset

    peaks = {rec.source_path: float(np.max(np.abs(decode_audio(audio)[0])))
             for rec, audio, _ in open_dataset(out_dir).samples()}
    for name in ("float32.wav", "float64.wav", "pcm32.wav"):      # stored as silence before
        assert peaks[name] == pytest.approx(0.5, abs=1e-3), name
    assert peaks["float_hot.wav"] == pytest.approx(1.0, abs=1e-3)   # scaled down from 1.6, gain recorded


# --------------------------------------------------------------- one run per output (lock)

@pytest.mark.slow
def test_a_second_prepare_on_the_same_output_is_refused_and_a_stale_lock_taken_over(tmp_path):
    from voxbox.lock import lock_path

    c, _ = make_metadata_corpus(tmp_path / "corpus")
    out = tmp_path / "m.jsonl"
    args = ("prepare", "folder", "--root", str(c.root), "-O", "metadata=meta.csv", "--out", str(out))
    with held_lock(out) as pid:
        r = run(*args)
    assert r.returncode == 1 and not out.exists()
    assert r.stderr.strip() == f"error: {busy(out, pid)}"
    assert lock_path(out).exists()              # a killed run cannot clean up after itself
    r = run(*args)
    assert r.returncode == 0, r.stderr
    assert f"took over the lock of {out} left by pid {pid}, which is no longer running" in r.stderr
    assert out.exists() and not lock_path(out).exists()


# ------------------------------------- the whole chain: inputs = records + rejects at each step

def _counts(manifest: Path):
    return sum(1 for _ in read_manifest(manifest)), sum(1 for _ in read_rejects(rejects_path(manifest)))


@pytest.mark.slow
def test_inputs_equal_records_plus_rejects_through_annotate_tokenize_and_build(prepared, tmp_path, tiny_bicodec):
    import json

    mixed, inputs, _ = _with_bad_lines(prepared, tmp_path)
    ann, tok, out = tmp_path / "a.jsonl", tmp_path / "t.parquet", tmp_path / "built"
    steps = [("annotate", str(mixed), "--out", str(ann), "-j", "2"),
             ("tokenize", str(ann), "--model-dir", str(tiny_bicodec), "--out", str(tok)),
             ("build", "--manifest", str(tok), "--out", str(out), "--stages", "", "-j", "1")]
    for step in steps:
        r = run(*step, timeout=900)
        assert r.returncode == 0, (step[0], r.stderr)
    for m in (ann, tok):
        records, rejects = _counts(m)
        assert records + rejects == inputs, m
    index = json.loads((out / "index.json").read_text())
    assert index["totals"]["records"] + index["rejects"]["count"] == inputs
    stages = {x.stage for x in read_rejects(out / "rejects.jsonl")}
    assert {"prepare", "manifest"} <= stages                 # carried through every command
    assert run("validate", str(out)).returncode == 0         # levels of the stored audio agree
