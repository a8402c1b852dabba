"""CLI conventions shared by every command."""

from __future__ import annotations

import subprocess
import sys

import typer

from voxbox import __version__
from voxbox.cli import app, main


def _walk(cmd, path=()):
    yield path, cmd
    if hasattr(cmd, "commands"):
        for name, sub in sorted(cmd.commands.items()):
            yield from _walk(sub, path + (name,))


def test_every_command_has_help_that_documents_every_option(capsys):
    root = typer.main.get_command(app)
    commands = list(_walk(root))
    assert len(commands) > 5
    for path, cmd in commands:
        assert cmd.help or path == (), f"voxbox {' '.join(path)} has no help text"
        for param in cmd.params:
            if param.param_type_name == "option" and param.name not in ("help",):
                assert param.help, f"voxbox {' '.join(path)} {param.opts[0]} has no help"
        assert main([*path, "--help"]) == 0
        out = capsys.readouterr().out
        assert "Usage" in out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"voxbox {__version__}"


def test_errors_are_one_line_and_nonzero(tmp_path):
    missing = tmp_path / "nope.jsonl"
    proc = subprocess.run([sys.executable, "-m", "voxbox", "annotate", str(missing), "--out", str(tmp_path / "o.jsonl")],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "Traceback" not in proc.stderr, proc.stderr
    debug = subprocess.run([sys.executable, "-m", "voxbox", "--debug", "annotate", str(missing), "--out",
                            str(tmp_path / "o.jsonl")], capture_output=True, text=True)
    assert debug.returncode != 0 and "Traceback" in debug.stderr


def test_unknown_command_is_a_usage_error(capsys):
    assert main(["no-such-command"]) == 2


def test_exit_codes_raised_inside_commands_reach_the_shell():
    @app.command("zz-exit-test", hidden=True, help="Exit with a code (test only).")
    def _exit_test(code: int = typer.Option(3, help="code")) -> None:
        raise typer.Exit(code)

    try:
        assert main(["zz-exit-test", "--code", "4"]) == 4
        assert main(["zz-exit-test", "--code", "0"]) == 0
    finally:
        app.registered_commands = [c for c in app.registered_commands if c.name != "zz-exit-test"]
