"""Spark-TTS token layout, prompt templates and output parsing (no model needed)."""

import numpy as np
import pytest

from spark_tokenize import prompts as P
from spark_tokenize.errors import TokenizerError

G = ["<|bicodec_global_%d|>" % i for i in range(4096)]


def test_ids_match_ids_reported_from_the_released_vocabulary():
    # The ids independently reported from the released added_tokens.json (spec 7.2).
    reported = {
        "<|bicodec_global_0|>": 151665, "<|bicodec_global_4095|>": 155760,
        "<|bicodec_semantic_0|>": 155761, "<|bicodec_semantic_8191|>": 163952,
        "<|pitch_value_0|>": 163953, "<|pitch_var_value_0|>": 164954,
        "<|speed_value_0|>": 164975, "<|gender_0|>": 165032,
        "<|emotion_100|>": 165135, "<|task_vc|>": 165136,
        "<|task_tts|>": 165137, "<|start_content|>": 165146,
    }
    assert {t: P.token_id(t) for t in reported} == reported
    starts_ends = ["<|start_global_token|>", "<|start_semantic_token|>", "<|end_content|>",
                   "<|end_style_label|>", "<|end_style_prompt|>", "<|end_acoustic_token|>",
                   "<|end_global_token|>", "<|end_semantic_token|>"]
    assert [P.token_id(t) for t in starts_ends] == list(range(165150, 165158))
    assert P.token_id("<|im_end|>") == P.EOS_ID == 151645


def test_added_tokens_order_defines_the_ids():
    toks = P.added_tokens()
    assert len(toks) == 13493 and len(set(toks)) == len(toks)
    assert P.BASE_VOCAB_SIZE + len(toks) == P.VOCAB_SIZE == 165158
    for i in (0, 4095, 4096, 12287, 12288, 13292, 13470, 13492):
        assert P.token_id(toks[i]) == P.BASE_VOCAB_SIZE + i
    assert toks[-1] == "<|end_semantic_token|>"
    with pytest.raises(TokenizerError):
        P.token_id("<|bicodec_global_4096|>")


def test_attribute_maps():
    assert P.LEVELS_MAP == {"very_low": 0, "low": 1, "moderate": 2, "high": 3, "very_high": 4}
    assert P.GENDER_MAP == {"female": 0, "male": 1}
    assert P.AGE_MAP["Elderly"] == 4 and P.EMO_MAP["CONTEMPT"] == 24 and P.EMO_MAP["UNKNOWN"] == 0
    assert P.TASK_TOKEN_MAP["caption"] == "<|task_cap|>" and P.TASK_TOKEN_MAP["speech_edit"] == "<|task_edit|>"
    assert P.level_index("very_high") == 4 and P.level_index("1") == 0 and P.level_index("Very-Low") == 0
    with pytest.raises(TokenizerError, match="unknown level"):
        P.level_index("loud")
    with pytest.raises(TokenizerError, match="unknown gender"):
        P.gender_token("robot")
    # value tokens are clamped like the official TokenParser
    assert P.pitch_value_token(1234.9) == "<|pitch_value_1000|>"
    assert P.speed_value_token(-3) == "<|speed_value_0|>"
    assert P.speed_value_token(4.9) == "<|speed_value_4|>"


def test_control_prompt_byte_identical():
    got = P.control_prompt("Hello there.", "male", "high", "very_low")
    want = ("<|task_controllable_tts|><|start_content|>Hello there.<|end_content|>"
            "<|start_style_label|><|gender_1|><|pitch_label_3|><|speed_label_0|><|end_style_label|>")
    assert got == want
    got = P.control_prompt("你好", "female", "moderate", "low")
    want = ("<|task_controllable_tts|><|start_content|>你好<|end_content|>"
            "<|start_style_label|><|gender_0|><|pitch_label_2|><|speed_label_1|><|end_style_label|>")
    assert got == want


def test_clone_prompts_byte_identical():
    glob = [7] * 31 + [4095]
    gstr = "<|bicodec_global_7|>" * 31 + "<|bicodec_global_4095|>"
    no_transcript = P.clone_prompt("Good day.", np.array([[glob]], dtype=np.int32))
    assert no_transcript == ("<|task_tts|><|start_content|>Good day.<|end_content|>"
                             "<|start_global_token|>" + gstr + "<|end_global_token|>")
    with_transcript = P.clone_prompt("Good day.", glob, np.array([[0, 8191, 12]]), prompt_text="I was there. ")
    assert with_transcript == (
        "<|task_tts|><|start_content|>I was there. Good day.<|end_content|>"
        "<|start_global_token|>" + gstr + "<|end_global_token|>"
        "<|start_semantic_token|><|bicodec_semantic_0|><|bicodec_semantic_8191|><|bicodec_semantic_12|>")
    with pytest.raises(TokenizerError, match="expected 32 global tokens, got 31"):
        P.clone_prompt("x", glob[:31])
    with pytest.raises(TokenizerError, match="outside"):
        P.clone_prompt("x", [4096] * 32)


def test_training_targets_byte_identical():
    glob = list(range(32))
    gstr = "".join(f"<|bicodec_global_{i}|>" for i in range(32))
    assert P.tts_target([3, 2, 1]) == ("<|start_semantic_token|><|bicodec_semantic_3|>"
                                        "<|bicodec_semantic_2|><|bicodec_semantic_1|><|im_end|>")
    assert P.control_target(258, 4, glob, [9]) == (
        "<|start_acoustic_token|><|pitch_value_258|><|speed_value_4|><|end_acoustic_token|>"
        "<|start_global_token|>" + gstr + "<|end_global_token|>"
        "<|start_semantic_token|><|bicodec_semantic_9|><|im_end|>")
    with pytest.raises(TokenizerError, match="empty semantic"):
        P.tts_target([])


def _ids(tokens):
    return [P.token_id(t) for t in tokens]


def test_parse_control_output():
    glob = list(range(100, 132))
    ids = _ids(["<|start_acoustic_token|>", "<|pitch_value_300|>", "<|speed_value_5|>", "<|end_acoustic_token|>",
                "<|start_global_token|>"] + [G[g] for g in glob]
               + ["<|end_global_token|>", "<|start_semantic_token|>", "<|bicodec_semantic_5|>",
                  "<|bicodec_semantic_8191|>", "<|im_end|>", "<|endoftext|>", "<|endoftext|>"])
    out = P.parse_output(ids, expect_global=True, pad_id=P.ENDOFTEXT_ID)
    assert out.global_tokens == glob and out.semantic_tokens == [5, 8191]
    assert out.pitch_value == 300 and out.speed_value == 5 and out.finished
    assert out.other_tokens == 0
    # The text path (official regex over decoded text) gives the same tokens.
    text = "".join(["<|start_global_token|>"] + [G[g] for g in glob] + ["<|bicodec_semantic_5|><|bicodec_semantic_8191|>"])
    t = P.parse_text(text, expect_global=True)
    assert t.global_tokens == glob and t.semantic_tokens == [5, 8191] and not t.finished


def test_parse_clone_output_ignores_what_follows_im_end():
    ids = _ids(["<|start_semantic_token|>", "<|bicodec_semantic_1|>", "<|bicodec_semantic_2|>", "<|im_end|>",
                "<|bicodec_semantic_3|>"])
    out = P.parse_output(np.array(ids), expect_global=False)
    assert out.semantic_tokens == [1, 2] and out.global_tokens is None and out.finished


def test_parse_errors_say_what_came_back():
    # 31 globals: the official code would crash inside the d-vector projection.
    ids = _ids([G[0]] * 31 + ["<|bicodec_semantic_1|>", "<|im_end|>"])
    with pytest.raises(P.ParseError, match=r"generated 31 global tokens, need exactly 32; got 32 ids "
                                           r"\(31 global, 1 semantic\), ended with <\|im_end\|>"):
        P.parse_output(ids, expect_global=True)
    # No semantic tokens, no end: plain text ids up to the limit.
    with pytest.raises(P.ParseError, match=r"no semantic tokens; got 3 ids \(3 text\), no <\|im_end\|>"):
        P.parse_output([10, 11, 12], expect_global=False)
    # Immediate end of sequence.
    with pytest.raises(P.ParseError, match=r"no semantic tokens; got 0 ids \(nothing\), ended with"):
        P.parse_output([P.IM_END_ID], expect_global=False)
    # Semantic tokens only after <|im_end|> do not count.
    with pytest.raises(P.ParseError):
        P.parse_output(_ids(["<|im_end|>", "<|bicodec_semantic_1|>"]), expect_global=False)
    assert issubclass(P.ParseError, TokenizerError)
