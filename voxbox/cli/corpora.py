"""CLI commands: corpora, prepare, download (see voxbox.cli for conventions)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def _parse_options(pairs: List[str]) -> dict:
    from ..errors import VoxboxError

    out = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise VoxboxError(f"--option wants KEY=VALUE, got {pair!r}")
        out[key.strip().replace("-", "_")] = value
    return out


def corpora(
    name: Optional[str] = typer.Argument(None, help="Show one corpus in full (and its recipe options). "
                                                    "Default: a table of all corpora."),
) -> None:
    """List the corpora voxbox knows (catalog in voxbox/manifests), or show one."""
    from ..catalog import get_entry, load_catalog
    from ..corpora import recipe_class, recipe_names

    if name is None:
        cat = load_catalog()
        rows = [("name", "languages", "license", "sr", "labels", "download", "subsets")]
        for e in sorted(cat.values(), key=lambda e: e.name):
            labels = ",".join(k for k, v in e.native_labels.items()
                              if k in ("gender", "age", "emotion") and not v.startswith("none"))
            rows.append((e.name, ",".join(e.languages), _clip(e.license.split(" (")[0], 28),
                         str(e.sample_rate or "?"), labels or "-",
                         "yes" if e.archives else "manual", _clip(",".join(e.subsets), 40) or "-"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        extra = [n for n in recipe_names() if n not in cat]
        if extra:
            typer.echo(f"\nrecipes without a catalog entry: {', '.join(extra)} (voxbox corpora NAME for options)")
        return
    from ..corpora import normalise

    key = normalise(name)
    if key in load_catalog():
        e = get_entry(key)
        typer.echo(f"{e.name}: {e.title}")
        typer.echo(f"  languages:   {', '.join(e.languages)}")
        typer.echo(f"  license:     {e.license}")
        typer.echo(f"  homepage:    {e.homepage}")
        typer.echo(f"  sample rate: {e.sample_rate or '?'} Hz, {e.audio_format}")
        if e.voxbox_subset:
            typer.echo(f"  in VoxBox:   {e.voxbox_subset}")
        typer.echo("  native labels:")
        for k, v in e.native_labels.items():
            typer.echo(f"    {k}: {v}")
        if e.layout:
            typer.echo(f"  layout:      {e.layout}")
        if e.archives:
            typer.echo("  archives:")
            for a in e.archives:
                chk = a.checksum or "none (not verified)"
                typer.echo(f"    [{a.subset}] {a.url}  size {a.size or '?'}  checksum {chk}")
        else:
            typer.echo(f"  download:    manual: {e.download_notes or 'no public archive'}")
        if e.notes:
            typer.echo(f"  notes:       {e.notes}")
    cls = recipe_class(key)
    if key not in load_catalog():
        typer.echo(f"{key}: {((cls.__doc__ or '').strip().splitlines() or ['(no description)'])[0]}")
    typer.echo(f"  prepare --subset: {cls.subset_help}")
    if cls.options:
        typer.echo(f"  recipe options (voxbox prepare {key} -o KEY=VALUE):")
        for k, o in cls.options.items():
            typer.echo(f"    {k} (default {o.default!r}): {o.help}")


def prepare(
    corpus: str = typer.Argument(..., help="Corpus recipe name (see `voxbox corpora`), or `folder` for your own recordings."),
    root: Path = typer.Option(..., "--root", help="Local copy of the corpus: the folder you downloaded/extracted into, "
                                                  "or the corpus folder itself."),
    out: Path = typer.Option(..., "--out", help="Manifest to write (.jsonl, .jsonl.gz or .parquet). Rejected files "
                                                "go to <out>.rejects.jsonl next to it."),
    subset: List[str] = typer.Option([], "--subset", "-s", help="Subset(s) to include, repeatable. Default: every "
                                                                "subset found under --root."),
    option: List[str] = typer.Option([], "--option", "-o", help="Recipe option KEY=VALUE, repeatable (e.g. "
                                                                "-o mic=mic2 for vctk; `voxbox corpora NAME` lists them). "
                                                                "Default: none."),
    workers: int = typer.Option(4, "--workers", "-j", min=1, help="Threads reading audio headers."),
) -> None:
    """Turn a local corpus copy into a manifest of utterance records (reads audio headers only)."""
    from ..corpora.prepare import prepare_manifest

    summary = prepare_manifest(corpus, root, out, subsets=subset or None,
                               options=_parse_options(option), workers=workers)
    typer.echo(summary.line())


def download(
    corpus: str = typer.Argument(..., help="Corpus name (see `voxbox corpora`)."),
    dest: Path = typer.Option(..., "--dest", help="Folder to download into; archives go to DEST/archives and are "
                                                  "extracted into DEST."),
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
    from ..catalog import get_entry
    from ..download import download_corpus

    entry = get_entry(corpus)
    reports = download_corpus(entry, dest, subsets=subset or None, mirror=mirror, extract=extract,
                              keep_archives=keep_archives, retries=retries,
                              log=lambda s: typer.echo(s, err=True))
    unverified = sum(1 for r in reports if not r.verified)
    typer.echo(f"{entry.name}: {len(reports)} archive(s) ready in {dest}"
               + (f"; {unverified} not checksum-verified (the catalog has no checksum)" if unverified else ""))
    typer.echo(f"next: voxbox prepare {entry.name} --root {dest} --out {entry.name}.jsonl")


def _clip(text: str, width: int) -> str:
    """Shorten a table cell visibly (a silent cut reads like a wrong value)."""
    return text if len(text) <= width else text[: width - 3] + "..."


def register(app: typer.Typer) -> None:
    app.command("corpora")(corpora)
    app.command("prepare")(prepare)
    app.command("download")(download)
