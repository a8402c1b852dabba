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

from voxbox import __version__
from voxbox.errors import VoxboxError

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
    "corpora", "download", "prepare", "annotate", "levels", "train_gender", "train_age", "train_emotion",
    "speakers", "dedup", "tokenize", "detokenize", "build", "validate", "report", "publish", "fetch_model",
    "synth", "export", "reasons",
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
    _one_line_summaries(app)


def _one_line_summaries(typer_app: typer.Typer) -> None:
    """The command lists show a docstring's first paragraph with its hard line breaks,
    which breaks sentences mid-line; give each command that paragraph as one line."""
    for info in typer_app.registered_commands:
        doc = info.help or (info.callback.__doc__ if info.callback else None)
        if info.short_help is None and doc:
            info.short_help = " ".join(doc.strip().split("\n\n")[0].split())
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _one_line_summaries(group.typer_instance)


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
        # Usage errors too are one line in the house format, with where to look for help.
        if not e.format_message().strip():
            return e.exit_code  # a bare group: its help was printed instead of an error
        ctx = getattr(e, "ctx", None)
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        typer.echo(f"error: {e.format_message()}{hint}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted: finished work is kept; rerun the same command to resume", err=True)
        return 130
    except VoxboxError as e:
        if _state["debug"]:
            raise
        typer.echo(f"error: {e}", err=True)
        return 1
    except OSError as e:
        if _state["debug"]:
            raise
        if not e.filename:
            return _unexpected(e)
        # A file operation on a path the user gave (permissions, a file where a folder is
        # needed, a full disk): the path and the OS's reason are what the user acts on.
        typer.echo(f"error: {_os_error_line(e)}", err=True)
        return 1
    except Exception as e:  # noqa: BLE001 - the CLI's last line of defence
        if _state["debug"]:
            raise
        return _unexpected(e)


def _os_error_line(e: OSError) -> str:
    from voxbox.errors import os_error_reason

    target = f"{e.filename} -> {e.filename2}" if getattr(e, "filename2", None) else str(e.filename)
    return f"{target}: {os_error_reason(e)}"


def _unexpected(e: BaseException) -> int:
    msg = str(e).splitlines()[0] if str(e) else ""
    typer.echo(f"error: {type(e).__name__}: {msg} (rerun with --debug for the traceback)", err=True)
    return 1


def run() -> None:
    sys.exit(main())
