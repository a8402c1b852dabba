"""One interface over the three kinds of label model the annotate stage can use.

A *labeler* answers ``predict(clip) -> (label, confidence, reason)`` for one clip's
measurements (:class:`ClipAudio`): ``label`` None means no answer, and ``reason`` says
why. Kinds:

- :class:`EmbeddingLabeler`: a :class:`voxbox.labels.classifier.LabelModel` (the
  default gender model; any ``train-gender`` / ``train-age`` / ``train-emotion`` file);
  it names the embedding backend it needs in ``encoder``.
- :class:`F0Labeler`: the earlier F0 gender model (``voxbox-gender-f0-v1``).
- :class:`HFLabeler`: a Hugging Face audio-classification model with a label map.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

Answer = Tuple[Optional[str], Optional[float], Optional[str]]


@dataclass
class ClipAudio:
    """What a label model may look at: trimmed 16 kHz speech, its F0 track, embeddings
    by backend spec (float16-rounded unit vectors, as records store them)."""

    speech: np.ndarray
    sr: int
    f0: np.ndarray
    embeddings: Dict[str, np.ndarray] = field(default_factory=dict)


class EmbeddingLabeler:
    def __init__(self, model):
        self.model = model
        self.name = model.name
        self.encoder: Optional[str] = model.encoder

    def predict(self, clip: ClipAudio) -> Answer:
        from voxbox.annotate.features import SCALAR_FEATURES

        emb = clip.embeddings.get(self.encoder)
        if emb is None or not np.all(np.isfinite(emb)):
            return None, None, "no_embedding"
        if not np.any(clip.f0 > 0):
            # Noise, music or whisper: a voice model has no voice to judge; nothing is guessed.
            return None, None, "no_voiced_frames"
        scalars = [SCALAR_FEATURES[n](clip.f0) for n in self.model.scalars]
        label, conf = self.model.predict(emb, scalars)
        return label, conf, None


class F0Labeler:
    encoder = None

    def __init__(self, model):
        self.model = model
        self.name = model.name

    def predict(self, clip: ClipAudio) -> Answer:
        from voxbox.annotate.features import gender_features

        label, conf = self.model.predict(gender_features(clip.speech, clip.sr, clip.f0, self.model.features))
        return label, conf, None if label is not None else "no_voiced_frames"


class HFLabeler:
    encoder = None

    def __init__(self, model: str, task: str, labels: Optional[str], device: str):
        from voxbox.annotate.hf import HFClassifier

        self.clf = HFClassifier(model, task, labels, device=device)
        self.clf.setup()
        self.name = self.clf.name

    def predict(self, clip: ClipAudio) -> Answer:
        label, conf, _raw = self.clf.predict(clip.speech, clip.sr)
        return label, conf, None if label is not None else "unmapped_model_label"


def model_file(task: str, spec: str) -> Optional[Path]:
    """The voxbox JSON model a ``--<task>-model`` value names (a shipped name or a .json
    file), or None for a Hugging Face model; a .json that is not there fails here."""
    from voxbox.annotate.gender import BUILTIN_MODELS, resolve_gender_model
    from voxbox.errors import VoxboxError

    if task == "gender" and spec in BUILTIN_MODELS:
        return resolve_gender_model(spec)
    p = Path(spec).expanduser()
    if p.suffix != ".json":
        return None
    if not p.is_file():
        names = f"a shipped name ({', '.join(BUILTIN_MODELS)}), " if task == "gender" else ""
        raise VoxboxError(f"cannot load {task} model '{spec}': no such file or folder (give {names}a model "
                          f"JSON from `voxbox train-{task}`, a local model folder, or a Hugging Face model "
                          "id like owner/name)")
    return p


def make_labeler(task: str, spec: str, labels: Optional[str], device: str):
    """Load the model ``spec`` names for ``task`` (in a worker's setup)."""
    from voxbox.errors import VoxboxError
    from voxbox.labels.classifier import LabelModel, is_label_model

    path = model_file(task, spec)
    if path is None:
        return HFLabeler(spec, task, labels, device)
    if is_label_model(path):
        model = LabelModel.load(path)
        if model.task != task:
            raise VoxboxError(f"{path}: a {model.task} model given as the {task} model")
        return EmbeddingLabeler(model)
    if task != "gender":
        raise VoxboxError(f"{path}: not a voxbox {task} model (train one with `voxbox train-{task}`)")
    from voxbox.annotate.gender import GenderModel

    return F0Labeler(GenderModel.load(path))


def model_encoder(task: str, spec: str) -> Optional[str]:
    """The embedding backend a model file needs (cheap: no model is built), else None."""
    from voxbox.labels.classifier import LabelModel, is_label_model

    path = model_file(task, spec)
    if path is None or not is_label_model(path):
        return None
    return LabelModel.load(path).encoder
