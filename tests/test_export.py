"""`voxbox export sparktts`: Spark-TTS training examples from a built dataset."""

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from spark_tokenize import prompts as P
from voxbox.errors import VoxboxError
from voxbox.sparktts.export import export_sparktts, tts_example
from voxbox.record import Utterance
from voxbox.shards import write_dataset

sys.path.insert(0, str(Path(__file__).parent))

GLOB = list(range(0, 4096, 128))  # 32 distinct global tokens
GSTR = "".join(f"<|bicodec_global_{g}|>" for g in GLOB)


def _rec(root: Path, name: str, **kw) -> Utterance:
    path = root / f"{name}.wav"
    t = np.arange(8000) / 16000.0
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), 16000)
    base = dict(index=f"t_{name}", corpus="t", source_path=path.name, corpus_root=str(root), text="Hello world.",
                gender="male", pitch=120.0, speed=4.0, syllable_num=2, speech_duration=0.5,
                pitch_level="low", speed_level="moderate", pitch_value=173, speed_value=4,
                global_tokens=GLOB, semantic_tokens=[5, 6, 7], sample_rate=16000, num_samples=8000, channels=1,
                duration=0.5)
    base.update(kw)
    return Utterance(**base)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio")
    recs = [
        _rec(root, "a_full"),
        _rec(root, "b_notokens", global_tokens=None, semantic_tokens=None),
        _rec(root, "c_nogender", gender=None),
        _rec(root, "d_fast", syllable_num=30, speech_duration=2.0),  # 15 syllables/s
        _rec(root, "e_test", split="test", gender="female", pitch_level="high", speed_level="very_high",
             pitch_value=320, speed_value=6, text="你好"),
        # No levels stored: derived from raw values with VoxBox's boundaries.
        _rec(root, "f_raw", pitch_level=None, speed_level=None, pitch_value=None, speed_value=None,
             pitch=180.626, gender="female", syllable_num=16, speech_duration=3.843),
        _rec(root, "g_31glob", global_tokens=GLOB[:31]),
        _rec(root, "h_notext", text=" "),
    ]
    out = tmp_path_factory.mktemp("built")
    write_dataset(recs, out, name="t", formats=("parquet",))
    return out


def _read_jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_export_jsonl_examples_and_skip_counts(built, tmp_path, capsys):
    summary = export_sparktts(built, tmp_path / "out")
    assert summary["records"] == 8
    assert summary["examples"] == {"tts": 4, "controllable_tts": 3}
    assert summary["skipped"] == {
        "tts": {"bad_global_tokens": 1, "no_text": 1, "no_tokens": 1, "speed_over_10": 1},
        "controllable_tts": {"bad_global_tokens": 1, "no_gender": 1, "no_text": 1, "no_tokens": 1,
                             "speed_over_10": 1},
    }
    assert json.loads((tmp_path / "out" / "summary.json").read_text()) == summary
    train = _read_jsonl(tmp_path / "out" / "sparktts-train-000000.jsonl")
    test = _read_jsonl(tmp_path / "out" / "sparktts-test-000000.jsonl")
    assert [(r["index"], r["task"]) for r in train] == [
        ("t_a_full", "tts"), ("t_a_full", "controllable_tts"), ("t_c_nogender", "tts"),
        ("t_f_raw", "tts"), ("t_f_raw", "controllable_tts")]
    a_tts, a_ctl = train[0], train[1]
    assert a_tts["prompt"] == ("<|task_tts|><|start_content|>Hello world.<|end_content|>"
                               "<|start_global_token|>" + GSTR + "<|end_global_token|>")
    assert a_tts["target"] == ("<|start_semantic_token|><|bicodec_semantic_5|><|bicodec_semantic_6|>"
                               "<|bicodec_semantic_7|><|im_end|>")
    assert a_ctl["prompt"] == ("<|task_controllable_tts|><|start_content|>Hello world.<|end_content|>"
                               "<|start_style_label|><|gender_1|><|pitch_label_1|><|speed_label_2|>"
                               "<|end_style_label|>")
    assert a_ctl["target"] == ("<|start_acoustic_token|><|pitch_value_173|><|speed_value_4|><|end_acoustic_token|>"
                               "<|start_global_token|>" + GSTR + "<|end_global_token|>"
                               "<|start_semantic_token|><|bicodec_semantic_5|><|bicodec_semantic_6|>"
                               "<|bicodec_semantic_7|><|im_end|>")
    # Raw values, VoxBox boundaries: female 180.626 Hz -> 258.7 Mel -> moderate (spec worked
    # check); 16 syllables / 3.843 s = 4.16 syll/s -> en moderate, value 4.
    f_ctl = train[4]
    assert "<|gender_0|><|pitch_label_2|><|speed_label_2|>" in f_ctl["prompt"]
    assert f_ctl["target"].startswith("<|start_acoustic_token|><|pitch_value_258|><|speed_value_4|>")
    assert [(r["index"], r["task"]) for r in test] == [("t_e_test", "tts"), ("t_e_test", "controllable_tts")]
    assert "<|start_content|>你好<|end_content|><|start_style_label|><|gender_0|><|pitch_label_3|><|speed_label_4|>" \
        in test[1]["prompt"]
    assert "prompt_ids" not in a_tts


def test_export_is_deterministic_and_refuses_to_overwrite(built, tmp_path):
    s1 = export_sparktts(built, tmp_path / "o1", shard_size=2)
    s2 = export_sparktts(built, tmp_path / "o2", shard_size=2)
    assert [f["sha256"] for f in s1["files"]] == [f["sha256"] for f in s2["files"]]
    assert [f["path"] for f in s1["files"]] == ["sparktts-test-000000.jsonl", "sparktts-train-000000.jsonl",
                                                "sparktts-train-000001.jsonl", "sparktts-train-000002.jsonl"]
    assert [f["examples"] for f in s1["files"]] == [2, 2, 2, 1]
    with pytest.raises(VoxboxError, match="already holds an export"):
        export_sparktts(built, tmp_path / "o1")
    s3 = export_sparktts(built, tmp_path / "o1", overwrite=True, tasks=["tts"])
    assert sorted(p.name for p in (tmp_path / "o1").iterdir()) == [
        "sparktts-test-000000.jsonl", "sparktts-train-000000.jsonl", "summary.json"]
    assert s3["examples"] == {"tts": 4}
    with pytest.raises(VoxboxError, match="unknown task"):
        export_sparktts(built, tmp_path / "o4", tasks=["asr"])


@pytest.mark.slow
def test_export_parquet_with_token_ids(built, tmp_path):
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    from tiny_sparktts import build_tokenizer

    tok_dir = tmp_path / "LLM"
    build_tokenizer(tok_dir)
    summary = export_sparktts(built, tmp_path / "pq", fmt="parquet", tokenizer_dir=tok_dir)
    assert summary["token_ids"] is True
    rows = pq.read_table(tmp_path / "pq" / "sparktts-train-000000.parquet").to_pylist()
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    for row in rows:
        assert tok.decode(row["prompt_ids"]) == row["prompt"]
        assert tok.decode(row["target_ids"]) == row["target"]
        assert row["target_ids"][-1] == P.IM_END_ID
    tts, ctl = rows[0], rows[1]
    # ids follow the released layout: task token, then content markers, then the globals
    assert tts["prompt_ids"][:2] == [165137, 165146]
    assert tts["prompt_ids"][-34:] == [165150] + [151665 + g for g in GLOB] + [165156]
    assert tts["target_ids"] == [165151, 155761 + 5, 155761 + 6, 155761 + 7, 151645]
    assert ctl["prompt_ids"][0] == 165143 and ctl["prompt_ids"][-5:] == [165147, 165033, 164966, 164988, 165153]
    assert ctl["target_ids"][:4] == [165149, 163953 + 173, 164975 + 4, 165155]
    # --max-tokens: the tts examples are 2 + 12 text + 1 + 34 + 5 = 54 ids, control ones longer
    assert len(tts["prompt_ids"]) + len(tts["target_ids"]) == 54
    short = export_sparktts(built, tmp_path / "short", tokenizer_dir=tok_dir, max_tokens=54)
    assert short["examples"] == {"tts": 4, "controllable_tts": 0}
    assert short["skipped"]["controllable_tts"]["over_max_tokens"] == 3
    with pytest.raises(VoxboxError, match="needs --tokenizer"):
        export_sparktts(built, tmp_path / "short2", max_tokens=10)
    with pytest.raises(VoxboxError, match="at least 1"):
        export_sparktts(built, tmp_path / "short2", tokenizer_dir=tok_dir, max_tokens=-5)


@pytest.mark.slow
def test_text_style_is_prompt_plus_target_in_one_field(built, tmp_path, capsys):
    """--style text: what SFT trainers read (one `text` column), the same characters the
    prompt style splits in two; with a tokenizer, input_ids = prompt ids + target ids."""
    import pyarrow.parquet as pq
    from transformers import AutoTokenizer

    from tiny_sparktts import build_tokenizer
    from voxbox.cli import main

    prompt_style = export_sparktts(built, tmp_path / "p")
    assert main(["export", "sparktts", str(built), "-o", str(tmp_path / "t"), "--style", "text"]) == 0
    assert "4 tts, 3 controllable_tts examples" in capsys.readouterr().out
    for f in prompt_style["files"]:
        split_rows = _read_jsonl(tmp_path / "p" / f["path"])
        text_rows = _read_jsonl(tmp_path / "t" / f["path"])
        assert [r["index"] for r in text_rows] == [r["index"] for r in split_rows]
        for p, t in zip(split_rows, text_rows):
            assert set(t) == {"index", "split", "task", "transcript", "text"}
            assert t["text"] == p["prompt"] + p["target"] and t["transcript"] == p["text"]
            assert t["text"].startswith("<|task_") and t["text"].endswith("<|im_end|>")
    tok_dir = tmp_path / "LLM"
    build_tokenizer(tok_dir)
    export_sparktts(built, tmp_path / "ids", fmt="parquet", tokenizer_dir=tok_dir, style="text")
    tok = AutoTokenizer.from_pretrained(str(tok_dir))
    for row in pq.read_table(tmp_path / "ids" / "sparktts-train-000000.parquet").to_pylist():
        assert tok.decode(row["input_ids"]) == row["text"]
        assert tok(row["text"], add_special_tokens=False)["input_ids"] == row["input_ids"]
        prompt = tok.decode(row["input_ids"][:row["prompt_length"]])
        assert prompt.endswith(("<|end_global_token|>", "<|end_style_label|>"))  # where the target begins
    with pytest.raises(VoxboxError, match="unknown style"):
        export_sparktts(built, tmp_path / "x", style="chat")


def test_a_dataset_without_tokens_is_refused_not_exported_empty(tmp_path):
    root = tmp_path / "audio"
    root.mkdir()
    out = tmp_path / "built"
    write_dataset([_rec(root, "x", global_tokens=None, semantic_tokens=None)], out, name="t", formats=("parquet",))
    with pytest.raises(VoxboxError, match="no record has BiCodec tokens.*--model-dir"):
        export_sparktts(out, tmp_path / "ex")
    assert not (tmp_path / "ex").exists()


def test_a_folder_without_a_tokenizer_is_refused_before_writing(built, tmp_path):
    # e.g. the BiCodec-only model folder: transformers raised a bare ValueError here
    (tmp_path / "codec-only").mkdir()
    (tmp_path / "codec-only" / "config.yaml").write_text("sample_rate: 16000\n")
    with pytest.raises(VoxboxError, match="cannot load a tokenizer.*LLM/"):
        export_sparktts(built, tmp_path / "out", tokenizer_dir=tmp_path / "codec-only")
    assert not (tmp_path / "out").exists()
    with pytest.raises(VoxboxError, match="is a file"):
        export_sparktts(tmp_path / "codec-only" / "config.yaml", tmp_path / "out")


def test_export_rejects_a_tokenizer_with_other_ids(built, tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    t = Tokenizer(models.WordLevel({"a": 0, "[UNK]": 1}, unk_token="[UNK]"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=t)
    fast.add_tokens(P.added_tokens()[:10])
    fast.save_pretrained(str(tmp_path / "bad"))
    with pytest.raises(VoxboxError, match="tokenizer maps <\\|bicodec_global_0\\|> to 2, the Spark-TTS layout needs 151665"):
        export_sparktts(built, tmp_path / "x", tokenizer_dir=tmp_path / "bad")


def test_tts_example_rejects_out_of_range_tokens(tmp_path):
    from voxbox.sparktts.export import NoExample

    rec = Utterance(index="x", text="hi", global_tokens=[4096] * 32, semantic_tokens=[1])
    with pytest.raises(NoExample, match="token_out_of_range"):
        tts_example(rec)


def test_export_cli(built, tmp_path, capsys):
    from voxbox.cli import main

    rc = main(["export", "sparktts", str(built), "--out", str(tmp_path / "c"), "--format", "parquet",
               "--tasks", "controllable_tts"])
    assert rc == 0
    err = capsys.readouterr()
    text = err.out + err.err
    assert "8 records -> 3 controllable_tts examples" in text
    assert "skipped controllable_tts: 1 bad_global_tokens, 1 no_gender, 1 no_text, 1 no_tokens, 1 speed_over_10" in text
    assert (tmp_path / "c" / "sparktts-train-000000.parquet").exists()
    assert main(["export", "sparktts", str(built), "--out", str(tmp_path / "c")]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["export", "sparktts", str(built), "--out", str(tmp_path / "c"), "--force"]) == 0


@pytest.mark.slow
def test_on_a_voxbox_build(shared, tiny_bicodec, tmp_path, capsys):
    """The real chain: voxbox build (annotate + tokenize) -> export -> codec check with the
    model folder taken from the build's pipeline.yaml."""
    from voxbox.cli import main
    from voxbox.dataset.reader import open_dataset
    from voxbox.sparktts.synth import codec_check

    built = tmp_path / "built"
    assert main(["build", "--corpus", "libritts", "--root",
                 str(shared / "data/real-speech/libritts-mini/LibriTTS"), "--out", str(built),
                 "--model-dir", str(tiny_bicodec), "--format", "parquet"]) == 0
    assert "BiCodec tokens added to every record" in capsys.readouterr().out  # the summary says so
    recs = list(open_dataset(built).records())
    summary = export_sparktts(built, tmp_path / "ex")
    n = len(recs)
    assert summary["records"] == n and summary["examples"]["tts"] + sum(summary["skipped"]["tts"].values()) == n
    with_levels = [r for r in recs if r.pitch_level and r.speed_level and r.global_tokens]
    assert summary["examples"]["controllable_tts"] == len(with_levels) > 0
    rows = [json.loads(line) for f in summary["files"]
            for line in (tmp_path / "ex" / f["path"]).read_text(encoding="utf-8").splitlines()]
    by_index = {r.index: r for r in recs}
    for row in rows:
        rec = by_index[row["index"]]
        if row["task"] == "controllable_tts":
            assert P.gender_token(rec.gender) + P.pitch_label_token(rec.pitch_level) in row["prompt"]
            assert row["target"].startswith("<|start_acoustic_token|>" + P.pitch_value_token(rec.pitch_value)
                                            + P.speed_value_token(rec.speed_value))
        assert row["target"].endswith(P.semantic_tokens_str(rec.semantic_tokens) + "<|im_end|>")
    rep = codec_check(built, None, tmp_path / "codec", n=3, seed=0)
    assert rep["model_dir"] == str(tiny_bicodec) and rep["checked"] == 3
    assert all(r["frame_diff"] == 0 and r["error"] is None for r in rep["records"])


def test_a_second_export_into_the_same_folder_is_refused(built, tmp_path):
    from adversarial import busy, held_lock

    out = tmp_path / "out"
    with held_lock(out) as pid, pytest.raises(VoxboxError, match=re.escape(busy(out, pid))):
        export_sparktts(built, out)
    assert not out.exists()
    assert export_sparktts(built, out)["records"]
