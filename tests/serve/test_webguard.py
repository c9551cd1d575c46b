"""DNS rebinding and cross-site requests against the real web server, with real HTTP (httpx).

Before the guard, ``POST /gradio_api/call/search`` with ``Host`` and ``Origin`` set to
``attacker.example:PORT`` got 200, ``access-control-allow-origin: http://attacker.example:PORT`` and
document text, and a cross-site multipart upload was stored.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from conftest import free_port

from rag import Index
from rag.serve.web import build_app, launch
from rag.serve.webguard import HostGuard, allowed_hosts, host_name


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, object]]:
    docs = tmp_path_factory.mktemp("guard-docs")
    (docs / "vault.txt").write_text("The vault code is kept by the archivist Ingrid Halvorsen.\n")
    index = Index.build([docs], tmp_path_factory.mktemp("guard-idx"))
    port = free_port()
    demo = launch(build_app(index), "127.0.0.1", port, block=False, allow_hosts=["rag.lan"])
    try:
        yield f"http://127.0.0.1:{port}", port, demo
    finally:
        demo.close()


def search(base: str, host: str, origin: str | None = None) -> httpx.Response:
    headers = {"Host": host, "Content-Type": "application/json"}
    if origin is not None:
        headers["Origin"] = origin
    return httpx.post(f"{base}/gradio_api/call/search", headers=headers, json={"data": ["vault code", 1]},
                      timeout=30)


def test_loopback_names_and_allowed_hosts_are_served(server: tuple[str, int, object]) -> None:
    base, port, _ = server
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LOCALHOST.:{port}", "127.0.0.1",
                 f"rag.lan:{port}"):
        page = httpx.get(f"{base}/", headers={"Host": host}, timeout=30)
        assert page.status_code == 200, host
        assert search(base, host).status_code == 200, host
    # The page's own requests carry its origin: same-site, served.
    reply = search(base, f"127.0.0.1:{port}", origin=f"http://127.0.0.1:{port}")
    assert reply.status_code == 200 and "event_id" in reply.json()


@pytest.mark.parametrize("path", ["/", "/gradio_api/info", "/config", "/gradio_api/call/search",
                                  "/gradio_api/upload", "/gradio_api/queue/join", "/gradio_api/file=/etc/passwd"])
def test_a_rebound_host_name_is_refused_on_every_route(server: tuple[str, int, object], path: str) -> None:
    base, port, _ = server
    attacker = f"attacker.example:{port}"
    for method in ("GET", "POST"):
        reply = httpx.request(method, f"{base}{path}", headers={"Host": attacker, "Origin": f"http://{attacker}"},
                              timeout=30)
        assert reply.status_code == 403, (method, path, reply.text[:200])
        assert "access-control-allow-origin" not in reply.headers
        assert "vault" not in reply.text and "does not answer to the name 'attacker.example'" in reply.text


def test_search_with_a_rebound_host_gets_no_document_text(server: tuple[str, int, object]) -> None:
    base, port, _ = server
    reply = search(base, f"attacker.example:{port}", origin=f"http://attacker.example:{port}")
    assert reply.status_code == 403 and "access-control-allow-origin" not in reply.headers
    # The CORS preflight a browser sends first is refused too, before Gradio's CORS code answers it.
    preflight = httpx.options(f"{base}/gradio_api/call/search", timeout=30, headers={
        "Host": f"attacker.example:{port}", "Origin": f"http://attacker.example:{port}",
        "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers


def test_a_cross_site_upload_is_refused(server: tuple[str, int, object]) -> None:
    base, port, _ = server
    files = {"files": ("planted.txt", b"Planted by another site.", "text/plain")}
    for origin in ("http://attacker.example", "null"):
        reply = httpx.post(f"{base}/gradio_api/upload", files=files, timeout=30,
                           headers={"Host": f"127.0.0.1:{port}", "Origin": origin})
        assert reply.status_code == 403 and "another site" in reply.text
        assert "access-control-allow-origin" not in reply.headers
    same_site = httpx.post(f"{base}/gradio_api/upload", files=files, timeout=30,
                           headers={"Host": f"127.0.0.1:{port}", "Origin": f"http://127.0.0.1:{port}"})
    assert same_site.status_code == 200 and same_site.json()[0].endswith("planted.txt")


def test_routes_mounted_later_on_the_app_are_behind_the_guard(server: tuple[str, int, object]) -> None:
    # Another module (an OpenAI-style /v1 API, an MCP endpoint) adds its routes to the same app.
    base, port, demo = server
    demo.app.add_api_route("/v1/ping", lambda: {"ok": True}, methods=["GET"])  # type: ignore[attr-defined]
    assert httpx.get(f"{base}/v1/ping", headers={"Host": f"localhost:{port}"}, timeout=30).json() == {"ok": True}
    assert httpx.get(f"{base}/v1/ping", headers={"Host": "evil.example"}, timeout=30).status_code == 403


def test_host_rules() -> None:
    assert host_name("[::1]:7860") == "::1" and host_name("Example.COM.:80") == "example.com"
    assert host_name("http://127.0.0.1:9/x") == "127.0.0.1" and host_name("") == ""
    hosts = allowed_hosts("0.0.0.0", ["a.lan, b.lan"])
    assert hosts == {"localhost", "127.0.0.1", "::1", "a.lan", "b.lan"}
    guard = HostGuard(None, hosts)  # type: ignore[arg-type]
    assert guard.refusal("a.lan:7860", "http://a.lan:7860") is None
    assert guard.refusal("0.0.0.0:7860", None) is not None  # an address to bind, not a name to be reached by
    assert guard.refusal(None, None) == "refused: the request names no host"
    assert guard.refusal("127.0.0.2", None) is not None
    assert guard.refusal("127.0.0.1", "null") is not None
    anything = HostGuard(None, allowed_hosts("127.0.0.1", ["*"]))  # type: ignore[arg-type]
    assert anything.refusal("rag.example.org", "https://rag.example.org") is None
    assert anything.refusal("rag.example.org", "https://attacker.example") is not None
