"""Gender models by name, and the earlier F0 gender model.

Names ``--gender-model`` accepts (:func:`resolve_gender_model`):

- ``builtin`` = ``voxbox-gender-ge2e-v1``: the default, a calibrated classifier on the
  GE2E speaker embedding plus the octave-guarded median F0
  (:mod:`voxbox.labels.classifier`), ``voxbox/models/gender_ge2e.json``, rebuilt
  exactly by ``voxbox train-gender --recipe voxbox/models/gender_ge2e.recipe.yaml``.
- ``voxbox-gender-f0-v1`` (or ``f0``): the earlier model, a logistic regression on the
  median F0 alone (``voxbox/models/gender_f0.json``). On unseen read English it is
  beaten by a plain 165 Hz threshold; kept for comparison and old pipelines.
- a JSON file from ``voxbox train-gender`` (either kind), or a Hugging Face
  audio-classification model (anything else).

The F0 kind (:class:`GenderModel`, format ``voxbox-gender/1``): features ->
standardise -> logistic regression, trained by :func:`train_gender` with
``train-gender --kind f0``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from voxbox.errors import VoxboxError, read_json_file
from voxbox.record import GENDERS, PREDICTED, Utterance
from voxbox.annotate.features import FEATURE_NAMES

FORMAT = "voxbox-gender/1"
DEFAULT_TRAIN_FEATURES = ("f0_median", "dispersion")


BUILTIN_MODELS = {
    "builtin": "gender_ge2e.json", "voxbox-gender-ge2e-v1": "gender_ge2e.json",
    "voxbox-gender-f0-v1": "gender_f0.json", "f0": "gender_f0.json",
}


def builtin_model_path(name: str = "builtin") -> Path:
    return Path(__file__).resolve().parent.parent / "models" / BUILTIN_MODELS[name]


def resolve_gender_model(spec: str) -> Optional[Path]:
    """The shipped model file a ``--gender-model`` name means, else None."""
    return builtin_model_path(spec) if spec in BUILTIN_MODELS else None


def fit_logistic(X: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 50) -> Tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method (X already standardised).

    Deterministic and dependency-free; ``l2`` is the penalty on the weights (not the
    intercept), in units of the summed log-likelihood.
    """
    n, d = X.shape
    A = np.hstack([X, np.ones((n, 1))])
    w = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0
    for _ in range(iters):
        z = np.clip(A @ w, -30, 30)
        p = 1.0 / (1.0 + np.exp(-z))
        grad = A.T @ (p - y) + reg * w
        H = (A * (p * (1 - p))[:, None]).T @ A + np.diag(reg) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(H, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-10:
            break
    return w[:-1], float(w[-1])


@dataclass
class GenderModel:
    features: List[str]
    impute: List[float]
    mean: List[float]
    scale: List[float]
    coef: List[float]
    intercept: float
    name: str = "voxbox-gender"
    classes: List[str] = field(default_factory=lambda: ["female", "male"])  # p = P(classes[1])
    trained_on: str = ""
    evaluation: Dict = field(default_factory=dict)

    # -- persistence ----------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": FORMAT, "name": self.name, "classes": self.classes,
                "features": self.features, "impute": self.impute, "mean": self.mean,
                "scale": self.scale, "coef": self.coef, "intercept": self.intercept,
                "trained_on": self.trained_on, "evaluation": self.evaluation}

    def save(self, path: Union[str, Path]) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Union[str, Path] = "f0") -> "GenderModel":
        p = builtin_model_path(path) if path in BUILTIN_MODELS else Path(path)
        data = read_json_file(p, "gender model")
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise VoxboxError(f"{p}: not a voxbox gender model (format {FORMAT} expected)")
        unknown = [f for f in data["features"] if f not in FEATURE_NAMES]
        if unknown:
            raise VoxboxError(f"{p}: model uses unknown features {unknown}")
        d = len(data["features"])
        for key in ("impute", "mean", "scale", "coef"):
            if len(data[key]) != d:
                raise VoxboxError(f"{p}: '{key}' has {len(data[key])} values for {d} features")
        return cls(**{k: data[k] for k in ("features", "impute", "mean", "scale", "coef", "intercept",
                                           "name", "classes", "trained_on", "evaluation") if k in data})

    # -- inference ------------------------------------------------------------------
    def prob_second(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=np.float64)).copy()
        bad = ~np.isfinite(X)
        if bad.any():
            X[bad] = np.broadcast_to(np.asarray(self.impute), X.shape)[bad]
        Z = (X - np.asarray(self.mean)) / np.asarray(self.scale)
        z = np.clip(Z @ np.asarray(self.coef) + self.intercept, -30, 30)
        return 1.0 / (1.0 + np.exp(-z))

    def predict(self, x: np.ndarray) -> Tuple[Optional[str], Optional[float]]:
        """(label, confidence in [0.5, 1]); (None, None) when no feature is known."""
        x = np.asarray(x, dtype=np.float64)
        if not np.isfinite(x).any():
            return None, None
        p = float(self.prob_second(x)[0])
        if p >= 0.5:
            return self.classes[1], round(p, 4)
        return self.classes[0], round(1.0 - p, 4)


def fit_model(X: np.ndarray, labels: Sequence[str], features: Sequence[str], l2: float = 1.0,
              name: str = "voxbox-gender", trained_on: str = "") -> GenderModel:
    y = np.array([1.0 if g == "male" else 0.0 for g in labels])
    if len(set(y.tolist())) < 2:
        raise VoxboxError("training needs clips of both genders")
    X = np.asarray(X, dtype=np.float64)
    impute = np.nanmean(np.where(np.isfinite(X), X, np.nan), axis=0)
    if not np.all(np.isfinite(impute)):
        missing = [f for f, v in zip(features, impute) if not math.isfinite(v)]
        raise VoxboxError(f"no clip has a value for feature(s) {missing}")
    Xi = np.where(np.isfinite(X), X, impute)
    mean = Xi.mean(axis=0)
    scale = Xi.std(axis=0)
    scale[scale == 0] = 1.0
    coef, intercept = fit_logistic((Xi - mean) / scale, y, l2=l2)
    return GenderModel(features=list(features), impute=impute.tolist(), mean=mean.tolist(),
                       scale=scale.tolist(), coef=coef.tolist(), intercept=intercept, name=name,
                       trained_on=trained_on)


def grouped_cv(X: np.ndarray, labels: Sequence[str], groups: Sequence[str], features: Sequence[str],
               folds: int = 5, l2: float = 1.0, by_speaker: bool = True) -> Optional[dict]:
    """Accuracy with whole speakers held out (speakers dealt round-robin into folds).

    Without speaker ids every clip is its own group, which is *not* speaker-disjoint;
    ``by_speaker=False`` says so in the result."""
    uniq = sorted(set(groups))
    if len(uniq) < 2:
        return None
    folds = min(folds, len(uniq))
    fold_of = {g: i % folds for i, g in enumerate(uniq)}
    f = np.array([fold_of[g] for g in groups])
    labels = np.asarray(labels)
    correct = counted = 0
    for k in range(folds):
        tr, te = f != k, f == k
        if len(set(labels[tr])) < 2:
            continue
        m = fit_model(X[tr], labels[tr], features, l2=l2)
        pred = np.where(m.prob_second(X[te]) >= 0.5, "male", "female")
        correct += int((pred == labels[te]).sum())
        counted += int(te.sum())
    if not counted:
        return None
    scheme = "speakers held out" if by_speaker else "clips held out (no speaker ids: NOT speaker-disjoint)"
    return {"scheme": f"{folds}-fold, {scheme}", "clips": counted,
            "speakers": len(uniq) if by_speaker else None, "accuracy": round(correct / counted, 4)}


def labelled_gender(rec: Utterance) -> Optional[str]:
    """The record's gender if it is a training label (native, or of unstated origin)."""
    if rec.gender in GENDERS and rec.gender_source != PREDICTED:
        return rec.gender
    return None


def extract_features(recs: Iterable[Utterance], features: Sequence[str], progress_desc: str = "features"):
    """(X, labels, speakers, skipped) for labelled records; unreadable clips are skipped
    and counted by reason."""
    from voxbox.annotate.frontend import labelled_front_ends
    from voxbox.labels.speakers import speaker_key
    from voxbox.progress import Progress
    from voxbox.annotate.features import gender_features
    from voxbox.annotate.pitch import f0_world, import_pyworld

    pw = import_pyworld()
    X, labels, speakers, skipped = [], [], [], {}
    with Progress(progress_desc) as bar:
        for rec, label, fe in labelled_front_ends(recs, labelled_gender, skipped, reason="no_gender_label"):
            speech = fe.speech
            X.append(gender_features(speech, fe.sr, f0_world(speech, fe.sr, pw), features))
            labels.append(label)
            speakers.append(speaker_key(rec.corpus, rec.speaker))
            bar.update(1, audio_seconds=fe.duration)
    return np.array(X, dtype=np.float64).reshape(len(X), len(features)), labels, speakers, skipped


def train_gender(manifest: Union[str, Path], out: Union[str, Path],
                 features: Sequence[str] = DEFAULT_TRAIN_FEATURES, l2: float = 1.0,
                 name: Optional[str] = None, folds: int = 5) -> GenderModel:
    """Fit a gender model on the labelled records of a manifest and save it as JSON.

    The model records what it was trained on and, when the manifest has at least two
    speakers, its accuracy under speaker-disjoint cross-validation.
    """
    from voxbox.manifest import read_manifest

    unknown = [f for f in features if f not in FEATURE_NAMES]
    if unknown:
        raise VoxboxError(f"unknown gender features {unknown} (known: {', '.join(FEATURE_NAMES)})")
    X, labels, speakers, skipped = extract_features(read_manifest(manifest), features, "train-gender")
    if len(labels) < 4:
        raise VoxboxError(f"{manifest}: only {len(labels)} usable clips with a native gender label "
                          f"(skipped: {skipped or 'none'})")
    name = name or Path(out).stem
    counts = {g: labels.count(g) for g in GENDERS}
    by_speaker = all(s is not None for s in speakers)
    n_spk = f"{len(set(speakers))} speakers" if by_speaker else "speaker ids missing"
    model = fit_model(X, labels, features, l2=l2, name=name,
                      trained_on=f"{Path(manifest).name}: {len(labels)} clips, {n_spk}, {counts}")
    groups = speakers if by_speaker else [f"clip{i}" for i in range(len(labels))]
    cv = grouped_cv(X, labels, groups, features, folds=folds, l2=l2, by_speaker=by_speaker)
    model.evaluation = {"cross_validation": cv, "skipped": skipped}
    model.save(out)
    return model
