"""CLI command: voxbox train-gender (see voxbox.cli for conventions)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def train_gender(
    manifests: Optional[List[Path]] = typer.Argument(
        None, help="Manifest(s) whose records carry native gender labels (e.g. from `voxbox prepare vctk`). "
                   "Each is one source: sources weigh the same, speakers the same within a source."),
    out: Path = typer.Option(..., "--out", "-o", help="Model JSON to write (use with annotate --gender-model)."),
    recipe: Optional[Path] = typer.Option(
        None, "--recipe", help="Train exactly as a recipe YAML says (sources, settings); the shipped model: "
                               "voxbox/models/gender_ge2e.recipe.yaml."),
    data: Optional[Path] = typer.Option(None, "--data", help="Folder the recipe's source paths are relative "
                                                             "to (for the shipped recipe: the shared data "
                                                             "folder, ../shared). Default: the recipe's folder."),
    kind: str = typer.Option("embedding", "--kind",
                             help="embedding (speaker embedding + robust F0, calibrated; the default model's "
                                  "kind) or f0 (the earlier F0/formant logistic regression)."),
    components: int = typer.Option(8, "--components", min=1, help="Principal axes of the embedding kept."),
    l2: Optional[float] = typer.Option(None, "--l2", min=0.0,
                                       help="L2 penalty. Default: 0.165 per clip (embedding kind), 1 (f0 kind)."),
    encoder: str = typer.Option("ge2e", "--embedding-model", help="Embedding backend: ge2e or ecapa:DIR."),
    cluster_threshold: Optional[float] = typer.Option(
        None, "--cluster-threshold",
        help="For manifests without speaker ids: cluster embeddings at this cosine distance into predicted "
             "speakers for the speaker-disjoint evaluation. Default: 0.2."),
    features: str = typer.Option("f0_median,dispersion", "--features",
                                 help="f0 kind only: comma-separated features: f0_median, f0_p10, f0_p90, "
                                      "voiced_fraction, f1, f2, f3, f4, dispersion."),
    folds: int = typer.Option(5, "--folds", min=2, help="Folds of the speaker-disjoint cross-validation."),
    name: Optional[str] = typer.Option(None, "--name", help="Model name recorded in gender_model. "
                                                            "Default: OUT's file name."),
) -> None:
    """Train a gender model on native labels and report its speaker-disjoint accuracy.

    Default kind: a calibrated classifier on the speaker embedding plus the octave-guarded
    median F0, the kind the shipped model is. `--recipe` rebuilds a model exactly.
    """
    from voxbox.errors import VoxboxError

    if kind == "f0":
        from voxbox.annotate.gender import train_gender as train_f0

        if recipe is not None or not manifests or len(manifests) != 1:
            raise VoxboxError("--kind f0 trains from exactly one manifest (no --recipe)")
        feats = [f.strip() for f in features.split(",") if f.strip()]
        model = train_f0(manifests[0], out, features=feats, l2=1.0 if l2 is None else l2, name=name, folds=folds)
        cv = model.evaluation.get("cross_validation")
        typer.echo(f"trained {model.name} on {model.trained_on}")
        if cv:
            typer.echo(f"cross-validated accuracy ({cv['scheme']}): {cv['accuracy']:.3f} on {cv['clips']} clips")
        typer.echo(f"wrote {out}")
    elif kind == "embedding":
        _train_embedding("gender", manifests, out, recipe, data, name, components, l2, encoder,
                         cluster_threshold, folds)
    else:
        raise VoxboxError(f"--kind must be embedding or f0, got {kind!r}")


def _train_embedding(task, manifests, out, recipe, data, name, components, l2, encoder, cluster_threshold,
                     folds) -> None:
    """Shared by train-gender, train-age and train-emotion."""
    from voxbox.labels.classifier import FitConfig
    from voxbox.labels.train import summary_lines, train_manifests

    from voxbox.cli.output import result

    cfg = FitConfig(components=components, l2=FitConfig.l2 if l2 is None else l2)
    model = train_manifests(task, manifests or [], out, recipe=recipe, data=data, name=name, cfg=cfg,
                            encoder_spec=encoder, folds=folds, cluster_threshold=cluster_threshold)
    result({"out": str(out), "name": model.name, "classes": model.classes, "trained_on": model.trained_on,
            "evaluation": model.evaluation}, "\n".join(summary_lines(model) + [f"wrote {out}"]))


def embedding_trainer(task: str, labels_help: str, label_set: str):
    """The train-age / train-emotion command: one signature, the task and its help differ."""

    def command(
        manifests: Optional[List[Path]] = typer.Argument(
            None, help=f"Manifest(s) with native {task} labels, e.g. `voxbox prepare` of {labels_help}. Each is "
                       "one source: sources weigh the same, speakers the same within a source."),
        out: Path = typer.Option(..., "--out", "-o", help=f"Model JSON to write (use with annotate --{task}-model)."),
        recipe: Optional[Path] = typer.Option(None, "--recipe", help="Train exactly as a recipe YAML says."),
        data: Optional[Path] = typer.Option(None, "--data", help="Folder the recipe's source paths are relative "
                                                                 "to. Default: the recipe's folder."),
        components: int = typer.Option(8, "--components", min=1, help="Principal axes of the embedding kept."),
        l2: float = typer.Option(0.165, "--l2", min=0.0, help="L2 penalty per clip of the logistic regression."),
        encoder: str = typer.Option("ge2e", "--embedding-model", help="Embedding backend: ge2e or ecapa:DIR."),
        cluster_threshold: Optional[float] = typer.Option(
            None, "--cluster-threshold",
            help="For manifests without speaker ids: cluster embeddings at this cosine distance into predicted "
                 "speakers for the speaker-disjoint evaluation. Default: 0.2."),
        folds: int = typer.Option(5, "--folds", min=2, help="Folds of the speaker-disjoint cross-validation."),
        name: Optional[str] = typer.Option(None, "--name", help=f"Model name recorded in {task}_model. "
                                                                "Default: OUT's file name."),
    ) -> None:
        _train_embedding(task, manifests, out, recipe, data, name, components, l2, encoder, cluster_threshold,
                         folds)

    command.__doc__ = (
        f"Train an {task} classifier on speaker embeddings (+ robust F0) from native labels, onto "
        f"{label_set}; reports per-class speaker-disjoint accuracy.\n\n"
        f"voxbox ships no {task} model (no corpus here could train one honestly): this makes yours in one "
        "command. Classes with fewer than 5 clips are left out and named.")
    return command


def register(app: typer.Typer) -> None:
    app.command("train-gender")(train_gender)
