"""`voxbox synth codec` (BiCodec round trip of a built dataset) and `voxbox synth control`."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from voxbox.errors import VoxboxError
from voxbox.record import Utterance
from voxbox.shards import write_dataset
from voxbox.sparktts.synth import (annotate_wav, codec_check, confusion, control_check, cosine, f0_errors, flag_outliers,
                          log_mel_distance, robust_z, sample_indices)

sys.path.insert(0, str(Path(__file__).parent))
from tiny_sparktts import build_tiny_sparktts  # noqa: E402

torch.set_num_threads(1)

CLIPS = [  # short real clips: (path under real-speech/audio, text)
    ("cmu_arctic/cmu_arctic_us_axb_a0005.wav", "Will we ever forget it."),
    ("ljspeech/LJ001-0008.wav", "has never been surpassed."),
    ("librispeech/1089-134691-0000.flac", "HE COULD WAIT NO LONGER"),
    ("cmu_arctic/cmu_arctic_us_axb_a0004.wav", "Lord, but I'm glad to see you again, Phil."),
    ("ljspeech/LJ001-0002.wav", "in being comparatively modern."),
]


@pytest.fixture(scope="module")
def codec(tiny_bicodec):
    from spark_tokenize import BiCodecTokenizer

    return BiCodecTokenizer(tiny_bicodec)


@pytest.fixture(scope="module")
def built(tmp_path_factory, shared, codec):
    """A built dataset: 5 clips with their own tokens, one whose tokens belong to another
    clip (a wrong/corrupt token set), one without tokens."""
    root = shared / "data" / "real-speech" / "audio"
    recs = []
    tokens = []
    for k, (rel, text) in enumerate(CLIPS):
        g, s = codec.tokenize(str(root / rel))
        tokens.append((g.reshape(-1).tolist(), s.reshape(-1).tolist()))
        recs.append(Utterance(index=f"rs_{k}", corpus="rs", source_path=rel, corpus_root=str(root), text=text,
                              global_tokens=tokens[-1][0], semantic_tokens=tokens[-1][1]))
    wrong_g, wrong_s = tokens[2]
    recs.append(Utterance(index="rs_5_wrong", corpus="rs", source_path=CLIPS[3][0], corpus_root=str(root),
                          text=CLIPS[3][1], global_tokens=wrong_g, semantic_tokens=wrong_s))
    recs.append(Utterance(index="rs_6_none", corpus="rs", source_path=CLIPS[0][0], corpus_root=str(root),
                          text=CLIPS[0][1]))
    out = tmp_path_factory.mktemp("built")
    write_dataset(recs, out, name="rs", formats=("webdataset",))
    return out


def test_metric_functions():
    sr = 16000
    t = np.arange(sr) / sr
    a = 0.5 * np.sin(2 * np.pi * 200 * t)
    b = 0.5 * np.sin(2 * np.pi * 220 * t)
    noise = np.random.default_rng(0).normal(0, 0.1, sr)
    assert log_mel_distance(noise, noise) == 0.0
    # the mel is a linear magnitude: half the amplitude is ln 2 lower in every bin
    assert log_mel_distance(noise, 0.5 * noise) == pytest.approx(np.log(2), abs=1e-4)
    assert log_mel_distance(a, b) > 0.1
    e = f0_errors(a, b)
    # 1200 log2(220/200) = 165 cents
    assert e["f0_rmse_cents"] == pytest.approx(165.0, abs=5.0)
    assert e["vuv_error"] < 0.1 and e["f0_mean_orig"] == pytest.approx(200, abs=3)
    assert cosine([1, 0], [1, 0]) == pytest.approx(1.0) and cosine([1, 0], [0, 2]) == pytest.approx(0.0)


def test_robust_z_and_flags():
    z = robust_z([1.0, 1.1, 0.9, 1.05, 0.95, 10.0, None])
    assert z[-1] is None and z[5] > 3.5 and all(abs(v) < 3.5 for v in z[:5])
    assert robust_z([2.0, 2.0, 2.0]) == [0.0, 0.0, 0.0]
    # MAD 0 (most values equal) falls back to the mean absolute deviation
    assert robust_z([1.0, 1.0, 1.0, 1.0, 5.0])[4] > 3.5
    rows = [{"log_mel_distance": v, "speaker_similarity": 0.9, "semantic_frames": 10, "expected_frames": 10,
             "frame_diff": 0} for v in (1.0, 1.1, 0.9, 1.05, 8.0)]
    rows.append({"error": "decode failed: X", "semantic_frames": 0, "expected_frames": 5, "frame_diff": -5})
    flag_outliers(rows)
    assert [bool(r["flags"]) for r in rows] == [False, False, False, False, True, True]
    assert rows[4]["flags"][0].startswith("log_mel_distance high (robust z +")
    assert rows[5]["flags"] == ["error: decode failed: X"]


def test_sample_indices_is_deterministic():
    recs = [Utterance(index=f"r{i:02d}", global_tokens=[1] * 32, semantic_tokens=[1]) for i in range(30)]
    recs.append(Utterance(index="x"))
    a = sample_indices(recs, 5, seed=1)
    assert a == sample_indices(list(reversed(recs)), 5, seed=1)
    assert a[1:] == (30, 1) and len(a[0]) == 5
    assert sample_indices(recs, 5, seed=2)[0] != a[0]
    assert sample_indices(recs, 99, seed=1)[0] == [f"r{i:02d}" for i in range(30)]


@pytest.mark.slow
def test_codec_check_report(built, tiny_bicodec, tmp_path, codec):
    rep = codec_check(built, tiny_bicodec, tmp_path / "rep", n=50, seed=0, codec=codec)
    assert rep["checked"] == 6 and rep["eligible"] == 6 and rep["without_tokens"] == 1
    by = {r["index"]: r for r in rep["records"]}
    for k in range(5):
        r = by[f"rs_{k}"]
        assert r["frame_diff"] == 0 and r["error"] is None
        assert abs(r["duration_diff"]) < 0.03  # 320 samples per token vs the wav2vec2 frame count
        assert np.isfinite(r["log_mel_distance"]) and r["log_mel_distance"] > 0
        assert -1.0 <= r["speaker_similarity"] <= 1.0
        assert not any("token count" in f for f in r["flags"])
        assert (tmp_path / "rep" / r["wav_orig"]).exists() and (tmp_path / "rep" / r["wav_recon"]).exists()
    wrong = by["rs_5_wrong"]
    assert wrong["frame_diff"] < -2
    assert any(f.startswith("token count") for f in wrong["flags"])
    assert rep["flagged"] >= 1
    saved = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert saved["checked"] == 6 and "orig" not in saved["records"][0]
    page = (tmp_path / "rep" / "report.html").read_text()
    assert page.count("<audio") == 12 and "rs_5_wrong" in page and "class='flag'" in page


def test_roundtrip_record_reports_unusable_input(codec):
    from voxbox.sparktts.synth import roundtrip_record

    rec = Utterance(index="bad", global_tokens=[0] * 32, semantic_tokens=[1, 2])
    row = roundtrip_record(codec, rec, b"this is not audio")
    assert row["error"].startswith("audio unusable: ") and "orig" not in row
    sr = 16000
    wav = (0.3 * np.sin(2 * np.pi * 150 * np.arange(sr) / sr)).astype(np.float32)
    import io

    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, wav, sr, format="FLAC")
    row = roundtrip_record(codec, rec.replace(semantic_tokens=[1, 9000]), buf.getvalue())
    assert row["error"].startswith("decode failed: TokenizerError: semantic_tokens out of range")
    assert row["frame_diff"] == 2 - 49  # 1 s of audio is 49 frames


@pytest.mark.slow
def test_codec_cli(built, tiny_bicodec, tmp_path, capsys):
    from voxbox.cli import main

    rc = main(["synth", "codec", str(built), "--model-dir", str(tiny_bicodec), "--n", "2", "--seed", "3",
               "--out", str(tmp_path / "r")])
    out = capsys.readouterr().out
    assert rc == 0 and "checked 2 of 6 records with tokens" in out
    rep = json.loads((tmp_path / "r" / "report.json").read_text())
    assert [r["index"] for r in rep["records"]] == sample_indices(
        [Utterance(index=i, global_tokens=[0] * 32, semantic_tokens=[0]) for i in
         ["rs_0", "rs_1", "rs_2", "rs_3", "rs_4", "rs_5_wrong"]], 2, 3)[0]
    # write_dataset folders have no pipeline.yaml naming the tokenizer
    assert main(["synth", "codec", str(built), "--out", str(tmp_path / "r3")]) == 1
    assert "names no tokenizer model folder; give --model-dir" in capsys.readouterr().err
    assert main(["synth", "codec", str(tmp_path / "nothing"), "--model-dir", str(tiny_bicodec),
                 "--out", str(tmp_path / "r2")]) == 1
    assert "no such dataset folder" in capsys.readouterr().err


def test_codec_on_a_dataset_without_tokens_says_so_first(tiny_bicodec, tmp_path, capsys):
    """Not "give --model-dir" (which would not help): the dataset has no tokens to decode."""
    from voxbox.cli import main

    out = tmp_path / "sample"
    assert main(["build", "--corpus", "sample", "-o", str(out), "--stages", "", "-q", "-j", "1"]) == 0
    capsys.readouterr()
    for extra in ([], ["--model-dir", str(tiny_bicodec)]):
        assert main(["synth", "codec", str(out), "--out", str(tmp_path / "r"), *extra]) == 1
        err = capsys.readouterr().err
        assert "no record has BiCodec tokens" in err and "build it with --model-dir" in err, err
        assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_bad_check_options_fail_before_writing(built, tmp_path):
    # A negative threshold flagged every record; a bad backend failed after wavs/ was made.
    for kw, msg in (({"threshold": -1.0}, "--threshold must be a positive"),
                    ({"pitch_backend": "yin"}, "unknown pitch backend 'yin'")):
        with pytest.raises(VoxboxError, match=msg):
            codec_check(built, None, tmp_path / "r", **kw)
    with pytest.raises(VoxboxError, match="unknown pitch backend 'yin'"):
        control_check(tmp_path / "no-model", "Hi.", tmp_path / "c", pitch_backend="yin")
    assert not (tmp_path / "r").exists() and not (tmp_path / "c").exists()


def test_annotate_wav_on_real_speech(shared, tmp_path):
    import soundfile as sf

    from voxbox.annotate import levels

    from voxbox.sparktts.synth import make_annotator

    annotator = make_annotator()
    a = annotate_wav(shared / "data/real-speech/audio" / CLIPS[3][0], CLIPS[3][1], "female", annotator)
    assert 150 < a["pitch"] < 350 and a["syllable_num"] == 10  # Lord but I'm glad to see you a-gain Phil
    assert a["speed"] == pytest.approx(10 / a["speech_duration"], abs=0.05)
    assert a["pitch_level"] == levels.level(levels.pitch_mel(a["pitch"]), levels.VOXBOX_BOUNDARIES["pitch"]["female"])
    assert a["speed_level"] == levels.level(levels.clip_speed(10 / a["speech_duration"]),
                                            levels.VOXBOX_BOUNDARIES["speed"]["en"])
    assert a["gender"] in ("female", "male") and a["pitch_value"] == levels.pitch_value(a["pitch"])
    # The same clip judged as if a male voice had been requested: male boundaries.
    m = annotate_wav(shared / "data/real-speech/audio" / CLIPS[3][0], CLIPS[3][1], "male", annotator)
    assert m["pitch_level"] == levels.level(levels.pitch_mel(a["pitch"]), levels.VOXBOX_BOUNDARIES["pitch"]["male"])
    # Silence is rejected by the annotator: no measurements, and the reason.
    sf.write(str(tmp_path / "silence.wav"), np.zeros(16000), 16000)
    s = annotate_wav(tmp_path / "silence.wav", "Hi.", "male", annotator)
    assert s["pitch_level"] is None and s["speed_level"] is None and s["null_reason"]


def test_confusion_table():
    levels = ["very_low", "low", "moderate", "high", "very_high"]
    t = confusion([("low", "low"), ("low", "moderate"), ("high", "very_low"), ("high", None)], levels)
    assert t["matrix"]["low"]["low"] == 1 and t["matrix"]["high"]["unmeasured"] == 1
    assert t["measured"] == 3 and t["accuracy"] == pytest.approx(1 / 3) and t["within_one"] == pytest.approx(2 / 3)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_bicodec):
    return build_tiny_sparktts(tmp_path_factory.mktemp("sparktts") / "tiny", tiny_bicodec)


@pytest.mark.slow
def test_control_check_end_to_end(model_dir, tmp_path, capsys):
    from spark_tokenize.tts import GenerationOptions

    opts = GenerationOptions(max_new_tokens=39 + 25, seed=0, constrain=True)  # 0.5 s of semantic tokens
    rep = control_check(model_dir, "Hello world.", tmp_path / "c", genders=["female", "male"],
                        pitch_levels=["low", "high"], speed_levels=["1", "5"], options=opts, batch_size=4)
    assert rep["requested"] == 8 and rep["synthesised"] == 8 and rep["failed"] == 0
    assert rep["grid"]["speed_levels"] == ["very_low", "very_high"]
    cells = {(u["gender"], u["pitch"], u["speed"]) for u in rep["utterances"]}
    assert len(cells) == 8
    for u in rep["utterances"]:
        assert (tmp_path / "c" / u["wav"]).exists()
        # 25 semantic tokens unless the model chose <|im_end|> earlier
        assert u["duration"] == pytest.approx(0.5) or (u["finished"] and 0 < u["duration"] < 0.5)
        assert u["measured"]["syllable_num"] == 3
        assert u["model_pitch_value"] is not None
    for attr in ("pitch", "speed"):
        t = rep["tables"][attr]
        assert sum(sum(row.values()) for row in t["matrix"].values()) == 8
        assert sum(t["matrix"][lvl][c] for lvl in t["rows"] for c in t["cols"] if c != "unmeasured") == t["measured"]
    assert set(rep["tables"]["pitch_by_gender"]) == {"female", "male"}
    assert rep["tables"]["gender"]["rows"] == ["female", "male"]
    page = (tmp_path / "c" / "report.html").read_text()
    assert "Pitch level, female" in page and page.count("<audio") == 8

    # Unconstrained, the random LLM gives unusable outputs: counted as failures, not a crash.
    from voxbox.cli import main

    rc = main(["synth", "control", "--model-dir", str(model_dir), "--text", "Hi.", "--out", str(tmp_path / "u"),
               "--genders", "male", "--pitch-levels", "low", "--speed-levels", "low,high", "--max-new-tokens", "10"])
    assert rc == 0
    assert "0 of 2 utterances synthesised, 2 failed" in capsys.readouterr().out
    rep = json.loads((tmp_path / "u" / "report.json").read_text())
    assert rep["tables"]["pitch"]["measured"] == 0 and all("need exactly 32" in u["error"] for u in rep["utterances"])
    with pytest.raises(VoxboxError, match="unknown level"):
        control_check(model_dir, "Hi.", tmp_path / "v", pitch_levels=["loud"], model=object())
