"""The one vocabulary of reason codes (voxbox/reasons.py): every code the source uses is
defined there, a Rejection refuses any other, and `voxbox reasons` prints the table."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from voxbox import reasons
from voxbox.record import Rejection

ROOT = Path(__file__).resolve().parents[1]

# Calls that carry a reason code, and which positional argument holds it.
_POSITION = {"Rejection": 2, "reject": 1, "InputError": 0, "AudioError": 0, "SyllableResult": 3,
             "FileRefused": 0, "OddPath": 1}


def _strings(node: ast.AST):
    """String constants an expression can evaluate to (through `a if c else b`, `a or b`)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.IfExp):
        yield from _strings(node.body)
        yield from _strings(node.orelse)
    elif isinstance(node, ast.BoolOp):
        for v in node.values:
            yield from _strings(v)


def _names(node: ast.AST) -> str:
    """Dotted-ish text of a target, to tell a `reasons[...]` or `skipped[...]` store."""
    return ast.unparse(node) if node is not None else ""


def _call_codes(node: ast.Call):
    name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
    for kw in node.keywords:
        if kw.arg == "reason":
            yield from _strings(kw.value)
    if name == "NoExample":  # export's NoExample(reason)
        pos = 0
    elif name == "Skip":  # a recipe's Skip(path, reason)
        pos = 1
    else:
        pos = _POSITION.get(name)
    if pos is not None and len(node.args) > pos:
        yield from _strings(node.args[pos])


def _store_codes(node: ast.AST):
    """`reasons[k] = "code"`, `reason = "code"`, `skipped[...]["code"] += 1`."""
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
        node, ast.AugAssign) else []
    if isinstance(node, ast.Assign) and any("reason" in _names(t) for t in targets):
        yield from _strings(node.value)
    for t in targets:
        if isinstance(t, ast.Subscript) and "skipped" in _names(t.value):
            yield from _strings(t.slice)


def codes_in_source(text: str):
    """(line, code) for every reason code literal in Python source ``text``."""
    for node in ast.walk(ast.parse(text)):
        found = _call_codes(node) if isinstance(node, ast.Call) else _store_codes(node)
        for code in found:
            yield node.lineno, code


def _source_files():
    for pkg in ("voxbox", "spark_tokenize"):
        yield from sorted((ROOT / pkg).rglob("*.py"))


def test_every_code_in_the_source_is_defined():
    undefined, seen = [], set()
    for path in _source_files():
        for line, code in codes_in_source(path.read_text(encoding="utf-8")):
            seen.add(code)
            if code not in reasons.REASONS:
                undefined.append(f"{path.relative_to(ROOT)}:{line}: {code}")
    assert not undefined, "reason codes not defined in voxbox/reasons.py:\n" + "\n".join(undefined)
    # The scan really sees the codes of every kind and part (so it cannot pass by finding nothing).
    assert {"missing_audio", "unreadable_audio", "audio_too_short", "silent_audio", "duplicate_index",
            "unexpected_error", "other_microphone", "over_max_tokens", "no_tokens", "no_gender_label",
            "unknown_gender", "no_label_no_model", "no_pronounceable_text", "empty_text"} <= seen


def test_the_scan_flags_an_undefined_code():
    src = ('def f(rec, self):\n'
           '    self.reject(rec, "audio_gone")\n'
           '    raise InputError("missing_audio", "x")\n'
           '    reasons["pitch"] = "pitch_unknowable"\n'
           '    skipped[t]["too_many"] += 1\n'
           '    skipped["no_label"] = skipped.get("no_label", 0) + 1\n'
           '    raise TokenizerError("msg", reason="bad_codec")\n')
    found = sorted(codes_in_source(src))
    assert [c for _, c in found] == ["audio_gone", "missing_audio", "pitch_unknowable", "too_many",
                                     "no_label", "bad_codec"]
    assert {c for _, c in found if c not in reasons.REASONS} == {"audio_gone", "pitch_unknowable",
                                                                 "too_many", "no_label", "bad_codec"}


def test_one_code_per_cause():
    # The duplicates users saw are gone: each old name reads back as the one code.
    for old, new in reasons.RENAMED.items():
        assert old not in reasons.REASONS and reasons.REASONS[new].kind == "reject"
    assert reasons.RENAMED["audio_missing"] == reasons.RENAMED["audio_not_found"] == "missing_audio"
    assert reasons.RENAMED["audio_unreadable"] == "unreadable_audio"
    for r in reasons.REASONS.values():
        assert r.code == r.code.lower() and r.code.isidentifier() and r.meaning and "\n" not in r.meaning
        assert isinstance(r.retryable, bool) and r.kind in reasons.KINDS


def test_rejection_refuses_an_undefined_code():
    with pytest.raises(reasons.UnknownReason, match=r"'unreadable_audo'.*did you mean 'unreadable_audio'"):
        Rejection("annotate", "a.wav", "unreadable_audo")
    with pytest.raises(reasons.UnknownReason, match=r"'audio_missing'.*did you mean 'missing_audio'"):
        Rejection("annotate", "a.wav", "audio_missing")  # the old name of a merged code
    with pytest.raises(reasons.UnknownReason, match="unknown reject reason"):
        Rejection("annotate", "a.wav", "no_voiced_frames")  # a null reason, not a rejection
    assert Rejection("annotate", "a.wav", "silent_audio").reason == "silent_audio"


def test_old_files_read_back_with_the_merged_codes(tmp_path):
    from voxbox.manifest import read_rejects

    rows = [{"stage": "shard", "path": "a.wav", "reason": "audio_missing"},
            {"stage": "tokenize", "path": "b.wav", "reason": "audio_not_found"},
            {"stage": "prepare", "path": "c.wav", "reason": "from_a_newer_voxbox"}]
    path = tmp_path / "x.rejects.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [r.reason for r in read_rejects(path)] == ["missing_audio", "missing_audio", "from_a_newer_voxbox"]


def test_plugin_codes():
    reasons.define("test_plugin_code", "reject", "a plug-in stage's own code")
    assert Rejection("plugin", "a.wav", "test_plugin_code").reason == "test_plugin_code"
    reasons.define("test_plugin_code", "reject", "a plug-in stage's own code")  # re-import: same
    with pytest.raises(ValueError, match="already defined"):
        reasons.define("missing_audio", "reject", "something else")
    with pytest.raises(ValueError, match="snake_case"):
        reasons.define("Bad Code", "reject", "x")
    del reasons.REASONS["test_plugin_code"]


def test_cli_prints_the_table(capsys):
    from voxbox.cli import main

    assert main(["reasons"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["code", "kind", "rerun", "meaning"]
    rows = {line.split()[0]: line.split()[1:3] for line in lines[1:]}
    assert rows.keys() == reasons.REASONS.keys()
    assert rows["unexpected_error"] == ["reject", "yes"] and rows["missing_audio"] == ["reject", "no"]
    assert main(["reasons", "--kind", "null"]) == 0
    assert {line.split()[1] for line in capsys.readouterr().out.splitlines()[1:]} == {"null"}
    assert main(["reasons", "--kind", "nul"]) == 1
    assert capsys.readouterr().err.strip() == "error: unknown kind 'nul' (choose from reject, skip, null)"
