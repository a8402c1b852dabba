"""The annotate stage and `voxbox annotate`: bad input, workers, formats, backends."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest
import soundfile as sf

from voxbox.annotate.runner import annotate_records
from voxbox.annotate.stage import AnnotateStage
from voxbox.annotate.frontend import front_end
from voxbox.cli import main
from voxbox.errors import VoxboxError
from voxbox.record import Rejection, Utterance
from voxbox.manifest import read_manifest, read_rejects, rejects_path, write_manifest

SR = 16000


def voiced(f0=150.0, seconds=1.2, sr=SR, amp=0.2):
    t = np.arange(int(seconds * sr)) / sr
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 2 * t))) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 10)) * amp
    return np.concatenate([np.zeros(sr // 2), x, np.zeros(sr // 2)])


def rec(name, text="hello world", **kw):
    return Utterance(index=name, text=text, source_path=f"{name}.wav", **kw)


@pytest.fixture()
def clips(tmp_path):
    sf.write(tmp_path / "ok.wav", voiced(), SR)
    sf.write(tmp_path / "silent.wav", np.zeros(SR), SR)
    sf.write(tmp_path / "short.wav", voiced(seconds=0.01)[SR // 2 - 500: SR // 2 + 500], SR)
    nan = voiced()
    nan[SR] = np.inf
    sf.write(tmp_path / "nan.wav", nan, SR, subtype="FLOAT")
    (tmp_path / "garbage.wav").write_bytes(b"\x00" * 100)
    hiss = 0.3 * np.sin(2 * np.pi * 5000 * np.arange(2 * SR) / SR)  # nothing in DIO's 71-800 Hz
    sf.write(tmp_path / "hiss.wav", hiss, SR)
    return tmp_path


def test_bad_input_is_rejected_or_nulled_never_a_crash(clips):
    stage = AnnotateStage()
    root = str(clips)
    cases = {"silent": "silent_audio", "short": "audio_too_short", "nan": "non_finite_samples",
             "garbage": "unreadable_audio", "missing": "missing_audio"}
    for name, reason in cases.items():
        out = stage.safe_process_batch([rec(name, corpus_root=root)])[0]
        assert isinstance(out, Rejection) and out.reason == reason and out.stage == "annotate", name
    out = stage.process(Utterance(index="nopath", text="x"))
    assert isinstance(out, Rejection) and out.reason == "no_audio_path"
    # Empty and unpronounceable text: audio fields are filled, syllables/speed null with a reason.
    for text, reason in (("", "empty_text"), ("가자.", "no_pronounceable_text")):
        out = stage.process(rec("ok", text=text, corpus_root=root))
        assert out.pitch > 0 and out.duration == 2.2
        assert out.syllable_num is None and out.speed is None and out.speed_level is None
        assert out.null_reasons["syllable_num"] == reason and out.null_reasons["speed"] == reason
    # No voiced frame: VoxBox's pitch 0 and pitch_std 0, null levels and tokens with the reason;
    # the built-in classifier has nothing to go on, so gender is null too.
    out = stage.process(rec("hiss", corpus_root=root))
    assert out.pitch == 0 and out.pitch_std == 0
    assert out.pitch_level is None and out.pitch_value is None
    assert out.null_reasons["pitch_level"] == "no_voiced_frames"
    assert out.gender is None and out.null_reasons["gender"] == "no_voiced_frames"
    assert out.speed is not None


@pytest.mark.slow
def test_fields_rounding_and_provenance(clips):
    out = AnnotateStage().process(rec("ok", text="你好世界", corpus_root=str(clips), gender="female",
                                      gender_source="native"))
    assert out.language == "zh" and out.syllable_num == 4 and out.syllables == "你 好 世 界"
    assert out.pitch == round(out.pitch, 3) and abs(out.pitch - 150) < 10
    assert out.speed == round(4 / out.speech_duration, 1)
    assert out.duration == 2.2 and out.speech_duration == round(out.speech_duration, 3)
    assert out.pitch_backend == "world" and out.sample_rate == SR and out.channels == 1
    assert out.pitch_level in ("very_low", "low") and out.speed_value == int(4 / out.speech_duration)
    assert -40 < out.loudness < -5 and out.clipping_ratio == 0.0
    # A language set by the recipe is kept.
    kept = AnnotateStage().process(rec("ok", text="hello", corpus_root=str(clips), language="fr"))
    assert kept.language == "fr" and kept.null_reasons.get("speed_level") == "no_boundaries_for_group"


@pytest.mark.slow
def test_praat_backend_is_recorded(clips):
    world = AnnotateStage().process(rec("ok", corpus_root=str(clips)))
    praat = AnnotateStage(pitch_backend="praat").process(rec("ok", corpus_root=str(clips)))
    assert praat.pitch_backend == "praat" and world.pitch_backend == "world"
    assert abs(praat.pitch - world.pitch) < 10
    with pytest.raises(VoxboxError, match="unknown pitch backend"):
        AnnotateStage(pitch_backend="crepe")


def test_stage_pickles_as_parameters():
    import pickle

    st = AnnotateStage(gender_model="none", zh_numbers="cardinal")
    st2 = pickle.loads(pickle.dumps(st))
    assert st2.params == st.params and st2.params["gender_model"] is None


@pytest.mark.slow
def test_english_speed_is_plausible_for_read_speech(shared):
    from voxbox.annotate.syllables import Syllabifier

    syl = Syllabifier()
    root = shared / "data" / "real-speech"
    speeds = []
    for line in (root / "manifest.jsonl").read_text().splitlines():
        r = json.loads(line)
        fe = front_end(root / r["path"])
        n = syl(r["text"]).syllable_num
        speeds.append(n / round(fe.speech_duration, 3))
    assert len(speeds) == 74
    # Read English: ~3-6 syllables/s; nothing absurd.
    assert all(1.5 < s < 8 for s in speeds), sorted(speeds)
    assert 3.5 < statistics.median(speeds) < 5.5


@pytest.mark.slow
def test_cli_two_workers_stream_in_order_and_match_one_worker(tmp_path, shared):
    root = shared / "data" / "real-speech"
    rows = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()][::7]
    recs = [Utterance(index=f"u{i:02d}", text=r["text"], source_path=r["path"], corpus_root=str(root))
            for i, r in enumerate(rows)]
    recs.insert(3, Utterance(index="bad", text="x", source_path="missing.wav", corpus_root=str(root)))
    src = tmp_path / "in.jsonl"
    write_manifest(src, recs)
    out = tmp_path / "out.parquet"
    assert main(["annotate", str(src), "--out", str(out), "--workers", "2"]) == 0
    got = list(read_manifest(out))
    assert [r.index for r in got] == [r.index for r in recs if r.index != "bad"]
    rejects = list(read_rejects(rejects_path(out)))
    assert [(r.index, r.reason) for r in rejects] == [("bad", "missing_audio")]
    one = [r for r in annotate_records(recs[:4], workers=1) if not isinstance(r, Rejection)]
    for a, b in zip(one, got):
        assert a.to_dict() == b.to_dict()
    assert all(r.gender_source == "predicted" and r.speed for r in got)


def test_cli_errors_are_one_line(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    write_manifest(src, [rec("a")])
    assert main(["annotate", str(src), "--out", str(tmp_path / "o.jsonl"), "--boundaries",
                 str(tmp_path / "nope.json")]) == 1
    assert "boundaries file not found" in capsys.readouterr().err
    assert main(["annotate", str(src), "--out", str(src)]) == 1
    capsys.readouterr()
    # A path that does not exist is named as such, not checked as a Hub repo id.
    assert main(["annotate", str(src), "--out", str(tmp_path / "o.jsonl"), "--gender-model",
                 str(tmp_path / "mine.json")]) == 1
    err = capsys.readouterr().err
    assert "no such file or folder" in err and "voxbox train-gender" in err and "Repo id" not in err
    assert main(["annotate", str(src), "--out", str(tmp_path / "o.jsonl"), "--zh-numbers", "roman"]) == 1
    assert "error: unknown Chinese number style 'roman' (choose from" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()


def test_loudness_is_bs1770_integrated_loudness():
    from voxbox.annotate.loudness import _biquad_highpass, _biquad_shelf, _HIGHPASS, _SHELF, integrated_lufs

    # At 48 kHz the K-weighting filters are the coefficients printed in BS.1770-4.
    b, a = _biquad_shelf(48000, **_SHELF)
    assert np.allclose(b, [1.53512485958697, -2.69169618940638, 1.19839281085285])
    assert np.allclose(a, [1.0, -1.69065929318241, 0.73248077421585])
    assert np.allclose(_biquad_highpass(48000, **_HIGHPASS)[1], [1.0, -1.99004745483398, 0.99007225036621])
    # A 997 Hz sine of peak A reads -3.01 + 20 log10(A) LUFS.
    for sr in (48000, 16000):
        t = np.arange(3 * sr) / sr
        assert integrated_lufs(0.1 * np.sin(2 * np.pi * 997 * t), sr) == pytest.approx(-23.01, abs=0.05)
    # Gating: doubling the clip with silence lowers plain RMS by 3 dB but the gated
    # loudness by well under 0.5 dB (only blocks straddling the edge count).
    sr = 16000
    t = np.arange(2 * sr) / sr
    x = 0.1 * np.sin(2 * np.pi * 997 * t)
    padded = np.concatenate([x, np.zeros(2 * sr)])
    assert 0 < integrated_lufs(x, sr) - integrated_lufs(padded, sr) < 0.5
    assert integrated_lufs(1e-4 * x, sr) == -100.0


@pytest.mark.slow
def test_worker_setup_errors_reach_the_parent(tmp_path):
    src = tmp_path / "in.jsonl"
    write_manifest(src, [rec(f"a{i}") for i in range(3)])
    # The model folder does not exist: each worker fails to load it; the run must stop
    # with that error, not hang while the pool respawns workers.
    with pytest.raises(VoxboxError, match="cannot load emotion model"):
        list(annotate_records([rec("a")], workers=2, emotion_model=str(tmp_path / "no-model")))
    with pytest.raises(VoxboxError, match="not VoxBox labels"):
        AnnotateStage(emotion_labels="x=JOYFUL")


def test_a_release_line_without_source_path_says_what_to_set():
    # A VoxBox release JSONL fed as is: every line was rejected with a bare "no source_path".
    out = AnnotateStage(gender_model="none").process(
        Utterance(index="m3ed_1", text="阿伊。", wav_path="m3ed/m3ed_1.wav"))
    assert isinstance(out, Rejection) and out.reason == "no_audio_path"
    assert "wav_path 'm3ed/m3ed_1.wav'" in out.detail and "corpus_root" in out.detail


def test_all_records_rejected_is_an_error_with_the_reasons_kept(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    write_manifest(src, [Utterance(index=f"m{i}", text="x", source_path=f"missing{i}.wav",
                                   corpus_root=str(tmp_path)) for i in range(3)])
    out = tmp_path / "out.jsonl"
    assert main(["annotate", str(src), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "every record was rejected" in err[0] and "3 annotate: missing_audio" in err[0]
    assert not out.exists() and not out.with_name(out.name + ".partial").exists()
    assert [r.reason for r in read_rejects(rejects_path(out))] == ["missing_audio"] * 3
