"""Hugging Face Hub helpers shared by ``publish`` and ``fetch-model``.

Everything here talks to the Hub through ``huggingface_hub`` and turns what can go
wrong (a rejected token, an unreachable endpoint, a missing repo) into one-line
:class:`VoxboxError` messages. A token is never part of a message: every message that
leaves this module is scrubbed of it, because Hub error texts can echo request data.

``HF_ENDPOINT`` selects the Hub (huggingface_hub reads it at import time); functions
also take an explicit ``endpoint`` so a library user can target a mirror or a test
server without touching the environment.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Union

from spark_tokenize.layout import MODEL_FILES, TOKENIZER_PARTS, ModelLayout
from voxbox.errors import VoxboxError

DEFAULT_MODEL_REPO = "SparkAudio/Spark-TTS-0.5B"


def resolve_token(token: Optional[str] = None) -> Optional[str]:
    """The token to use: the argument, else ``HF_TOKEN``, else the stored login.

    A token with a character no Hub token has (whitespace, control or non-ASCII
    characters: a bad paste) is refused here, before any request: HTTP libraries echo
    such header values in their errors, escaped in ways a plain search would miss.
    """
    if token:
        return _checked_token(token.strip(), "--token")
    env = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if env:
        return _checked_token(env.strip(), "HF_TOKEN")
    from huggingface_hub import get_token

    stored = get_token()
    return _checked_token(stored.strip(), "the stored login (`hf auth login`)") if stored else stored


def _checked_token(token: str, where: str) -> str:
    bad = next((c for c in token if not "!" <= c <= "~"), None)
    if bad is not None:
        what = "a space" if bad == " " else "a line break or tab" if bad in "\r\n\t" else \
            "a control character" if ord(bad) < 32 or ord(bad) == 127 else "a non-ASCII character"
        raise VoxboxError(f"the Hugging Face token from {where} contains {what}, which tokens never have "
                          "(check how it was copied); it was not sent anywhere")
    return token


def endpoint_url(endpoint: Optional[str] = None) -> str:
    for given, where in ((endpoint, "--endpoint"), (os.environ.get("HF_ENDPOINT"), "HF_ENDPOINT")):
        if given:
            if not given.startswith(("http://", "https://")):
                raise VoxboxError(f"{where} must be an http(s) URL such as https://huggingface.co, got {given!r}")
            return given.rstrip("/")
    from huggingface_hub import constants

    return constants.ENDPOINT


def _check_online(endpoint: str) -> None:
    from huggingface_hub import constants

    if constants.is_offline_mode():
        raise VoxboxError(
            f"cannot reach the Hub at {endpoint}: offline mode is on (unset HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)"
        )


def make_api(endpoint: Optional[str] = None, token: Optional[str] = None):
    """An ``HfApi`` bound to the endpoint and token, after checking we may go online."""
    from huggingface_hub import HfApi

    url = endpoint_url(endpoint)
    _check_online(url)
    return HfApi(endpoint=url, token=token)


def _secret_forms(secret: str) -> List[str]:
    """Every way a secret may appear in an error text: as is, escaped the way Python's
    repr writes str and bytes (``\\n``, ``\\xe9``), JSON-escaped, URL-encoded, and each
    piece between odd characters (a message cut at a line break shows only the first)."""
    import json
    import re
    from urllib.parse import quote, quote_plus

    forms = {secret, repr(secret)[1:-1], repr(secret.encode("utf-8"))[2:-1], json.dumps(secret)[1:-1],
             json.dumps(secret, ensure_ascii=False)[1:-1], quote(secret, safe=""), quote_plus(secret),
             quote(secret)}
    forms.update(p for p in re.split(r"[^!-~]|[\\'\"%+]", secret) if len(p) >= 4)
    return sorted((f for f in forms if f), key=len, reverse=True)  # longest first: no half-scrubbed forms


def _scrub(text: str, secrets: Sequence[Optional[str]]) -> str:
    for s in secrets:
        if s:
            for form in _secret_forms(s):
                text = text.replace(form, "***")
    return text


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return type(e).__name__


def _chain(e: BaseException) -> List[BaseException]:
    out: List[BaseException] = []
    while e is not None and e not in out and len(out) < 10:
        out.append(e)
        e = e.__cause__ or e.__context__
    return out


def _network_error(e: BaseException) -> Optional[BaseException]:
    """The transport failure behind ``e`` (huggingface_hub wraps them, e.g. in
    LocalEntryNotFoundError during snapshot_download), or None."""
    for x in _chain(e):
        mod = type(x).__module__ or ""
        if mod.startswith(("httpx", "httpcore", "requests")) or isinstance(x, (ConnectionError, TimeoutError)):
            return x
    return None


def explain(e: BaseException, *, action: str, endpoint: str, repo_id: Optional[str] = None,
            repo_type: str = "dataset", token: Optional[str] = None) -> VoxboxError:
    """One actionable line for an exception raised while talking to the Hub."""
    from huggingface_hub import errors as hf

    # Names moved between huggingface_hub releases; a missing one simply never matches.
    never = type("_Never", (Exception,), {})
    HfHubHTTPError = getattr(hf, "HfHubHTTPError", never)
    OfflineModeIsEnabled = getattr(hf, "OfflineModeIsEnabled", never)
    RepositoryNotFoundError = getattr(hf, "RepositoryNotFoundError", never)
    RevisionNotFoundError = getattr(hf, "RevisionNotFoundError", never)
    RemoteEntryNotFoundError = getattr(hf, "RemoteEntryNotFoundError", getattr(hf, "EntryNotFoundError", never))

    what = f"{repo_type} repo {repo_id}" if repo_id else "the Hub"
    if isinstance(e, VoxboxError):
        msg = str(e)
    elif isinstance(e, OfflineModeIsEnabled):
        msg = f"cannot {action}: offline mode is on (unset HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE)"
    elif isinstance(e, RevisionNotFoundError):
        msg = f"cannot {action}: {what} has no such revision"
    elif isinstance(e, RemoteEntryNotFoundError):
        msg = f"cannot {action}: a file is missing from {what} ({_first_line(e)})"
    elif isinstance(e, RepositoryNotFoundError):
        msg = (f"cannot {action}: {what} not found at {endpoint}, or it is private/gated and the token "
               f"has no access to it")
    elif isinstance(e, HfHubHTTPError):
        response = getattr(e, "response", None)
        status = response.status_code if response is not None else None
        if status == 401:
            msg = (f"authentication failed at {endpoint}: the token was rejected (pass a valid token with "
                   f"--token or HF_TOKEN, or run `hf auth login`)")
        elif status == 403:
            msg = f"cannot {action}: the token has no write access to {what} (use a token with write scope)"
        elif status == 429:
            msg = f"cannot {action}: the Hub rate-limited us; wait a little and rerun (finished work is kept)"
        else:
            msg = f"cannot {action}: the Hub answered HTTP {status}: {_first_line(e)}"
    elif _network_error(e) is not None:
        msg = (f"cannot reach the Hub at {endpoint} ({_first_line(_network_error(e))}); check the network "
               f"or HF_ENDPOINT")
    else:
        msg = f"cannot {action}: {type(e).__name__}: {_first_line(e)}"
    return VoxboxError(_scrub(msg, [token]))


@contextlib.contextmanager
def hub_errors(*, action: str, endpoint: str, repo_id: Optional[str] = None, repo_type: str = "dataset",
               token: Optional[str] = None) -> Iterator[None]:
    """Translate Hub and network exceptions raised inside the block (see :func:`explain`)."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as e:  # noqa: BLE001 - every failure becomes one scrubbed line
        raise explain(e, action=action, endpoint=endpoint, repo_id=repo_id, repo_type=repo_type,
                      token=token) from None


@contextlib.contextmanager
def quiet_hub_progress() -> Iterator[None]:
    """Silence huggingface_hub's per-file bars while we show our own."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            enable_progress_bars()


def check_user(api, *, endpoint: str, token: Optional[str]) -> str:
    """The account name the token belongs to; fails clearly without a valid token."""
    if not token:
        raise VoxboxError(
            "no Hugging Face token: pass --token, set HF_TOKEN, or run `hf auth login` (a write token is needed)"
        )
    with hub_errors(action="check the token", endpoint=endpoint, token=token):
        info = api.whoami(token=token)
    return str(info.get("name") or "?")


# ------------------------------------------------------------------------------------
# fetch-model
# ------------------------------------------------------------------------------------

def missing_model_files(model_dir: Union[str, Path], parts: Sequence[str] = tuple(MODEL_FILES)) -> List[str]:
    """Files of the official layout that ``model_dir`` lacks (empty when complete)."""
    return ModelLayout(Path(model_dir)).missing(parts)


def fetch_model(repo_id: str = DEFAULT_MODEL_REPO, dest: Union[str, Path] = "pretrained_models/Spark-TTS-0.5B",
                *, revision: Optional[str] = None, token: Optional[str] = None,
                endpoint: Optional[str] = None, tokenizer_only: bool = False) -> Path:
    """Download a Spark-TTS model folder (resumable) and check its layout.

    With ``tokenizer_only`` the 2 GB ``LLM/`` is skipped: BiCodec and wav2vec2 are all
    that ``voxbox tokenize`` needs. Raises a one-line error naming every missing file
    if the downloaded repo does not have the official layout.
    """
    from huggingface_hub import snapshot_download

    if "/" not in repo_id:
        raise VoxboxError(f"--repo-id must look like OWNER/NAME, got {repo_id!r}")
    url = endpoint_url(endpoint)
    _check_online(url)
    token = resolve_token(token)
    dest = Path(dest)
    parts = TOKENIZER_PARTS if tokenizer_only else tuple(MODEL_FILES)
    ignore = ["LLM/*"] if tokenizer_only else None
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        from voxbox.errors import os_error_reason

        raise VoxboxError(f"{dest}: cannot create the destination folder ({os_error_reason(e)})") from None
    with hub_errors(action=f"download {repo_id}", endpoint=url, repo_id=repo_id, repo_type="model", token=token):
        snapshot_download(repo_id=repo_id, repo_type="model", revision=revision, local_dir=str(dest),
                          token=token or False, endpoint=url, ignore_patterns=ignore)
    missing = missing_model_files(dest, parts)
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise VoxboxError(
            f"{repo_id} was downloaded to {dest} but is not a Spark-TTS model folder: missing {shown}"
        )
    return dest
