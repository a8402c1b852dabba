"""Plug-in for any Hugging Face audio-classification model (gender, age, emotion).

``HFClassifier("path/or/hub-id", "emotion", label_map)`` loads the model with
transformers' Auto classes (a Hub id downloads only when the user asked for that
model; offline settings such as ``HF_HUB_OFFLINE=1`` are respected), runs it on the
trimmed, normalised 16 kHz speech and maps the model's label onto VoxBox's label set.

Label mapping: an explicit ``label_map`` ("LABEL_0=female,LABEL_1=male", or a JSON
file with such an object) wins; otherwise the model's own label names are matched
case-insensitively against the VoxBox labels and common synonyms ("ang" -> ANGRY,
"woman" -> female, "old" -> Elderly). A predicted label that maps to nothing gives a
null field with the reason ``unmapped_model_label``, never a guess.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from voxbox.errors import VoxboxError, first_line, read_json_file
from voxbox.record import AGE_GROUPS, EMOTIONS, GENDERS

TASK_LABELS = {"gender": GENDERS, "age": AGE_GROUPS, "emotion": EMOTIONS}
MAX_SECONDS = 30.0  # longer clips are cropped: memory stays bounded, labels do not need more

_SYNONYMS = {
    "gender": {"f": "female", "woman": "female", "women": "female", "girl": "female",
               "m": "male", "man": "male", "men": "male", "boy": "male"},
    "age": {"child": "Child", "kid": "Child", "children": "Child", "teen": "Teenager",
            "teens": "Teenager", "adolescent": "Teenager", "youth": "Youth-Adult",
            "young": "Youth-Adult", "adult": "Youth-Adult", "young adult": "Youth-Adult",
            "young-adult": "Youth-Adult", "middle": "Middle-aged", "middle age": "Middle-aged",
            "middle aged": "Middle-aged", "old": "Elderly", "senior": "Elderly", "elder": "Elderly"},
    "emotion": {"neu": "NEUTRAL", "neutral": "NEUTRAL", "calm": "NEUTRAL", "ang": "ANGRY",
                "anger": "ANGRY", "angry": "ANGRY", "hap": "HAPPY", "happiness": "HAPPY",
                "joy": "HAPPY", "sad": "SAD", "sadness": "SAD", "fea": "FEARFUL", "fear": "FEARFUL",
                "dis": "DISGUSTED", "disgust": "DISGUSTED", "sur": "SURPRISED", "surprise": "SURPRISED",
                "exc": "EXCITED", "excitement": "EXCITED", "contempt": "CONTEMPT",
                "sarcasm": "SARCASTIC", "whisper": "WHISPER", "laughter": "LAUGHING",
                "laugh": "LAUGHING", "confusion": "CONFUSED", "sleepiness": "SLEEPY"},
}


def parse_label_map(spec: Optional[str]) -> Dict[str, str]:
    """"A=x,B=y" or the path of a JSON object -> dict (model label -> VoxBox label)."""
    if not spec:
        return {}
    p = Path(spec)
    if p.suffix == ".json" or p.is_file():
        data = read_json_file(p, "label-map file")
        if not isinstance(data, dict):
            raise VoxboxError(f"{spec}: label map must be a JSON object")
        return {str(k): str(v) for k, v in data.items()}
    out = {}
    for item in spec.split(","):
        if not item.strip():
            continue
        if "=" not in item:
            raise VoxboxError(f"label map item '{item}' is not MODEL_LABEL=VOXBOX_LABEL")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def map_label(raw: str, task: str, explicit: Dict[str, str]) -> Optional[str]:
    """The VoxBox label for a model label, or None when nothing matches."""
    allowed = TASK_LABELS[task]
    by_lower = {a.lower(): a for a in allowed}
    if raw in explicit:
        target = explicit[raw]
        return by_lower.get(target.lower())
    key = raw.strip().lower()
    if key in by_lower:
        return by_lower[key]
    key = key.replace("_", " ")
    return _SYNONYMS[task].get(key) or by_lower.get(key.replace(" ", "-"))


def check_label_map(explicit: Dict[str, str], task: str) -> None:
    allowed = {a.lower() for a in TASK_LABELS[task]}
    bad = [v for v in explicit.values() if v.lower() not in allowed]
    if bad:
        raise VoxboxError(f"{task} label map targets {bad} are not VoxBox labels "
                          f"({', '.join(TASK_LABELS[task])})")


class HFClassifier:
    """One audio-classification model; load with :meth:`setup` (once per worker)."""

    def __init__(self, model: str, task: str, label_map: Optional[str] = None, device: str = "cpu"):
        if task not in TASK_LABELS:
            raise VoxboxError(f"unknown task '{task}' (choose from {', '.join(TASK_LABELS)})")
        self.model_id = model
        self.task = task
        self.explicit = parse_label_map(label_map)
        check_label_map(self.explicit, task)
        self.device = device
        self._model = None
        self._extractor = None

    @property
    def name(self) -> str:
        return self.model_id

    def setup(self) -> None:
        try:
            import torch  # noqa: F401
            from transformers import AutoFeatureExtractor, AutoModelForAudioClassification
        except ImportError:
            raise VoxboxError("the model plug-in needs torch and transformers installed") from None
        spec = self.model_id
        if not Path(spec).expanduser().exists() and (
                spec.startswith((".", "/", "~")) or spec.endswith(".json") or spec.count("/") > 1):
            # Clearly meant as a local path: do not let it fall through to a Hub id check.
            hint = "a model JSON from `voxbox train-gender`, " if self.task == "gender" else ""
            raise VoxboxError(f"cannot load {self.task} model '{spec}': no such file or folder (give {hint}"
                              "a local model folder, or a Hugging Face model id like owner/name)")
        try:
            self._extractor = AutoFeatureExtractor.from_pretrained(self.model_id)
            self._model = AutoModelForAudioClassification.from_pretrained(self.model_id).to(self.device).eval()
        except OSError as e:
            first = first_line(e)
            raise VoxboxError(f"cannot load {self.task} model '{self.model_id}': {first}") from None
        id2label = getattr(self._model.config, "id2label", None) or {}
        unmapped = [lab for lab in id2label.values() if map_label(str(lab), self.task, self.explicit) is None]
        self.unmapped_labels = unmapped

    def predict(self, audio: np.ndarray, sr: int) -> Tuple[Optional[str], Optional[float], str]:
        """(VoxBox label or None, confidence, the model's own label)."""
        import torch

        if self._model is None:
            self.setup()
        target_sr = int(getattr(self._extractor, "sampling_rate", sr) or sr)
        if target_sr != sr:
            from voxbox.annotate.frontend import resample

            audio = resample(audio, sr, target_sr)
        audio = np.asarray(audio[: int(MAX_SECONDS * target_sr)], dtype=np.float32)
        inputs = self._extractor(audio, sampling_rate=target_sr, return_tensors="pt")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.inference_mode():
            logits = self._model(**inputs).logits[0]
        probs = torch.softmax(logits.float(), dim=-1)
        idx = int(torch.argmax(probs))
        raw = str(self._model.config.id2label.get(idx, str(idx)))
        return map_label(raw, self.task, self.explicit), round(float(probs[idx]), 4), raw
