"""CLI command: voxbox train-age (see voxbox.cli for conventions)."""

from __future__ import annotations

import typer

from voxbox.cli.train_gender import embedding_trainer

train_age = embedding_trainer("age", "VCTK (speaker ages)", "the five VoxBox age groups")


def register(app: typer.Typer) -> None:
    app.command("train-age")(train_age)
