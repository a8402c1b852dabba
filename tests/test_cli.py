"""CLI conventions shared by every command."""

from __future__ import annotations

import subprocess
import sys

import pytest
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
        # Command lists print the summary verbatim: a hard line break there splits a sentence.
        summary = (cmd.short_help or cmd.help or "").strip().split("\n\n")[0]  # what typer lists
        assert "\n" not in summary, f"voxbox {' '.join(path)}: summary has a line break"
        for param in cmd.params:
            if param.param_type_name == "option" and param.name not in ("help",):
                assert param.help, f"voxbox {' '.join(path)} {param.opts[0]} has no help"
        assert main([*path, "--help"]) == 0
        out = capsys.readouterr().out
        assert "Usage" in out


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"voxbox {__version__}"


@pytest.mark.slow
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


def test_usage_errors_are_one_error_line_too(capsys):
    for argv in (["no-such-command"], ["annotate"], ["annotate", "m.jsonl", "--out", "o.jsonl", "--workers", "0"],
                 ["export", "nope", "x"], ["annotate", "m.jsonl", "--out", "o.jsonl", "--bogus"]):
        assert main(argv) == 2
        cap = capsys.readouterr()
        lines = cap.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "--help`" in lines[0], (argv, cap.err)
    # A bare command group still shows its help, without an empty error line.
    assert main(["synth"]) == 2
    cap = capsys.readouterr()
    assert "error:" not in cap.out + cap.err and "codec" in cap.out + cap.err


def test_exit_codes_raised_inside_commands_reach_the_shell():
    @app.command("zz-exit-test", hidden=True, help="Exit with a code (test only).")
    def _exit_test(code: int = typer.Option(3, help="code")) -> None:
        raise typer.Exit(code)

    try:
        assert main(["zz-exit-test", "--code", "4"]) == 4
        assert main(["zz-exit-test", "--code", "0"]) == 0
    finally:
        app.registered_commands = [c for c in app.registered_commands if c.name != "zz-exit-test"]


def test_file_system_errors_name_the_path_and_what_to_do(tmp_path, capsys):
    # mkdir under a file: once "error: FileExistsError: [Errno 17] File exists: ..."
    (tmp_path / "afile").write_text("x")
    import numpy as np
    import soundfile as sf

    (tmp_path / "voice").mkdir()
    sf.write(str(tmp_path / "voice" / "a.wav"), np.zeros(1600, np.float32), 16000)
    (tmp_path / "voice" / "a.txt").write_text("hi")
    assert main(["prepare", "folder", "--root", str(tmp_path / "voice"),
                 "--out", str(tmp_path / "afile" / "sub" / "m.jsonl")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ") and "Errno" not in err, err
    assert "afile" in err and ("a file is in the way" in err or "part of this path is a file" in err)
