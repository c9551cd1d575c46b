"""The web chat: a Gradio page built from ``Index`` alone (``rag serve``, ``python app.py``).

The page asks, searches, ingests and removes through ``Index`` and only wires what comes back to
the page: the HTML is made by ``rag.serve.render`` (which makes every document and model string
inert), its styles and scripts are ``rag.serve.page_assets``, uploads are stored by
``rag.serve.uploads``, and the server sits behind ``rag.serve.webguard``. Questions run on
immutable index snapshots, several at once; uploads and removals queue one at a time and never
hold up the questions of other tabs.

The rooms: ``start.py`` (the index served, the guarded server), ``page.py`` (the layout and which
handler each event runs), ``chat.py`` (asking, the sources panel), ``library.py`` (documents,
uploads, removals, collections), ``viewer.py`` (a cited page), ``api.py`` (``/ask`` and ``/search``
for ``gradio_client``), ``indexes.py`` (which collection a tab works on).

Example:
    >>> from rag import Index
    >>> from rag.serve.web import build_app, launch
    >>> demo = build_app(Index.open("index/"))
    >>> launch(demo, "127.0.0.1", 7860)              # blocks; or: rag serve --index index/
"""

from rag.serve.web.page import build_app
from rag.serve.web.start import launch, open_index, serve

__all__ = ["build_app", "launch", "open_index", "serve"]
