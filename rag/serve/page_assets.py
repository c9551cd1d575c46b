"""The web page's look and browser code: the stylesheet and scripts in ``rag/serve/static/``, and the theme.

The files ship inside the package (``[tool.setuptools.package-data]``) and are read once, at
import. Each script is a snippet that Gradio runs where it is given: an arrow function for an
event's ``js=`` or ``demo.load``, or the body of a ``js_on_load`` (which has ``element``,
``props``, ``trigger`` and ``watch`` in scope).
"""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import gradio as gr


def _static(name: str) -> str:
    return (files(__package__) / "static" / name).read_text(encoding="utf-8")


CSS = _static("page.css")
"""The page's styles: the HTML of ``rag.serve.render`` inside Gradio's layout, and a phone's layout."""

CONFIRM_REMOVE = _static("confirm_remove.js")
"""Runs in the browser before a removal: a cancelled dialog sends no document, so nothing happens."""

OPEN_SOURCE_JS = _static("open_source.js")
"""The sources panel: a card's button asks the server for the viewer of that card's quote (by its
place in the panel, never by a path the page could change)."""

VIEWER_JS = _static("viewer.js")
"""The viewer: closed by its button, a click beside it or Escape (in the browser alone); opened
with the quote scrolled into view."""

NARROW_JS = _static("narrow.js")
"""On a phone the chat comes first: the library sidebar, which covers the whole width there, starts
closed."""


def theme() -> gr.themes.Base:
    """Gradio's Soft theme in indigo and slate, with the system's own fonts."""
    # Gradio loads only with the web page
    import gradio as gr

    return gr.themes.Soft(primary_hue="indigo", neutral_hue="slate",
                          font=["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"],
                          font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"])
