"""The `voxbox` command line.

Thin by design: each module in this package registers a few commands that parse
options and call the library. Heavy libraries are imported inside the commands, so
`voxbox --help` stays fast.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import List, Optional

import typer

from .. import __version__
from ..errors import VoxboxError

app = typer.Typer(
    name="voxbox",
    help=(
        "Build VoxBox-style, Spark-TTS-ready speech datasets: prepare a corpus, annotate it "
        "exactly as VoxBox does, tokenize it with BiCodec, write WebDataset/Parquet shards, "
        "publish them, and check them by synthesis."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# One module per command group; each defines register(app). Order = order in --help.
COMMAND_MODULES = (
    "corpora", "annotate", "tokenize", "build", "synth", "publish",
)

_state = {"debug": bool(os.environ.get("VOXBOX_DEBUG"))}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"voxbox {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    if debug:
        _state["debug"] = True


def command_line() -> List[str]:
    """The command as the user typed it (for provenance), also when main() is called
    from Python with its own argv rather than from the shell."""
    return ["voxbox", *_state.get("argv", sys.argv[1:])]


def _register_all() -> None:
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"{__name__}.{name}")
        module.register(app)


_register_all()


def main(argv: Optional[List[str]] = None) -> int:
    """Console entry point: one clear line per error, non-zero exit, no traceback
    unless --debug (or VOXBOX_DEBUG=1)."""
    try:  # typer >= 0.2x vendors click as typer._click; older releases use click itself
        from typer._click.exceptions import ClickException
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click.exceptions import ClickException

    args = list(sys.argv[1:] if argv is None else argv)
    _state["argv"] = args
    if "--debug" in args:
        _state["debug"] = True
    command = typer.main.get_command(app)
    try:
        # Without standalone mode click returns the code of a typer.Exit(n) raised inside
        # a command instead of raising it; anything else a command returns means success.
        rv = command.main(args=args, prog_name="voxbox", standalone_mode=False)
        return rv if isinstance(rv, int) else 0
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except ClickException as e:
        e.show()
        return e.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted: finished work is kept; rerun the same command to resume", err=True)
        return 130
    except VoxboxError as e:
        if _state["debug"]:
            raise
        typer.echo(f"error: {e}", err=True)
        return 1
    except Exception as e:  # noqa: BLE001 - the CLI's last line of defence
        if _state["debug"]:
            raise
        msg = str(e).splitlines()[0] if str(e) else ""
        typer.echo(f"error: {type(e).__name__}: {msg} (rerun with --debug for the traceback)", err=True)
        return 1


def run() -> None:
    sys.exit(main())
