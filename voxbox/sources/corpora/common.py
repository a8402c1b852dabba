"""Helpers the emotion and in-the-wild recipes share (on top of :mod:`.base`).

- :func:`emotion_label`: a native emotion word through the recipe's own table, then the
  shared word list, else ``UNKNOWN`` (the raw word always travels as ``native_emotion``).
- :func:`audio_for`: corpora that ship audio in containers libsndfile cannot decode
  (EMNS webm, MEAD m4a, MELD/MER2023 video) are usable once the user converts each file
  to wav/flac beside the original; the recipe takes the converted file when present and
  otherwise rejects the original with ``unsupported_audio_format`` and the command to run.
- :func:`json_lines`: a JSON-lines metadata file as (line number, row or error).
- :func:`csv_rows`: a CSV/TSV table as dict rows, header-driven, errors per line.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple, Union

from voxbox.record import Rejection
from voxbox.sources.corpora.base import InputError, csv_table, map_emotion, read_table_lines, read_text_file, reject

# Containers libsndfile cannot read; a converted wav/flac beside the file is used instead.
UNDECODABLE = (".webm", ".m4a", ".mp4", ".avi", ".mkv", ".mov", ".aac")
CONVERTED = (".wav", ".flac")


def emotion_label(native: Optional[str], table: Optional[Dict[str, str]] = None) -> str:
    """VoxBox's emotion class for a native label: the recipe's table first (keys lower
    case), then the shared word list; ``UNKNOWN`` when neither knows the word."""
    if native is None:
        return "UNKNOWN"
    key = str(native).strip().lower()
    if table and key in table:
        return table[key]
    return map_emotion(key) or "UNKNOWN"


def audio_for(base: Path, rel: str, corpus: str) -> Union[str, Rejection]:
    """``rel`` itself when libsndfile can read it, else a converted ``.wav``/``.flac`` of
    the same stem beside it, else an ``unsupported_audio_format`` rejection naming the
    ffmpeg command that makes the converted file."""
    stem, ext = posixpath.splitext(rel)
    if ext.lower() not in UNDECODABLE:
        return rel
    for conv in CONVERTED:
        if (base / (stem + conv)).is_file():
            return stem + conv
    return reject(rel, "unsupported_audio_format",
                  f"{ext} cannot be decoded; convert it beside the original: "
                  f"ffmpeg -i '{posixpath.basename(rel)}' -vn -ac 1 '{posixpath.basename(stem)}.wav'", corpus)


def is_sidecar(base: Path, rel: str, audio: Tuple[str, ...] = (".wav",)) -> bool:
    """A ``.txt`` transcript beside an audio file of the same stem and one of the ``audio``
    extensions (read with its audio file)."""
    return rel.endswith(".txt") and any((base / (rel[:-4] + ext)).is_file() for ext in audio)


def sidecar_text(base: Path, rel: str, corpus: str, required: bool = True) -> Union[str, None, Rejection]:
    """The transcript in the ``.txt`` beside audio ``rel``: its text, None when it is absent
    and not ``required``, else a rejection of ``rel`` (missing, unreadable, not UTF-8, ...)."""
    path = base / (posixpath.splitext(rel)[0] + ".txt")
    if not required and not path.is_file():
        return None
    try:
        return read_text_file(path)
    except InputError as e:
        return reject(rel, e.reason, e.detail, corpus)


def is_converted_copy(base: Path, rel: str) -> bool:
    """A wav/flac that :func:`audio_for` made usable: an undecodable original sits beside it."""
    stem, ext = posixpath.splitext(rel)
    return ext.lower() in CONVERTED and any((base / (stem + u)).is_file() for u in UNDECODABLE)


def json_lines(path: Path) -> Tuple[List[Tuple[int, Union[dict, str]]], Optional[str]]:
    """(rows, error) of a JSON-lines file: each row is (line number, object) or
    (line number, error text) for a line that is not a JSON object."""
    lines, err = read_table_lines(path)
    out: List[Tuple[int, Union[dict, str]]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            out.append((n, f"line {n}: not JSON ({e})"))
            continue
        out.append((n, row if isinstance(row, dict) else f"line {n}: not a JSON object"))
    return out, err


def csv_rows(path: Path, delimiter: str = ",") -> Tuple[List[dict], Optional[str]]:
    """Rows of a CSV/TSV table with a header line, keys and values stripped; (rows,
    error) where error names an unreadable file or the rows csv cannot parse (the rows
    after a bad one are still read; a field of any size is read, the caller checks it)."""
    lines, err = read_table_lines(path)
    if err:
        return [], err
    _, parsed = csv_table("\n".join(lines), delimiter)
    rows: List[dict] = []
    errors: List[str] = []
    for _, row, bad in parsed:
        if bad:
            errors.append(bad)
            continue
        rows.append({(k or "").strip(): v.strip() for k, v in row.items()})
    more = f" (and {len(errors) - 1} more bad rows)" if len(errors) > 1 else ""
    return rows, (errors[0] + more) if errors else None


def table_error(table: str, err: str, corpus: str) -> Rejection:
    """The rejection for a metadata table that cannot be read or parsed."""
    return reject(table, "bad_metadata", f"{table}: {err}", corpus)


def rows_by(rows: List[dict], key: str) -> Dict[str, dict]:
    """Rows indexed by one column (first row wins; empty keys dropped)."""
    out: Dict[str, dict] = {}
    for row in rows:
        k = row.get(key)
        if k and k not in out:
            out[k] = row
    return out


def pick(row: dict, *names: str) -> Optional[str]:
    """The first non-empty value among columns ``names`` (header spellings vary)."""
    for n in names:
        v = row.get(n)
        if v not in (None, ""):
            return str(v)
    return None


def sorted_dirs(base: Path) -> Iterator[Path]:
    """Sub-folders of ``base`` in name order (deterministic everywhere)."""
    return iter(sorted((p for p in base.iterdir() if p.is_dir()), key=lambda p: p.name))
