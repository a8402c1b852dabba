"""The utterance record: the one type that flows between stages.

Field names and order follow the VoxBox release (``index`` ... ``wav_path``), then
what a rebuild needs and VoxBox lost (provenance), then what later stages add
(labels with their provenance, levels, value tokens, quality fields, BiCodec tokens).
Every field not yet known is ``None``; a stage fills fields with
:func:`dataclasses.replace` and never mutates a record in place.

Manifest I/O (JSONL, JSONL.gz, Parquet, rejects files) lives in :mod:`voxbox.manifest`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from voxbox import reasons
from voxbox.errors import VoxboxError

# The release's key order (spec/voxbox.md section 4); also the order of export.
VOXBOX_FIELDS = (
    "index", "split", "language", "age", "gender", "emotion", "pitch", "pitch_std",
    "speed", "duration", "speech_duration", "syllable_num", "text", "syllables",
    "wav_path",
)

AGE_GROUPS = ("Child", "Teenager", "Youth-Adult", "Middle-aged", "Elderly")
GENDERS = ("female", "male")
EMOTIONS = (
    "UNKNOWN", "NEUTRAL", "ANGRY", "HAPPY", "SAD", "FEARFUL", "DISGUSTED", "SURPRISED",
    "SARCASTIC", "EXCITED", "SLEEPY", "CONFUSED", "EMPHASIS", "LAUGHING", "SINGING",
    "WORRIED", "WHISPER", "ANXIOUS", "NO-AGREEMENT", "APOLOGETIC", "CONCERNED",
    "ENUNCIATED", "ASSERTIVE", "ENCOURAGING", "CONTEMPT",
)
LEVELS = ("very_low", "low", "moderate", "high", "very_high")

# Where a categorical label came from.
NATIVE = "native"
PREDICTED = "predicted"


def age_group(years: float | int | None) -> Optional[str]:
    """Map an age in years to VoxBox's five groups (None stays None)."""
    if years is None:
        return None
    years = float(years)
    if years < 12:
        return "Child"
    if years < 18:
        return "Teenager"
    if years < 40:
        return "Youth-Adult"
    if years < 60:
        return "Middle-aged"
    return "Elderly"


def make_index(corpus: str, source_path: str) -> str:
    """Stable id: same corpus and source path give the same index, on any machine.

    VoxBox numbered utterances sequentially (``VCTK_0000044280``), which changes when
    the file list changes. We hash instead: 16 hex digits (64 bits) keep the chance of
    any collision in a 100M-utterance corpus below 3e-4, and prepare rejects
    duplicates anyway. No dots, so it is a valid WebDataset key.
    """
    rel = source_path.replace(os.sep, "/")
    digest = hashlib.sha1(f"{corpus}\0{rel}".encode("utf-8")).hexdigest()[:16]
    archive = _archive_of(rel)
    if archive:
        # An archive member (voxbox/media.py): the first 6 hex digits come from the archive,
        # so sorting by index keeps each archive's members together and a build task reads
        # few archives (a .tar.gz is one sequential pass per task that needs it).
        digest = hashlib.sha1(f"{corpus}\0{archive}".encode("utf-8")).hexdigest()[:6] + digest[6:]
    return f"{corpus}_{digest}"


def _archive_of(rel: str) -> Optional[str]:
    parts = rel.split("/")
    for i, part in enumerate(parts[:-1]):
        if part.endswith((".tar", ".tar.gz", ".tgz")):
            return "/".join(parts[:i + 1])
    return None


@dataclass(frozen=True)
class Utterance:
    # --- VoxBox release fields, in release order -------------------------------
    index: str
    split: str = "train"
    language: Optional[str] = None
    age: Optional[str] = None
    gender: Optional[str] = None
    emotion: Optional[str] = None
    pitch: Optional[float] = None
    pitch_std: Optional[float] = None
    speed: Optional[float] = None
    duration: Optional[float] = None
    speech_duration: Optional[float] = None
    syllable_num: Optional[int] = None
    text: Optional[str] = None
    syllables: Optional[str] = None
    wav_path: Optional[str] = None
    # --- provenance VoxBox lost --------------------------------------------------
    corpus: Optional[str] = None
    utt_id: Optional[str] = None  # the corpus's own utterance id (e.g. 260_123440_000010_000004)
    speaker: Optional[str] = None
    # None: the corpus's own speaker id; "predicted": a cluster id from `voxbox speakers`.
    speaker_source: Optional[str] = None
    # None: the corpus's own transcript; "asr": written by annotate's asr_model (see asr_model).
    text_source: Optional[str] = None
    source_path: Optional[str] = None  # relative to corpus_root, "/"-separated
    # Where source_path resolves; set by prepare. Local to the builder: built shards leave
    # it out (provenance.json keeps it), see voxbox.shards.finalize.
    corpus_root: Optional[str] = None
    sample_rate: Optional[int] = None  # of the source file
    num_samples: Optional[int] = None  # of the source file (of the span, for a span), per channel
    channels: Optional[int] = None
    # A record that is a span of a longer recording (GigaSpeech, a podcast): seconds into
    # source_path and its length; both None for a whole file. See voxbox/media.py.
    span_offset: Optional[float] = None
    span_duration: Optional[float] = None
    license: Optional[str] = None
    # --- label provenance: "native" (from the corpus) or "predicted" ------------
    gender_source: Optional[str] = None
    gender_model: Optional[str] = None
    gender_confidence: Optional[float] = None
    # The gender model's own answer for this clip, whenever it ran: equal to the predicted
    # gender, or beside a native label (a check of the corpus) or a speaker vote.
    gender_clip: Optional[str] = None
    gender_clip_confidence: Optional[float] = None
    age_source: Optional[str] = None
    age_model: Optional[str] = None
    age_confidence: Optional[float] = None
    emotion_source: Optional[str] = None
    emotion_model: Optional[str] = None
    emotion_confidence: Optional[float] = None
    # --- derived levels and Spark-TTS value tokens ------------------------------
    pitch_backend: Optional[str] = None
    pitch_level: Optional[str] = None
    pitch_std_level: Optional[str] = None
    speed_level: Optional[str] = None
    pitch_value: Optional[int] = None
    pitch_var_value: Optional[int] = None
    speed_value: Optional[int] = None
    # --- quality ---------------------------------------------------------------
    loudness: Optional[float] = None
    clipping_ratio: Optional[float] = None
    # DNSMOS computed by the "dnsmos" stage (P.835 SIG/BAK/OVRL, P.808); a corpus's own
    # scores stay in extra as native values (extra["dnsmos"], extra["dnsmos_p808"]).
    dnsmos_sig: Optional[float] = None
    dnsmos_bak: Optional[float] = None
    dnsmos_ovrl: Optional[float] = None
    dnsmos_p808: Optional[float] = None
    # The ASR check (annotate asr_model): the model, its hypothesis, and word / character
    # error rates of the given text against it (null when the text is the hypothesis).
    asr_model: Optional[str] = None
    asr_text: Optional[str] = None
    asr_wer: Optional[float] = None
    asr_cer: Optional[float] = None
    # Index of the record this one duplicates (`voxbox dedup`); null when unique or the keeper.
    duplicate_of: Optional[str] = None
    # --- speaker embedding (annotate --embeddings): unit vector, float16 values -----
    embedding: Optional[list] = None
    embedding_model: Optional[str] = None
    # Explicit nulls carry a reason code, e.g. {"pitch": "no_voiced_frames"}.
    null_reasons: Optional[dict] = None
    # --- BiCodec tokens ----------------------------------------------------------
    global_tokens: Optional[list] = None
    semantic_tokens: Optional[list] = None
    # Free-form, JSON-serialisable; for recipe-specific extras (e.g. emotion level).
    extra: Optional[dict] = None

    # -------------------------------------------------------------------------------
    @property
    def audio_path(self) -> Path:
        """Absolute location of the source audio."""
        if self.source_path is None:
            raise VoxboxError(f"{self.index}: record has no source_path")
        root = Path(self.corpus_root) if self.corpus_root else Path(".")
        return root / self.source_path

    def missing_audio_detail(self) -> str:
        """Why a stage cannot find this record's audio (for a ``no_audio_path`` rejection)."""
        if self.wav_path:
            # A VoxBox release line: its wav_path is relative to an unknown folder.
            return (f"record has no source_path, only the release's wav_path {self.wav_path!r}; set "
                    "source_path to the audio file (and corpus_root to the folder it is relative to)")
        return "record has no source_path"

    def replace(self, **changes: Any) -> "Utterance":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def voxbox_dict(self) -> dict:
        """The record as the VoxBox release shapes it (15 keys, release order)."""
        return {k: getattr(self, k) for k in VOXBOX_FIELDS}

    @classmethod
    def from_dict(cls, data: dict) -> "Utterance":
        known = FIELD_NAMES
        unknown = set(data) - known
        kwargs = {k: v for k, v in data.items() if k in known}
        if unknown:
            # Keep what we do not know instead of dropping it silently.
            extra = dict(kwargs.get("extra") or {})
            for k in sorted(unknown):
                extra[k] = data[k]
            kwargs["extra"] = extra
        if "index" not in kwargs or not kwargs["index"]:
            raise VoxboxError(f"record without an index (every record needs a unique 'index'; "
                              f"`voxbox prepare` makes manifests with one): {json.dumps(data, ensure_ascii=False)[:80]}...")
        return cls(**kwargs)


FIELD_NAMES = frozenset(f.name for f in fields(Utterance))


def audio_seconds(rec: Utterance) -> float:
    """Length of the record's audio in seconds, for totals and progress.

    The one precedence: the source file's sample count (exact, set by prepare), else
    ``duration`` (rounded to 10 ms by annotate), else 0 (nothing says how long it is).
    """
    if rec.num_samples and rec.sample_rate:
        return rec.num_samples / rec.sample_rate
    return float(rec.duration or 0.0)


@dataclass(frozen=True)
class Rejection:
    """A record that a stage could not use, with the reason. Never an exception."""

    stage: str
    path: str
    reason: str
    index: Optional[str] = None
    detail: Optional[str] = None

    def __post_init__(self):
        # Code says why with a code of voxbox/reasons.py; an undefined one is a bug.
        reasons.check(self.reason, "reject")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Rejection":
        """A rejection read back from a file. Codes older versions wrote are read as the code
        that replaced them; a code this version does not know (a newer voxbox wrote it) is
        kept as it is: a file on disk is data, not a bug to refuse."""
        values = {k: data.get(k) for k in ("stage", "path", "reason", "index", "detail")}
        values["reason"] = reasons.RENAMED.get(values["reason"], values["reason"])
        try:
            return cls(**values)
        except reasons.UnknownReason:
            rej = object.__new__(cls)
            for k, v in values.items():
                object.__setattr__(rej, k, v)
            return rej


def format_reason_counts(counts: Mapping[str, int]) -> str:
    """``"3 too_short, 1 unreadable_audio"``: how every summary shows counts by reason,
    most first, ties by name (so the line is the same on every run)."""
    return ", ".join(f"{n} {r}" for r, n in sorted(counts.items(), key=lambda x: (-x[1], x[0])))


Result = Union[Utterance, Rejection]
