"""CLI command: voxbox levels (see voxbox.cli for conventions)."""

from __future__ import annotations

from pathlib import Path

import typer




def levels(
    manifest: Path = typer.Argument(..., help="Annotated manifest (output of `voxbox annotate`)."),
    out: Path = typer.Option(..., "--out", "-o", help="Boundaries JSON to write (use with annotate --boundaries)."),
    min_count: int = typer.Option(20, "--min-count", min=1,
                                  help="Leave out groups (a gender, a language) with fewer values than this."),
) -> None:
    """Recompute the five-level boundaries from your own data with VoxBox's percentile rule
    (pitch: Mel, p5/p20/p70/p90 per gender; speed: p5/p20/p80/p95 per language; pitch_std:
    p5/p20/p80/p95 per gender)."""
    from voxbox.annotate.runner import levels_from_manifest

    table = levels_from_manifest(manifest, out, min_count=min_count)
    for attr in ("pitch", "speed", "pitch_std"):
        for group, b in table.get(attr, {}).items():
            typer.echo(f"{attr:9s} {group:8s} " + " ".join(f"{x:9.3f}" for x in b))
    if table.get("skipped"):
        typer.echo(f"skipped (fewer than {min_count} values): "
                   + ", ".join(f"{k} {n}" for k, n in table["skipped"].items()))
    typer.echo(f"wrote {out}")


def register(app: typer.Typer) -> None:
    app.command("levels")(levels)
