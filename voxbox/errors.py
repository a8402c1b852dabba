"""Errors a user can act on.

Anything raised as :class:`VoxboxError` is shown by the CLI as one line, without a
traceback (unless ``--debug``), and exits non-zero. Library users catch it like any
other exception.
"""

import re
from typing import Optional


class VoxboxError(Exception):
    """A failure with a message that tells the user what to fix."""


class MissingExtraError(VoxboxError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str):
        super().__init__(
            f"this needs the optional package '{package}': pip install 'voxbox[{extra}]'"
        )


#: Parts of an error message that change from run to run: a file object's descriptor
#: (soundfile: "Error opening <_io.BufferedReader name=12>: ...") and object addresses.
_VOLATILE = ((re.compile(r"<_io\.\w+ name=\d+>"), "the file"), (re.compile(r" at 0x[0-9a-fA-F]+"), ""))


def first_line(e: BaseException, empty: Optional[str] = None) -> str:
    """The first line of an exception's message for a one-line error or a rejection's
    detail (the exception's type name when it has none, or ``empty``), without the parts
    that differ between runs: rejects must be byte-identical whatever process read the file."""
    text = str(e)
    line = text.splitlines()[0] if text.strip() else (type(e).__name__ if empty is None else empty)
    for pattern, repl in _VOLATILE:
        line = pattern.sub(repl, line)
    return line


def os_error_reason(e: OSError) -> str:
    """What went wrong with a file operation, in words a user acts on (no errno)."""
    import errno
    import os

    if isinstance(e, FileExistsError) and not (e.filename and os.path.isdir(e.filename)):
        return "a file is in the way where a folder is needed; choose another path"
    if isinstance(e, NotADirectoryError):
        return "part of this path is a file, not a folder; choose another path"
    if isinstance(e, IsADirectoryError):
        return "is a folder; give a file path"
    if isinstance(e, PermissionError) or e.errno == errno.EROFS:
        return f"{(e.strerror or 'not allowed').lower()}; choose a writable location"
    if e.errno == errno.ENOSPC:
        return "no space left on the device; free some space and rerun"
    return (e.strerror or type(e).__name__).lower()


#: Larger than any settings file voxbox reads (label maps, boundaries, gender models).
MAX_JSON_FILE_BYTES = 16 * 1024 * 1024


def read_json_file(path, what: str):
    """The JSON value stored in the regular file ``path``.

    Missing, not a file, too large, unreadable or not JSON: a one-line error naming
    ``what`` (e.g. "gender model"), so each caller only checks the value's shape.
    """
    import json
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise VoxboxError(f"{p}: {what} is not a file" if p.exists() else f"{p}: {what} not found")
    try:
        if p.stat().st_size > MAX_JSON_FILE_BYTES:
            raise VoxboxError(f"{p}: too large for a {what} (over {MAX_JSON_FILE_BYTES >> 20} MiB)")
        return json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise VoxboxError(f"{p}: cannot read the {what} ({os_error_reason(e)})") from None
    except ValueError as e:  # json.JSONDecodeError or UnicodeDecodeError
        why = e.msg if isinstance(e, json.JSONDecodeError) else "not UTF-8 text"
        raise VoxboxError(f"{p}: {what} is not valid JSON ({why})") from None
