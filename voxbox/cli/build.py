"""CLI commands: build (see voxbox.cli for conventions)."""

import typer


def register(app: typer.Typer) -> None:
    pass
