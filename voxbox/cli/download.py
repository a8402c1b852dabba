"""CLI command: voxbox download (see voxbox.cli for conventions)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer




def download(
    corpus: str = typer.Argument(..., help="Corpus name (see `voxbox corpora`)."),
    download_dir: Path = typer.Option(..., "--download-dir", help="Folder to download into; archives go to "
                                      "DIR/archives and are extracted into DIR (then `voxbox prepare --root DIR`)."),
    subset: List[str] = typer.Option([], "--subset", "-s", help="Subset(s) to fetch, repeatable. Default: all."),
    mirror: Optional[str] = typer.Option(None, "--mirror", envvar="VOXBOX_MIRROR",
                                         help="Base URL of a mirror: replaces scheme and host of every archive "
                                              "URL and keeps the path (e.g. https://openslr.elda.org). "
                                              "Default: $VOXBOX_MIRROR, else the publisher's URL."),
    extract: bool = typer.Option(True, "--extract/--no-extract", help="Extract each archive after verifying it."),
    keep_archives: bool = typer.Option(True, "--keep-archives/--remove-archives",
                                       help="Keep archives after extraction."),
    retries: int = typer.Option(5, "--retries", min=0, help="Reconnects (resuming with HTTP Range) per archive."),
) -> None:
    """Download a corpus: resumable, checksum-verified, safely extracted; reruns skip finished archives."""
    from voxbox.sources.catalog import get_entry
    from voxbox.sources.download import download_corpus

    from voxbox.cli.output import notice, result

    entry = get_entry(corpus)
    reports = download_corpus(entry, download_dir, subsets=subset or None, mirror=mirror, extract=extract,
                              keep_archives=keep_archives, retries=retries, log=notice)
    unverified = sum(1 for r in reports if not r.verified)
    text = (f"{entry.name}: {len(reports)} archive(s) ready in {download_dir}"
            + (f"; {unverified} not checksum-verified (the catalog has no checksum)" if unverified else "")
            + f"\nnext: voxbox prepare {entry.name} --root {download_dir} --out {entry.name}.jsonl")
    result({"corpus": entry.name, "download_dir": str(download_dir), "archives": len(reports),
            "unverified": unverified}, text)


def register(app: typer.Typer) -> None:
    app.command("download")(download)
