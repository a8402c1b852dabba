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
  classifier (``gender_model="builtin"``: speaker embedding + robust F0, calibrated;
  ``"none"`` turns it off), a voxbox model JSON or a Hugging Face model; age and
  emotion only from a model the user names (``train-age``/``train-emotion`` JSON or
  Hugging Face). No label and no model: gender and age are null with a reason,
  emotion is ``UNKNOWN``; nothing is guessed. The gender model's own answer is kept
  in ``gender_clip`` whenever it ran, also beside a native label (``check_native``),
  so the report can show where a corpus's labels and the model disagree.
- Embeddings: computed once per batch with the backend each model needs (and the
  ``embedding_model`` backend when ``embeddings`` asks to store them, as float16).
- Pitch levels need a gender: unknown gender gives null pitch levels with the
  reason ``unknown_gender``; a clip with no voiced frame keeps VoxBox's pitch 0 but
  gets null levels and value tokens (``no_voiced_frames``).
- Unusable audio (missing, undecodable, empty, NaN/inf, shorter than one 0.1 s
  trimming window, silent) is rejected with that reason. Empty or unpronounceable
  text keeps the audio fields and nulls syllables and speed with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from voxbox.annotate.numbers import ZH_STYLES
from voxbox.annotate.pitch import BACKENDS
from voxbox.record import NATIVE, PREDICTED, Rejection, Result, Utterance
from voxbox.stages import Stage, StageOption

LABEL_TASKS = ("gender", "age", "emotion")


@dataclass
class _Measured:
    """One record's audio measurements: what the label, level and output steps use."""

    fe: Any                      # frontend.FrontEnd
    f0: np.ndarray
    pitch: float                 # at the release's rounding
    pitch_std: float
    voiced: int
    syl: Any                     # syllables.SyllableResult
    speech_duration: float       # 3 dp, as stored
    speed: Optional[float]
    language: Optional[str]
    reasons: Dict[str, str]      # each step adds the reason for every field it leaves null
    embeddings: Dict[str, np.ndarray]


class AnnotateStage(Stage):
    """VoxBox annotation: front end, pitch, syllables, speed, levels, labels, loudness."""

    name = "annotate"
    options = (
        StageOption("pitch_backend", str, "world", "world (VoxBox's definition: WORLD DIO + StoneMask) or "
                    "praat (Praat autocorrelation); recorded per record", choices=BACKENDS, label="pitch backend"),
        StageOption("boundaries", Path, None, "level boundaries JSON from `voxbox levels`; "
                    "default: VoxBox's own"),
        StageOption("gender_model", str, "builtin", "for records without a native gender: builtin (GE2E "
                    "embedding + robust F0, = voxbox-gender-ge2e-v1), voxbox-gender-f0-v1, none, a model JSON "
                    "from `voxbox train-gender` or a Hugging Face model", nullable=True),
        StageOption("gender_labels", str, None, "label map for a Hugging Face gender model"),
        StageOption("age_model", str, None, "age-group model: a JSON from `voxbox train-age` or a Hugging Face "
                    "audio-classification model"),
        StageOption("age_labels", str, None, "label map for a Hugging Face age_model"),
        StageOption("emotion_model", str, None, "emotion model: a JSON from `voxbox train-emotion` or a Hugging "
                    "Face audio-classification model"),
        StageOption("emotion_labels", str, None, "label map for a Hugging Face emotion_model"),
        StageOption("zh_numbers", str, "voxbox", "Chinese digit reading: voxbox (as the release) or cardinal",
                    choices=ZH_STYLES, label="Chinese number style"),
        StageOption("device", str, "cpu", "torch device for embeddings and Hugging Face models"),
        StageOption("embeddings", bool, False, "store each clip's speaker embedding (float16) in 'embedding'"),
        StageOption("embedding_model", str, "ge2e", "embedding backend: ge2e (Resemblyzer's pretrained GE2E) "
                    "or ecapa:DIR (BiCodec's ECAPA x-vector from a Spark-TTS folder)"),
        StageOption("check_native", bool, True, "also run the gender model beside native genders; its answer "
                    "goes to gender_clip (per-speaker disagreement in report and card)"),
        StageOption("asr_model", str, None, "Hugging Face speech-recognition model (local folder or Hub id, e.g. "
                    "openai/whisper-small): writes text for records without one (text_source asr) and checks "
                    "given texts (asr_text, asr_wer, asr_cer; filter rules wer_max, cer_max)"),
        StageOption("asr_batch_size", int, 8, "clips per ASR model call", minimum=1),
    )

    def __init__(self, **params: Any):
        super().__init__(**params)
        if self.params["gender_model"] in ("none", ""):
            self.params["gender_model"] = None
        self.pitch_backend = self.params["pitch_backend"]
        self._check_options()
        self.boundaries = self._load_boundaries()
        self._models: Dict[str, Any] = {}
        self._encoders: Dict[str, Any] = {}
        self._syll = None
        self._pyworld = None
        self._asr = None

    def _check_options(self) -> None:
        """Fail here, in the parent, before any worker starts: label maps, model files,
        the embedding backend."""
        from voxbox.annotate.embeddings import check_encoder_spec
        from voxbox.annotate.hf import check_label_map, parse_label_map
        from voxbox.annotate.labelers import model_file

        p = self.params
        for task in LABEL_TASKS:
            if p[f"{task}_labels"]:
                check_label_map(parse_label_map(p[f"{task}_labels"]), task)
            if p[f"{task}_model"]:
                model_file(task, p[f"{task}_model"])  # a missing .json or unknown name fails now
        if p["embeddings"]:
            check_encoder_spec(p["embedding_model"])
        if p["asr_model"]:
            from voxbox.annotate.asr import check_model

            check_model(p["asr_model"])

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
        from voxbox.annotate.labelers import make_labeler
        from voxbox.annotate.pitch import import_pyworld
        from voxbox.annotate.syllables import Syllabifier

        p = self.params
        self._pyworld = import_pyworld()
        self._syll = Syllabifier(zh_numbers=p["zh_numbers"])
        self._models = {task: make_labeler(task, p[f"{task}_model"], p[f"{task}_labels"], p["device"])
                        for task in LABEL_TASKS if p[f"{task}_model"]}
        self._encoders = {}
        if p["asr_model"]:
            from voxbox.annotate.asr import Transcriber

            self._asr = Transcriber(p["asr_model"], device=p["device"], batch_size=p["asr_batch_size"]).setup()
        # Loaded now, not at the first batch, so a worker's torch thread cap applies to them.
        for spec in [m.encoder for m in self._models.values()] + [p["embedding_model"] if p["embeddings"] else None]:
            if spec:
                self._encoder(spec)

    def _encoder(self, spec: str):
        if spec not in self._encoders:
            from voxbox.annotate.embeddings import make_encoder

            self._encoders[spec] = make_encoder(spec, device=self.params["device"])
        return self._encoders[spec]

    # ------------------------------------------------------------------ work
    def process(self, rec: Utterance) -> Result:
        return self.process_batch([rec])[0]

    def process_batch(self, recs: Sequence[Utterance]) -> List[Result]:
        """Load every clip, transcribe the batch (asr_model), measure each clip, embed the
        batch at once, then label, level and assemble."""
        self.ensure_setup()
        fronts = [self._front(rec) for rec in recs]
        recs = self._transcribe(recs, fronts)
        measured = [f if isinstance(f, Rejection) else self._measure(rec, f) for rec, f in zip(recs, fronts)]
        self._embed(recs, measured)
        return [m if isinstance(m, Rejection) else self._finish(rec, m) for rec, m in zip(recs, measured)]

    def _front(self, rec: Utterance):
        """The clip after the VoxBox front end, or a Rejection for unusable audio."""
        from voxbox.annotate.frontend import AudioError, front_end

        if not rec.source_path:
            return self.reject(rec, "no_audio_path", rec.missing_audio_detail())
        try:
            return front_end(rec)
        except AudioError as e:
            return self.reject(rec, e.reason, str(e))

    def _transcribe(self, recs: Sequence[Utterance], fronts: list) -> List[Utterance]:
        """The records with their ASR fields (text for those without one), one batched
        model call over the usable clips; unchanged without asr_model."""
        from voxbox.annotate.asr import with_hypothesis

        if self._asr is None:
            return list(recs)
        idx = [i for i, f in enumerate(fronts) if not isinstance(f, Rejection)]
        hyps = self._asr.transcribe([fronts[i].audio for i in idx], sr=fronts[idx[0]].sr if idx else 16000)
        out = list(recs)
        for i, hyp in zip(idx, hyps):
            out[i] = with_hypothesis(recs[i], hyp, self._asr.name)
        return out

    def _measure(self, rec: Utterance, fe) -> _Measured:
        """Pitch, durations, syllables, speed, language of a loaded clip."""
        reasons: Dict[str, str] = {}
        f0, pitch, pitch_std, voiced = self._pitch(fe)
        speech_duration = round(fe.speech_duration, 3)
        syl = self._syll(rec.text)
        speed = self._speed(syl, speech_duration, reasons)
        language = self._language(rec, reasons)
        return _Measured(fe=fe, f0=f0, pitch=pitch, pitch_std=pitch_std, voiced=voiced, syl=syl,
                         speech_duration=speech_duration, speed=speed, language=language, reasons=reasons,
                         embeddings={})

    def _embedding_needs(self, rec: Utterance) -> List[str]:
        """Backends this record needs: the stored one, and each model's that will run."""
        p = self.params
        specs = [p["embedding_model"]] if p["embeddings"] else []
        for task, model in self._models.items():
            if model.encoder and (_native_label(rec, task) is None
                                  or (task == "gender" and p["check_native"])):
                specs.append(model.encoder)
        return specs

    def _embed(self, recs: Sequence[Utterance], measured: list) -> None:
        """One batched forward per backend over the clips that need it."""
        from voxbox.annotate.embeddings import to_float16_list

        wanted: Dict[str, List[int]] = {}
        for i, (rec, m) in enumerate(zip(recs, measured)):
            if isinstance(m, _Measured):
                for spec in dict.fromkeys(self._embedding_needs(rec)):
                    wanted.setdefault(spec, []).append(i)
        for spec, idx in wanted.items():
            vecs = self._encoder(spec).embed_batch([measured[i].fe.speech for i in idx])
            for i, v in zip(idx, vecs):
                if np.all(np.isfinite(v)):
                    # Models see the float16 vector the record stores (and were trained on).
                    measured[i].embeddings[spec] = np.asarray(to_float16_list(v), dtype=np.float32)
                elif spec == self.params["embedding_model"] and self.params["embeddings"]:
                    measured[i].reasons["embedding"] = "no_embedding"

    def _finish(self, rec: Utterance, m: _Measured) -> Utterance:
        from voxbox.annotate.loudness import integrated_lufs

        fe, reasons, speech_duration = m.fe, m.reasons, m.speech_duration
        labels = self._labels(rec, m)
        levels = self._pitch_levels(m.pitch, m.pitch_std, m.voiced, labels["gender"], reasons)
        levels.update(self._speed_levels(rec, m.syl, speech_duration, m.language, reasons))
        null_reasons = {k: v for k, v in (rec.null_reasons or {}).items()
                        if k not in _FILLED_FIELDS}
        null_reasons.update(reasons)
        return rec.replace(
            language=m.language, pitch=m.pitch, pitch_std=m.pitch_std, speed=m.speed,
            duration=round(fe.duration, 2), speech_duration=speech_duration, syllable_num=m.syl.syllable_num,
            syllables=m.syl.syllables, sample_rate=rec.sample_rate or fe.source_sr,
            num_samples=rec.num_samples or fe.source_samples, channels=rec.channels or fe.channels,
            pitch_backend=self.pitch_backend, loudness=round(integrated_lufs(fe.speech, fe.sr), 2),
            clipping_ratio=round(fe.clipping_ratio, 6), null_reasons=null_reasons or None,
            **self._stored_embedding(m), **labels, **levels,
        )

    def _stored_embedding(self, m: _Measured) -> Dict[str, Any]:
        from voxbox.annotate.embeddings import to_float16_list

        spec = self.params["embedding_model"]
        if not self.params["embeddings"] or spec not in m.embeddings:
            return {"embedding": None, "embedding_model": None}
        return {"embedding": to_float16_list(m.embeddings[spec]), "embedding_model": self._encoder(spec).name}

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
        out.update(pitch_levels(pitch, pitch_std, gender, self.boundaries, reasons))
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

    def _labels(self, rec: Utterance, m: _Measured) -> Dict[str, Any]:
        from voxbox.annotate.labelers import ClipAudio

        clip = ClipAudio(speech=m.fe.speech, sr=m.fe.sr, f0=m.f0, embeddings=m.embeddings)
        out: Dict[str, Any] = {"gender_clip": None, "gender_clip_confidence": None}
        for task in LABEL_TASKS:
            model, native = self._models.get(task), _native_label(rec, task)
            label = conf = None
            reason = "no_label_no_model"
            if model is not None and (native is None or (task == "gender" and self.params["check_native"])):
                label, conf, reason = model.predict(clip)
            if task == "gender" and label is not None:
                out.update(gender_clip=label, gender_clip_confidence=conf)
            if native is not None:
                out.update(native)
            elif label is not None:
                out.update({task: label, f"{task}_source": PREDICTED, f"{task}_model": model.name,
                            f"{task}_confidence": conf})
            else:
                # VoxBox writes UNKNOWN for "no emotion label"; say why only when a model
                # was asked and could not answer.
                out.update({task: "UNKNOWN" if task == "emotion" else None, f"{task}_source": None,
                            f"{task}_model": None, f"{task}_confidence": None})
                if task != "emotion" or model is not None:
                    m.reasons[task] = reason
        return out


def _native_label(rec: Utterance, task: str) -> Optional[Dict[str, Any]]:
    """The record's own label fields if it has a native one (a label that came without a
    source came from the data), else None."""
    value, source = getattr(rec, task), getattr(rec, f"{task}_source")
    if value is None or source == PREDICTED or (task == "emotion" and value == "UNKNOWN"):
        return None
    keep = source == NATIVE
    return {task: value, f"{task}_source": NATIVE,
            f"{task}_model": getattr(rec, f"{task}_model") if keep else None,
            f"{task}_confidence": getattr(rec, f"{task}_confidence") if keep else None}


def pitch_levels(pitch: float, pitch_std: float, gender: Optional[str], boundaries,
                 reasons: Dict[str, str]) -> Dict[str, Optional[str]]:
    """pitch_level and pitch_std_level for a gender (null with a reason when unknown);
    also used when a speaker vote changes a clip's gender."""
    from voxbox.annotate import levels as lv

    out: Dict[str, Optional[str]] = {"pitch_level": None, "pitch_std_level": None}
    for key in out:
        reasons.pop(key, None)
    if gender is None:
        reasons["pitch_level"] = reasons["pitch_std_level"] = "unknown_gender"
        return out
    for attr, x, key in (("pitch", lv.pitch_mel(pitch), "pitch_level"), ("pitch_std", pitch_std, "pitch_std_level")):
        b = boundaries.bounds(attr, gender)
        if b is None:
            reasons[key] = "no_boundaries_for_group"
        else:
            out[key] = lv.level(x, b)
    return out


_FILLED_FIELDS = frozenset((
    "language", "age", "gender", "emotion", "pitch", "pitch_std", "speed", "duration",
    "speech_duration", "syllable_num", "syllables", "pitch_level", "pitch_std_level",
    "speed_level", "pitch_value", "pitch_var_value", "speed_value", "loudness", "clipping_ratio",
    "embedding",
))
