"""Declared stage options: unknown or ill-typed options are refused before any input is
read (library, pipeline files, CLI), `voxbox stages` lists them, bad output settings
(`--shard-mb nan`) are one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from voxbox.build.pipeline import load_pipeline
from voxbox.cli import main
from voxbox.errors import VoxboxError
from voxbox.stages import StageOption, check_params, make_stage, stage_class, stage_names


def _pipeline(path: Path, stages: list, **output) -> Path:
    path.write_text(yaml.safe_dump({"stages": stages, **({"output": output} if output else {})}))
    return path


def test_a_misspelt_option_is_refused_with_a_suggestion(tmp_path):
    p = _pipeline(tmp_path / "p.yaml", [{"stage": "tokenize", "params": {"model_dir": None, "devcie": "cuda"}}])
    # Refused even though the stage would be skipped (no model_dir): a typo is a typo.
    with pytest.raises(VoxboxError, match=r"^stage tokenize has no option 'devcie' \(did you mean 'device'\?\)$"):
        load_pipeline(p)
    with pytest.raises(VoxboxError, match="no option 'devcie'"):
        make_stage("tokenize", devcie="cuda")
    with pytest.raises(VoxboxError, match=r"no option 'colour' \(options: pitch_backend, boundaries"):
        make_stage("annotate", colour="red")


@pytest.mark.parametrize("params, message", [
    ({"batch_size": "8"}, "option 'batch_size' must be an integer, got '8'"),
    ({"batch_size": True}, "option 'batch_size' must be an integer, got True"),
    ({"batch_size": 0}, "option 'batch_size' must be at least 1, got 0"),
    ({"dtype": "float16"}, "option 'dtype' must be one of float32, bfloat16, got 'float16'"),
    ({"device": 0}, "option 'device' must be text, got 0"),
    ({"model_dir": ""}, "option 'model_dir' must be a path, got ''"),
])
def test_ill_typed_options_are_refused(tmp_path, params, message):
    p = _pipeline(tmp_path / "p.yaml", [{"stage": "tokenize", "params": {"model_dir": "m", **params}}])
    with pytest.raises(VoxboxError, match="^stage tokenize: " + message.replace("(", r"\(")):
        load_pipeline(p)


def test_annotate_choices_keep_their_messages():
    with pytest.raises(VoxboxError, match=r"unknown pitch backend 'crepe' \(choose from world, praat\)"):
        make_stage("annotate", pitch_backend="crepe")
    with pytest.raises(VoxboxError, match=r"unknown Chinese number style 'roman' \(choose from voxbox, cardinal\)"):
        make_stage("annotate", zh_numbers="roman")


def test_options_fill_defaults_and_keep_the_pipeline_fingerprint(tmp_path):
    st = make_stage("tokenize", model_dir=tmp_path)
    assert st.params == {"model_dir": str(tmp_path), "device": "cpu", "batch_size": 1, "dtype": "float32"}
    assert make_stage("annotate").params["gender_model"] == "builtin"
    assert make_stage("annotate", gender_model="none").params["gender_model"] is None
    # The fingerprint is taken from the params as written, so declaring options did not
    # change the identity of existing builds.
    assert load_pipeline().identity()["stages"] == [{"stage": "annotate", "params": {}}]


def test_check_params_rules():
    opts = (StageOption("rate", float, 1.0, "a rate", minimum=0), StageOption("name", str, None, "a name"))
    assert check_params("x", opts, {}) == {"rate": 1.0, "name": None}
    assert check_params("x", opts, {"rate": 2, "name": None}) == {"rate": 2, "name": None}
    for bad in (float("nan"), float("inf"), "1", None):
        with pytest.raises(VoxboxError, match="option 'rate' must be a finite number"):
            check_params("x", opts, {"rate": bad})
    with pytest.raises(VoxboxError, match=r"stage x has no option 'nmae' \(did you mean 'name'\?\)"):
        check_params("x", opts, {"nmae": "y"})
    with pytest.raises(VoxboxError, match=r"stage y has no option 'a' \(it takes no options\)"):
        check_params("y", (), {"a": 1})


def test_pipeline_file_keys_are_declared_too(tmp_path):
    for doc, message in (
        ({"stages": [], "output": {"shard_mbb": 5}}, r"output: unknown key 'shard_mbb' \(did you mean 'shard_mb'\?\)"),
        ({"stages": [], "engine": {"workers": 2}}, r"engine: unknown key 'workers' \(known: batch_size\)"),
        ({"stages": [], "nmae": "x"}, r"unknown key 'nmae' \(did you mean 'name'\?\)"),
        ({"stages": [{"stage": "annotate", "parms": {}}]}, r"stage annotate: unknown key 'parms'"),
        ({"stages": [{"stage": "tokenize", "requires": "model", "params": {}}]},
         "stage tokenize requires 'model', which is not one of its options"),
        ({"stages": [{"stage": "tokenise"}]}, r"unknown stage 'tokenise' \(did you mean 'tokenize'\?\)"),
    ):
        p = tmp_path / "p.yaml"
        p.write_text(yaml.safe_dump(doc))
        with pytest.raises(VoxboxError, match=message):
            load_pipeline(p)


def test_cli_refuses_a_bad_option_before_reading_input(tmp_path, capsys):
    p = _pipeline(tmp_path / "p.yaml", [{"stage": "tokenize", "params": {"model_dir": None, "devcie": "cuda"}}])
    missing = tmp_path / "not-there.jsonl"  # reading the input would fail differently
    assert main(["build", "--manifest", str(missing), "--pipeline", str(p), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: stage tokenize has no option 'devcie' (did you mean 'device'?)"]
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "-1"])
def test_shard_mb_must_be_a_positive_finite_number(tmp_path, capsys, value):
    out = tmp_path / "o"
    code = main(["build", "--manifest", str(tmp_path / "m.jsonl"), "--out", str(out), f"--shard-mb={value}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "shard_mb must be a positive number of megabytes" in err[0], err
    assert not out.exists()
    p = _pipeline(tmp_path / "p.yaml", [], shard_mb=float(value))
    with pytest.raises(VoxboxError, match="shard_mb must be a positive number"):
        load_pipeline(p)


def test_cli_lists_stages_and_options(capsys):
    assert main(["stages"]) == 0
    text = capsys.readouterr().out
    for name in stage_names():
        assert f"\n{name}: " in "\n" + text
        for opt in stage_class(name).options:
            assert f"  {opt.name} " in text and opt.help in text
    assert "batch_size  integer, default none:" in text and "dtype       text [float32|bfloat16]" in text
    assert main(["stages", "annotate"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("annotate: ") and "tokenize" not in out
    assert main(["stages", "tokenise"]) == 1
    assert "unknown stage 'tokenise' (did you mean 'tokenize'?)" in capsys.readouterr().err
