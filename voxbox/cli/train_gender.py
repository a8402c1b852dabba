"""CLI command: voxbox train-gender (see voxbox.cli for conventions)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer




def train_gender(
    manifest: Path = typer.Argument(..., help="Manifest whose records carry native gender labels "
                                              "(e.g. from `voxbox prepare libritts`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Model JSON to write (use with annotate --gender-model)."),
    features: str = typer.Option("f0_median,dispersion", "--features",
                                 help="Comma-separated features: f0_median, f0_p10, f0_p90, voiced_fraction, "
                                      "f1, f2, f3, f4, dispersion."),
    l2: float = typer.Option(1.0, "--l2", min=0.0, help="L2 penalty of the logistic regression."),
    folds: int = typer.Option(5, "--folds", min=2, help="Folds of the speaker-disjoint cross-validation."),
    name: Optional[str] = typer.Option(None, "--name", help="Model name recorded in gender_model. "
                                                            "Default: OUT's file name."),
) -> None:
    """Train the built-in gender classifier (acoustic features + logistic regression) on any
    manifest with native gender labels, and report its speaker-disjoint accuracy."""
    from voxbox.annotate.gender import train_gender as train

    feats = [f.strip() for f in features.split(",") if f.strip()]
    model = train(manifest, out, features=feats, l2=l2, name=name, folds=folds)
    cv = model.evaluation.get("cross_validation")
    typer.echo(f"trained {model.name} on {model.trained_on}")
    if cv:
        typer.echo(f"cross-validated accuracy ({cv['scheme']}): {cv['accuracy']:.3f} on {cv['clips']} clips")
    typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.command("train-gender")(train_gender)
