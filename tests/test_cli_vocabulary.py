"""One CLI vocabulary: every command, now and future, obeys the same option names.

The test walks every command of the live CLI (so a command added later is checked too):
- a short option means the same long option everywhere (-o is always --out, never --option);
- one name per meaning: the synonyms we replaced (--dest, --overwrite, --output ...) stay gone;
- an option name is a flag everywhere or a value everywhere;
- the canonical options carry their canonical short form wherever they appear;
- every command takes -q/--quiet, -v/--verbose and --json, and flags show no `<bool>` placeholder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict

from conftest import REPO

from voxbox.cli import cli_command, main

# Names we replaced, and what to use instead (one name per meaning).
SYNONYMS = {
    "--dest": "--download-dir (corpus archives) or --model-dir (a model folder)",
    "--output": "--out", "--output-dir": "--out", "--outdir": "--out", "--out-dir": "--out",
    "--overwrite": "--force", "--opt": "--option", "--options": "--option", "--recipe-option": "--option",
    "--data-dir": "--download-dir", "--cache-dir": "--download-dir", "--model": "--model-dir",
    "--model-path": "--model-dir", "--quiet-mode": "--quiet", "--num-workers": "--workers", "--jobs": "--workers",
}
# Long options that always carry this short form.
CANONICAL_SHORT = {"--out": "-o", "--model-dir": "-m", "--option": "-O", "--workers": "-j", "--subset": "-s",
                   "--quiet": "-q", "--verbose": "-v", "--help": "-h"}
GLOBAL = ("--quiet", "--verbose", "--json")


def walk(cmd, path=()):
    yield path, cmd
    for name, sub in sorted(getattr(cmd, "commands", {}).items()):
        yield from walk(sub, path + (name,))


def options(cmd):
    for p in cmd.params:
        if p.param_type_name == "option":
            yield p


def test_every_command_speaks_one_vocabulary():
    root = cli_command()
    commands = list(walk(root))
    short_to_long = defaultdict(set)
    long_is_flag = defaultdict(set)
    problems = []
    for path, cmd in commands:
        where = "voxbox " + " ".join(path)
        leaf = not getattr(cmd, "commands", None)
        names = set()
        for p in options(cmd):
            longs = [o for o in p.opts + p.secondary_opts if o.startswith("--")]
            shorts = [o for o in p.opts if not o.startswith("--")]
            names.update(longs)
            for s in shorts:
                short_to_long[s].add(longs[0])
            for lo in longs:
                long_is_flag[lo].add(bool(p.is_flag))
                if lo in SYNONYMS:
                    problems.append(f"{where}: {lo} is not our vocabulary; use {SYNONYMS[lo]}")
                want = CANONICAL_SHORT.get(lo)
                if want and lo == longs[0] and want not in shorts:
                    problems.append(f"{where}: {lo} without its short form {want}")
        if leaf or path == ():
            missing = [g for g in GLOBAL if g not in names]
            if missing:
                problems.append(f"{where}: lacks {', '.join(missing)}")
    for short, longs in sorted(short_to_long.items()):
        if len(longs) > 1:
            problems.append(f"{short} means {' and '.join(sorted(longs))} in different commands")
    for long, kinds in sorted(long_is_flag.items()):
        if len(kinds) > 1:
            problems.append(f"{long} is a flag in one command and takes a value in another")
    assert not problems, "\n".join(problems)


def test_help_shows_no_bool_placeholder(capsys):
    for path, _cmd in walk(cli_command()):
        assert main([*path, "--help"]) == 0
        out = capsys.readouterr().out
        assert "<bool>" not in out, f"voxbox {' '.join(path)} --help shows <bool>"


def test_json_summary_is_one_object_on_stdout(tmp_path, capsys):
    assert main(["corpora", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and "sample" in {c["name"] for c in data["corpora"]}
    # Global flags also work before the command, and errors are JSON too (and one stderr line).
    assert main(["--json", "validate", str(tmp_path / "nope")]) == 1
    cap = capsys.readouterr()
    assert json.loads(cap.out) == {"ok": False, "error": f"{tmp_path / 'nope'}: no such dataset folder"}
    assert cap.err.strip().startswith("error:") and len(cap.err.strip().splitlines()) == 1
    # A command that only echoes text still gives one JSON object.
    assert main(["corpora", "sample", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] and any("LibriTTS" in line for line in data["output"])


def test_quiet_hides_notices_and_verbose_is_accepted(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["build", "--corpus", "sample", "-o", str(out), "--stages", "", "-q", "-j", "1"]) == 0
    cap = capsys.readouterr()
    assert cap.err == "" and "built" in cap.out  # no notice, no progress; the result stays
    assert main(["-v", "validate", str(out), "--no-audio"]) == 0
    assert "ok:" in capsys.readouterr().out


def test_shell_completion_is_on():
    env = {**os.environ, "_VOXBOX_COMPLETE": "complete_bash", "COMP_WORDS": "voxbox bui", "COMP_CWORD": "1",
           "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-c", "from voxbox.cli import run; run()"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert "build" in r.stdout.split(), (r.stdout, r.stderr)
    # The shell is named, not detected: detection needs a parent shell, which a test run
    # under nohup or a bare CI runner lacks ("Shell  not supported").
    r = subprocess.run([sys.executable, "-m", "voxbox", "--show-completion", "bash"], env={
        **os.environ, "PYTHONPATH": str(REPO), "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"},
        capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "_VOXBOX_COMPLETE" in r.stdout
