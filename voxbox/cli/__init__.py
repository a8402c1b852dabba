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
from voxbox.errors import VoxboxError, first_line

app = typer.Typer(
    name="voxbox",
    help=(
        "Build VoxBox-style, Spark-TTS-ready speech datasets: prepare a corpus, annotate it "
        "exactly as VoxBox does, tokenize it with BiCodec, write WebDataset/Parquet shards, "
        "publish them, and check them by synthesis."
    ),
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish, PowerShell
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# One module per command group; each defines register(app). Order = order in --help.
COMMAND_MODULES = (
    "corpora", "download", "prepare", "annotate", "levels", "train_gender", "train_age", "train_emotion",
    "speakers", "dedup", "tokenize", "detokenize", "build", "stages", "validate", "report", "serve", "publish",
    "fetch_model", "synth", "export", "reasons", "train",
)

_state = {"debug": bool(os.environ.get("VOXBOX_DEBUG"))}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"voxbox {__version__}")
        raise typer.Exit()


def _flag(name: str):
    from voxbox.cli.output import set_flag

    return lambda value: set_flag(name, value)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    # Also accepted after any command (voxbox.cli.output.add_global_flags copies them there).
    quiet: bool = typer.Option(False, "--quiet", "-q", is_eager=True, callback=_flag("quiet"),
                               help="Quiet: no progress bars or notices, only the result and errors."),
    verbose: bool = typer.Option(False, "--verbose", "-v", is_eager=True, callback=_flag("verbose"),
                                 help="Verbose: notices, library log messages and progress bars even when "
                                      "not on a terminal."),
    json_out: bool = typer.Option(False, "--json", is_eager=True, callback=_flag("json"),
                                  help="Print the result as one JSON object on stdout (for scripts)."),
) -> None:
    if debug:
        _state["debug"] = True


def command_line() -> List[str]:
    """The command as the user typed it (for provenance), also when main() is called
    from Python with its own argv rather than from the shell. Credentials in URLs
    (``s3://key:secret@bucket``) are removed and ``--cache DIR`` left out: a local cache
    changes nothing in the output and its path is nobody's business downstream."""
    from voxbox.storage.url import redact

    out, skip = [], False
    for arg in _state.get("argv", sys.argv[1:]):
        if skip or arg.startswith("--cache="):
            skip = False
            continue
        if arg == "--cache":
            skip = True
            continue
        out.append(redact(arg))
    return ["voxbox", *out]


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


def cli_command():
    """The click command of the whole CLI, with the global flags on every command."""
    from voxbox.cli.output import add_global_flags

    command = typer.main.get_command(app)
    add_global_flags(command)
    return command


def main(argv: Optional[List[str]] = None) -> int:
    """Console entry point (see :func:`_run`); with --json the result (or the error) is one
    JSON object on stdout."""
    import contextlib
    import io

    from voxbox.cli import output

    output.reset()
    args = list(sys.argv[1:] if argv is None else argv)
    if "--json" not in args:
        return _run(args)
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        code = _run(args)
    data = output.STATE["result"]
    if data is None:
        data = {"output": captured.getvalue().splitlines()} if code == 0 else {"error": _state.get("error")}
    if isinstance(data, dict):
        data = {"ok": code == 0, **data}
    print(output.json_dumps(data), flush=True)
    return code


def _run(args: List[str]) -> int:
    """Run the command line: one clear line per error, non-zero exit, no traceback
    unless --debug (or VOXBOX_DEBUG=1)."""
    try:  # typer >= 0.2x vendors click as typer._click; older releases use click itself
        from typer._click.exceptions import ClickException
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click.exceptions import ClickException

    _state["argv"] = args
    _state["error"] = None
    if "--debug" in args:
        _state["debug"] = True
    command = cli_command()
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
        _error(f"{e.format_message()}{hint}")
        return e.exit_code
    except KeyboardInterrupt:
        typer.echo("interrupted: finished work is kept; rerun the same command to resume", err=True)
        return 130
    except VoxboxError as e:
        if _state["debug"]:
            raise
        _error(str(e))
        return 1
    except OSError as e:
        if _state["debug"]:
            raise
        if not e.filename:
            return _unexpected(e)
        # A file operation on a path the user gave (permissions, a file where a folder is
        # needed, a full disk): the path and the OS's reason are what the user acts on.
        _error(_os_error_line(e))
        return 1
    except Exception as e:  # noqa: BLE001 - the CLI's last line of defence
        if _state["debug"]:
            raise
        return _unexpected(e)


def _error(msg: str) -> None:
    """The one error line on stderr (and kept for --json)."""
    _state["error"] = msg
    typer.echo(f"error: {msg}", err=True)


def _os_error_line(e: OSError) -> str:
    from voxbox.errors import os_error_reason

    target = f"{e.filename} -> {e.filename2}" if getattr(e, "filename2", None) else str(e.filename)
    return f"{target}: {os_error_reason(e)}"


def _unexpected(e: BaseException) -> int:
    msg = first_line(e, "")
    _error(f"{type(e).__name__}: {msg} (rerun with --debug for the traceback)")
    return 1


def run() -> None:
    try:
        sys.exit(main())
    except BrokenPipeError:  # `voxbox ... | head`: the reader left, nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
