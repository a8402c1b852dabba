"""``voxbox serve``: a local web app to explore, listen to, correct and synthesise from a
built dataset.

A small Starlette app (served by uvicorn) with one static page and a JSON API; no
frontend framework and nothing loaded from the network. Parts:

- :mod:`.table`: the records (and rejects) as a DuckDB table file: filtering, sorting, paging
- :mod:`.store`: one record and its audio from the shards, by position
- :mod:`.views`: the overview (from :mod:`voxbox.dataset.stats`) and the record view
- :mod:`.analysis`: waveform, trimmed region and pitch track (the annotator's front end)
- :mod:`.models`: BiCodec reconstruction and Spark-TTS synthesis, loaded on first use
- :mod:`.state`, :mod:`.security`, :mod:`.app`: what a server holds, who may talk to it, routes
"""

from __future__ import annotations

import socket
from typing import Callable, Optional

from voxbox.errors import MissingExtraError, VoxboxError
from voxbox.serve.state import Settings

__all__ = ["Settings", "serve", "open_socket"]


# serve indexes the shards into a local query table, reads records by file offset and
# appends corrections.jsonl beside the dataset: it needs the folder on this machine.
REMOTE_ADVICE = ("it reads the shards by offset and writes corrections.jsonl beside them; copy the dataset "
                 "here first (e.g. `aws s3 sync URL DIR`, `hf download --repo-type dataset ...`) and serve "
                 "that folder")


def open_socket(host: str, port: int) -> socket.socket:
    """A listening socket, so a busy port is a clear error before anything else starts."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        why = "already in use; choose another --port (0 picks a free one)" if e.errno == 98 else e.strerror
        raise VoxboxError(f"cannot listen on {host}:{port}: {why}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(settings: Settings, log: Callable[[str], None] = print,
          ready: Optional[Callable[[str, int], None]] = None) -> None:
    """Open the dataset, bind, call ``ready(url, records)`` and serve until interrupted
    (``log`` gets the notices, e.g. that the records are being indexed)."""
    from voxbox.dataset.reader import require_local
    from voxbox.serve.security import bind_problem

    require_local(settings.dataset_dir, "serve", REMOTE_ADVICE)
    problem = bind_problem(settings.host, settings.auth_token)
    if problem:
        raise VoxboxError(problem)
    try:
        import uvicorn
    except ImportError:
        raise MissingExtraError("uvicorn", "serve") from None
    from voxbox.serve.app import create_app
    from voxbox.serve.state import ServeState

    state = ServeState(settings, log=log)
    try:
        app = create_app(settings, state)
        sock = open_socket(settings.host, settings.port)
        port = sock.getsockname()[1]
        shown = settings.host if ":" not in settings.host else f"[{settings.host}]"
        url = f"http://{shown}:{port}/"
        (ready or (lambda u, n: log(f"serving {state.ds.path} ({n:,} records) at {u}")))(url, len(state.ds))
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        state.close()
