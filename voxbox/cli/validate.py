"""CLI command: voxbox validate (see voxbox.cli for conventions)."""

from __future__ import annotations

from pathlib import Path

import typer




def validate_command(
    path: Path = typer.Argument(..., help="A built dataset folder (the --out of voxbox build)."),
    no_audio: bool = typer.Option(False, "--no-audio", help="Skip decoding audio (checksums, counts, tokens only)."),
) -> None:
    """Re-read every shard and check it against the index: counts, sha256, audio decodes,
    durations, token ranges, duplicate keys. Lists each problem; exits 1 on any."""
    from voxbox.errors import VoxboxError
    from voxbox.dataset.validate import validate

    report = validate(path, check_audio=not no_audio)
    for p in report.problems:
        typer.echo(p)
    if not report.ok:
        # A VoxboxError gives the one-line "error: ..." and exit code 1 (see voxbox.cli).
        raise VoxboxError(f"{path}: {report.summary()}")
    typer.echo(report.summary())


def register(app: typer.Typer) -> None:
    app.command("validate")(validate_command)
