"""The LLM's transport: one chat completion from an OpenAI-compatible endpoint (Ollama, llama.cpp
server, vLLM, OpenAI...), bounded in time and size, with errors as ``LLMError`` naming the reason.

httpx is imported only when a chat is made, so nothing here connects or loads unless an LLM is used.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

from rag.cancel import stop_point
from rag.errors import LLMError
from rag.settings import Settings

MAX_REPLY_BYTES = 4 * 1024 * 1024
"""Largest reply read from the endpoint (after any gzip). A short cited answer is a few kB; a
reply that goes on past this is refused rather than read whole into memory."""

def chat(messages: list[dict[str, str]], settings: Settings) -> str:
    """One chat completion from the configured endpoint; errors become ``LLMError`` with the reason.

    ``settings.llm_timeout`` bounds the whole call (connecting, waiting, reading every byte), not
    each read: an endpoint that trickles a byte every few seconds is cut off at the deadline like
    one that never answers. The reply is read up to ``MAX_REPLY_BYTES``; redirects are not
    followed (the key and the passages would go to wherever they point).
    """
    stop_point("the LLM request")   # a caller that has gone (rag.cancel) costs no LLM call
    url = endpoint(settings.llm_base_url)
    headers = {"Content-Type": "application/json"}
    if settings.llm_api_key:
        headers["Authorization"] = f"Bearer {settings.llm_api_key}"
    body = {"model": settings.llm_model, "messages": messages, "temperature": 0}
    import anyio  # noqa: F401 - httpx's async transport; imported here, before the clock starts
    import httpx

    # Made before the clock starts: loading the TLS roots is this machine's work, not the endpoint's.
    client = httpx.AsyncClient(timeout=settings.llm_timeout, follow_redirects=False)
    shown = redacted(url)   # what messages name: never the user name and password in the URL
    status, data, location = _run(_post(client, url, body, headers), settings.llm_timeout, shown)
    text = data.decode("utf-8", "replace")
    if 300 <= status < 400:
        raise LLMError(f"the LLM at {shown} answered with a redirect (HTTP {status} to {location or 'nowhere'}); "
                       "redirects are not followed: set RAG_LLM_BASE_URL to the address it should use")
    if status >= 400:
        raise LLMError(f"the LLM at {shown} refused the request: HTTP {status}: {_error_text(text)}")
    try:
        content = json.loads(text)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise LLMError(f"the LLM at {shown} answered something that is not an OpenAI chat completion "
                       f"(HTTP {status}): {_error_text(text)}") from None
    if not isinstance(content, str):
        raise LLMError(f"the LLM at {shown} sent a reply without text")
    return content


def plain_http_warning(base_url: str, has_key: bool) -> str | None:
    """What to tell the user when the endpoint is plain http on another machine, else None.

    Example:
        >>> plain_http_warning("http://127.0.0.1:11434/v1", True) is None
        True
    """
    parts = urlsplit(base_url.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme != "http" or _is_loopback(host):
        return None
    what = "the API key, the question and the passages" if has_key else "the question and the passages"
    return (f"the LLM endpoint {host} is reached over plain http: {what} cross the network unencrypted "
            "(use https, or a server on this machine)")


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def _post(client: Any, url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, bytes, str]:
    async with client:
        async with client.stream("POST", url, json=body, headers=headers) as response:
            location = response.headers.get("location", "")
            if 300 <= response.status_code < 400:
                return response.status_code, b"", location
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_REPLY_BYTES:
                raise LLMError(f"the LLM at {redacted(url)} sent a reply of {int(declared):,} bytes, over the "
                               f"{MAX_REPLY_BYTES:,}-byte limit")
            parts, size = [], 0
            async for block in response.aiter_bytes():
                size += len(block)
                if size > MAX_REPLY_BYTES:
                    raise LLMError(f"the LLM at {redacted(url)} sent a reply longer than {MAX_REPLY_BYTES:,} bytes; "
                                   "it was cut off unread")
                parts.append(block)
            return response.status_code, b"".join(parts), location


_T = TypeVar("_T")


def _run(call: Coroutine[Any, Any, _T], timeout: float, url: str) -> _T:
    """Run ``call`` to completion within ``timeout`` seconds in all, on an event loop of its own."""
    # httpx loads only for an LLM answer
    import httpx

    async def bounded() -> _T:
        return await asyncio.wait_for(call, timeout)

    try:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(bounded())
        # Called from async code (a server's handler): its loop must not block, so run beside it.
        with ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, bounded()).result()
    except (asyncio.TimeoutError, httpx.TimeoutException):
        raise LLMError(f"the LLM at {url} did not answer within {timeout:g} s "
                       "(raise RAG_LLM_TIMEOUT for a slow model)") from None
    except httpx.HTTPError as exc:
        raise LLMError(f"cannot reach the LLM at {url}: {exc or type(exc).__name__}") from None


def redacted(url: str) -> str:
    """``url`` without the user name and password it may carry (``http://admin:hunter2@host/``).

    Example:
        >>> redacted("http://admin:hunter2@10.0.0.5:8000/v1/chat/completions")
        'http://***@10.0.0.5:8000/v1/chat/completions'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "the configured address"
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()


def endpoint(base_url: str) -> str:
    """The chat completions URL of an OpenAI-style base URL.

    Example:
        >>> endpoint("http://127.0.0.1:11434/v1")
        'http://127.0.0.1:11434/v1/chat/completions'
    """
    base = base_url.strip().rstrip("/")
    return base if base.endswith("/chat/completions") else base + "/chat/completions"


def _error_text(body: str, limit: int = 300) -> str:
    try:
        data = json.loads(body)
        message = data.get("error", data) if isinstance(data, dict) else data
        if isinstance(message, dict):
            message = message.get("message", message)
        body = str(message)
    except ValueError:
        pass
    body = " ".join(body.split())
    return body if len(body) <= limit else body[:limit - 1] + "…"
