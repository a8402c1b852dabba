"""CLI command: voxbox reasons (see voxbox.cli for conventions)."""

from __future__ import annotations

import typer


def reasons(
    kind: str = typer.Option(None, "--kind", help="Only codes of this kind: reject, skip or null."),
) -> None:
    """Print every reason code voxbox writes (rejects, counted skips, null fields): what it
    means and whether rerunning the same command can fix it."""
    from voxbox import reasons as vocabulary
    from voxbox.errors import VoxboxError

    if kind is not None and kind not in vocabulary.KINDS:
        raise VoxboxError(f"unknown kind {kind!r} (choose from {', '.join(vocabulary.KINDS)})")
    header, *rows = vocabulary.table_lines()
    typer.echo(header)
    for line in rows:
        if kind is None or line.split()[1] == kind:
            typer.echo(line)


def register(app: typer.Typer) -> None:
    app.command("reasons")(reasons)
