"""A record as it goes into a shard: honest about every null, free of local paths.

Between stages a record carries ``corpus_root`` (the builder's folder the audio is read
from) and whatever nulls the stages left. A published record must not expose the
builder's file system, and a reader must be able to tell *why* a value is missing, so
the shard writers store :func:`shard_record` of every record:

- ``wav_path`` is filled as the VoxBox release shapes it: ``<corpus>/<index>.<ext>``,
  ``ext`` being the audio member's extension in the shard;
- ``corpus_root`` is left out of the stored record (:data:`SHARD_EXCLUDED`); the build
  writes the roots to ``provenance.json`` instead;
- every field that is still null gets a reason code in ``null_reasons`` (the reason a
  stage gave is kept; otherwise :func:`null_reason` says which step never filled it),
  and ``null_reasons`` itself is always an object (``{}`` when nothing is null).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Dict, Optional

from voxbox.reasons import check
from voxbox.record import NATIVE, Utterance

# The layout of a stored record; part of a build's pipeline fingerprint, so a folder whose
# shards were written with another layout is not resumed into a mix. 2: utt_id, wav_path
# filled, every null explained, no corpus_root, shards grouped by split. 3: speaker_source,
# gender_clip(_confidence), duplicate_of, embedding(_model). 4: text_source, asr_model, asr_text,
# asr_wer, asr_cer (annotate asr_model).
RECORD_FORMAT = 4

# Fields a shard never stores (they only mean something on the builder's machine).
SHARD_EXCLUDED = ("corpus_root",)

# Reason codes given here (a stage's own reason always wins); meanings in voxbox/reasons.py.
NOT_TOKENIZED = check("not_tokenized", "null")      # no tokenize stage ran (no --model-dir)
NOT_ANNOTATED = check("not_annotated", "null")      # no annotate stage ran
NOT_COMPUTED = check("not_computed", "null")        # annotate ran but gave no value and no reason
NO_NATIVE_LABEL = check("no_native_label", "null")  # the corpus has no such label, no model ran
NATIVE_LABEL = check("native_label", "null")        # model/confidence of a label the corpus gave
NOT_IN_SOURCE = check("not_in_source", "null")      # the corpus (or manifest) does not provide it
# Fields that are null in the normal case, with what their null means (voxbox/labels).
_NULL_MEANS = {
    "embedding": check("not_requested", "null"), "embedding_model": check("not_requested", "null"),
    "duplicate_of": check("not_a_duplicate", "null"), "speaker_source": check("corpus_speaker", "null"),
    "gender_clip": check("no_model_answer", "null"), "gender_clip_confidence": check("no_model_answer", "null"),
    **{name: check("no_asr_model", "null") for name in ("asr_model", "asr_text", "asr_wer", "asr_cer")},
}
CORPUS_TEXT = check("corpus_text", "null")

_TOKEN_FIELDS = ("global_tokens", "semantic_tokens")
_LABELS = ("gender", "age", "emotion")
_ANNOTATE_FIELDS = frozenset((
    "pitch", "pitch_std", "speed", "duration", "speech_duration", "syllable_num", "syllables",
    "pitch_backend", "pitch_level", "pitch_std_level", "speed_level", "pitch_value", "pitch_var_value",
    "speed_value", "loudness", "clipping_ratio",
))
_NEVER_EXPLAINED = frozenset(("null_reasons", "wav_path", *SHARD_EXCLUDED))
FIELD_NAMES = tuple(f.name for f in fields(Utterance))


def wav_path(rec: Utterance, ext: str) -> str:
    """The release's ``<corpus>/<index>.<ext>`` (spec voxbox.md section 4)."""
    name = f"{rec.index}.{ext}"
    return f"{rec.corpus}/{name}" if rec.corpus else name


def null_reason(rec: Utterance, name: str, reasons: Dict[str, str]) -> str:
    """Why ``name`` is null in ``rec`` when no stage said so."""
    annotated = rec.pitch_backend is not None
    if name in _TOKEN_FIELDS:
        return NOT_TOKENIZED
    if name in _ANNOTATE_FIELDS:
        return NOT_COMPUTED if annotated else NOT_ANNOTATED
    if name in _LABELS:
        return NOT_COMPUTED if annotated else NO_NATIVE_LABEL
    if name == "text_source":
        return CORPUS_TEXT if rec.text is not None else NOT_IN_SOURCE
    if name in _NULL_MEANS:
        return _NULL_MEANS[name] if annotated or name in ("duplicate_of", "speaker_source") else NOT_ANNOTATED
    label, _, part = name.rpartition("_")
    if label in _LABELS and part in ("source", "model", "confidence"):
        value, source = getattr(rec, label), getattr(rec, f"{label}_source")
        if value is None:
            return reasons.get(label) or null_reason(rec, label, reasons)
        if source == NATIVE:
            return NATIVE_LABEL
        if label == "emotion" and value == "UNKNOWN":
            return reasons.get(label) or NO_NATIVE_LABEL  # VoxBox's "no emotion label"
    return NOT_IN_SOURCE


def explain_nulls(rec: Utterance) -> Dict[str, str]:
    """``null_reasons`` covering every null field: stage reasons kept, the rest filled in;
    reasons for fields that do have a value are dropped (they would mislead)."""
    given = dict(rec.null_reasons or {})
    out = {k: v for k, v in given.items() if k not in FIELD_NAMES or getattr(rec, k) is None}
    for name in FIELD_NAMES:
        if name in _NEVER_EXPLAINED or name in out or getattr(rec, name) is not None:
            continue
        out[name] = null_reason(rec, name, out)
    return dict(sorted(out.items()))


def shard_record(rec: Utterance, ext: str) -> Utterance:
    """The record exactly as a shard stores it (see the module docstring)."""
    extra: Optional[dict] = rec.extra
    path = wav_path(rec, ext)
    if rec.wav_path and rec.wav_path != path:
        # A release line's own wav_path names a file of that release: keep it, not as ours.
        extra = {**(extra or {}), "source_wav_path": rec.wav_path}
    rec = rec.replace(wav_path=path, corpus_root=None, extra=extra)
    return rec.replace(null_reasons=explain_nulls(rec))


def shard_row(row: dict) -> dict:
    """A flat record row (``manifest._to_arrow_row``) without the excluded fields."""
    return {k: v for k, v in row.items() if k not in SHARD_EXCLUDED}
