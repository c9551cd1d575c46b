"""The library's handlers: the document list and stats, uploads, removals, the collection menu.

Uploads and removals queue one at a time (``build_app`` gives them one concurrency slot) and never
hold up questions. A watched folder or another process may write a new generation at any time:
``refresh`` shows it without a reload, and only re-renders when the generation changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gradio as gr

from rag.errors import RagError
from rag.serve.public import public_sources
from rag.serve.render import (
    SOURCES_EMPTY,
    render_documents,
    render_failure,
    render_ingest,
    render_removed,
    render_stats,
)
from rag.serve.uploads import UPLOADS, add_uploads, discard_uploaded_copies, received_uploads, remove_document
from rag.serve.web.indexes import PageIndexes

LIBRARY_REFRESH_SECONDS = 3.0
"""How often an open page looks for a new generation of its collection (a watched folder's update)."""

STAGES = {"model": ("Loading the embedding model", None), "files": ("Reading files", "files"),
          "ocr": ("Reading scanned pages (OCR)", "pages"), "embedding": ("Embedding passages", "passages")}
"""What an upload's progress says at each stage of ``rag.pipeline`` (and ``add_uploads``). The model
loads first, as a stage of its own (Gradio shows no words without a bar: a stage without a unit
shows its name at 0%): loaded inside the ingest, it held the "files" bar still at 50% of two
files for the seconds it took."""


class LibraryHandlers:
    """The library panel over the tab's chosen collection; uploads of at most ``max_bytes`` a file."""

    def __init__(self, indexes: PageIndexes, max_bytes: int) -> None:
        self.indexes = indexes
        self.max_bytes = max_bytes

    def library(self, collection: str | None = None, keep_choice: bool = False) -> tuple[Any, ...]:
        """The stats, the document list and the remove menu of ``collection``."""
        index = self.indexes.pick(collection)
        docs = index.documents()
        # The browser gets each document's path relative to its collection, never the absolute one
        # (rag.serve.public): the page's /config and its menus are readable by anyone who can load it.
        public = {source: key for key, source in public_sources(index).items()}
        choices = [(f"{d.name}  ({d.pages} p.)", public[d.source]) for d in docs]
        # A refresh from outside (a watched folder) keeps the document the user picked to remove.
        chosen_update = gr.update(choices=choices) if keep_choice else gr.update(choices=choices, value=None)
        return render_stats(index.stats()), render_documents(docs, index.folder / UPLOADS, public), chosen_update

    def on_load(self, collection: str | None) -> tuple[Any, ...]:
        return self.library(collection) + (gr.update(choices=self.indexes.choices()),
                                           gr.update(**self.indexes.first_screen(collection)))

    def add_files(self, files: list[str] | None, collection: str | None = None,
                  progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008 - gradio's documented idiom
        if not files:
            return (gr.skip(),) * 6
        try:
            return self._add(files, collection, progress)
        finally:
            discard_uploaded_copies(files)   # on every outcome, a failure's too

    def _add(self, files: list[str], collection: str | None, progress: gr.Progress) -> tuple[Any, ...]:
        indexes = self.indexes
        target = indexes.upload_target(collection)
        index = indexes.pick(target)

        def on_progress(stage: str, done: int, total: int) -> None:
            desc, unit = STAGES.get(stage, (stage, "steps"))
            if unit is None:
                if done < total:
                    progress(0.0, desc=desc)
            else:
                progress((done, total), desc=desc, unit=unit)

        progress(0.0, desc="Saving the uploads")
        received, foreign = received_uploads(files)
        stored, failed, report = add_uploads(index, received, self.max_bytes, on_progress)
        failed = foreign + failed
        names = indexes.choices()   # a first upload that failed whole made no collection
        now = target if target in names else (collection or indexes.shown)
        choice = gr.update(choices=names, value=now)
        into = (target or indexes.shown) if indexes.collections is not None else ""
        kept = stays_note(indexes.pick(collection).documents(), collection or indexes.shown) \
            if now != (collection or indexes.shown) else ""
        return (None, render_ingest(stored, failed, report, collection=into, note=kept)) + self.library(target) + (
            choice,)

    def remove(self, chosen: str | None, collection: str | None = None) -> tuple[Any, ...]:
        if not chosen:
            return (gr.skip(),) * 4
        index = self.indexes.pick(collection)
        source = public_sources(index).get(chosen)
        if source is None:  # removed meanwhile (another tab, a watched folder)
            return (render_failure(f"{chosen}: not in the index"),) + self.library(collection)
        try:
            remove_document(index, source)
        except RagError as exc:
            return (render_failure(exc),) + self.library(collection)
        return (render_removed(source),) + self.library(collection)

    def refresh(self, collection: str | None, seen: Any) -> tuple[Any, ...]:  # noqa: ANN401 - a gr.State value
        # A watched folder (rag serve --watch) or another process writes new generations: the
        # library shows them without a reload, and only re-renders when the generation changed.
        snapshot = self.indexes.pick(collection).snapshot()
        now = [collection, snapshot.generation if snapshot is not None else None]
        if now == seen:
            return (gr.skip(),) * 4
        return self.library(collection, keep_choice=True) + (now,)

    def switch(self, collection: str | None) -> tuple[Any, ...]:
        # Answers shown so far came from the other collection: start the conversation afresh.
        return self.library(collection) + (gr.update(value=[], **self.indexes.first_screen(collection)), {},
                                           SOURCES_EMPTY, (), "", [], "")

    def scope_choices(self, collection: str | None) -> Any:
        """The documents to ask about, listed afresh each time the list is opened (uploads change them)."""
        return gr.update(choices=[("All documents", "")] + [(Path(key).name, key) for key in
                                                            public_sources(self.indexes.pick(collection))])


def stays_note(docs: Sequence[Any], collection: str) -> str:
    """What an upload redirected away from ``collection`` left there, e.g. "user-guide.md stays in demo"."""
    names = [d.name for d in docs]
    if not names:
        return ""
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    one = len(names) == 1
    return (f"{shown} {'stays' if one else 'stay'} in {collection}: choose {collection} in the Collection menu "
            f"to ask {'it' if one else 'them'}.")
