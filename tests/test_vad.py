"""VAD segmentation: `voxbox prepare folder --segment vad` (issue 13, capability 5).

A long recording is made at test time from real speech clips of ../shared (16 kHz
LibriSpeech, VCTK and CMU Arctic recordings) with 2 s of silence between them. Silero VAD
(the ONNX model the silero-vad package ships) must find each clip as one segment, the
segments must be deterministic, long speech must be cut below the maximum length, a
silent recording must be a `no_speech` rejection, and a build of the segmented folder
must store exactly the recording's samples of each span.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("onnxruntime")
pytest.importorskip("silero_vad")

from voxbox.record import Rejection, Utterance  # noqa: E402
from voxbox.sources.corpora import get_recipe  # noqa: E402

CLIPS = ("librispeech/1089-134686-0000.flac", "vctk/p225_003.wav", "librispeech/1089-134691-0000.flac",
         "cmu_arctic/cmu_arctic_us_aew_a0001.wav", "librispeech/2412-153948-0000.flac")
GAP_S = 2.0
TOLERANCE_S = 0.5  # padding (0.2 s) + one 32 ms window + the clips' own edge silence


def make_long_recording(shared, dest, clips=CLIPS):
    """Clips joined with GAP_S of silence before, between and after them, as 16-bit WAV;
    returns each clip's (first sample, sample count)."""
    gap = np.zeros(int(GAP_S * 16000), dtype=np.int16)
    pieces, bounds, pos = [gap], [], gap.shape[0]
    for c in clips:
        x, sr = sf.read(str(shared / "data" / "real-speech" / "audio" / c), dtype="int16")
        assert sr == 16000
        bounds.append((pos, x.shape[0]))
        pieces += [x, gap]
        pos += x.shape[0] + gap.shape[0]
    dest.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(dest), np.concatenate(pieces), 16000, subtype="PCM_16")
    return bounds


def _prepare(root, **options):
    recipe = get_recipe("folder", segment="vad", **options)
    out = list(recipe.prepare(root, workers=1))
    return ([r for r in out if isinstance(r, Utterance)], [r for r in out if isinstance(r, Rejection)],
            recipe.skipped)


def test_segments_recover_the_clips(tmp_path, shared):
    bounds = make_long_recording(shared, tmp_path / "rec" / "podcast.wav")
    recs, rejects, skipped = _prepare(tmp_path / "rec", vad_min_silence="1.0")
    assert rejects == [] and skipped == {}
    recs.sort(key=lambda r: r.span_offset)
    assert len(recs) == len(CLIPS)
    for n, (rec, (start, count)) in enumerate(zip(recs, bounds)):
        lo, hi = start / 16000, (start + count) / 16000
        assert rec.source_path == "podcast.wav" and rec.text is None and rec.utt_id == f"podcast_{n:04d}"
        assert abs(rec.span_offset - lo) < TOLERANCE_S, (n, rec.span_offset, lo)
        assert abs(rec.span_offset + rec.span_duration - hi) < TOLERANCE_S, (n, rec.span_duration, hi)
        assert rec.num_samples == round(rec.span_duration * 16000)
        assert rec.extra["vad_segment"] == n and rec.extra["vad_speech_prob"] > 0.8
    # Segments never overlap.
    ends = [r.span_offset + r.span_duration for r in recs]
    assert all(e <= s for e, s in zip(ends, [r.span_offset for r in recs[1:]]))


def test_long_speech_is_cut_at_a_pause_and_short_pieces_counted(tmp_path, shared):
    make_long_recording(shared, tmp_path / "rec" / "a.wav")
    recs, rejects, skipped = _prepare(tmp_path / "rec", vad_max_duration="6", vad_min_duration="1.5",
                                      vad_min_silence="1.0")
    assert rejects == []
    durations = [r.span_duration for r in recs]
    assert len(recs) > len(CLIPS)  # the 10.4 s and 11.7 s clips are cut
    assert max(durations) <= 6.0 + 1e-6 and min(durations) >= 1.5
    assert set(skipped) <= {"short_vad_segment"}
    # The same input and options give the same segments (and the same indices).
    again, _, _ = _prepare(tmp_path / "rec", vad_max_duration="6", vad_min_duration="1.5", vad_min_silence="1.0")
    assert [r.to_dict() for r in again] == [r.to_dict() for r in recs]


def test_cut_points_are_the_least_speech_like_windows():
    from voxbox.sources import vad

    probs = np.full(100, 0.9, dtype=np.float32)
    probs[30], probs[55] = 0.2, 0.1  # the deeper dip wins within the allowed range
    t = vad.Track(probs=probs, energy=np.ones(100, np.float32), samples16=100 * vad.WINDOW)
    assert vad.split_long(0, 100, t, max_w=60, min_w=10) == [(0, 55), (55, 100)]
    # Equal probabilities: the lower energy wins; equal energy too: the earliest.
    probs[30] = 0.1
    t.energy[55] = 0.5
    assert vad.split_long(0, 100, t, max_w=60, min_w=10)[0] == (0, 55)
    t.energy[55] = 1.0
    assert vad.split_long(0, 100, t, max_w=60, min_w=10)[0] == (0, 30)
    assert vad.bridge([(0, 5), (8, 10), (30, 40)], max_gap=3) == [(0, 10), (30, 40)]


def test_silence_and_noise_are_no_speech_rejections(tmp_path, shared):
    root = tmp_path / "rec"
    make_long_recording(shared, root / "speech.wav", CLIPS[:1])
    sf.write(str(root / "silence.wav"), np.zeros(16000 * 3, np.int16), 16000, subtype="PCM_16")
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    recs, rejects, _ = _prepare(root)
    assert {r.source_path for r in recs} == {"speech.wav"}
    by_path = {r.path: r for r in rejects}
    assert by_path["silence.wav"].reason == "no_speech" and "vad_threshold" in by_path["silence.wav"].detail
    assert by_path["broken.wav"].reason == "unreadable_audio"
    # A minimum longer than any clip: speech was found but nothing is kept; said so.
    _, rejects, _ = _prepare(root, vad_min_duration="15", vad_max_duration="20")
    why = {r.path: r.detail for r in rejects}["speech.wav"]
    assert "shorter than vad_min_duration 15 s" in why


def test_the_track_does_not_depend_on_how_the_audio_is_cut(shared):
    """Blocks of any size give the same probabilities as one block (state and context
    carry over), so a long recording is read in flat memory."""
    from voxbox.sources import vad

    x, _ = sf.read(str(shared / "data" / "real-speech" / "audio" / CLIPS[0]), dtype="float32")
    model = vad.SileroVad()
    whole = model.track([x])
    cut = model.track([x[i:i + 7001] for i in range(0, len(x), 7001)])
    assert whole.samples16 == cut.samples16 == len(x) and len(whole.probs) == -(-len(x) // vad.WINDOW)
    assert np.array_equal(whole.probs, cut.probs) and np.array_equal(whole.energy, cut.energy)


def test_bad_options_are_one_line_errors(tmp_path, shared):
    from voxbox.errors import VoxboxError

    make_long_recording(shared, tmp_path / "rec" / "a.wav", CLIPS[:1])
    for opts, words in (({"vad_threshold": "loud"}, "vad_threshold must be a number"),
                        ({"vad_threshold": "1.5"}, "between 0 and 1"),
                        ({"vad_min_duration": "30"}, "above vad_max_duration"),
                        ({"segment": "energy"}, "segment must be vad")):
        recipe = get_recipe("folder", **{"segment": "vad", **opts})
        with pytest.raises(VoxboxError, match=words):
            list(recipe.prepare(tmp_path / "rec", workers=1))


def _run(*args, cwd):
    env = {**os.environ, "PYTHONPATH": os.getcwd(), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "voxbox", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


def test_cli_prepare_and_build_store_the_span_samples(tmp_path, shared):
    """`voxbox prepare folder --segment vad`, then `voxbox build` of the same folder: each
    stored clip is exactly the recording's samples of its span (lossless FLAC)."""
    from voxbox.dataset import open_dataset
    from voxbox.dataset.reader import decode_audio

    root = tmp_path / "rec"
    make_long_recording(shared, root / "talk.wav", CLIPS[:3])
    source, _ = sf.read(str(root / "talk.wav"), dtype="int16")
    p = _run("prepare", "folder", "--root", str(root), "-o", str(tmp_path / "m.jsonl"), "--segment", "vad",
             "-O", "vad_min_silence=1", "--json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["records"] == 3
    b = _run("build", "--corpus", "folder", "--root", str(root), "-O", "segment=vad", "-O", "vad_min_silence=1",
             "--stages", "", "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert b.returncode == 0, b.stderr
    ds = open_dataset(tmp_path / "out")
    for fmt in ("webdataset", "parquet"):
        samples = list(ds.samples(fmt))
        assert len(samples) == 3
        for rec, data, ext in samples:
            start, count = round(rec.span_offset * 16000), round(rec.span_duration * 16000)
            audio, sr = decode_audio(data, dtype="int16")
            assert ext == "flac" and sr == 16000 and rec.source_path == "talk.wav"
            assert np.array_equal(audio[:, 0], source[start:start + count])


def test_metadata_rows_give_their_labels_to_every_segment(tmp_path, shared):
    """-O metadata=FILE with --segment vad: each row's speaker and language go to all of its
    recording's segments; its transcript (of the whole recording) is not used."""
    root = tmp_path / "rec"
    make_long_recording(shared, root / "a" / "one.wav", CLIPS[:2])
    make_long_recording(shared, root / "b" / "two.wav", CLIPS[2:3])
    (root / "meta.csv").write_text("path,text,spk\na/one.wav,the whole talk,alice\nb/two.wav,,bob\n")
    recs, rejects, _ = _prepare(root, metadata="meta.csv", speaker_column="spk", language="en",
                                vad_min_silence="1")
    assert rejects == []
    got = sorted((r.source_path, r.speaker, r.language, r.text) for r in recs)
    assert got == [("a/one.wav", "alice", "en", None)] * 2 + [("b/two.wav", "bob", "en", None)]


def test_a_remote_root_gives_the_same_segments(tmp_path, shared):
    """--root memory://... (any fsspec URL, read in place): the same records as the local copy."""
    import fsspec

    from voxbox import storage

    make_long_recording(shared, tmp_path / "rec" / "talk.wav", CLIPS[:2])
    fs = fsspec.filesystem("memory")
    fs.pipe("/vad-test/talk.wav", (tmp_path / "rec" / "talk.wav").read_bytes())
    storage.forget()
    try:
        local, _, _ = _prepare(tmp_path / "rec", vad_min_silence="1")
        remote, rejects, _ = _prepare("memory://vad-test", vad_min_silence="1")
    finally:
        fs.rm("/vad-test", recursive=True)
        storage.forget()
    assert rejects == [] and len(local) == 2
    strip = (lambda r: {k: v for k, v in r.to_dict().items() if k != "corpus_root"})
    assert [strip(r) for r in remote] == [strip(r) for r in local]
