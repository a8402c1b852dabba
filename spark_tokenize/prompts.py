"""Spark-TTS token formats, attribute maps, prompt builders and output parsing.

Everything here is plain string/int work with no model: the exact token spellings and
ids of the released ``Spark-TTS-0.5B`` LLM vocabulary (spec sparktts.md 7.2), the
attribute maps of its ``token_parser`` (7.3), the three official prompt templates
(7.4) and a parser for generated ids that checks what the official code does not
(7.5): exactly 32 global tokens and a non-empty semantic sequence.

Prompts are plain concatenations with no separators; they must be byte-identical to
the official ones, because the model was trained on exactly those strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import partial
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from .errors import TokenizerError

# --------------------------------------------------------------------------------------
# Vocabulary layout (spec 7.2). The added tokens were appended with add_tokens (non-special)
# to the Qwen2.5 tokenizer in this order; their ids follow from the order alone.
# --------------------------------------------------------------------------------------

BASE_VOCAB_SIZE = 151_665  # Qwen2.5 BPE (151,643) + 22 base special tokens
ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
ENDOFTEXT_ID = 151_643
IM_START_ID = 151_644
IM_END_ID = 151_645
EOS_ID = IM_END_ID
EMBEDDING_SIZE = 166_000  # the released LLM pads its embedding to this

N_GLOBAL_TOKENS = 32  # BiCodec's global (speaker) token count per utterance
GLOBAL_CODEBOOK = 4096
SEMANTIC_CODEBOOK = 8192

TASKS = ("vc", "tts", "asr", "s2s", "t2s", "cap", "understand", "controllable_tts", "prompt_tts", "edit")
MARKERS = ("content", "style_label", "style_prompt", "acoustic_token", "global_token", "semantic_token")

# (prefix, count) of every numbered family, in vocabulary order.
_FAMILIES: Tuple[Tuple[str, int], ...] = (
    ("bicodec_global", GLOBAL_CODEBOOK),
    ("bicodec_semantic", SEMANTIC_CODEBOOK),
    ("pitch_value", 1001),
    ("pitch_var_value", 11),
    ("pitch_label", 5),
    ("pitch_var_label", 5),
    ("speed_value", 11),
    ("speed_label", 5),
    ("loudness_value", 31),
    ("loudness_label", 5),
    ("age", 5),
    ("gender", 3),
    ("emotion", 101),
)


def added_tokens() -> List[str]:
    """The 13,493 Spark-TTS tokens in the order they were added (defines their ids)."""
    out = [f"<|{prefix}_{i}|>" for prefix, count in _FAMILIES for i in range(count)]
    out += [f"<|task_{t}|>" for t in TASKS]
    out += [f"<|start_{m}|>" for m in MARKERS]
    out += [f"<|end_{m}|>" for m in MARKERS]
    return out


def _family_offsets() -> Dict[str, Tuple[int, int]]:
    offsets, nxt = {}, BASE_VOCAB_SIZE
    for prefix, count in _FAMILIES:
        offsets[prefix] = (nxt, count)
        nxt += count
    return offsets


FAMILY_OFFSETS = _family_offsets()
GLOBAL_OFFSET = FAMILY_OFFSETS["bicodec_global"][0]  # 151665
SEMANTIC_OFFSET = FAMILY_OFFSETS["bicodec_semantic"][0]  # 155761
TASK_OFFSET = BASE_VOCAB_SIZE + sum(c for _, c in _FAMILIES)  # 165136
START_OFFSET = TASK_OFFSET + len(TASKS)  # 165146
END_OFFSET = START_OFFSET + len(MARKERS)  # 165152
VOCAB_SIZE = END_OFFSET + len(MARKERS)  # 165158


def token_id(token: str) -> int:
    """Id of a Spark-TTS added token or base special under the released layout."""
    base = {ENDOFTEXT: ENDOFTEXT_ID, IM_START: IM_START_ID, IM_END: IM_END_ID}
    if token in base:
        return base[token]
    m = re.fullmatch(r"<\|([a-z_]+?)_(\d+)\|>", token)
    if m and m.group(1) in FAMILY_OFFSETS:
        start, count = FAMILY_OFFSETS[m.group(1)]
        i = int(m.group(2))
        if i < count:
            return start + i
    m = re.fullmatch(r"<\|task_([a-z_]+)\|>", token)
    if m and m.group(1) in TASKS:
        return TASK_OFFSET + TASKS.index(m.group(1))
    m = re.fullmatch(r"<\|(start|end)_([a-z_]+)\|>", token)
    if m and m.group(2) in MARKERS:
        return (START_OFFSET if m.group(1) == "start" else END_OFFSET) + MARKERS.index(m.group(2))
    raise TokenizerError(f"not a Spark-TTS token: {token!r}")


# --------------------------------------------------------------------------------------
# Attribute maps (spec 7.3)
# --------------------------------------------------------------------------------------

TASK_TOKEN_MAP = {
    "vc": "<|task_vc|>",
    "tts": "<|task_tts|>",
    "asr": "<|task_asr|>",
    "s2s": "<|task_s2s|>",
    "t2s": "<|task_t2s|>",
    "understand": "<|task_understand|>",
    "caption": "<|task_cap|>",
    "controllable_tts": "<|task_controllable_tts|>",
    "prompt_tts": "<|task_prompt_tts|>",
    "speech_edit": "<|task_edit|>",
}
LEVELS_MAP = {"very_low": 0, "low": 1, "moderate": 2, "high": 3, "very_high": 4}
LEVELS = tuple(LEVELS_MAP)
LEVELS_MAP_UI = {1: "very_low", 2: "low", 3: "moderate", 4: "high", 5: "very_high"}
GENDER_MAP = {"female": 0, "male": 1}
GENDERS = tuple(GENDER_MAP)
AGE_MAP = {"Child": 0, "Teenager": 1, "Youth-Adult": 2, "Middle-aged": 3, "Elderly": 4}
EMO_MAP = {
    name: i
    for i, name in enumerate((
        "UNKNOWN", "NEUTRAL", "ANGRY", "HAPPY", "SAD", "FEARFUL", "DISGUSTED", "SURPRISED",
        "SARCASTIC", "EXCITED", "SLEEPY", "CONFUSED", "EMPHASIS", "LAUGHING", "SINGING",
        "WORRIED", "WHISPER", "ANXIOUS", "NO-AGREEMENT", "APOLOGETIC", "CONCERNED",
        "ENUNCIATED", "ASSERTIVE", "ENCOURAGING", "CONTEMPT",
    ))
}


def level_index(level) -> int:
    """A level given as name (``"high"``), index 0..4 or UI slider value ("1".."5")."""
    if isinstance(level, str):
        key = level.strip().lower().replace("-", "_").replace(" ", "_")
        if key in LEVELS_MAP:
            return LEVELS_MAP[key]
        if key.isdigit() and int(key) in LEVELS_MAP_UI:
            return LEVELS_MAP[LEVELS_MAP_UI[int(key)]]
    elif isinstance(level, int) and 0 <= level <= 4:
        return level
    raise TokenizerError(f"unknown level {level!r}: use one of {', '.join(LEVELS)} (or 1-5)")


def gender_index(gender) -> int:
    if isinstance(gender, str) and gender.strip().lower() in GENDER_MAP:
        return GENDER_MAP[gender.strip().lower()]
    raise TokenizerError(f"unknown gender {gender!r}: use female or male")


# --------------------------------------------------------------------------------------
# Token builders (TokenParser equivalents; values are clamped ints as in the original)
# --------------------------------------------------------------------------------------

def _clamp(v, lo: int, hi: int) -> int:
    return max(lo, min(hi, int(v)))


def _tag(kind: str, i) -> str:
    return f"<|{kind}_{int(i)}|>"


# Largest value of each acoustic value token; TokenParser clamps into 0..max.
VALUE_MAX = {"pitch_value": 1000, "pitch_var_value": 10, "speed_value": 10, "loudness_value": 30}


def value_token(kind: str, v) -> str:
    """``<|pitch_value_N|>`` and the like: v truncated to an int and clamped to the kind's range."""
    return _tag(kind, _clamp(v, 0, VALUE_MAX[kind]))


def label_token(kind: str, value) -> str:
    """``<|gender_N|>``, ``<|pitch_label_N|>``, ``<|speed_label_N|>`` from a name (or 1-5 level)."""
    return _tag(kind, gender_index(value) if kind == "gender" else level_index(value))


global_token = partial(_tag, "bicodec_global")
semantic_token = partial(_tag, "bicodec_semantic")
pitch_value_token = partial(value_token, "pitch_value")
pitch_var_value_token = partial(value_token, "pitch_var_value")
speed_value_token = partial(value_token, "speed_value")
loudness_value_token = partial(value_token, "loudness_value")
pitch_label_token = partial(label_token, "pitch_label")
speed_label_token = partial(label_token, "speed_label")
gender_token = partial(label_token, "gender")


def global_tokens_str(tokens: Iterable[int]) -> str:
    tokens = _as_int_list(tokens)
    if len(tokens) != N_GLOBAL_TOKENS:
        raise TokenizerError(f"expected {N_GLOBAL_TOKENS} global tokens, got {len(tokens)}")
    bad = [t for t in tokens if not 0 <= t < GLOBAL_CODEBOOK]
    if bad:
        raise TokenizerError(f"global token {bad[0]} outside 0..{GLOBAL_CODEBOOK - 1}")
    return "".join(global_token(t) for t in tokens)


def semantic_tokens_str(tokens: Iterable[int]) -> str:
    tokens = _as_int_list(tokens)
    bad = [t for t in tokens if not 0 <= t < SEMANTIC_CODEBOOK]
    if bad:
        raise TokenizerError(f"semantic token {bad[0]} outside 0..{SEMANTIC_CODEBOOK - 1}")
    return "".join(semantic_token(t) for t in tokens)


def _as_int_list(tokens) -> List[int]:
    """Flatten a list, nested list, numpy or torch array of token indices to ints."""
    import numpy as np

    if hasattr(tokens, "detach"):
        tokens = tokens.detach().cpu().numpy()
    return [int(t) for t in np.asarray(tokens).reshape(-1).tolist()]


# --------------------------------------------------------------------------------------
# Prompt templates (spec 7.4)
# --------------------------------------------------------------------------------------

def clone_prompt(text: str, global_tokens, semantic_tokens=None, prompt_text: Optional[str] = None) -> str:
    """Voice-cloning prompt.

    With a reference transcript (``prompt_text``) the reference's semantic tokens are
    part of the prompt and the model continues them (template a1); without one, the
    prompt ends at ``<|end_global_token|>`` (template a2). As in the official code, a
    transcript needs the reference semantic tokens.
    """
    head = TASK_TOKEN_MAP["tts"] + "<|start_content|>"
    glob = "<|start_global_token|>" + global_tokens_str(global_tokens) + "<|end_global_token|>"
    if prompt_text is not None:
        if semantic_tokens is None:
            raise TokenizerError("a clone prompt with a reference transcript needs the reference semantic tokens")
        sem = semantic_tokens_str(semantic_tokens)
        return head + prompt_text + text + "<|end_content|>" + glob + "<|start_semantic_token|>" + sem
    return head + text + "<|end_content|>" + glob


def control_prompt(text: str, gender, pitch, speed) -> str:
    """Controllable-TTS prompt (template b): gender + pitch level + speed level."""
    return (
        TASK_TOKEN_MAP["controllable_tts"] + "<|start_content|>" + text + "<|end_content|>"
        + "<|start_style_label|>" + gender_token(gender) + pitch_label_token(pitch)
        + speed_label_token(speed) + "<|end_style_label|>"
    )


def tts_target(semantic_tokens) -> str:
    """Training target of the zero-shot TTS example (and what template a2 generates)."""
    sem = _as_int_list(semantic_tokens)
    if not sem:
        raise TokenizerError("empty semantic token sequence")
    return "<|start_semantic_token|>" + semantic_tokens_str(sem) + IM_END


def control_target(pitch_value, speed_value, global_tokens, semantic_tokens) -> str:
    """Training target of the controllable example: the value chain, then globals, then semantics."""
    sem = _as_int_list(semantic_tokens)
    if not sem:
        raise TokenizerError("empty semantic token sequence")
    return (
        "<|start_acoustic_token|>" + pitch_value_token(pitch_value) + speed_value_token(speed_value)
        + "<|end_acoustic_token|>" + "<|start_global_token|>" + global_tokens_str(global_tokens)
        + "<|end_global_token|>" + "<|start_semantic_token|>" + semantic_tokens_str(sem) + IM_END
    )


# --------------------------------------------------------------------------------------
# Parsing generated ids (spec 7.5), with the validation the official code lacks
# --------------------------------------------------------------------------------------

class ParseError(TokenizerError):
    """Generated ids that do not make an utterance."""


@dataclass
class ParsedOutput:
    global_tokens: Optional[List[int]]  # 32 ints when the model generated them (control mode)
    semantic_tokens: List[int]
    pitch_value: Optional[int] = None  # from the CoT value chain (control mode)
    speed_value: Optional[int] = None
    finished: bool = True  # False when generation stopped without <|im_end|> (hit max tokens)
    other_tokens: int = 0  # ids that are neither audio tokens nor structure markers
    counts: Dict[str, int] = field(default_factory=dict)


def describe_ids(ids: Sequence[int]) -> Dict[str, int]:
    """Count generated ids by kind, to say what came back when parsing fails."""
    counts: Dict[str, int] = {}
    for t in ids:
        counts[_kind(int(t))] = counts.get(_kind(int(t)), 0) + 1
    return counts


def _kind(t: int) -> str:
    if GLOBAL_OFFSET <= t < GLOBAL_OFFSET + GLOBAL_CODEBOOK:
        return "global"
    if SEMANTIC_OFFSET <= t < SEMANTIC_OFFSET + SEMANTIC_CODEBOOK:
        return "semantic"
    if t == IM_END_ID:
        return "im_end"
    if t < ENDOFTEXT_ID:
        return "text"
    if t < BASE_VOCAB_SIZE:
        return "base_special"
    if t < TASK_OFFSET:
        return "attribute"
    if t < VOCAB_SIZE:
        return "marker"
    return "unused"


def _summary(counts: Dict[str, int], n: int) -> str:
    parts = ", ".join(f"{v} {k}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
    return f"{n} ids ({parts or 'nothing'})"


def parse_output(ids: Sequence[int], expect_global: bool, pad_id: Optional[int] = None) -> ParsedOutput:
    """Parse the ids an LLM generated after the prompt.

    ``expect_global``: control mode, where the model also generates the 32 global tokens.
    Everything after the first ``<|im_end|>`` is ignored (padding of batched generation).
    Raises :class:`ParseError` naming what came back when the result is not usable:
    no semantic tokens, or (in control mode) a global token count other than 32.
    """
    ids = _as_int_list(ids)
    finished = False
    if IM_END_ID in ids:
        ids = ids[: ids.index(IM_END_ID)]
        finished = True
    if pad_id is not None and pad_id != IM_END_ID:
        ids = [t for t in ids if t != pad_id]
    counts = describe_ids(ids)
    sem = [t - SEMANTIC_OFFSET for t in ids if SEMANTIC_OFFSET <= t < SEMANTIC_OFFSET + SEMANTIC_CODEBOOK]
    glob = [t - GLOBAL_OFFSET for t in ids if GLOBAL_OFFSET <= t < GLOBAL_OFFSET + GLOBAL_CODEBOOK]
    pv_start, pv_count = FAMILY_OFFSETS["pitch_value"]
    sv_start, sv_count = FAMILY_OFFSETS["speed_value"]
    pitch_values = [t - pv_start for t in ids if pv_start <= t < pv_start + pv_count]
    speed_values = [t - sv_start for t in ids if sv_start <= t < sv_start + sv_count]
    stop = "ended with <|im_end|>" if finished else "no <|im_end|> (hit the token limit?)"
    if expect_global and len(glob) != N_GLOBAL_TOKENS:
        raise ParseError(
            f"generated {len(glob)} global tokens, need exactly {N_GLOBAL_TOKENS}; "
            f"got {_summary(counts, len(ids))}, {stop}"
        )
    if not sem:
        raise ParseError(f"generated no semantic tokens; got {_summary(counts, len(ids))}, {stop}")
    structural = sum(v for k, v in counts.items() if k in ("marker", "attribute"))
    other = len(ids) - len(sem) - len(glob) - structural
    return ParsedOutput(
        global_tokens=glob if expect_global else None,
        semantic_tokens=sem,
        pitch_value=pitch_values[0] if pitch_values else None,
        speed_value=speed_values[0] if speed_values else None,
        finished=finished,
        other_tokens=other,
        counts=counts,
    )


def parse_text(decoded: str, expect_global: bool) -> ParsedOutput:
    """The official path: regex over ``batch_decode`` text. Same checks as parse_output."""
    sem = [int(x) for x in re.findall(r"bicodec_semantic_(\d+)", decoded)]
    glob = [int(x) for x in re.findall(r"bicodec_global_(\d+)", decoded)]
    ids = [GLOBAL_OFFSET + g for g in glob] + [SEMANTIC_OFFSET + s for s in sem]
    return parse_output(ids + ([IM_END_ID] if IM_END in decoded else []), expect_global)
