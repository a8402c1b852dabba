"""Checks on a record as it is read from a manifest, before any stage sees it.

A manifest may come from anywhere (another tool, a hand edit, an older voxbox). One
malformed record must not stop a run with an error that names no line, nor travel on
into shards: :func:`check_record` says what is wrong with one record, field by field,
and the manifest reader turns that into a rejection naming the line and the field
(reason ``bad_record``, or a storage/duration code for a valid value no shard holds).

What is checked (every field is optional unless said):

- ``index``: present, a string of 1 to 128 letters, digits, ``_`` or ``-`` (it is a
  WebDataset key and a file name: no dots, slashes or spaces);
- integer fields: integers (an integral float such as ``16000.0`` is accepted and made
  an int), not booleans, within range (``sample_rate`` and ``channels`` as a shard can
  hold them, ``num_samples`` at least 1 and within the duration cap);
- float fields: finite numbers (no NaN or infinity);
- string fields: strings, ``text`` at most MAX_TEXT_CHARS characters, others 4096;
- ``global_tokens`` / ``semantic_tokens``: lists of integers in 0..4095 / 0..8191,
  exactly 32 global tokens;
- ``embedding``: a list of at most 4096 finite numbers within float16's range;
- ``extra`` / ``null_reasons``: objects;
- for commands that read audio: a ``source_path`` that stays inside ``corpus_root``
  (relative, no ``..``) unless absolute paths are allowed explicitly. An absolute path
  in a manifest could otherwise copy any readable file (a token file, say) into the
  shards.
"""

from __future__ import annotations

import math
import re
from dataclasses import fields
from typing import Any, Dict, Optional, Tuple

from voxbox.limits import MAX_TEXT_CHARS, duration_problem, storage_problem
from voxbox.record import Utterance

INDEX_RE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
MAX_STRING_CHARS = 4096
GLOBAL_TOKENS, GLOBAL_VOCAB, SEMANTIC_VOCAB = 32, 4096, 8192


class BadRecord(Exception):
    """What is wrong with a record: a reason code, the field, and a message."""

    def __init__(self, reason: str, field: str, message: str):
        super().__init__(message if field == "line" else f"field '{field}': {message}")
        self.reason, self.field, self.message = reason, field, message


def _kinds() -> Dict[str, str]:
    hints = Utterance.__annotations__
    out = {}
    for f in fields(Utterance):
        hint = str(hints[f.name])
        out[f.name] = next((k for k in ("int", "float", "list", "dict", "str") if k in hint), "str")
    out["embedding"] = "floats"  # the one list that is not tokens
    return out


KINDS = _kinds()


def check_record(data: Any, need_audio: bool = False, allow_outside_root: bool = False) -> dict:
    """``data`` (a decoded manifest line) checked and normalised (integral floats made
    ints); raises BadRecord naming the first bad field."""
    if not isinstance(data, dict):
        raise BadRecord("bad_record", "line", f"expected a JSON object (one record per line), got {type(data).__name__}")
    out = dict(data)
    index = out.get("index")
    if index is None or index == "":
        raise BadRecord("bad_record", "index", "record without an index (every record needs a unique 'index'; "
                                               "`voxbox prepare` makes manifests with one)")
    if not isinstance(index, str) or not INDEX_RE.match(index):
        raise BadRecord("bad_record", "index", f"{_show(index)} is not 1 to 128 letters, digits, '_' or '-'")
    for name, kind in KINDS.items():
        if out.get(name) is not None:
            out[name] = _CHECKS[kind](name, out[name])
    _check_ranges(out)
    if need_audio:
        _check_source(out, allow_outside_root)
    return out


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _int(name: str, v: Any) -> int:
    if isinstance(v, float) and math.isfinite(v) and v.is_integer() and abs(v) < 2 ** 53:
        return int(v)
    if not isinstance(v, int) or isinstance(v, bool):
        raise BadRecord("bad_record", name, f"{_show(v)} is not an integer")
    return v


def _float(name: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise BadRecord("bad_record", name, f"{_show(v)} is not a number")
    if not math.isfinite(v):
        raise BadRecord("bad_record", name, f"{_show(v)} is not a finite number")
    return v


def _str(name: str, v: Any) -> str:
    if not isinstance(v, str):
        raise BadRecord("bad_record", name, f"{_show(v)} is not a string")
    limit = {"text": MAX_TEXT_CHARS, "syllables": 4 * MAX_TEXT_CHARS}.get(name, MAX_STRING_CHARS)
    if len(v) > limit:
        raise BadRecord("text_too_long" if name == "text" else "bad_record", name,
                        f"{len(v)} characters, more than {limit}")
    return v


def _list(name: str, v: Any) -> list:
    if not isinstance(v, list) or any(isinstance(t, bool) or not isinstance(t, int) for t in v):
        raise BadRecord("bad_record", name, f"{_show(v)} is not a list of integers")
    vocab = GLOBAL_VOCAB if name == "global_tokens" else SEMANTIC_VOCAB
    bad = next((t for t in v if not 0 <= t < vocab), None)
    if bad is not None:
        raise BadRecord("bad_record", name, f"token {bad} outside 0..{vocab - 1}")
    if name == "global_tokens" and len(v) != GLOBAL_TOKENS:
        raise BadRecord("bad_record", name, f"{len(v)} tokens, BiCodec makes {GLOBAL_TOKENS}")
    return v


MAX_EMBEDDING = 4096
FLOAT16_MAX = 65504.0


def _floats(name: str, v: Any) -> list:
    if not isinstance(v, list) or any(isinstance(x, bool) or not isinstance(x, (int, float)) for x in v):
        raise BadRecord("bad_record", name, f"{_show(v)} is not a list of numbers")
    if len(v) > MAX_EMBEDDING:
        raise BadRecord("bad_record", name, f"{len(v)} values, more than {MAX_EMBEDDING}")
    bad = next((x for x in v if not (math.isfinite(x) and abs(x) <= FLOAT16_MAX)), None)
    if bad is not None:
        raise BadRecord("bad_record", name, f"{bad!r} is not a finite float16 value")
    return v


def _dict(name: str, v: Any) -> dict:
    if not isinstance(v, dict):
        raise BadRecord("bad_record", name, f"{_show(v)} is not an object")
    return v


_CHECKS = {"int": _int, "float": _float, "str": _str, "list": _list, "floats": _floats, "dict": _dict}


def _check_ranges(d: dict) -> None:
    sr, n, ch = d.get("sample_rate"), d.get("num_samples"), d.get("channels")
    if sr is not None and sr <= 0:
        raise BadRecord("bad_record", "sample_rate", f"{sr} is not a positive rate")
    if n is not None and n < 1:
        raise BadRecord("bad_record", "num_samples", f"{n}: a clip has at least one sample")
    if ch is not None and ch < 1:
        raise BadRecord("bad_record", "channels", f"{ch}: a clip has at least one channel")
    problem = storage_problem(sr if sr is not None else 16000, ch if ch is not None else 1)
    if problem is None and sr is not None and n is not None:
        problem = duration_problem(sr, n)
    if problem is not None:
        field = {"too_many_channels": "channels", "too_long": "num_samples"}.get(problem.reason, "sample_rate")
        raise BadRecord(problem.reason, field, problem.detail)


def _check_source(d: dict, allow_outside_root: bool) -> None:
    src = d.get("source_path")
    if src is None:
        what = (f"no source_path, only the release's wav_path {_show(d['wav_path'])}; set source_path to the audio "
                "file (and corpus_root to the folder it is relative to)" if d.get("wav_path") else "no source_path")
        raise BadRecord("no_audio_path", "source_path", what)
    parts = src.replace("\\", "/").split("/")
    if not allow_outside_root and (src.startswith(("/", "\\")) or (len(src) > 1 and src[1] == ":") or ".." in parts):
        raise BadRecord("source_outside_root", "source_path",
                        f"{_show(src)} leaves the corpus root; source paths are relative to corpus_root "
                        "(allow absolute paths explicitly with --allow-absolute-paths)")


def record_or_problem(data: Any, need_audio: bool = False,
                      allow_outside_root: bool = False) -> Tuple[Optional[Utterance], Optional[BadRecord]]:
    """(record, None) for a good manifest line, (None, problem) for a bad one."""
    try:
        return Utterance.from_dict(check_record(data, need_audio, allow_outside_root)), None
    except BadRecord as e:
        return None, e
