"""CLI command: voxbox corpora (see voxbox.cli for conventions)."""

from __future__ import annotations

from typing import Optional

import typer




def _clip(text: str, width: int) -> str:
    """Shorten a table cell visibly (a silent cut reads like a wrong value)."""
    return text if len(text) <= width else text[: width - 3] + "..."


def corpora(
    name: Optional[str] = typer.Argument(None, help="Show one corpus in full (and its recipe options). "
                                                    "Default: a table of all corpora."),
) -> None:
    """List the corpora voxbox knows (catalog in voxbox/manifests), or show one."""
    from voxbox.sources.catalog import get_entry, load_catalog
    from voxbox.sources.corpora import recipe_class, recipe_names

    if name is None:
        cat = load_catalog()
        rows = [("name", "languages", "license", "access", "voxbox subset", "voxbox h", "sr", "labels",
                 "download", "subsets")]
        for e in sorted(cat.values(), key=lambda e: e.name):
            labels = ",".join(k for k, v in e.native_labels.items()
                              if k in ("gender", "age", "emotion") and not v.startswith("none"))
            rows.append((e.name, ",".join(e.languages), _clip(e.license.split(" (")[0], 28), e.access,
                         _clip(e.voxbox_subset or "-", 24),
                         f"{e.voxbox_hours:,.2f}" if e.voxbox_hours else "-",
                         str(e.sample_rate or "?"), labels or "-",
                         "yes" if e.archives else "manual", _clip(",".join(e.subsets), 40) or "-"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        extra = [n for n in recipe_names() if n not in cat]
        if extra:
            typer.echo(f"\nrecipes without a catalog entry: {', '.join(extra)} (voxbox corpora NAME for options)")
        return
    from voxbox.sources.corpora import normalise

    key = normalise(name)
    if key in load_catalog():
        e = get_entry(key)
        typer.echo(f"{e.name}: {e.title}")
        typer.echo(f"  languages:   {', '.join(e.languages)}")
        typer.echo(f"  license:     {e.license}")
        typer.echo(f"  homepage:    {e.homepage}")
        typer.echo(f"  sample rate: {e.sample_rate or '?'} Hz, {e.audio_format}")
        if e.voxbox_subset:
            hours = f", {e.voxbox_hours:,.2f} h" if e.voxbox_hours else ""
            typer.echo(f"  in VoxBox:   {e.voxbox_subset}{hours}")
        typer.echo(f"  access:      {e.access}" + ("" if e.access == "open" else
                                                   " (obtain it as below, then pass its folder with --root)"))
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
    if key in load_catalog() and key not in recipe_names():
        typer.echo("  recipe:      none yet (see notes)")
        return
    cls = recipe_class(key)
    if key not in load_catalog():
        typer.echo(f"{key}: {((cls.__doc__ or '').strip().splitlines() or ['(no description)'])[0]}")
    typer.echo(f"  prepare --subset: {cls.subset_help}")
    if cls.options:
        typer.echo(f"  recipe options (voxbox prepare {key} -o KEY=VALUE):")
        for k, o in cls.options.items():
            typer.echo(f"    {k} (default {o.default!r}): {o.help}")


def register(app: typer.Typer) -> None:
    app.command("corpora")(corpora)
