"""Segments: records that are spans of a longer recording (issue 13, capability 1).

A long recording is made at test time by concatenating shared 16 kHz clips (lossless
FLAC and WAV); span records cut from it must give back each clip's samples exactly in
every reader: prepare's header check, the annotate front end, the tokenize stage's
input, and both shard writers (read back with the real libraries).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from corpus_fixtures import Clips, write
from voxbox import media
from voxbox.record import Rejection, Utterance
from voxbox.sources.corpora import get_recipe
from voxbox.sources.corpora.gigaspeech import clean_text

N_CLIPS = 3


def _long_recording(shared, dest, fmt):
    """Concatenate clips into one file; return the clips' int16 samples and their spans."""
    clips = Clips(shared)
    parts = [sf.read(str(clips.path(i)), dtype="int16")[0] for i in range(N_CLIPS)]
    gap = np.zeros(1234, dtype=np.int16)  # an odd gap: spans do not start on round numbers
    pieces, spans, pos = [], [], 0
    for p in parts:
        pieces += [gap, p]
        pos += gap.shape[0]
        spans.append((pos, p.shape[0]))
        pos += p.shape[0]
    dest.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(dest), np.concatenate(pieces), 16000, format=fmt, subtype="PCM_16")
    return parts, spans, [clips.text(i) for i in range(N_CLIPS)], pos


def _gigaspeech(tmp_path, shared, fmt="FLAC", ext="flac"):
    root = tmp_path / "GigaSpeech"
    rel = f"audio/podcast/P0000/POD0000000001.{ext}"
    parts, spans, texts, total = _long_recording(shared, root / rel, fmt)
    segs = [{"sid": f"POD0000000001_S{i:07d}", "begin_time": s / 16000, "end_time": (s + n) / 16000,
             "text_tn": texts[i].upper().rstrip(".") + " <PERIOD>", "subsets": ["{XL}", "{L}"] if i else ["{XL}"]}
            for i, (s, n) in enumerate(spans)]
    segs.append({"sid": "POD0000000001_S9000001", "begin_time": 0.0, "end_time": 0.05, "text_tn": "<SIL>",
                 "subsets": ["{XL}"]})
    segs.append({"sid": "POD0000000001_S9000002", "begin_time": total / 16000 - 0.5,
                 "end_time": total / 16000 + 1.0, "text_tn": "PAST THE END", "subsets": ["{XL}"]})
    meta = {"audios": [{"aid": "POD0000000001", "path": rel, "duration": total / 16000, "source": "podcast",
                        "format": ext, "sample_rate": 16000, "segments": segs}]}
    write(root / "GigaSpeech.json", json.dumps(meta))
    return tmp_path, parts


def _prepare(name, root, subsets=None):
    recipe = get_recipe(name)
    out = list(recipe.prepare(root, subsets, workers=1))
    return ([r for r in out if isinstance(r, Utterance)], [r for r in out if isinstance(r, Rejection)],
            recipe.skipped)


@pytest.mark.parametrize("fmt,ext", [("FLAC", "flac"), ("WAV", "wav")])
def test_gigaspeech_spans_equal_the_clips(tmp_path, shared, fmt, ext):
    root, parts = _gigaspeech(tmp_path, shared, fmt, ext)
    recs, rejects, skipped = _prepare("gigaspeech", root)
    assert skipped == {"non_speech_segment": 1}
    assert [r.reason for r in rejects] == ["span_out_of_range"]
    assert rejects[0].path.endswith("#POD0000000001_S9000002") and "outside the recording" in rejects[0].detail
    recs.sort(key=lambda r: r.extra["gigaspeech_sid"])
    assert len(recs) == N_CLIPS and len({r.index for r in recs}) == N_CLIPS
    for rec, clip in zip(recs, parts):
        assert rec.source_path == f"GigaSpeech/audio/podcast/P0000/POD0000000001.{ext}"
        assert rec.num_samples == clip.shape[0] and rec.sample_rate == 16000
        assert rec.text.endswith(".") and "<" not in rec.text
        data, sr, _ = media.read_frames(rec, dtype="int16")
        assert sr == 16000 and np.array_equal(data[:, 0], clip)


def test_spans_through_front_end_tokenize_input_and_writers(tmp_path, shared):
    from voxbox.annotate.frontend import front_end
    from voxbox.dataset import open_dataset
    from voxbox.dataset.reader import decode_audio
    from voxbox.shards import write_dataset
    from voxbox.tokenize.stage import _audio_item

    root, parts = _gigaspeech(tmp_path, shared)
    recs, _, _ = _prepare("gigaspeech", root)
    clips = Clips(shared)
    by_sid = {r.extra["gigaspeech_sid"]: r for r in recs}
    for i, sid in enumerate(sorted(by_sid)):
        rec = by_sid[sid]
        fe, ref = front_end(rec), front_end(clips.path(i))
        assert np.array_equal(fe.audio, ref.audio) and (fe.start, fe.end) == (ref.start, ref.end)
        samples, sr = _audio_item(rec)
        assert sr == 16000 and np.array_equal(samples, sf.read(str(clips.path(i)), dtype="float64")[0])

    out = tmp_path / "built"
    write_dataset(recs, out, name="giga")
    ds = open_dataset(out)
    for fmt in ("webdataset", "parquet"):
        got = {rec.extra["gigaspeech_sid"]: (rec, data, ext) for rec, data, ext in ds.samples(fmt)}
        assert len(got) == N_CLIPS
        for i, sid in enumerate(sorted(got)):
            rec, data, ext = got[sid]
            samples, sr = decode_audio(data, dtype="int16")
            assert ext == "flac" and sr == 16000 and np.array_equal(samples[:, 0], parts[i])
            # Provenance: the source recording and the span.
            assert rec.source_path.endswith("POD0000000001.flac")
            assert rec.span_offset == pytest.approx(by_sid[sid].span_offset)
            assert rec.span_duration == pytest.approx(parts[i].shape[0] / 16000)


def test_gigaspeech_subsets_and_tags(tmp_path, shared):
    root, _ = _gigaspeech(tmp_path, shared)
    recs, rejects, skipped = _prepare("gigaspeech", root, ["L"])
    assert len(recs) == N_CLIPS - 1 and not rejects and not skipped
    assert clean_text("HELLO <COMMA> WORLD <QUESTIONMARK> YES <EXCLAMATIONPOINT>") == "HELLO, WORLD? YES!"
    assert clean_text("<NOISE> <MUSIC>") is None
    assert clean_text("OK <OTHER> THEN <PERIOD>") == "OK THEN."


def test_gigaspeech_missing_recording_rejects_each_segment(tmp_path, shared):
    root, _ = _gigaspeech(tmp_path, shared)
    (root / "GigaSpeech/audio/podcast/P0000/POD0000000001.flac").unlink()
    recs, rejects, _ = _prepare("gigaspeech", root)
    assert not recs
    assert sorted(r.reason for r in rejects) == ["missing_audio"] * (N_CLIPS + 1)
    assert len({r.index for r in rejects}) == N_CLIPS + 1  # one rejection per segment, each its own index


def test_span_read_past_the_end_is_a_rejection_in_every_stage(tmp_path, shared):
    from voxbox.annotate.stage import AnnotateStage
    from voxbox.shards.encode import encode_record

    root, _ = _gigaspeech(tmp_path, shared)
    rec = _prepare("gigaspeech", root)[0][0]
    bad = rec.replace(span_offset=1000.0)
    assert encode_record(bad).reason == "span_out_of_range"
    res = AnnotateStage().process(bad)
    assert isinstance(res, Rejection) and res.reason == "span_out_of_range"


def test_hq_conversations_best_effort_layout(tmp_path, shared):
    root = tmp_path / "hq"
    parts, spans, texts, _ = _long_recording(shared, root / "WAV" / "conv001.wav", "WAV")
    lines = [f"[{s / 16000},{(s + n) / 16000}]\tG0001\t{'女' if i % 2 else '男'},普通话\t{texts[i]} [+]"
             for i, (s, n) in enumerate(spans)]
    lines.append("[0.0,0.05]\tG0001\t男,普通话\t[LAUGHTER]")
    write(root / "TXT" / "conv001.txt", "\n".join(lines) + "\n")
    write(root / "SPKINFO.txt", "CHANNEL\tSPEAKER_ID\tGENDER\tAGE\nC0\tG0001\tM\tadult\n")
    parts_orphan = root / "WAV" / "conv002.wav"
    Clips(shared).put(parts_orphan, 0)
    recs, rejects, skipped = _prepare("hq_conversations", root)
    assert skipped == {"non_speech_segment": 1}
    assert [(r.reason, r.path) for r in rejects] == [("missing_transcript", "WAV/conv002.wav")]
    recs.sort(key=lambda r: r.span_offset)
    assert [r.gender for r in recs] == ["male", "female", "male"]
    assert all("[" not in r.text for r in recs)
    for rec, clip in zip(recs, parts):
        data, _, _ = media.read_frames(rec, dtype="int16")
        assert np.array_equal(data[:, 0], clip)
