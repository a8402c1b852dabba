"""CLI command: voxbox corpora (see voxbox.cli for conventions)."""

from __future__ import annotations

from typing import Optional

import typer




def _clip(text: str, width: int) -> str:
    """Shorten a table cell visibly (a silent cut reads like a wrong value)."""
    return text if len(text) <= width else text[: width - 3] + "..."


def _download_kind(entry) -> str:
    from voxbox.sources.corpora import default_root, recipe_names

    if entry.name in recipe_names() and default_root(entry.name) is not None:
        return "bundled"  # ships inside voxbox (the sample corpus)
    return "yes" if entry.archives else "manual"


def _list_all(cat: dict, recipes) -> None:
    """The table of every corpus (and, with --json, the same as a list of objects)."""
    from voxbox.cli.output import result

    rows = [("name", "languages", "license", "access", "voxbox subset", "voxbox h", "sr", "labels",
             "download", "subsets")]
    data = []
    for e in sorted(cat.values(), key=lambda e: e.name):
        labels = [k for k, v in e.native_labels.items() if k in ("gender", "age", "emotion") and not v.startswith("none")]
        data.append({"name": e.name, "title": e.title, "languages": list(e.languages), "license": e.license,
                     "access": e.access, "voxbox_subset": e.voxbox_subset, "voxbox_hours": e.voxbox_hours,
                     "sample_rate": e.sample_rate, "labels": labels, "download": _download_kind(e),
                     "subsets": e.subsets})
        rows.append((e.name, ",".join(e.languages), _clip(e.license.split(" (")[0], 28), e.access,
                     _clip(e.voxbox_subset or "-", 24), f"{e.voxbox_hours:,.2f}" if e.voxbox_hours else "-",
                     str(e.sample_rate or "?"), ",".join(labels) or "-", data[-1]["download"],
                     _clip(",".join(e.subsets), 40) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    extra = [n for n in recipes if n not in cat]
    if extra:
        lines.append(f"\nrecipes without a catalog entry: {', '.join(extra)} (voxbox corpora NAME for options)")
    result({"corpora": data, "recipes_without_entry": extra}, "\n".join(lines))


def corpora(
    name: Optional[str] = typer.Argument(None, help="Show one corpus in full (and its recipe options). "
                                                    "Default: a table of all corpora."),
) -> None:
    """List the corpora voxbox knows (catalog in voxbox/manifests), or show one."""
    from voxbox.sources.catalog import get_entry, load_catalog
    from voxbox.sources.corpora import recipe_class, recipe_names

    if name is None:
        _list_all(load_catalog(), recipe_names())
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
            kind = "bundled" if _download_kind(e) == "bundled" else "manual"
            typer.echo(f"  download:    {kind}: {e.download_notes or 'no public archive'}")
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
        typer.echo(f"  recipe options (voxbox prepare/build {key} -O KEY=VALUE):")
        for k, o in cls.options.items():
            typer.echo(f"    {k} (default {o.default!r}): {o.help}")


def register(app: typer.Typer) -> None:
    app.command("corpora")(corpora)
