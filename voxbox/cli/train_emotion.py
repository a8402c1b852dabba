"""CLI command: voxbox train-emotion (see voxbox.cli for conventions)."""

from __future__ import annotations

import typer

from voxbox.cli.train_gender import embedding_trainer

train_emotion = embedding_trainer("emotion", "ESD, CREMA-D, RAVDESS or EmoV-DB", "the 25 VoxBox emotions")


def register(app: typer.Typer) -> None:
    app.command("train-emotion")(train_emotion)
