"""The ``filter`` stage: thresholds from the pipeline YAML; a record that fails a rule is a
rejection ``filtered`` whose detail names the rule, the value and the threshold, so
nothing disappears (``voxbox`` reports and the rejects file show every one).

    stages:
      - stage: dnsmos
      - stage: filter
        params:
          preset: wenetspeech4tts_standard   # optional: named thresholds (below)
          dnsmos_ovrl_min: 3.0               # any rule; these win over the preset's
          duration_min: 1.0
          duration_max: 30.0
          clipping_max: 0.001
          speed_max: 10.0
          languages: [zh, en]
          wer_max: 0.1                       # needs annotate's asr_model

Rules (``None`` or absent: not checked), in the order they are tried (the first that
fires is named):

- ``dnsmos_sig_min``, ``dnsmos_bak_min``, ``dnsmos_ovrl_min``, ``dnsmos_p808_min``: the
  score computed by the ``dnsmos`` stage; when it was not run, the corpus's own score
  (``extra["dnsmos_p808"]`` of WenetSpeech4TTS, ``extra["dnsmos"]`` of Emilia, its
  DNSMOS P.835 OVRL per the Emilia paper: NOT CHECKED here). A record with neither is
  filtered too, with detail "no value" (a rule cannot pass what it cannot see);
- ``duration_min`` / ``duration_max`` (seconds: ``duration`` after annotate, else the
  header length), ``clipping_max`` (``clipping_ratio``), ``speed_min`` / ``speed_max``
  (syllables per second, ``speed``; speed outliers), ``languages`` (allowed codes);
- ``wer_max`` / ``cer_max``: the ASR check of a given transcript (``asr_wer``/``asr_cer``
  from annotate's ``asr_model``): VoxBox's re-check that a transcript matches its audio.
  A record whose text the ASR model wrote is not checked (it has nothing to differ
  from); a record with text but no rate is filtered with "no value".

Presets (:data:`PRESETS`): WenetSpeech4TTS's published tiers by DNSMOS P.808 (Basic >=
3.6, Standard >= 3.8, Premium >= 4.0: the WenetSpeech4TTS demo page, spec
voxbox-sources.md [S14]); ``emilia``: DNSMOS OVRL >= 3.0, the cut the Emilia-Pipe
description is reported to use (NOT CHECKED against the Emilia paper); ``voxbox_training``:
speed <= 10 SPS, the rule SparkVox's ``prepare_train.py`` applies (spec voxbox.md 3.7).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from voxbox.errors import VoxboxError
from voxbox.record import Result, Utterance, audio_seconds
from voxbox.stages import Stage, StageOption

PRESETS: Dict[str, Dict[str, Any]] = {
    "wenetspeech4tts_basic": {"dnsmos_p808_min": 3.6},
    "wenetspeech4tts_standard": {"dnsmos_p808_min": 3.8},
    "wenetspeech4tts_premium": {"dnsmos_p808_min": 4.0},
    "emilia": {"dnsmos_ovrl_min": 3.0},  # NOT CHECKED (see the module docstring)
    "voxbox_training": {"speed_max": 10.0},
}
SCORES = ("sig", "bak", "ovrl", "p808")
# Where a corpus keeps its own score when the dnsmos stage did not run.
NATIVE_SCORE = {"p808": ("dnsmos_p808",), "ovrl": ("dnsmos",)}
RULES = tuple(f"dnsmos_{s}_min" for s in SCORES) + (
    "duration_min", "duration_max", "clipping_max", "speed_min", "speed_max", "languages", "wer_max", "cer_max")


def _number(rule: str, value: Any) -> Optional[float]:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise VoxboxError(f"filter: {rule} must be a number, got {value!r}") from None


def resolve(params: Dict[str, Any]) -> Dict[str, Any]:
    """The preset's thresholds overlaid with the explicit ones; unknown names refused."""
    preset = params.get("preset")
    if preset is not None and preset not in PRESETS:
        raise VoxboxError(f"filter: unknown preset {preset!r} (known: {', '.join(sorted(PRESETS))})")
    unknown = sorted(set(params) - set(RULES) - {"preset"})
    if unknown:
        raise VoxboxError(f"filter: unknown rule(s) {', '.join(unknown)} (known: {', '.join(RULES)}, preset)")
    rules = dict(PRESETS.get(preset, {}))
    rules.update({k: v for k, v in params.items() if k != "preset" and v is not None})
    out: Dict[str, Any] = {}
    for k, v in rules.items():
        if k == "languages":
            if isinstance(v, str) or not all(isinstance(x, str) for x in v):
                raise VoxboxError("filter: languages must be a list of language codes, e.g. [zh, en]")
            out[k] = sorted(v)
        else:
            out[k] = _number(k, v)
    return out


def dnsmos_value(rec: Utterance, score: str) -> Tuple[Optional[float], str]:
    """(value, where it came from) of one DNSMOS score: computed, else the corpus's own."""
    v = getattr(rec, f"dnsmos_{score}")
    if v is not None:
        return float(v), "computed"
    for key in NATIVE_SCORE.get(score, ()):
        native = (rec.extra or {}).get(key)
        if isinstance(native, (int, float)) and not isinstance(native, bool):
            return float(native), f"native extra.{key}"
    return None, ""


def first_failure(rec: Utterance, rules: Dict[str, Any]) -> Optional[str]:
    """The detail of the first rule ``rec`` fails, or None when it passes them all."""
    for score in SCORES:
        limit = rules.get(f"dnsmos_{score}_min")
        if limit is None:
            continue
        v, src = dnsmos_value(rec, score)
        if v is None:
            return f"dnsmos_{score}_min {limit:g}: no value (run the dnsmos stage first)"
        if v < limit:
            return f"dnsmos_{score}_min {limit:g}: {v:g} ({src})"
    dur = float(rec.duration) if rec.duration is not None else audio_seconds(rec)
    checks: List[Tuple[str, Optional[float], bool]] = [
        ("duration_min", dur, True), ("duration_max", dur, False),
        ("clipping_max", rec.clipping_ratio, False),
        ("speed_min", rec.speed, True), ("speed_max", rec.speed, False)]
    for rule, value, is_min in checks:
        limit = rules.get(rule)
        if limit is None:
            continue
        if value is None:
            return f"{rule} {limit:g}: no value"
        if (value < limit) if is_min else (value > limit):
            return f"{rule} {limit:g}: {value:g}"
    langs = rules.get("languages")
    if langs is not None and rec.language not in langs:
        return f"languages {','.join(langs)}: {rec.language}"
    return _asr_failure(rec, rules)


def _asr_failure(rec: Utterance, rules: Dict[str, Any]) -> Optional[str]:
    """wer_max / cer_max; records whose text the ASR model wrote pass (nothing to check)."""
    if rec.text_source == "asr":
        return None
    for rule, value in (("wer_max", rec.asr_wer), ("cer_max", rec.asr_cer)):
        limit = rules.get(rule)
        if limit is None:
            continue
        if value is None:
            return f"{rule} {limit:g}: no value (annotate with asr_model first)"
        if value > limit:
            return f"{rule} {limit:g}: {value:g} (asr_model {rec.asr_model})"
    return None


def _options() -> Tuple[StageOption, ...]:
    scores = tuple(StageOption(f"dnsmos_{s}_min", float, None, f"reject records whose DNSMOS {s.upper()} is "
                               "below this (computed by the dnsmos stage, else the corpus's own)")
                   for s in SCORES)
    return (StageOption("preset", str, None, "named thresholds, overlaid by the explicit rules",
                        choices=tuple(sorted(PRESETS)), label="preset"),) + scores + (
        StageOption("duration_min", float, None, "reject clips shorter than this many seconds"),
        StageOption("duration_max", float, None, "reject clips longer than this many seconds"),
        StageOption("clipping_max", float, None, "reject clips whose clipping_ratio is above this"),
        StageOption("speed_min", float, None, "reject records slower than this (syllables per second)"),
        StageOption("speed_max", float, None, "reject records faster than this (syllables per second)"),
        StageOption("languages", list, None, "keep only these language codes, e.g. [zh, en]"),
        StageOption("wer_max", float, None, "reject records whose transcript's word error rate against the ASR "
                    "hypothesis (asr_wer, annotate asr_model) is above this, e.g. 0.1"),
        StageOption("cer_max", float, None, "reject records whose character error rate against the ASR hypothesis "
                    "(asr_cer; use it for Chinese and Japanese) is above this"))


class FilterStage(Stage):
    """Quality filter: records failing a rule go to rejects as `filtered`, with the rule."""

    name = "filter"
    options = _options()

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.rules = resolve(self.params)

    def process(self, rec: Utterance) -> Result:
        why = first_failure(rec, self.rules)
        return rec if why is None else self.reject(rec, "filtered", why)
