"""Label corrections made by people: the ``corrections.jsonl`` file and how a build applies it.

``voxbox serve`` appends one JSON line per correction to ``DIR/corrections.jsonl``::

    {"index": "libritts_1a2b...", "field": "gender", "old": "male", "new": "female",
     "who": "ann", "when": "2026-11-29T15:20:03Z"}

``voxbox build --corrections FILE`` applies them to the input records before any stage
runs (:func:`load_corrections`, :func:`corrected_source`), so annotation sees them: a corrected gender, age or
emotion becomes a ``native`` label (no model, no confidence) and the annotator keeps it;
a corrected text is re-syllabified. Fields derived from a corrected value (speed from
text, pitch levels from gender) are cleared with the reason ``label_corrected`` until a
stage recomputes them. Every corrected record says so in ``extra["corrected"]``
(field -> old, new, who, when), which is what the dataset card counts.

When a record has several corrections of one field, the last line wins (the file is
append-only, in time order).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, Optional, Tuple, Union

from voxbox.errors import VoxboxError
from voxbox.reasons import check
from voxbox.record import AGE_GROUPS, EMOTIONS, GENDERS, NATIVE, Result, Utterance

CORRECTIONS_NAME = "corrections.jsonl"
FIELDS = ("gender", "age", "emotion", "text")
CHOICES = {"gender": GENDERS, "age": AGE_GROUPS, "emotion": EMOTIONS}
MAX_TEXT = 2000  # characters; a transcript longer than this is a paste accident
MAX_LINE = 16384  # bytes of one line of the file
REASON = check("label_corrected", "null")
# Fields computed from a corrected one: cleared until a stage recomputes them.
DERIVED = {
    "text": ("syllable_num", "syllables", "speed", "speed_level", "speed_value"),
    "gender": ("pitch_level", "pitch_std_level"),
}


def check_value(field: str, value) -> str:
    """The value as stored, or VoxboxError saying what is allowed."""
    if field not in FIELDS:
        raise VoxboxError(f"cannot correct {field!r}: corrections apply to {', '.join(FIELDS)}")
    if not isinstance(value, str):
        raise VoxboxError(f"{field}: the corrected value must be a string, got {type(value).__name__}")
    if field == "text":
        text = " ".join(value.split())
        if not text:
            raise VoxboxError("text: the corrected transcript is empty")
        if len(text) > MAX_TEXT:
            raise VoxboxError(f"text: the corrected transcript is longer than {MAX_TEXT} characters")
        return text
    if value not in CHOICES[field]:
        raise VoxboxError(f"{field}: {value!r} is not one of {', '.join(CHOICES[field])}")
    return value


def make_correction(index: str, field: str, old, new, who: str, when: str) -> dict:
    """One correction line (checked)."""
    if not isinstance(index, str) or not index:
        raise VoxboxError("a correction needs the record index")
    who = " ".join(str(who or "").split())[:100]
    if not who:
        raise VoxboxError("a correction needs a name (who made it)")
    return {"index": index, "field": field, "old": old, "new": check_value(field, new), "who": who, "when": when}


def append_correction(path: Union[str, Path], correction: dict) -> None:
    """Append one line and fsync it; an exclusive lock keeps concurrent writers' lines whole."""
    import fcntl

    line = json.dumps(correction, ensure_ascii=False, sort_keys=False, separators=(",", ":")) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def read_corrections(path: Union[str, Path]) -> Iterator[dict]:
    """Every correction in file order; a bad line is a one-line error naming it."""
    path = Path(path)
    if not path.exists():
        raise VoxboxError(f"{path}: corrections file not found")
    if not path.is_file():
        raise VoxboxError(f"{path}: not a regular file")
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            yield _parse_line(path, lineno, raw)


def _parse_line(path: Path, lineno: int, raw: bytes) -> dict:
    where = f"{path}:{lineno}"
    if len(raw) > MAX_LINE:
        raise VoxboxError(f"{where}: line longer than {MAX_LINE} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VoxboxError(f"{where}: not a JSON line ({e})") from None
    if not isinstance(data, dict):
        raise VoxboxError(f"{where}: expected a JSON object")
    try:
        return make_correction(data.get("index"), data.get("field"), data.get("old"), data.get("new"),
                               data.get("who") or "unknown", str(data.get("when") or ""))
    except VoxboxError as e:
        raise VoxboxError(f"{where}: {e}") from None


def latest(corrections: Iterable[dict]) -> Dict[str, Dict[str, dict]]:
    """index -> field -> the last correction of that field."""
    out: Dict[str, Dict[str, dict]] = {}
    for c in corrections:
        out.setdefault(c["index"], {})[c["field"]] = c
    return out


def apply(rec: Utterance, fields: Dict[str, dict]) -> Utterance:
    """The record with its corrections applied (see the module docstring)."""
    changes: dict = {}
    reasons = dict(rec.null_reasons or {})
    marks = dict((rec.extra or {}).get("corrected") or {})
    for field in FIELDS:
        c = fields.get(field)
        if c is None:
            continue
        changes[field] = c["new"]
        if field in CHOICES:
            changes.update({f"{field}_source": NATIVE, f"{field}_model": None, f"{field}_confidence": None})
            reasons.pop(field, None)
        if field == "text":  # a person wrote it now, not the ASR model; its check is stale
            changes["text_source"] = None
            if rec.asr_model is not None:
                changes.update(asr_wer=None, asr_cer=None)
                reasons.update(asr_wer=REASON, asr_cer=REASON)
        for dep in DERIVED.get(field, ()):
            changes[dep] = None
            reasons[dep] = REASON
        marks[field] = {"old": getattr(rec, field), "new": c["new"], "who": c["who"], "when": c["when"]}
    if not changes:
        return rec
    extra = dict(rec.extra or {})
    extra["corrected"] = marks
    return rec.replace(**changes, null_reasons=reasons or None, extra=extra)


def load_corrections(path: Union[str, Path]) -> Dict[str, Dict[str, dict]]:
    """Read and check a corrections file now (a bad line stops a build before it starts)."""
    return latest(read_corrections(path))


def corrected_source(source: Iterable[Result], table: Dict[str, Dict[str, dict]],
                     log: Optional[Callable[[str], None]] = None, where: str = "") -> Tuple[Iterator[Result], dict]:
    """Wrap a build source so its records come out corrected (``table`` from :func:`load_corrections`).

    Returns the wrapped source and a summary dict that fills in as the source is read:
    ``corrections`` (fields corrected), ``records`` (records changed), ``by_field``,
    ``missing`` (corrected indices the input never yielded, known once it is exhausted).
    """
    summary = {"corrections": sum(len(v) for v in table.values()), "records": 0,
               "by_field": {}, "missing": []}

    def run() -> Iterator[Result]:
        seen = set()
        for res in source:
            if isinstance(res, Utterance) and res.index in table:
                seen.add(res.index)
                summary["records"] += 1
                for field in table[res.index]:
                    summary["by_field"][field] = summary["by_field"].get(field, 0) + 1
                res = apply(res, table[res.index])
            yield res
        summary["missing"] = sorted(set(table) - seen)
        if log is not None:
            log(describe(summary, where))

    return run(), summary


def describe(summary: dict, path) -> str:
    fields = ", ".join(f"{k} {v}" for k, v in sorted(summary["by_field"].items())) or "none"
    line = f"corrections from {path}: {summary['records']} record(s) corrected ({fields})"
    if summary["missing"]:
        line += (f"; {len(summary['missing'])} corrected record(s) are not in this input "
                 f"(e.g. {summary['missing'][0]})")
    return line
