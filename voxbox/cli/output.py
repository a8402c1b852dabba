"""What every command prints, and how loudly: ``-q/--quiet``, ``-v/--verbose``, ``--json``.

These three flags exist on the root command and on every command (injected by
:func:`add_global_flags`, so a new command gets them without declaring them):

- ``-q``: no progress bars and no notices on stderr; the result and errors only.
- ``-v``: notices plus details: library log messages (Python logging at INFO) and
  progress bars even when stderr is not a terminal.
- ``--json``: the command's result is one JSON object on stdout (for scripts); errors
  are still one ``error:`` line on stderr, plus ``{"ok": false, "error": ...}`` on stdout.

Commands print their result with :func:`result` (data for ``--json``, text otherwise)
and notices with :func:`notice`. A command that only echoes text still gives valid JSON:
its stdout lines are collected into ``{"ok": true, "output": [...]}``.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Optional

STATE = {"quiet": False, "verbose": False, "json": False, "result": None}
FLAG_HELP = {
    "quiet": "Quiet: no progress bars or notices, only the result and errors.",
    "verbose": "Verbose: notices, library log messages and progress bars even when not on a terminal.",
    "json": "Print the result as one JSON object on stdout (for scripts).",
}


def reset() -> None:
    STATE.update(quiet=False, verbose=False, json=False, result=None)


def set_flag(name: str, value: bool) -> None:
    """Turn a global flag on (they only ever switch on, wherever they appear)."""
    if not value:
        return
    STATE[name] = True
    if name == "quiet":
        os.environ["VOXBOX_PROGRESS"] = "0"  # worker processes inherit it
    elif name == "verbose":
        import logging

        os.environ.setdefault("VOXBOX_PROGRESS", "1")
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s: %(message)s")


def notice(msg: str) -> None:
    """A line for the person watching (stderr), hidden by -q."""
    if not STATE["quiet"]:
        print(msg, file=sys.stderr, flush=True)


def result(data: Any, text: Optional[str] = None) -> None:
    """The command's result: ``data`` as JSON with --json, else ``text`` (or ``data``) on stdout."""
    if STATE["json"]:
        STATE["result"] = data
        return
    print(text if text is not None else (data if isinstance(data, str) else json.dumps(data, indent=2)),
          flush=True)


def json_dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)


def add_global_flags(root) -> None:
    """Give every command below ``root`` the root's -q/-v/--json options (copies that set
    the same state, not passed to the command function) and drop the ``<bool>`` type
    placeholder of every flag in --help."""
    import copy

    flags = [p for p in root.params if {f"--{n}" for n in FLAG_HELP} & set(p.opts)]

    def visit(cmd) -> None:
        names = {o for p in cmd.params for o in getattr(p, "opts", [])}
        if cmd is not root:
            for flag in flags:
                if not set(flag.opts) & names:
                    clone = copy.copy(flag)
                    clone.expose_value = False
                    cmd.params.append(clone)
        for p in cmd.params:
            if getattr(p, "is_flag", False):
                p.metavar = ""  # a flag takes no value
        cmd.get_help_option = _flag_help_option(cmd.get_help_option)
        for sub in getattr(cmd, "commands", {}).values():
            visit(sub)

    visit(root)


def _flag_help_option(make):
    """click builds --help when help is shown: drop its placeholder too."""
    def get_help_option(ctx):
        option = make(ctx)
        if option is not None:
            option.metavar = ""
        return option

    return get_help_option
