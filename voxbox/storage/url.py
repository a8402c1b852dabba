"""Remote roots as URLs: which strings are URLs, how they are shown, which Hub page a
``hf://`` URL belongs to.

A local path never looks like a URL here: ``str(Path(...))`` collapses ``//``, so a
string with ``scheme://`` (a record's ``corpus_root``, a ``--root``) is always remote.
"""

from __future__ import annotations

import re
from typing import Optional, Tuple

_URL = re.compile(r"^(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://(?P<rest>.*)$", re.S)
# fsspec's local and plain-file schemes: a file:// root is a local folder.
LOCAL_SCHEMES = ("file", "local")
_HF_KINDS = {"datasets": "datasets", "spaces": "spaces", "models": ""}


def is_url(value) -> bool:
    """True for a ``scheme://...`` string (``hf://``, ``s3://``, ``memory://``, ...)."""
    return isinstance(value, str) and _URL.match(value) is not None


def split_url(url: str) -> Tuple[str, str]:
    """(scheme, the rest) of a URL, the rest without a trailing "/"."""
    m = _URL.match(url)
    if m is None:
        raise ValueError(f"not a URL: {url!r}")
    return m.group("scheme").lower(), m.group("rest").rstrip("/")


def redact(url: str) -> str:
    """The URL with any ``user:secret@`` part removed: records, provenance and messages
    never hold credentials (pass them through the environment instead)."""
    m = _URL.match(url)
    if m is None:
        return url
    rest = m.group("rest")
    host, sep, path = rest.partition("/")
    if "@" in host and m.group("scheme").lower() != "hf":  # hf:// uses "@" for revisions
        host = host.rsplit("@", 1)[1]
    return f"{m.group('scheme')}://{host}{sep}{path}"


def hub_repo(url: str) -> Optional[Tuple[str, str]]:
    """(kind path, "OWNER/NAME") of a ``hf://`` URL: ("datasets", "amphion/Emilia")."""
    scheme, rest = split_url(url)
    if scheme != "hf":
        return None
    parts = rest.split("/")
    kind = _HF_KINDS.get(parts[0])
    if kind is None:  # hf://OWNER/NAME is a model repo
        kind, parts = "", ["models"] + parts
    if len(parts) < 3:
        return None
    return kind, f"{parts[1]}/{parts[2].split('@', 1)[0]}"


def hub_page(url: str, endpoint: str) -> Optional[str]:
    """The repo's web page on ``endpoint``, where a gated repo's access is requested."""
    repo = hub_repo(url)
    if repo is None:
        return None
    kind, repo_id = repo
    return f"{endpoint.rstrip('/')}/{kind + '/' if kind else ''}{repo_id}"
