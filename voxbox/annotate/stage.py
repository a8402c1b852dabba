"""The "annotate" stage: every annotation field of the record, VoxBox-exact.

Per record: the VoxBox front end (:mod:`voxbox.annotate.frontend`), pitch and pitch_std
(:mod:`.pitch`), duration and speech_duration, syllables and speed
(:mod:`.syllables`), language, gender/age/emotion with their provenance, the
five-level labels and value tokens (:mod:`.levels`), loudness and clipping ratio.
Values are stored at the release's rounding: pitch 3 dp, pitch_std 3 dp, speed 1 dp,
duration 2 dp, speech_duration 3 dp.

Decisions (documented in the README):

- ``language``: a language the recipe set is kept; otherwise ``zh`` when the text
  has a CJK character, else ``en`` (the release's rule). Speed levels use the
  release's rule for zh/en and the recipe's language for any other language.
- Labels: a native label (``*_source == "native"``, or a label that came with the
  input without a source) always wins. Otherwise gender comes from the built-in
  classifier (``gender_model="builtin"``, the default; ``"none"`` turns it off), or
  from a voxbox gender JSON or a Hugging Face model; age and emotion only from a
  model the user names. No label and no model: gender and age are null with a
  reason, emotion is ``UNKNOWN``; nothing is guessed.
- Pitch levels need a gender: unknown gender gives null pitch levels with the
  reason ``unknown_gender``; a clip with no voiced frame keeps VoxBox's pitch 0 but
  gets null levels and value tokens (``no_voiced_frames``).
- Unusable audio (missing, undecodable, empty, NaN/inf, shorter than one 0.1 s
  trimming window, silent) is rejected with that reason. Empty or unpronounceable
  text keeps the audio fields and nulls syllables and speed with a reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from voxbox.annotate.numbers import ZH_STYLES
from voxbox.annotate.pitch import BACKENDS
from voxbox.record import NATIVE, PREDICTED, Result, Utterance
from voxbox.stages import Stage, StageOption

LABEL_TASKS = ("gender", "age", "emotion")


def _is_voxbox_gender_model(spec: str) -> bool:
    if spec == "builtin":
        return True
    p = Path(spec)
    if p.suffix == ".json" and p.is_file():
        return True
    return False


class AnnotateStage(Stage):
    """VoxBox annotation: front end, pitch, syllables, speed, levels, labels, loudness."""

    name = "annotate"
    options = (
        StageOption("pitch_backend", str, "world", "world (VoxBox's definition: WORLD DIO + StoneMask) or "
                    "praat (Praat autocorrelation); recorded per record", choices=BACKENDS, label="pitch backend"),
        StageOption("boundaries", Path, None, "level boundaries JSON from `voxbox levels`; "
                    "default: VoxBox's own"),
        StageOption("gender_model", str, "builtin", "for records without a native gender: builtin, none, "
                    "a model JSON from `voxbox train-gender` or a Hugging Face model", nullable=True),
        StageOption("gender_labels", str, None, "label map for a Hugging Face gender model"),
        StageOption("age_model", str, None, "Hugging Face audio-classification model for age groups"),
        StageOption("age_labels", str, None, "label map for age_model"),
        StageOption("emotion_model", str, None, "Hugging Face audio-classification model for emotion"),
        StageOption("emotion_labels", str, None, "label map for emotion_model"),
        StageOption("zh_numbers", str, "voxbox", "Chinese digit reading: voxbox (as the release) or cardinal",
                    choices=ZH_STYLES, label="Chinese number style"),
        StageOption("device", str, "cpu", "torch device for Hugging Face models"),
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        if self.params["gender_model"] in ("none", ""):
            self.params["gender_model"] = None
        self.pitch_backend = self.params["pitch_backend"]
        self._check_label_maps()
        self.boundaries = self._load_boundaries()
        self._models: Dict[str, Any] = {}
        self._syll = None
        self._pyworld = None

    def _check_label_maps(self) -> None:
        from voxbox.annotate.hf import check_label_map, parse_label_map

        # A bad label map fails here, in the parent, before any worker starts.
        for task in LABEL_TASKS:
            spec = self.params[f"{task}_labels"]
            if spec:
                check_label_map(parse_label_map(spec), task)

    def _load_boundaries(self):
        from voxbox.annotate.levels import Boundaries
        from voxbox.errors import VoxboxError

        # Fail early (in the parent, before workers start) on a bad boundaries file.
        path, backend = self.params["boundaries"], self.pitch_backend
        boundaries = Boundaries.load(path)
        made_with = boundaries.table.get("pitch_backend")
        if made_with and made_with != backend:
            raise VoxboxError(f"{path}: boundaries were computed from '{made_with}' pitch; "
                              f"annotate with --pitch-backend {made_with} or recompute them")
        return boundaries

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        from voxbox.annotate.pitch import import_pyworld
        from voxbox.annotate.syllables import Syllabifier

        p = self.params
        self._pyworld = import_pyworld()
        self._syll = Syllabifier(zh_numbers=p["zh_numbers"])
        self._models = {}
        if p["gender_model"]:
            if _is_voxbox_gender_model(p["gender_model"]):
                from voxbox.annotate.gender import GenderModel

                self._models["gender"] = GenderModel.load(p["gender_model"])
            else:
                self._models["gender"] = self._hf(p["gender_model"], "gender", p["gender_labels"])
        if p["age_model"]:
            self._models["age"] = self._hf(p["age_model"], "age", p["age_labels"])
        if p["emotion_model"]:
            self._models["emotion"] = self._hf(p["emotion_model"], "emotion", p["emotion_labels"])

    def _hf(self, model: str, task: str, labels: Optional[str]):
        from voxbox.annotate.hf import HFClassifier

        clf = HFClassifier(model, task, labels, device=self.params["device"])
        clf.setup()
        return clf

    # ------------------------------------------------------------------ work
    def process(self, rec: Utterance) -> Result:
        from voxbox.annotate.frontend import AudioError, front_end
        from voxbox.annotate.loudness import integrated_lufs

        self.ensure_setup()
        if not rec.source_path:
            return self.reject(rec, "no_audio_path", rec.missing_audio_detail())
        try:
            fe = front_end(rec)
        except AudioError as e:
            return self.reject(rec, e.reason, str(e))
        # Each step adds the reason for every field it leaves null (insertion order is kept).
        reasons: Dict[str, str] = {}
        f0, pitch, pitch_std, voiced = self._pitch(fe)
        speech_duration = round(fe.speech_duration, 3)
        syl = self._syll(rec.text)
        speed = self._speed(syl, speech_duration, reasons)
        language = self._language(rec, reasons)
        labels = self._labels(rec, fe.speech, fe.sr, f0, reasons)
        levels = self._pitch_levels(pitch, pitch_std, voiced, labels["gender"], reasons)
        levels.update(self._speed_levels(rec, syl, speech_duration, language, reasons))

        null_reasons = {k: v for k, v in (rec.null_reasons or {}).items()
                        if k not in _FILLED_FIELDS}
        null_reasons.update(reasons)
        return rec.replace(
            language=language, pitch=pitch, pitch_std=pitch_std, speed=speed, duration=round(fe.duration, 2),
            speech_duration=speech_duration, syllable_num=syl.syllable_num, syllables=syl.syllables,
            sample_rate=rec.sample_rate or fe.source_sr, num_samples=rec.num_samples or fe.source_samples,
            channels=rec.channels or fe.channels, pitch_backend=self.pitch_backend,
            loudness=round(integrated_lufs(fe.speech, fe.sr), 2), clipping_ratio=round(fe.clipping_ratio, 6),
            null_reasons=null_reasons or None, **labels, **levels,
        )

    def _pitch(self, fe):
        """(F0 track, pitch, pitch_std, voiced frame count) at the release's rounding."""
        from voxbox.annotate.pitch import f0_track, pitch_stats

        f0 = f0_track(fe.speech, fe.sr, self.pitch_backend, self._pyworld)
        pitch_hz, pitch_sd, voiced = pitch_stats(f0)
        return f0, round(pitch_hz, 3), round(pitch_sd, 3), voiced

    @staticmethod
    def _speed(syl, speech_duration: float, reasons: Dict[str, str]) -> Optional[float]:
        if syl.syllable_num is None:
            for k in ("syllable_num", "syllables", "speed", "speed_level", "speed_value"):
                reasons[k] = syl.reason
            return None
        # From the stored 3-dp speech_duration: the release's speeds match that
        # on all 653 sample rows, and the unrounded duration on only 651.
        return round(syl.syllable_num / speech_duration, 1)

    @staticmethod
    def _language(rec: Utterance, reasons: Dict[str, str]) -> Optional[str]:
        from voxbox.annotate.syllables import language_of

        language = rec.language or (language_of(rec.text) if (rec.text or "").strip() else None)
        if language is None:
            reasons["language"] = "empty_text"
        return language

    def _pitch_levels(self, pitch: float, pitch_std: float, voiced: int, gender: Optional[str],
                      reasons: Dict[str, str]) -> Dict[str, Any]:
        """Pitch levels and value tokens from the stored (rounded) values, as a consumer of
        the metadata computes them."""
        from voxbox.annotate import levels as lv

        out: Dict[str, Any] = dict(pitch_level=None, pitch_std_level=None, pitch_value=None, pitch_var_value=None)
        if voiced == 0:
            for k in out:
                reasons[k] = "no_voiced_frames"
            return out
        out["pitch_value"] = lv.pitch_value(pitch)
        out["pitch_var_value"] = lv.pitch_var_value(pitch_std)
        if gender is None:
            reasons["pitch_level"] = reasons["pitch_std_level"] = "unknown_gender"
            return out
        for attr, x, key in (("pitch", lv.pitch_mel(pitch), "pitch_level"),
                             ("pitch_std", pitch_std, "pitch_std_level")):
            b = self.boundaries.bounds(attr, gender)
            if b is None:
                reasons[key] = "no_boundaries_for_group"
            else:
                out[key] = lv.level(x, b)
        return out

    def _speed_levels(self, rec: Utterance, syl, speech_duration: float, language: Optional[str],
                      reasons: Dict[str, str]) -> Dict[str, Any]:
        from voxbox.annotate import levels as lv
        from voxbox.annotate.syllables import language_of

        out: Dict[str, Any] = dict(speed_level=None, speed_value=None)
        if syl.syllable_num is None:
            return out
        sps = lv.clip_speed(syl.syllable_num / speech_duration)
        out["speed_value"] = int(sps)
        b = self.boundaries.bounds("speed", lv.speed_group(rec.replace(language=language), language_of))
        if b is None:
            reasons["speed_level"] = "no_boundaries_for_group"
        else:
            out["speed_level"] = lv.level(sps, b)
        return out

    def _labels(self, rec: Utterance, speech, sr: int, f0, reasons: Dict[str, str]) -> Dict[str, Any]:
        from voxbox.annotate.features import gender_features
        from voxbox.annotate.gender import GenderModel

        out: Dict[str, Any] = {}
        for task in LABEL_TASKS:
            value = getattr(rec, task)
            source = getattr(rec, f"{task}_source")
            if value is not None and source != PREDICTED and not (task == "emotion" and value == "UNKNOWN"):
                # Native labels win; a label that came without a source came from the data.
                keep = source == NATIVE
                out.update({task: value, f"{task}_source": NATIVE,
                            f"{task}_model": getattr(rec, f"{task}_model") if keep else None,
                            f"{task}_confidence": getattr(rec, f"{task}_confidence") if keep else None})
                continue
            model = self._models.get(task)
            label = conf = reason = None
            if model is None:
                reason = "no_label_no_model"
            elif isinstance(model, GenderModel):
                label, conf = model.predict(gender_features(speech, sr, f0, model.features))
                reason = None if label is not None else "no_voiced_frames"
            else:
                label, conf, _raw = model.predict(speech, sr)
                reason = None if label is not None else "unmapped_model_label"
            if label is not None:
                out.update({task: label, f"{task}_source": PREDICTED, f"{task}_model": model.name,
                            f"{task}_confidence": conf})
                continue
            if task == "emotion":
                # VoxBox writes UNKNOWN for "no emotion label"; say why only when a
                # model was asked and could not answer.
                out.update({task: "UNKNOWN", f"{task}_source": None, f"{task}_model": None,
                            f"{task}_confidence": None})
                if model is not None:
                    reasons[task] = reason
                continue
            reasons[task] = reason
            out.update({task: None, f"{task}_source": None, f"{task}_model": None,
                        f"{task}_confidence": None})
        return out


_FILLED_FIELDS = frozenset((
    "language", "age", "gender", "emotion", "pitch", "pitch_std", "speed", "duration",
    "speech_duration", "syllable_num", "syllables", "pitch_level", "pitch_std_level",
    "speed_level", "pitch_value", "pitch_var_value", "speed_value", "loudness", "clipping_ratio",
))
