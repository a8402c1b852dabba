"""Who may talk to ``voxbox serve``, checked before any route runs.

- **Host header.** Only the names the server was bound for (``127.0.0.1``, ``localhost``,
  ``[::1]`` on a loopback bind), so a web page elsewhere cannot reach the app through DNS
  rebinding. A wildcard bind (``0.0.0.0``) needs a token and then accepts any host name.
- **Token.** With ``--auth-token`` every request carries it: ``Authorization: Bearer T``,
  or the cookie the app sets when a page is opened once with ``?token=T``.
- **Writes** (POST) must be JSON from the app's own origin: a form on another site can
  neither send ``application/json`` without a preflight the app never grants, nor fake
  the ``Origin`` header.
- **Every response** gets a Content-Security-Policy that allows only the app's own
  scripts, styles and media (nothing from a CDN can load), ``nosniff`` and no referrer.
"""

from __future__ import annotations

import hmac
from typing import Iterable, Optional
from urllib.parse import parse_qsl, urlencode, urlsplit

COOKIE = "voxbox_token"
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
WILDCARD = ("0.0.0.0", "::", "[::]", "")
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
       "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def bind_problem(host: str, token: Optional[str]) -> Optional[str]:
    """Why the server must not start on ``host`` (None when it may)."""
    if is_loopback(host) or token:
        return None
    return (f"--host {host} makes the app reachable from other machines, where anyone could read the "
            "dataset and write corrections; give --auth-token (a long random string) as well, or keep "
            "the default --host 127.0.0.1")


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def allowed_hosts(host: str) -> Optional[set]:
    """Host names the Host header may carry; None = any (wildcard bind, token required)."""
    if host in WILDCARD:
        return None
    names = {host.lower()}
    if is_loopback(host):
        names |= {"127.0.0.1", "localhost", "[::1]"}
    return names


def _host_name(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class Guard:
    """Pure ASGI middleware applying the rules in this module's docstring."""

    def __init__(self, app, host: str, token: Optional[str]):
        self.app = app
        self.hosts = allowed_hosts(host)
        self.token = token

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        problem = self._refuse(scope, headers)
        if problem is not None:
            return await _plain(send, *problem)
        if self.token and not self._has_token(headers):
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            if scope["method"] == "GET" and self._ok(query.get("token")):
                return await self._login(scope, send, query)
            return await _plain(send, 401, "this voxbox serve needs its token: open the page once with "
                                           "?token=YOUR_TOKEN, or send 'Authorization: Bearer YOUR_TOKEN'")

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refuse(self, scope, headers: dict):
        host = _host_name(headers.get("host", ""))
        if self.hosts is not None and host not in self.hosts:
            return 421, f"unexpected Host {host!r}: open the app as http://{sorted(self.hosts)[0]}:PORT/"
        if scope["method"] not in ("GET", "HEAD"):
            origin = headers.get("origin")
            if origin is not None and urlsplit(origin).netloc.lower() != headers.get("host", "").lower():
                return 403, "cross-origin write refused"
            if headers.get("content-type", "").split(";")[0].strip() != "application/json":
                return 415, "send JSON (Content-Type: application/json)"
        return None

    def _ok(self, value: Optional[str]) -> bool:
        return bool(value) and hmac.compare_digest(value.encode(), self.token.encode())

    def _has_token(self, headers: dict) -> bool:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and self._ok(auth[7:].strip()):
            return True
        return any(self._ok(v) for v in _cookies(headers.get("cookie", ""), COOKIE))

    async def _login(self, scope, send, query: dict):
        """A valid ?token=: remember it in a cookie and drop it from the address bar."""
        rest = urlencode([(k, v) for k, v in query.items() if k != "token"])
        location = scope["path"] + (f"?{rest}" if rest else "")
        cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
        await send({"type": "http.response.start", "status": 303,
                    "headers": [(b"location", location.encode()), (b"set-cookie", cookie.encode()),
                                (b"content-length", b"0")] + SECURITY_HEADERS})
        await send({"type": "http.response.body", "body": b""})


def _cookies(header: str, name: str) -> Iterable[str]:
    for part in header.split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            yield v


async def _plain(send, status: int, text: str):
    body = (text + "\n").encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode())] + SECURITY_HEADERS})
    await send({"type": "http.response.body", "body": body})
