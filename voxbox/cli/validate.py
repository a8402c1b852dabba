"""CLI command: voxbox validate (see voxbox.cli for conventions)."""

from __future__ import annotations

import typer


def validate_command(
    path: str = typer.Argument(..., help="A built dataset: a folder, or the URL a build wrote to "
                               "(s3://BUCKET/PREFIX, hf://datasets/OWNER/NAME[@REV]/PATH, any fsspec URL), "
                               "checked in place, one shard at a time."),
    no_audio: bool = typer.Option(False, "--no-audio", help="Skip decoding audio (checksums, counts, tokens only)."),
) -> None:
    """Re-read every shard and check it against the index: counts, sha256, audio decodes,
    durations, token ranges, duplicate keys. Lists each problem; exits 1 on any."""
    from voxbox.errors import VoxboxError
    from voxbox.dataset.validate import validate

    from voxbox.cli.output import result

    report = validate(path, check_audio=not no_audio)
    data = {"ok": report.ok, "records": report.records, "problems": list(report.problems),
            "summary": report.summary()}
    if not report.ok:
        result(data, "\n".join(report.problems))
        # A VoxboxError gives the one-line "error: ..." and exit code 1 (see voxbox.cli).
        raise VoxboxError(f"{report.path}: {report.summary()}")
    result(data, report.summary())


def register(app: typer.Typer) -> None:
    app.command("validate")(validate_command)
