"""CLI commands: data (see voxbox.cli for conventions)."""

import typer


def register(app: typer.Typer) -> None:
    pass
