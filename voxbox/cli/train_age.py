"""CLI command: voxbox train-age (see voxbox.cli for conventions)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def train_age(
    manifests: Optional[List[Path]] = typer.Argument(
        None, help="Manifest(s) with native age labels, e.g. `voxbox prepare` of VCTK (speaker ages). Each is one "
                   "source: sources weigh the same, speakers the same within a source."),
    out: Path = typer.Option(..., "--out", "-o", help="Model JSON to write (use with annotate --age-model)."),
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
    name: Optional[str] = typer.Option(None, "--name", help="Model name recorded in age_model. "
                                                            "Default: OUT's file name."),
) -> None:
    """Train an age-group classifier on speaker embeddings (+ robust F0) from native labels, onto
    the five VoxBox age groups; reports per-class speaker-disjoint accuracy.

    voxbox ships no age model (no corpus here could train one honestly): this makes yours
    in one command. Classes with fewer than 5 clips are left out and named.
    """
    from voxbox.cli.train_gender import _train_embedding

    _train_embedding("age", manifests, out, recipe, data, name, components, l2, encoder, cluster_threshold,
                     folds)


def register(app: typer.Typer) -> None:
    app.command("train-age")(train_age)
