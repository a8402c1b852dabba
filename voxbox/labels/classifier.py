"""Label classifiers on speaker embeddings: gender, age group, emotion.

One model type for the three tasks, stored as a small JSON file::

    logits = coef_emb @ embedding + coef_scalar @ scalars + intercept      (K classes)
    p      = softmax(logits / temperature)

How it is fitted (:func:`fit`), and why:

1. The embedding (unit vector, D = 256 for GE2E) is projected on its first
   ``components`` principal axes, whitened. The leading axes of voice variation carry
   gender (the second GE2E axis alone separates it in English and in Chinese drama);
   the hundreds of small ones memorise speakers and channels, which is what a model
   trained on a few dozen speakers must not learn.
2. Scalars (e.g. the octave-guarded median F0) are standardised and appended.
3. A multinomial logistic regression with an L2 penalty (``l2`` per clip: the mean
   weighted log-loss plus ``l2 / 2 * |W|^2``, so one setting means the same for 30 clips
   or 30,000) is fitted by L-BFGS from zero: deterministic for the same inputs.
4. Everything before the softmax is linear, so PCA, whitening and standardisation fold
   into one coefficient matrix over the raw embedding and raw scalars: the file holds
   just that, and inference is one matrix product.
5. The temperature is fitted on out-of-fold logits of a speaker-disjoint
   cross-validation (:mod:`voxbox.labels.train`), so ``confidence`` (the top
   probability) is calibrated on speakers the model did not see.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from voxbox.errors import VoxboxError

FORMAT = "voxbox-classifier/1"
TASKS = ("gender", "age", "emotion")


@dataclass
class FitConfig:
    components: int = 8        # principal axes of the embedding kept (whitened)
    l2: float = 0.165          # L2 penalty per clip on the weights (not the intercepts)
    scalars: Tuple[str, ...] = ("f0_median",)


@dataclass
class LabelModel:
    task: str
    name: str
    classes: List[str]
    encoder: str                                   # embedding backend spec, e.g. "ge2e"
    embedding_dim: int
    scalars: List[str]
    scalar_impute: List[float]                     # raw-unit values for a missing scalar
    coef: List[List[float]]                        # (K, D + S) over [embedding, raw scalars]
    intercept: List[float]                         # (K,)
    temperature: float = 1.0
    trained_on: str = ""
    evaluation: Dict = field(default_factory=dict)
    recipe: Dict = field(default_factory=dict)

    # -- inference ------------------------------------------------------------------
    def logits(self, emb: np.ndarray, scalars: Optional[np.ndarray] = None) -> np.ndarray:
        """(N, K) logits for (N, D) embeddings and (N, S) raw scalars (NaN = impute)."""
        emb = np.atleast_2d(np.asarray(emb, dtype=np.float64))
        n = emb.shape[0]
        s = np.zeros((n, 0)) if not self.scalars else np.atleast_2d(np.asarray(scalars, dtype=np.float64))
        s = np.where(np.isfinite(s), s, np.asarray(self.scalar_impute)[None, :]) if self.scalars else s
        return np.hstack([emb, s]) @ np.asarray(self.coef).T + np.asarray(self.intercept)

    def predict_proba(self, emb: np.ndarray, scalars: Optional[np.ndarray] = None) -> np.ndarray:
        return softmax(self.logits(emb, scalars) / self.temperature)

    def predict(self, emb: np.ndarray, scalars: Optional[Sequence[float]] = None) -> Tuple[str, float]:
        """(label, calibrated confidence) for one clip."""
        p = self.predict_proba(emb, None if scalars is None else np.asarray(scalars)[None, :])[0]
        k = int(np.argmax(p))
        return self.classes[k], round(float(p[k]), 4)

    # -- persistence ----------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": FORMAT, "task": self.task, "name": self.name, "classes": self.classes,
                "encoder": self.encoder, "embedding_dim": self.embedding_dim, "scalars": self.scalars,
                "scalar_impute": _round(self.scalar_impute), "temperature": _round(self.temperature),
                "intercept": _round(self.intercept), "trained_on": self.trained_on,
                "evaluation": self.evaluation, "recipe": self.recipe, "coef": _round(self.coef)}

    def save(self, path: Union[str, Path]) -> Path:
        """Readable JSON; the coefficient matrix last, one class per line."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        d = self.to_dict()
        rows = ",\n  ".join(json.dumps(r) for r in d.pop("coef"))
        head = json.dumps(d, indent=1, ensure_ascii=False)
        path.write_text(f'{head[:-2]},\n "coef": [\n  {rows}\n ]\n}}\n', encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: dict, where: str = "model") -> "LabelModel":
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise VoxboxError(f"{where}: not a voxbox label model (format {FORMAT} expected)")
        try:
            m = cls(**{k: data[k] for k in ("task", "name", "classes", "encoder", "embedding_dim", "scalars",
                                            "scalar_impute", "coef", "intercept")},
                    **{k: data[k] for k in ("temperature", "trained_on", "evaluation", "recipe") if k in data})
        except KeyError as e:
            raise VoxboxError(f"{where}: label model lacks {e}") from None
        width = m.embedding_dim + len(m.scalars)
        if len(m.coef) != len(m.classes) or any(len(r) != width for r in m.coef) or \
                len(m.intercept) != len(m.classes) or len(m.scalar_impute) != len(m.scalars):
            raise VoxboxError(f"{where}: coefficient shapes do not match {len(m.classes)} classes x {width} inputs")
        from voxbox.annotate.features import SCALAR_FEATURES

        unknown = [s for s in m.scalars if s not in SCALAR_FEATURES]
        if unknown or m.task not in TASKS:
            raise VoxboxError(f"{where}: unknown task {m.task!r} or scalar features {unknown}")
        return m

    @classmethod
    def load(cls, path: Union[str, Path]) -> "LabelModel":
        from voxbox.errors import read_json_file

        return cls.from_dict(read_json_file(path, "label model"), str(path))


def is_label_model(path: Union[str, Path]) -> bool:
    """True for a JSON file in this format (cheap: reads the file's first bytes)."""
    p = Path(path)
    if p.suffix != ".json" or not p.is_file():
        return False
    with open(p, "rb") as fh:
        return FORMAT.encode() in fh.read(256)


def _round(x, decimals: int = 8):
    """Round to ``decimals`` places (coefficients are O(0.01-10)): small files, and the
    same bytes wherever float noise stays below that (the recipe test compares bytes).
    Embedding dimensions that are always 0 get exact zeros instead of 1e-16 noise."""
    if isinstance(x, (list, tuple, np.ndarray)):
        return [_round(v, decimals) for v in x]
    return round(float(x), decimals) + 0.0  # + 0.0 turns -0.0 into 0.0


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# ----------------------------------------------------------------------------------
# Fitting
# ----------------------------------------------------------------------------------
def fit_softmax(X: np.ndarray, y: np.ndarray, n_classes: int, l2: float,
                weights: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression, L2 on the weights: (W (K, d), b (K,)).

    Minimises sum_i w_i NLL_i + n * l2 / 2 * |W|^2 with ``weights`` rescaled to sum to n
    (the mean loss plus l2 / 2 * |W|^2, times n). L-BFGS from zero with tight
    tolerances: deterministic for the same inputs.
    """
    from scipy.optimize import minimize

    n, d = X.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64) * n / np.sum(weights)
    Y = np.zeros((n, n_classes))
    Y[np.arange(n), y] = 1.0

    def loss_grad(theta):
        W, b = theta[:n_classes * d].reshape(n_classes, d), theta[n_classes * d:]
        Z = X @ W.T + b                                   # (n, K)
        Z = Z - Z.max(axis=1, keepdims=True)
        logp = Z - np.log(np.exp(Z).sum(axis=1, keepdims=True))
        R = (np.exp(logp) - Y) * w[:, None]               # (n, K) weighted residuals
        loss = -np.sum(w * np.sum(Y * logp, axis=1)) + 0.5 * n * l2 * np.sum(W * W)
        return loss, np.concatenate([(R.T @ X + n * l2 * W).ravel(), R.sum(axis=0)])

    res = minimize(loss_grad, np.zeros(n_classes * (d + 1)), jac=True, method="L-BFGS-B",
                   options={"maxiter": 5000, "gtol": 1e-9, "ftol": 1e-15})
    return res.x[:n_classes * d].reshape(n_classes, d), res.x[n_classes * d:]


def fit(emb: np.ndarray, scalars: np.ndarray, labels: Sequence[str], classes: Sequence[str],
        cfg: FitConfig, weights: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(coef (K, D + S) over raw inputs, intercept (K,), scalar impute (S,)): see the module doc."""
    emb = np.asarray(emb, dtype=np.float64)
    scalars = np.asarray(scalars, dtype=np.float64).reshape(len(emb), -1)
    y = np.array([list(classes).index(c) for c in labels])
    if len(set(y.tolist())) < 2:
        raise VoxboxError("training needs clips of at least two classes")
    impute = np.array([np.nanmean(c) if np.isfinite(c).any() else 0.0 for c in scalars.T])
    s = np.where(np.isfinite(scalars), scalars, impute[None, :])
    s_mean, s_scale = s.mean(axis=0), s.std(axis=0)
    s_scale[s_scale == 0] = 1.0
    # PCA by SVD of the centred embeddings; whitened so every kept axis has unit variance.
    mu = emb.mean(axis=0)
    k = max(1, min(cfg.components, emb.shape[0] - 1, emb.shape[1]))
    _, sv, vt = np.linalg.svd(emb - mu, full_matrices=False)
    proj = vt[:k] / (sv[:k, None] / np.sqrt(max(emb.shape[0] - 1, 1)))   # (k, D)
    X = np.hstack([(emb - mu) @ proj.T, (s - s_mean) / s_scale])
    W, b = fit_softmax(X, y, len(classes), cfg.l2, weights)
    # Fold the affine steps into one map over the raw embedding and raw scalars.
    W_emb, W_s = W[:, :k] @ proj, W[:, k:] / s_scale
    intercept = b - W_emb @ mu - W_s @ s_mean
    return np.hstack([W_emb, W_s]), intercept, impute


def fit_temperature(logits: np.ndarray, y: np.ndarray, weights: Optional[np.ndarray] = None) -> float:
    """The temperature T minimising the weighted log-loss of softmax(logits / T)."""
    from scipy.optimize import minimize_scalar

    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)

    def nll(log_t):
        p = softmax(logits / np.exp(log_t))
        return -np.sum(w * np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0)))

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded",
                          options={"xatol": 1e-8})
    return float(np.exp(res.x))


def expected_calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Top-label ECE: |accuracy - confidence| averaged over equal-width confidence bins."""
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    edges = np.linspace(1.0 / p.shape[1], 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(float((pred[sel] == y[sel]).mean()) - float(conf[sel].mean()))
    return ece
