"""Bounded retries for remote calls, and the one-line errors they end in.

Every request the storage layer makes (a listing, a byte range) goes through
:func:`call`: a *transient* failure (a connection reset or timeout, HTTP 408/429/5xx)
is retried with exponential backoff, at most ``VOXBOX_REMOTE_TRIES`` tries in all
(default 4; waits of ``VOXBOX_REMOTE_BACKOFF_S`` x 1, 2, 4, ... seconds, default 0.5,
capped at 8 s). Anything else fails at once. Once three reads of one root in a row have
failed for good, later reads get a single try until one succeeds (an outage costs one try
per record, not a full backoff each). ``hf://`` reads are plain range GETs of the Hub's
resolve URLs, so huggingface_hub's own 5xx retries are not stacked under these. What is
left after the last try becomes a :class:`StorageError` with a reason code:

- ``remote_unavailable``: the storage kept failing (transient); a rerun may succeed;
- ``remote_denied``: 401/403, a gated or private repo; the message names the page where
  access is requested;
- ``remote_missing``: no such repo, bucket or path;
- ``remote_error``: any other failure, with the library's own first line.

Messages never hold a token: they are scrubbed of the one in use.
"""

from __future__ import annotations

import errno
import os
import time
from typing import Callable, Optional, TypeVar

from voxbox.errors import VoxboxError

T = TypeVar("T")
TRANSIENT_STATUS = frozenset((408, 425, 429, 500, 502, 503, 504))
_TRANSIENT_ERRNO = frozenset((errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.ETIMEDOUT,
                              errno.EPIPE, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETDOWN))
MAX_WAIT_S = 8.0


class StorageError(VoxboxError):
    """A remote read that failed for good; ``reason`` is one of the codes above."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def tries() -> int:
    try:
        return max(1, int(os.environ.get("VOXBOX_REMOTE_TRIES", "4")))
    except ValueError:
        return 4


def backoff_s(attempt: int) -> float:
    """The wait before try ``attempt + 2`` (attempt 0 is the first failure)."""
    try:
        base = float(os.environ.get("VOXBOX_REMOTE_BACKOFF_S", "0.5"))
    except ValueError:
        base = 0.5
    return min(max(base, 0.0) * (2 ** attempt), MAX_WAIT_S)


def http_status(e: BaseException) -> Optional[int]:
    """The HTTP status behind an exception of huggingface_hub, requests, httpx, aiohttp
    or fsspec's HTTP filesystem; None when there is none."""
    response = getattr(e, "response", None)
    for obj, attr in ((response, "status_code"), (response, "status"), (e, "status_code"), (e, "status")):
        value = getattr(obj, attr, None) if obj is not None else None
        if isinstance(value, int) and 100 <= value < 600:
            return value
    return None


def is_transient(e: BaseException) -> bool:
    """Whether trying again may help (network trouble, an overloaded or restarting server)."""
    if isinstance(e, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
        return False
    status = http_status(e)
    if status is not None:
        return status in TRANSIENT_STATUS or status >= 500
    if isinstance(e, (ConnectionError, TimeoutError)):
        return True
    if isinstance(e, OSError) and e.errno in _TRANSIENT_ERRNO:
        return True
    mod, name = type(e).__module__ or "", type(e).__name__
    # botocore (s3fs) raises its own connection errors: EndpointConnectionError, ReadTimeoutError, ...
    return mod.startswith(("httpx", "httpcore", "aiohttp", "requests", "urllib3", "botocore", "aiobotocore")) and \
        any(w in name for w in ("Timeout", "Connect", "Protocol", "Network", "Disconnect"))


def call(fn: Callable[[], T], url: str, what: str, attempts: Optional[int] = None) -> T:
    """``fn()`` with bounded retries on transient failures (``attempts`` tries, default
    :func:`tries`); a StorageError otherwise."""
    n = attempts or tries()
    for attempt in range(n):
        try:
            return fn()
        except (KeyboardInterrupt, SystemExit, StorageError):
            raise
        except Exception as e:  # noqa: BLE001 - classified below, never swallowed
            if not is_transient(e) or attempt == n - 1:
                raise failure(e, url, what, attempt + 1) from None
            time.sleep(backoff_s(attempt))
    raise AssertionError("unreachable")


def failure(e: BaseException, url: str, what: str, attempts: int = 1) -> StorageError:
    """The StorageError for ``e`` raised while doing ``what`` on ``url``."""
    from voxbox.release.hub import _first_line, _scrub
    from voxbox.storage.url import hub_repo

    status = http_status(e)
    line = _first_line(e)[:300]
    if isinstance(e, FileNotFoundError) or status == 404 or type(e).__name__.endswith("NotFoundError"):
        err = StorageError("remote_missing", f"{url}: not found ({_missing_detail(line) if hub_repo(url) else line})")
    elif status in (401, 403) or type(e).__name__ == "GatedRepoError" or isinstance(e, PermissionError):
        err = StorageError("remote_denied", denied_message(url, status))
    elif is_transient(e):
        err = StorageError("remote_unavailable", f"{url}: {what} failed after {attempts} tries ({line}); "
                                                 "rerun later (finished work is kept)")
    else:
        err = StorageError("remote_error", f"{url}: {what} failed ({type(e).__name__}: {line})")
    return StorageError(err.reason, _scrub(str(err), [_token()]))


def _missing_detail(line: str) -> str:
    """What HfFileSystem's not-found message says, in a few words."""
    import re

    m = re.search(r"\((repository not found|revision not found|invalid repository id)\)", line)
    if m is None:
        return "no such file or folder in the repo"
    if m.group(1) == "repository not found":
        return "no such repo; if it is private or gated, set HF_TOKEN to a token with access"
    return m.group(1)


def denied_message(url: str, status: Optional[int]) -> str:
    from voxbox.storage.url import hub_page

    code = f"HTTP {status}" if status else "access denied"
    page = hub_page(url, _endpoint()) if url.startswith("hf://") else None
    if page is None:
        return f"{url}: access denied ({code}); check the credentials this storage reads from the environment"
    who = "your token has no access to it" if _token() else "no Hugging Face token is set"
    return (f"{url}: this repo is gated or private and {who} ({code}); request access at {page}, "
            "then set HF_TOKEN or run `hf auth login`")


def _token() -> Optional[str]:
    from voxbox.release.hub import resolve_token

    try:
        return resolve_token()
    except VoxboxError:
        return None


def _endpoint() -> str:
    from voxbox.release.hub import endpoint_url

    try:
        return endpoint_url()
    except VoxboxError:
        return "https://huggingface.co"
