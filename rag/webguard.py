"""The web server answers only to its own names: DNS rebinding and cross-site requests are refused.

A server on 127.0.0.1 is not private by that alone. A page on ``attacker.example`` can make its
own name resolve to 127.0.0.1 (DNS rebinding); the browser then sends that page's requests to
this server with ``Host: attacker.example:7860``, treats the answers as same-origin and lets the
page read the documents, upload or remove files. A page can also post a form (a multipart
upload) to ``http://127.0.0.1:7860`` straight away: the browser sends it without asking, and only
the answer stays hidden from the page.

``HostGuard`` wraps the whole ASGI application, in front of every route (the page, the Gradio
API, uploads, files, and whatever else is mounted), and before any CORS handling, so a refused
request gets no ``access-control-allow-origin`` either (``guarded_app`` is Gradio's app so wrapped):

- the ``Host`` header must name this server: a loopback name (``localhost``, ``127.0.0.1``,
  ``[::1]``, any port), the address given with ``--host``, or a name allowed with
  ``--allow-host``; else 403;
- a request that carries an ``Origin`` (every cross-site POST and fetch does) must come from one
  of those names; else 403. ``Origin: null`` (sandboxed frames, some redirects) is refused too.

``--allow-host '*'`` turns the ``Host`` check off (behind a reverse proxy that checks names
itself); origins must then match the ``Host`` they were sent to.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
"""Names that always reach this machine only. (``0.0.0.0`` is an address to bind, not a name a
browser should use; Chromium once let pages reach it, so it is not here.)"""

ANY_HOST = "*"


def allowed_hosts(bind: str = "127.0.0.1", extra: Iterable[str] = ()) -> frozenset[str]:
    """The host names a server bound to ``bind`` answers to: loopback names, ``bind``, and ``extra``.

    Example:
        >>> sorted(allowed_hosts("192.168.1.5", ["rag.lan"]))
        ['127.0.0.1', '192.168.1.5', '::1', 'localhost', 'rag.lan']
    """
    names = set(LOOPBACK_NAMES)
    host = _normalise(bind)
    if host and host not in ("0.0.0.0", "::"):
        names.add(host)
    for name in extra:
        for part in str(name).split(","):
            part = part.strip()
            if part == ANY_HOST:
                names.add(ANY_HOST)
            elif (value := _normalise(part)):
                names.add(value)
    return frozenset(names)


def host_name(value: str) -> str:
    """The lower-case name of a ``Host`` header or an origin, without port, brackets or final dot.

    Example:
        >>> host_name("[::1]:7860"), host_name("LocalHost.:80"), host_name("http://a.example:1/x")
        ('::1', 'localhost', 'a.example')
    """
    value = value.strip()
    if "://" not in value:
        value = "//" + value
    try:
        name = urlsplit(value).hostname or ""
    except ValueError:
        return ""
    return _normalise(name)


def _normalise(name: str) -> str:
    name = name.strip().lower().rstrip(".")
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        return str(ipaddress.ip_address(name))  # one spelling per address (::0001 -> ::1)
    except ValueError:
        return name


class HostGuard:
    """ASGI middleware: refuse requests whose ``Host`` or ``Origin`` is not one of ``hosts``.

    Example:
        >>> # app = HostGuard(app, allowed_hosts("127.0.0.1", ["rag.lan"]))
    """

    def __init__(self, app: ASGIApp, hosts: Iterable[str]) -> None:
        self.app = app
        self.hosts = frozenset(hosts)
        self.any_host = ANY_HOST in self.hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan
            return
        headers: dict[str, str] = {}
        for key, value in scope.get("headers", ()):
            headers.setdefault(key.decode("latin-1").lower(), value.decode("latin-1"))
        reason = self.refusal(headers.get("host"), headers.get("origin"))
        if reason is None:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": reason[:120]})
            return
        body = f"{reason}\n".encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": body})

    def refusal(self, host: str | None, origin: str | None) -> str | None:
        """Why a request with these headers is refused, or None when it may go on."""
        name = host_name(host or "")
        if not name:
            return "refused: the request names no host"
        if not self.any_host and name not in self.hosts:
            return (f"refused: this server does not answer to the name {name!r} (a DNS rebinding attempt?); "
                    f"start it with --allow-host {name} if that name is yours")
        if origin is not None:
            source = host_name(origin) if origin.strip().lower() != "null" else ""
            if not source or (source not in self.hosts and source != name):
                return f"refused: a request from another site ({origin[:80]!r})"
        return None


def guarded_app(hosts: frozenset[str]) -> Any:
    """Gradio's FastAPI app with ``HostGuard`` outside everything else it runs (routes, CORS, files).

    ``Blocks.launch`` adds its own middleware after any we could add, so a guard added the usual
    way would run after Gradio's CORS middleware had already answered a preflight. Building the
    app ourselves (``launch(_app=...)``, as ``gradio.Server`` does) lets the guard wrap the whole
    stack, and whatever else is later mounted on this app is behind it too.
    """
    from gradio.routes import App, ORJSONResponse

    class GuardedApp(App):
        def build_middleware_stack(self) -> Any:
            return HostGuard(super().build_middleware_stack(), hosts)

    return GuardedApp(default_response_class=ORJSONResponse)
