"""Training label classifiers (gender, age, emotion) on embeddings, reproducibly.

The data: records with a native label, from one or more *sources* (a manifest, or a
JSONL table of clips such as the VoxBox release's metadata). Per clip: the annotate
front end's speech, its speaker embedding (rounded to float16, as records store it)
and the octave-guarded median F0 (:func:`voxbox.annotate.features.robust_f0`).

Fairness of the fit and honesty of the scores:

- **Weights.** Every source weighs the same, and inside a source every speaker weighs
  the same, however many clips they have: 8 clips of one reader must not count as 8
  speakers, and 653 drama clips must not drown 24 read-speech speakers.
- **Speaker-disjoint cross-validation.** Speakers are dealt into folds (sorted ids,
  round robin), so a fold's speakers are never in its training part. A source without
  speaker ids gets *predicted* speakers (:func:`voxbox.labels.speakers.cluster` at the
  source's ``cluster_threshold``); a generous threshold errs on the safe side (two
  voices merged into one group cost nothing, one voice split across folds inflates
  the score), and the report says the groups were predicted.
- **Calibration.** The temperature is fitted on the out-of-fold logits; the report
  gives the expected calibration error before and after, per-class and per-source
  accuracy, and leave-one-corpus-out accuracy when there are several corpora.

A *recipe* (YAML, see ``voxbox/models/gender_ge2e.recipe.yaml``) names the sources and
settings; :func:`train_from_recipe` rebuilds the shipped model byte for byte.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from voxbox.errors import VoxboxError
from voxbox.labels.classifier import (FitConfig, LabelModel, expected_calibration_error, fit, fit_temperature,
                                      softmax)
from voxbox.record import AGE_GROUPS, EMOTIONS, GENDERS, PREDICTED, Utterance

CLASS_ORDER = {"gender": GENDERS, "age": AGE_GROUPS, "emotion": EMOTIONS}
MIN_CLASS_CLIPS = 5        # a class with fewer labelled clips is left out (and said so)
NO_LABEL = {"gender": "no_gender_label", "age": "no_age_label", "emotion": "no_emotion_label"}


def label_of(rec: Utterance, task: str) -> Optional[str]:
    """The record's ``task`` label if it can teach a model: not predicted, not UNKNOWN."""
    value = getattr(rec, task)
    if value is None or getattr(rec, f"{task}_source") == PREDICTED or value == "UNKNOWN":
        return None
    return value if value in CLASS_ORDER[task] else None


# ----------------------------------------------------------------------------------
# Sources
# ----------------------------------------------------------------------------------
@dataclass
class Source:
    name: str
    records: Callable[[], Iterable[Utterance]]
    cluster_threshold: Optional[float] = None   # used when records have no speaker ids


def manifest_source(path: Union[str, Path], cluster_threshold: Optional[float] = None) -> Source:
    from voxbox.manifest import read_manifest

    return Source(Path(path).name, lambda: read_manifest(path), cluster_threshold)


def table_source(spec: dict, data_root: Path) -> Source:
    """A JSONL table of clips (keys named by ``spec``) as records with native labels."""
    from voxbox.record import make_index
    from voxbox.sources.corpora.base import map_age_years, map_emotion, map_gender

    table, audio_root = data_root / spec["jsonl"], data_root / spec["audio_root"]
    keys = {"path": spec.get("path_key", "path"), "speaker": spec.get("speaker_key"),
            "corpus": spec.get("corpus_key")}
    if not table.is_file():
        raise VoxboxError(f"{table}: recipe source '{spec['name']}' not found (is --data the shared folder?)")

    def records() -> Iterable[Utterance]:
        for line in table.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            corpus = str(row[keys["corpus"]]) if keys["corpus"] else spec.get("corpus", spec["name"])
            path = row[keys["path"]]
            age = row.get("age")
            yield Utterance(index=make_index(corpus, path), corpus=corpus, source_path=path,
                            corpus_root=str(audio_root),
                            speaker=str(row[keys["speaker"]]) if keys["speaker"] else None,
                            gender=map_gender(row.get("gender")), gender_source="native",
                            age=age if age in AGE_GROUPS else map_age_years(age), age_source="native",
                            emotion=map_emotion(row.get("emotion")), emotion_source="native")

    return Source(spec["name"], records, spec.get("cluster_threshold"))


# ----------------------------------------------------------------------------------
# Features
# ----------------------------------------------------------------------------------
@dataclass
class Clips:
    emb: np.ndarray                 # (N, D) float16 values as float64
    scalars: np.ndarray             # (N, S)
    labels: List[str]
    speakers: List[Optional[str]]   # corpus/speaker, None when the source has none
    corpora: List[str]
    sources: List[str]
    groups: List[str] = field(default_factory=list)
    skipped: Dict[str, int] = field(default_factory=dict)


def extract(sources: Sequence[Source], task: str, encoder, scalar_names: Sequence[str],
            batch_size: int = 16) -> Clips:
    """Embeddings and scalars of every labelled, readable clip of the sources."""
    from voxbox.annotate.features import SCALAR_FEATURES
    from voxbox.annotate.frontend import labelled_front_ends
    from voxbox.labels.speakers import speaker_key
    from voxbox.annotate.pitch import f0_world, import_pyworld
    from voxbox.progress import Progress

    pw = import_pyworld()
    rows, pending, skipped = [], [], {}

    def flush():
        if pending:
            vecs = encoder.embed_batch([sp for _, sp, _ in pending])
            rows.extend((meta, vec, sc) for (meta, _, sc), vec in zip(pending, vecs))
            pending.clear()

    with Progress(f"train-{task}") as bar:
        for src in sources:
            labelled = labelled_front_ends(src.records(), lambda r: label_of(r, task), skipped,
                                           reason=NO_LABEL[task])
            for rec, label, fe in labelled:
                f0 = f0_world(fe.speech, fe.sr, pw)
                meta = (label, speaker_key(rec.corpus, rec.speaker), rec.corpus or src.name, src.name)
                pending.append((meta, fe.speech, [SCALAR_FEATURES[n](f0) for n in scalar_names]))
                if len(pending) >= batch_size:
                    flush()
                bar.update(1, audio_seconds=fe.duration)
        flush()
    if not rows:
        raise VoxboxError(f"no usable clip with a {task} label (skipped: {skipped or 'none'})")
    emb = np.array([v for _, v, _ in rows], dtype=np.float16).astype(np.float64)
    return Clips(emb=emb, scalars=np.array([s for _, _, s in rows], dtype=np.float64).reshape(len(rows), -1),
                 labels=[m[0] for m, _, _ in rows], speakers=[m[1] for m, _, _ in rows],
                 corpora=[m[2] for m, _, _ in rows], sources=[m[3] for m, _, _ in rows], skipped=skipped)


def assign_groups(clips: Clips, sources: Sequence[Source]) -> str:
    """Speaker groups for CV and weights; clusters where a source has no speaker ids.
    Returns how the groups were made, for the report."""
    from voxbox.labels.speakers import DEFAULT_THRESHOLD, cluster

    groups: List[str] = list(clips.speakers)
    notes = []
    for src in sources:
        idx = [i for i, s in enumerate(clips.sources) if s == src.name and clips.speakers[i] is None]
        if not idx:
            continue
        t = src.cluster_threshold if src.cluster_threshold is not None else DEFAULT_THRESHOLD
        ids = cluster(clips.emb[idx], threshold=t)
        for i, c in zip(idx, ids):
            groups[i] = f"{src.name}/cluster{c:05d}"
        notes.append(f"{src.name}: no speaker ids, {ids.max() + 1} predicted speakers "
                     f"(embedding clusters, cosine distance {t})")
    clips.groups = groups
    return "; ".join(notes)


def balanced_weights(clips: Clips) -> np.ndarray:
    """Each source weighs 1, split equally over its speakers, then over their clips."""
    w = np.zeros(len(clips.labels))
    by_source: Dict[str, Dict[str, List[int]]] = {}
    for i, (src, g) in enumerate(zip(clips.sources, clips.groups)):
        by_source.setdefault(src, {}).setdefault(g, []).append(i)
    for speakers in by_source.values():
        for members in speakers.values():
            w[members] = 1.0 / (len(speakers) * len(members))
    return w * len(w) / w.sum()


# ----------------------------------------------------------------------------------
# Fit, cross-validate, calibrate
# ----------------------------------------------------------------------------------
def _folds(groups: Sequence[str], folds: int) -> np.ndarray:
    uniq = sorted(set(groups))
    fold_of = {g: i % folds for i, g in enumerate(uniq)}
    return np.array([fold_of[g] for g in groups])


def _oof_logits(clips: Clips, classes: List[str], cfg: FitConfig, w: np.ndarray, fold: np.ndarray,
                held: Optional[np.ndarray] = None) -> np.ndarray:
    """Out-of-fold logits; ``held`` marks clips scored by a model that never saw them."""
    out = np.full((len(clips.labels), len(classes)), np.nan)
    labels = np.array(clips.labels)
    for k in sorted(set(fold.tolist())):
        tr, te = fold != k, fold == k
        if len(set(labels[tr])) < 2:
            continue
        coef, b, impute = fit(clips.emb[tr], clips.scalars[tr], labels[tr], classes, cfg, w[tr])
        s = np.where(np.isfinite(clips.scalars[te]), clips.scalars[te], impute)
        out[te] = np.hstack([clips.emb[te], s]) @ coef.T + b
    return out


def _accuracy_by(pred: np.ndarray, y: np.ndarray, keys: Sequence[str]) -> Dict[str, dict]:
    out = {}
    for k in sorted(set(keys)):
        sel = np.array([x == k for x in keys])
        out[k] = {"clips": int(sel.sum()), "accuracy": round(float((pred[sel] == y[sel]).mean()), 4)}
    return out


def evaluate(clips: Clips, classes: List[str], cfg: FitConfig, w: np.ndarray, folds: int,
             grouping: str) -> tuple:
    """(temperature, report) from speaker-disjoint CV (+ leave-one-corpus-out)."""
    y = np.array([classes.index(c) for c in clips.labels])
    n_groups = len(set(clips.groups))
    folds = min(folds, n_groups)
    if folds < 2:
        return 1.0, {"cross_validation": None, "note": "one speaker only: no speaker-disjoint evaluation"}
    logits = _oof_logits(clips, classes, cfg, w, _folds(clips.groups, folds))
    ok = np.all(np.isfinite(logits), axis=1)
    temp = fit_temperature(logits[ok], y[ok], w[ok])
    p_raw, p_cal = softmax(logits[ok]), softmax(logits[ok] / temp)
    pred = p_cal.argmax(axis=1)
    cv = {"scheme": f"{folds}-fold, speakers held out", "speakers": n_groups, "clips": int(ok.sum()),
          "accuracy": round(float((pred == y[ok]).mean()), 4),
          "balanced_accuracy": round(float(np.mean([(pred[y[ok] == c] == c).mean()
                                                    for c in set(y[ok].tolist())])), 4),
          "per_class": _accuracy_by(pred, y[ok], [clips.labels[i] for i in np.where(ok)[0]]),
          "per_source": _accuracy_by(pred, y[ok], [clips.sources[i] for i in np.where(ok)[0]]),
          "log_loss": round(float(-np.mean(np.log(np.clip(p_cal[np.arange(len(pred)), y[ok]], 1e-12, 1)))), 4),
          "ece_uncalibrated": round(expected_calibration_error(p_raw, y[ok]), 4),
          "ece_calibrated": round(expected_calibration_error(p_cal, y[ok]), 4),
          "temperature": round(temp, 4)}
    if grouping:
        cv["speaker_groups"] = grouping
    report = {"cross_validation": cv}
    corpora = sorted(set(clips.corpora))
    if len(corpora) > 2:
        corpus_fold = np.array([corpora.index(c) for c in clips.corpora])
        lo = _oof_logits(clips, classes, cfg, w, corpus_fold)
        okc = np.all(np.isfinite(lo), axis=1)
        report["leave_one_corpus_out"] = _accuracy_by(lo[okc].argmax(axis=1), y[okc],
                                                      [clips.corpora[i] for i in np.where(okc)[0]])
    return temp, report


def train(sources: Sequence[Source], task: str, name: str, cfg: FitConfig = FitConfig(),
          encoder_spec: str = "ge2e", folds: int = 5, encoder=None) -> LabelModel:
    """Fit a :class:`LabelModel` on the sources' labelled clips, with its evaluation."""
    from voxbox.annotate.embeddings import make_encoder

    if task not in CLASS_ORDER:
        raise VoxboxError(f"unknown task {task!r} (gender, age or emotion)")
    encoder = encoder or make_encoder(encoder_spec)
    clips = extract(sources, task, encoder, cfg.scalars)
    grouping = assign_groups(clips, sources)
    counts = {c: clips.labels.count(c) for c in CLASS_ORDER[task] if c in clips.labels}
    classes = [c for c, n in counts.items() if n >= MIN_CLASS_CLIPS]
    dropped = {c: n for c, n in counts.items() if n < MIN_CLASS_CLIPS}
    if len(classes) < 2:
        raise VoxboxError(f"training needs at least two {task} classes with {MIN_CLASS_CLIPS}+ clips; "
                          f"found {counts}")
    keep = np.array([c in classes for c in clips.labels])
    if not keep.all():
        clips = _subset(clips, keep)
    w = balanced_weights(clips)
    coef, intercept, impute = fit(clips.emb, clips.scalars, clips.labels, classes, cfg, w)
    temperature, report = evaluate(clips, classes, cfg, w, folds, grouping)
    report["skipped"] = clips.skipped
    if dropped:
        report["classes_left_out"] = {c: f"{n} clips (< {MIN_CLASS_CLIPS})" for c, n in dropped.items()}
    trained_on = "; ".join(f"{s.name}: {clips.sources.count(s.name)} clips" for s in sources) + \
        f"; {len(set(clips.groups))} speakers; {dict((c, counts[c]) for c in classes)}"
    return LabelModel(task=task, name=name, classes=classes, encoder=encoder_spec,
                      embedding_dim=int(clips.emb.shape[1]), scalars=list(cfg.scalars),
                      scalar_impute=impute.tolist(), coef=coef.tolist(), intercept=intercept.tolist(),
                      temperature=temperature, trained_on=trained_on, evaluation=report)


def _subset(clips: Clips, keep: np.ndarray) -> Clips:
    idx = np.where(keep)[0]
    pick = lambda xs: [xs[i] for i in idx]  # noqa: E731
    return Clips(emb=clips.emb[idx], scalars=clips.scalars[idx], labels=pick(clips.labels),
                 speakers=pick(clips.speakers), corpora=pick(clips.corpora), sources=pick(clips.sources),
                 groups=pick(clips.groups), skipped=clips.skipped)


# ----------------------------------------------------------------------------------
# Recipes
# ----------------------------------------------------------------------------------
RECIPE_KEYS = {"task", "name", "encoder", "scalars", "components", "l2", "folds", "sources"}


def load_recipe(path: Union[str, Path]) -> dict:
    import yaml

    p = Path(path)
    try:
        recipe = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise VoxboxError(f"{p}: recipe not found") from None
    except yaml.YAMLError as e:
        raise VoxboxError(f"{p}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(recipe, dict) or not isinstance(recipe.get("sources"), list) or not recipe["sources"]:
        raise VoxboxError(f"{p}: a recipe is a mapping with a non-empty 'sources' list")
    unknown = set(recipe) - RECIPE_KEYS
    if unknown:
        raise VoxboxError(f"{p}: unknown recipe key(s) {', '.join(sorted(unknown))}")
    return recipe


def train_from_recipe(path: Union[str, Path], data_root: Union[str, Path], task: Optional[str] = None,
                      encoder=None) -> LabelModel:
    """Train exactly what the recipe says; sources are relative to ``data_root``."""
    recipe = load_recipe(path)
    if task and recipe.get("task", task) != task:
        raise VoxboxError(f"{path}: a recipe for {recipe.get('task')}, not {task}")
    root = Path(data_root)
    sources = []
    for spec in recipe["sources"]:
        if "manifest" in spec:
            sources.append(manifest_source(root / spec["manifest"], spec.get("cluster_threshold")))
        else:
            sources.append(table_source(spec, root))
    cfg = FitConfig(components=int(recipe.get("components", FitConfig.components)), l2=float(recipe.get("l2", FitConfig.l2)),
                    scalars=tuple(recipe.get("scalars", ("f0_median",))))
    model = train(sources, recipe.get("task", task or "gender"), recipe.get("name", Path(path).stem), cfg,
                  encoder_spec=recipe.get("encoder", "ge2e"), folds=int(recipe.get("folds", 5)), encoder=encoder)
    model.recipe = {k: recipe[k] for k in sorted(recipe) if k != "sources"}
    model.recipe["sources"] = recipe["sources"]
    return model


def train_manifests(task: str, manifests: Sequence[Union[str, Path]], out: Union[str, Path],
                    recipe: Optional[Union[str, Path]] = None, data: Optional[Union[str, Path]] = None,
                    name: Optional[str] = None, cfg: FitConfig = FitConfig(), encoder_spec: str = "ge2e",
                    folds: int = 5, cluster_threshold: Optional[float] = None) -> LabelModel:
    """What ``voxbox train-<task>`` does: from a recipe (exactly), or from manifests."""
    if recipe is not None:
        if manifests:
            raise VoxboxError("give manifests or --recipe, not both")
        model = train_from_recipe(recipe, data if data is not None else Path(recipe).parent, task=task)
    else:
        if not manifests:
            raise VoxboxError(f"give one or more manifests with native {task} labels, or --recipe")
        sources = [manifest_source(m, cluster_threshold) for m in manifests]
        model = train(sources, task, name or Path(out).stem, cfg, encoder_spec=encoder_spec, folds=folds)
    model.save(out)
    return model


def summary_lines(model: LabelModel) -> List[str]:
    """What the train commands print: data, speaker-disjoint accuracy per class/source."""
    lines = [f"trained {model.name} ({model.task}: {', '.join(model.classes)}) on {model.trained_on}"]
    cv = model.evaluation.get("cross_validation")
    if not cv:
        lines.append(f"no cross-validation: {model.evaluation.get('note', 'too few speakers')}")
        return lines
    lines.append(f"{cv['scheme']} ({cv['speakers']} speakers): accuracy {cv['accuracy']:.3f}, "
                 f"balanced {cv['balanced_accuracy']:.3f}; calibration error {cv['ece_uncalibrated']:.3f} -> "
                 f"{cv['ece_calibrated']:.3f} (temperature {cv['temperature']:.3f})")
    if cv.get("speaker_groups"):
        lines.append(f"  speakers: {cv['speaker_groups']}")
    for key in ("per_class", "per_source"):
        lines.append(f"  {key.replace('_', ' ')}: " + ", ".join(
            f"{k} {v['accuracy']:.3f} ({v['clips']})" for k, v in cv[key].items()))
    loco = model.evaluation.get("leave_one_corpus_out")
    if loco:
        lines.append("  corpus held out: " + ", ".join(f"{k} {v['accuracy']:.3f} ({v['clips']})"
                                                        for k, v in loco.items()))
    return lines
