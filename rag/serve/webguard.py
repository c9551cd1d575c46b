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
  of those names on the port it was sent to (``http://localhost:9999`` is another site, so
  another program's page, for this server on 7860); else 403. (An origin named with
  ``--allow-host`` that differs from the ``Host`` a reverse proxy sends keeps its own port.) ``Origin: null`` (sandboxed
  frames, some redirects) is refused too;
- a browser request that says it comes from another site (``Sec-Fetch-Site: cross-site`` or
  ``same-site``, which is another port of the same name) is refused unless it is the user
  following a link to a page (``Sec-Fetch-Mode: navigate``, GET): an ``<img>`` or ``<script>``
  on another page cannot reach any route;
- routes the page never uses are closed (``BLOCKED_PREFIXES``: Gradio's custom-component files,
  which print their path raw to the log, its URL proxy, streaming, monitoring, vibe editing), and
  ``/gradio_api/file=`` refuses URLs: Gradio would download any address it is given, and
  nothing should leave the machine on a request's say-so;
- every answer says it may not be framed (``X-Frame-Options: DENY``, CSP ``frame-ancestors
  'none'``) and is not to be sniffed as another type.

``--allow-host '*'`` turns the ``Host`` check off (behind a reverse proxy that checks names
itself); origins must then match the ``Host`` they were sent to.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from rag.serve.logsafe import escape_controls

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
"""Names that always reach this machine only. (``0.0.0.0`` is an address to bind, not a name a
browser should use; Chromium once let pages reach it, so it is not here.)"""

ANY_HOST = "*"

BLOCKED_PREFIXES = ("/gradio_api/custom_component/", "/gradio_api/proxy=", "/gradio_api/stream/",
                    "/gradio_api/process_recording", "/gradio_api/vibe-", "/gradio_api/undo-vibe-edit",
                    "/gradio_api/profiling/", "/gradio_api/run-history/", "/gradio_api/runs",
                    "/gradio_api/dev/", "/gradio_api/mcp", "/monitoring", "/custom_component/", "/proxy=")
"""Gradio routes the page does not use; closed in front of everything (403)."""

SECURITY_HEADERS = ((b"x-frame-options", b"DENY"), (b"content-security-policy", b"frame-ancestors 'none'"),
                    (b"x-content-type-options", b"nosniff"))
"""Added to every answer: no other site may frame the page (clickjacking its buttons)."""

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


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
        reason = self.refusal(headers.get("host"), headers.get("origin")) or self.route_refusal(scope, headers)
        if reason is None:
            if scope["type"] == "websocket":
                await self.app(scope, receive, send)
                return

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", ()), *SECURITY_HEADERS]
                await send(message)

            await self.app(scope, receive, send_with_headers)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": reason[:120]})
            return
        body = f"{reason}\n".encode()
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store"),
                                *SECURITY_HEADERS]})
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
            # Another port of the same name is another program's page. A reverse proxy may send
            # its upstream address as Host ("127.0.0.1:7860") for an origin named with
            # --allow-host: such an origin's port is the proxy's, not ours.
            proxied = source != name and source in self.hosts and source not in LOOPBACK_NAMES
            if not source or (source not in self.hosts and source != name) or \
                    not (proxied or _same_port(origin, host or "")):
                return f"refused: a request from another site ({escape_controls(origin[:80])!r})"
        return None

    @staticmethod
    def route_refusal(scope: Scope, headers: dict[str, str]) -> str | None:
        """Why a request is refused for what it asks (closed routes, URLs to fetch, cross-site), or None."""
        path = scope.get("path", "")
        if path.startswith(BLOCKED_PREFIXES):
            return "refused: this route is not served"
        if path.startswith(("/gradio_api/file=", "/file=")):
            target = path.split("=", 1)[1].lstrip()
            if "://" in target or target.startswith("//") or target.lower().startswith(("http:", "https:")):
                return "refused: files are served from this machine only, never fetched from an address"
        site = headers.get("sec-fetch-site", "").strip().lower()
        if site in ("cross-site", "same-site"):
            navigation = headers.get("sec-fetch-mode", "").strip().lower() == "navigate" \
                and scope.get("method", "GET") in ("GET", "HEAD")
            if not navigation:
                return "refused: a request from another site (Sec-Fetch-Site: " + site + ")"
        return None


def _same_port(origin: str, host: str) -> bool:
    """Is ``origin`` on the port of the ``Host`` header (a Host without one: the origin's default)?"""
    try:
        source = urlsplit(origin.strip())
        target = urlsplit("//" + host.strip())
        origin_port = source.port or _DEFAULT_PORTS.get(source.scheme.lower())
        host_port = target.port
    except ValueError:
        return False
    if origin_port is None:
        return False
    return host_port is None and origin_port == _DEFAULT_PORTS.get(source.scheme.lower()) or origin_port == host_port


def key_login(api_key: str) -> Callable[[str, str], bool]:
    """Gradio's login check for a server with an API key: any user name, the key as the password.

    Example:
        >>> key_login("s3cret")("anyone", "s3cret"), key_login("s3cret")("anyone", "guess")
        (True, False)
    """
    expected = api_key.encode()

    def check(user: str, password: str) -> bool:
        return hmac.compare_digest(str(password).encode(), expected)

    return check


def guarded_app(hosts: frozenset[str]) -> Any:
    """Gradio's FastAPI app with ``HostGuard`` outside everything else it runs (routes, CORS, files).

    ``Blocks.launch`` adds its own middleware after any we could add, so a guard added the usual
    way would run after Gradio's CORS middleware had already answered a preflight. Building the
    app ourselves (``launch(_app=...)``, as ``gradio.Server`` does) lets the guard wrap the whole
    stack, and whatever else is later mounted on this app is behind it too.
    """
    # Gradio loads only with the web page
    from gradio.routes import App, ORJSONResponse

    class GuardedApp(App):
        def build_middleware_stack(self) -> Any:
            return HostGuard(super().build_middleware_stack(), hosts)

    return GuardedApp(default_response_class=ORJSONResponse)
