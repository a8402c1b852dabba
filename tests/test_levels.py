"""Five-level labels, value tokens, boundary files and `voxbox levels`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from voxbox.annotate import levels as lv
from voxbox.cli import main
from voxbox.errors import VoxboxError
from voxbox.record import Utterance
from voxbox.manifest import write_manifest


def test_comparison_rule_edges():
    b = [1.0, 2.0, 3.0, 4.0]
    assert lv.level(0.999, b) == "very_low"
    assert lv.level(1.0, b) == "low"          # b1 <= x < b2
    assert lv.level(2.0, b) == "moderate"     # x == b2 is no longer low
    assert lv.level(3.0, b) == "moderate"     # b3 < x is needed for high
    assert lv.level(3.001, b) == "high"
    assert lv.level(4.0, b) == "high"         # b3 < x <= b4
    assert lv.level(4.001, b) == "very_high"


def test_voxbox_table_and_worked_example():
    # Spec 3.6: female 180.626 Hz -> 258.7 Mel, between 257.532 and 313.213: moderate.
    mel = lv.pitch_mel(180.626)
    assert mel == pytest.approx(258.7, abs=0.05)
    assert lv.level(mel, lv.VOXBOX_BOUNDARIES["pitch"]["female"]) == "moderate"
    # Pitch uses p5/p20/p70/p90, speed p5/p20/p80/p95: the male pitch b3 is p70 (211.044).
    assert lv.VOXBOX_BOUNDARIES["pitch"]["male"][2] == 211.044
    assert lv.VOXBOX_BOUNDARIES["speed"]["zh"][2] == 5.166


def test_value_tokens():
    assert lv.pitch_value(180.626) == 258
    assert lv.pitch_value(1e6) == 1000 and lv.pitch_value(0) == 0
    assert lv.speed_value(4.99) == 4 and lv.speed_value(12.5) == 10 and lv.speed_value(-1) == 0
    assert lv.pitch_var_value(0.158) == 3 and lv.pitch_var_value(0.9) == 10
    assert lv.loudness_value(-18.07) == 11


def _rec(i, gender, pitch, text, n, sd, std=0.2, loud=-20.0):
    return Utterance(index=f"r{i}", gender=gender, pitch=pitch, pitch_std=std, text=text,
                     syllable_num=n, speech_duration=sd, loudness=loud, pitch_backend="world")


def test_compute_boundaries_uses_the_percentile_rule():
    rng = np.random.default_rng(1)
    recs, mels, speeds = [], [], []
    for i in range(400):
        f0 = float(rng.uniform(90, 160))
        n, sd = int(rng.integers(5, 30)), float(rng.uniform(1, 6))
        recs.append(_rec(i, "male", f0, "hello there", n, sd))
        mels.append(lv.pitch_mel(f0))
        speeds.append(min(n / sd, 10))
    recs.append(_rec(999, "male", 0.0, "你好", 3, 1.0))  # unvoiced: not in pitch stats
    table = lv.compute_boundaries(recs, min_count=20)
    assert table["pitch"]["male"] == [round(float(x), 3) for x in np.percentile(mels, [5, 20, 70, 90])]
    assert table["speed"]["en"] == [round(float(x), 3) for x in np.percentile(speeds, [5, 20, 80, 95])]
    assert "female" not in table["pitch"]
    assert table["skipped"] == {"speed/zh": 1}
    assert table["stats"]["pitch/male"]["count"] == 400
    lv.Boundaries(table)  # a valid boundaries table


def test_mixed_backends_are_refused():
    recs = [_rec(i, "male", 120.0, "hi", 1, 1.0) for i in range(3)]
    recs.append(_rec(9, "male", 120.0, "hi", 1, 1.0).replace(pitch_backend="praat"))
    with pytest.raises(VoxboxError, match="mixes pitch backends"):
        lv.compute_boundaries(recs)


def test_bad_boundaries_files(tmp_path):
    p = tmp_path / "b.json"
    p.write_text(json.dumps({"pitch": {"male": [3, 2, 1, 0]}}))
    with pytest.raises(VoxboxError, match="ascending"):
        lv.Boundaries.load(p)
    p.write_text("{not json")
    with pytest.raises(VoxboxError, match="not valid JSON"):
        lv.Boundaries.load(p)
    with pytest.raises(VoxboxError, match="not found"):
        lv.Boundaries.load(tmp_path / "none.json")
    # A folder or undecodable bytes are one-line errors too, never a traceback.
    with pytest.raises(VoxboxError, match="boundaries file is not a file"):
        lv.Boundaries.load(tmp_path)
    p.write_bytes(b"\xff\xfe{}")
    with pytest.raises(VoxboxError, match="not valid JSON"):
        lv.Boundaries.load(p)


def test_levels_cli_writes_a_file_annotate_accepts(tmp_path, capsys):
    rng = np.random.default_rng(2)
    recs = [_rec(i, "female" if i % 2 else "male", float(rng.uniform(100, 300)), "some words here",
                 int(rng.integers(3, 20)), float(rng.uniform(1, 5))) for i in range(120)]
    man = tmp_path / "ann.jsonl"
    write_manifest(man, recs)
    out = tmp_path / "bounds.json"
    assert main(["levels", str(man), "--out", str(out)]) == 0
    table = json.loads(out.read_text())
    assert set(table["pitch"]) == {"female", "male"} and set(table["speed"]) == {"en"}
    assert "pitch" in capsys.readouterr().out
    b = lv.Boundaries.load(out)
    assert b.bounds("pitch", "male") == table["pitch"]["male"]
    assert b.bounds("speed", "zh") is None


def test_levels_refuses_to_write_a_table_without_any_boundaries(tmp_path, capsys):
    # Too few values per group used to write an all-empty file that nulled every level later.
    man = tmp_path / "few.jsonl"
    write_manifest(man, [_rec(i, "male", 120.0 + i, "hi there", 3, 1.0) for i in range(6)])
    out = tmp_path / "b.json"
    assert main(["levels", str(man), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "no group has --min-count 20 values (pitch/male 6" in err and "lower --min-count" in err
    assert not out.exists()
    assert main(["levels", str(man), "--out", str(out), "--min-count", "5"]) == 0
    assert "male" in json.loads(out.read_text())["pitch"]
    bare = tmp_path / "bare.jsonl"
    write_manifest(bare, [Utterance(index="a_1", text="hi")])
    assert main(["levels", str(bare), "--out", str(out)]) == 1
    assert "run `voxbox annotate` first" in capsys.readouterr().err


def test_boundaries_from_another_pitch_backend_are_refused(tmp_path):
    from voxbox.annotate.stage import AnnotateStage

    recs = [_rec(i, "male", 100.0 + i, "hi there", 2, 1.0) for i in range(30)]
    table = lv.compute_boundaries(recs)
    assert table["pitch_backend"] == "world"
    p = tmp_path / "b.json"
    p.write_text(json.dumps(table))
    AnnotateStage(boundaries=str(p))  # same backend: fine
    with pytest.raises(VoxboxError, match="'world' pitch"):
        AnnotateStage(boundaries=str(p), pitch_backend="praat")
