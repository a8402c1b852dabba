"""Spark-TTS inference on a tiny random Qwen2 LLM + the tiny BiCodec fixture, on CPU."""

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from spark_tokenize import prompts as P
from spark_tokenize.errors import TokenizerError
from spark_tokenize.tts import GenerationOptions, SparkTTS, output_grammar

sys.path.insert(0, str(Path(__file__).parent))
from tiny_sparktts import build_tiny_sparktts  # noqa: E402

torch.set_num_threads(1)

PROMPT_WAV = "data/real-speech/audio/cmu_arctic/cmu_arctic_us_axb_a0005.wav"
PROMPT_TEXT = "Will we ever forget it."


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_bicodec):
    return build_tiny_sparktts(tmp_path_factory.mktemp("sparktts") / "Spark-TTS-tiny", tiny_bicodec)


@pytest.fixture(scope="module")
def tts(model_dir):
    return SparkTTS(model_dir)


def test_tiny_folder_has_the_released_token_ids(model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir / "LLM"))
    probes = {"<|bicodec_global_0|>": 151665, "<|bicodec_semantic_0|>": 155761, "<|bicodec_semantic_8191|>": 163952,
              "<|task_tts|>": 165137, "<|start_content|>": 165146, "<|start_global_token|>": 165150,
              "<|start_semantic_token|>": 165151, "<|end_content|>": 165152, "<|end_style_label|>": 165153,
              "<|end_style_prompt|>": 165154, "<|end_acoustic_token|>": 165155, "<|end_global_token|>": 165156,
              "<|end_semantic_token|>": 165157, "<|im_end|>": 151645, "<|endoftext|>": 151643}
    assert {t: tok.convert_tokens_to_ids(t) for t in probes} == probes
    for i, t in enumerate(P.added_tokens()):
        if i % 997 == 0:
            assert tok.convert_tokens_to_ids(t) == P.BASE_VOCAB_SIZE + i
    # Added tokens are plain (non-special) tokens, so decoding with skip_special_tokens keeps them.
    ids = tok([P.control_prompt("Hi", "male", "low", "high")], add_special_tokens=False)["input_ids"][0]
    assert ids[0] == 165143 and ids[-1] == 165153
    assert tok.decode(ids, skip_special_tokens=True) == P.control_prompt("Hi", "male", "low", "high")


def test_official_generation_defaults():
    o = GenerationOptions()
    assert (o.temperature, o.top_k, o.top_p, o.max_new_tokens, o.do_sample) == (0.8, 50, 0.95, 3000, True)
    assert o.constrain is False and o.repetition_penalty == 1.0
    with pytest.raises(TokenizerError, match="top_p"):
        GenerationOptions(top_p=0).check()


def test_dtype_and_folder_checks(model_dir, tmp_path):
    with pytest.raises(TokenizerError, match="float16 is known to break"):
        SparkTTS(model_dir, dtype="float16")
    if not torch.cuda.is_available():
        with pytest.raises(TokenizerError, match="CUDA is not available"):
            SparkTTS(model_dir, device="cuda")
    with pytest.raises(TokenizerError, match="no LLM/config.json"):
        SparkTTS(tmp_path)


@pytest.mark.slow
def test_random_model_output_takes_the_error_path(tts):
    # Unconstrained, a random LLM samples mostly text ids: no 32 globals -> a clear error, no crash.
    opts = GenerationOptions(max_new_tokens=40, seed=3)
    res = tts.control([("Hello there.", "female", "high", "low")], options=opts)[0]
    assert res.wav is None and not res.ok
    assert res.generated_tokens == 40 and not res.finished
    assert res.error.startswith("generated ") and "global tokens, need exactly 32; got 40 ids (" in res.error
    assert "no <|im_end|>" in res.error
    with pytest.raises(P.ParseError, match="unusable model output: generated .* global tokens"):
        tts.synthesize("Hello there.", gender="female", pitch="high", speed="low", options=opts)


@pytest.mark.slow
def test_constrained_control_batch(tts):
    opts = GenerationOptions(max_new_tokens=60, seed=11, constrain=True)
    reqs = [("Hi.", "male", "very_low", "very_high"), ("A somewhat longer sentence here.", "female", "high", "low")]
    res = tts.control(reqs, options=opts)
    for r in res:
        assert r.ok and r.error is None
        assert len(r.global_tokens) == 32 and all(0 <= g < 4096 for g in r.global_tokens)
        assert r.generated_tokens == 60 and not r.finished  # the random model never picks <|im_end|> in time
        # 60 = 4 value-chain ids + <|start_global_token|> + 32 globals + 2 markers + 21 semantic
        assert len(r.semantic_tokens) == 21
        assert 0 <= r.pitch_value <= 1000 and 0 <= r.speed_value <= 10
        assert r.wav.dtype == np.float32 and len(r.wav) == 320 * len(r.semantic_tokens)
        assert np.isfinite(r.wav).all()
    assert res[0].prompt == P.control_prompt("Hi.", "male", "very_low", "very_high")
    again = tts.control(reqs, options=opts)
    assert [r.semantic_tokens for r in again] == [r.semantic_tokens for r in res]
    other = tts.control(reqs, options=GenerationOptions(max_new_tokens=60, seed=12, constrain=True))
    assert [r.semantic_tokens for r in other] != [r.semantic_tokens for r in res]


@pytest.mark.slow
def test_left_padded_batch_equals_one_by_one(tts):
    prompts = [P.control_prompt("Hi.", "male", "low", "low"),
               P.control_prompt("A much longer text, so the first prompt gets left padding.", "female", "high", "high")]
    opts = GenerationOptions(max_new_tokens=12, do_sample=False, constrain=True)
    batch, _ = tts.generate_ids(prompts, "control", opts)
    single = [tts.generate_ids([p], "control", opts)[0][0] for p in prompts]
    assert batch == single


def test_grammar_positions():
    head, tail = output_grammar("control")
    assert len(head) == 5 + 32 + 3
    assert head[0] == [(165149, 165150)] and head[5] == [(151665, 155761)] and head[-1] == [(155761, 163953)]
    assert tail == [(155761, 163953), (151645, 151646)]
    head, _ = output_grammar("clone")
    assert head[0] == [(165151, 165152)]


@pytest.mark.slow
def test_clone_with_and_without_transcript(tts, shared):
    wav_path = shared / PROMPT_WAV
    ref_glob, ref_sem = tts.reference_tokens(str(wav_path))
    assert len(ref_glob) == 32 and len(ref_sem) == tts.codec.num_frames(sf.info(str(wav_path)).frames)
    opts = GenerationOptions(max_new_tokens=15, seed=5, constrain=True)
    with_t = tts.clone(["Good morning."], str(wav_path), PROMPT_TEXT, options=opts)[0]
    assert with_t.prompt.startswith("<|task_tts|><|start_content|>" + PROMPT_TEXT + "Good morning.<|end_content|>")
    assert with_t.prompt.endswith("<|start_semantic_token|>" + P.semantic_tokens_str(ref_sem))
    assert with_t.ok and with_t.global_tokens == ref_glob and len(with_t.semantic_tokens) == 15
    without = tts.clone(["Good morning.", "Bye."], str(wav_path), options=opts)
    assert without[0].prompt == P.clone_prompt("Good morning.", ref_glob)
    assert all(r.ok and len(r.semantic_tokens) == 14 for r in without)  # first id is <|start_semantic_token|>
    # A blank transcript counts as none (as in the official web UI).
    assert tts.clone(["Bye."], str(wav_path), "  ", options=opts)[0].prompt == P.clone_prompt("Bye.", ref_glob)


@pytest.mark.slow
def test_synth_tts_cli(model_dir, shared, tmp_path, capsys):
    from voxbox.cli import main

    out = tmp_path / "ctl.wav"
    rc = main(["synth", "tts", "--model-dir", str(model_dir), "--text", "Hello.", "--gender", "male",
               "--pitch", "high", "--speed", "3", "--out", str(out), "--max-new-tokens", "50", "--seed", "1",
               "--constrain"])
    assert rc == 0, capsys.readouterr().err
    wav, sr = sf.read(str(out))
    assert sr == 16000 and len(wav) == 320 * (50 - 39)  # 39 ids before the first semantic token
    # Several texts go to a folder; cloning from a prompt file.
    rc = main(["synth", "tts", "--model-dir", str(model_dir), "--text", "One.", "--text", "Two.",
               "--prompt-audio", str(shared / PROMPT_WAV), "--prompt-text", PROMPT_TEXT,
               "--out", str(tmp_path / "many"), "--max-new-tokens", "8", "--seed", "1", "--constrain"])
    assert rc == 0
    assert sorted(p.name for p in (tmp_path / "many").iterdir()) == ["000.wav", "001.wav"]
    capsys.readouterr()
    # Unconstrained random output: a one-line error and exit 1, no file.
    rc = main(["synth", "tts", "--model-dir", str(model_dir), "--text", "Hello.", "--gender", "male",
               "--pitch", "high", "--speed", "low", "--out", str(tmp_path / "bad.wav"), "--max-new-tokens", "20",
               "--seed", "2"])
    err = capsys.readouterr().err
    assert rc == 1 and "need exactly 32" in err and "error: 1 of 1 utterance(s) gave no usable output" in err
    assert not (tmp_path / "bad.wav").exists()
    # Option errors are one line too.
    assert main(["synth", "tts", "--model-dir", str(model_dir), "--text", "x", "--out", str(tmp_path / "x.wav")]) == 1
    assert "give either --prompt-audio" in capsys.readouterr().err
    assert main(["synth", "tts", "--model-dir", str(model_dir), "--text", "x", "--gender", "male", "--pitch", "loud",
                 "--speed", "low", "--out", str(tmp_path / "x.wav")]) == 1
    assert "unknown level 'loud'" in capsys.readouterr().err
    assert main(["synth", "tts", "--model-dir", str(model_dir), "--text", "x", "--gender", "male", "--pitch", "low",
                 "--speed", "low", "--dtype", "fp16", "--out", str(tmp_path / "x.wav")]) == 1
    assert "float16 is known to break" in capsys.readouterr().err


def test_synth_tts_refuses_a_bad_out_before_loading_the_model(shared, tmp_path, capsys):
    from voxbox.cli import main

    prompt = str(shared / PROMPT_WAV)
    missing_model = str(tmp_path / "no-model")  # never reached: --out is checked first
    (tmp_path / "afile").write_text("x")
    cases = [
        (["--text", "a", "--out", str(tmp_path)], "is a folder; one --text writes one file"),
        (["--text", "a", "--out", str(tmp_path / "x.mp3")], "write .wav or .flac"),
        (["--text", "a", "--text", "b", "--out", str(tmp_path / "x.wav")], "give a folder as --out"),
        (["--text", "a", "--out", str(tmp_path / "afile" / "x.wav")], "a file is in the way"),
    ]
    for args, msg in cases:
        assert main(["synth", "tts", "--model-dir", missing_model, "--prompt-audio", prompt, *args]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and msg in err and len(err.splitlines()) == 1, err
    assert main(["synth", "tts", "--model-dir", missing_model, "--prompt-audio", prompt, "--gender", "male",
                 "--text", "a", "--out", str(tmp_path / "y.wav")]) == 1
    assert "exclude each other" in capsys.readouterr().err
    assert main(["synth", "tts", "--model-dir", missing_model, "--prompt-audio", str(tmp_path),
                 "--text", "a", "--out", str(tmp_path / "y.wav")]) == 1
    assert "is a folder, not an audio file" in capsys.readouterr().err
