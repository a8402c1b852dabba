"""CLI command: voxbox stages (see voxbox.cli for conventions)."""

from __future__ import annotations

from typing import Optional

import typer


def stages(
    name: Optional[str] = typer.Argument(None, help="Show only this stage (default: every registered stage)."),
) -> None:
    """List the pipeline stages and their options (the `params:` a pipeline file may set):
    name, type, default and what each does. Unknown or ill-typed options are refused
    before any input is read."""
    from voxbox.stages import stage_class, stage_names

    names = [name] if name else stage_names()
    for i, stage in enumerate(names):
        cls = stage_class(stage)
        doc = (cls.__doc__ or "").strip().splitlines()
        typer.echo(("\n" if i else "") + f"{stage}: {doc[0] if doc else ''}".rstrip(": "))
        if not cls.options:
            typer.echo("  (no options)")
        width = max((len(o.name) for o in cls.options), default=0)
        for o in cls.options:
            choices = f" [{'|'.join(map(str, o.choices))}]" if o.choices else ""
            default = "none" if o.default is None else repr(o.default)
            typer.echo(f"  {o.name:<{width}}  {o.type_name}{choices}, default {default}: {o.help}")


def register(app: typer.Typer) -> None:
    app.command("stages")(stages)
