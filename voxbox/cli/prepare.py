"""CLI command: voxbox prepare (see voxbox.cli for conventions)."""

from __future__ import annotations

from pathlib import Path
from typing import List

import typer




def _parse_options(pairs: List[str]) -> dict:
    from voxbox.errors import VoxboxError

    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise VoxboxError(f"--option wants KEY=VALUE, got {pair!r}")
        out[key.strip().replace("-", "_")] = value
    return out


def prepare(
    corpus: str = typer.Argument(..., help="Corpus recipe name (see `voxbox corpora`), or `folder` for your own recordings."),
    root: Path = typer.Option(..., "--root", help="Local copy of the corpus: the folder you downloaded/extracted into, "
                                                  "or the corpus folder itself."),
    out: Path = typer.Option(..., "--out", help="Manifest to write (.jsonl, .jsonl.gz or .parquet). Rejected files "
                                                "go to <stem>.rejects.jsonl next to it (m.jsonl.gz -> "
                                                "m.rejects.jsonl)."),
    subset: List[str] = typer.Option([], "--subset", "-s", help="Subset(s) to include, repeatable. Default: every "
                                                                "subset found under --root."),
    option: List[str] = typer.Option([], "--option", "-o", help="Recipe option KEY=VALUE, repeatable (e.g. "
                                                                "-o mic=mic2 for vctk; `voxbox corpora NAME` lists them). "
                                                                "Default: none."),
    workers: int = typer.Option(4, "--workers", "-j", min=1, help="Threads reading audio headers."),
) -> None:
    """Turn a local corpus copy into a manifest of utterance records (reads audio headers only)."""
    from voxbox.sources.prepare import prepare_manifest

    summary = prepare_manifest(corpus, root, out, subsets=subset or None,
                               options=_parse_options(option), workers=workers,
                               log=lambda msg: typer.echo(msg, err=True))
    typer.echo(summary.line())


def register(app: typer.Typer) -> None:
    app.command("prepare")(prepare)
