"""``Index``: the one front object. Build, open, update, search and ask.

Readers never wait for writers: every search runs on an immutable snapshot of the index, and an
ingest swaps in a new snapshot only once it is completely on disk. Another process's ingest is
picked up on the next query.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from . import ingest as _ingest
from .collections import collection_folder
from .embed import load_embedder
from .errors import IndexNotFoundError, RagError
from .retrieve import Retriever
from .settings import Settings
from .store import CURRENT, Snapshot, WriteLock, current_generation, open_snapshot, settings_from_manifest
from .types import Answer, Document, Hit, IngestReport

DEFAULT_FOLDER = "index"


class Index:
    """A searchable index of documents, kept in a folder.

    Example:
        >>> from rag import Index
        >>> index = Index.build(["docs/"], "index/")          # or Index.open("index/")
        >>> for hit in index.search("How do I add documents?", k=3):
        ...     print(hit.name, hit.page, round(hit.score, 3), hit.quote.text)
        >>> answer = index.ask("Which embedding model is used?")
        >>> print(answer.text, answer.citations[0].text)
    """

    def __init__(self, folder: str | Path = DEFAULT_FOLDER, settings: Settings | None = None,
                 snapshot: Snapshot | None = None) -> None:
        self.folder = Path(folder).expanduser().resolve()
        self.settings = settings or Settings.from_env()
        self._snapshot = snapshot
        self._swap = threading.Lock()
        self._write = threading.Lock()
        self._retriever: Retriever | None = None
        self.last_report: IngestReport | None = None

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def open(cls, folder: str | Path = DEFAULT_FOLDER, settings: Settings | None = None,
             verify: bool = True, *, collection: str | None = None) -> Index:
        """Open the index in ``folder`` (or its named ``collection``, see ``rag.collections``).

        Without ``settings``, the index-shaping ones are taken from the index itself; with them,
        an index built another way raises ``IndexMismatchError`` saying how to rebuild.
        """
        folder = collection_folder(folder, collection)
        settings = settings or settings_from_manifest(folder, Settings.from_env())
        return cls(folder, settings, open_snapshot(folder, settings, verify=verify))

    @classmethod
    def build(cls, paths: Iterable[str | Path], folder: str | Path = DEFAULT_FOLDER,
              settings: Settings | None = None, progress: _ingest.Progress | None = None,
              rebuild: bool = False, wait: float = 0.0, *, collection: str | None = None) -> Index:
        """Index ``paths`` (files and folders) into ``folder`` (or its ``collection``) and return it.

        An existing index there is updated incrementally (only new or changed files are read,
        only unseen text is embedded); ``rebuild=True`` starts it afresh. The ingest report is
        in ``index.last_report``.
        """
        folder = collection_folder(folder, collection)
        settings = settings or Settings.from_env()
        index = cls(folder, settings)
        if not rebuild and current_generation(folder) is not None:
            index._snapshot = open_snapshot(folder, settings)
        index.ingest(paths, progress=progress, rebuild=rebuild, wait=wait)
        return index

    # -- state -----------------------------------------------------------------------------

    def snapshot(self) -> Snapshot | None:
        """The live generation, reloaded if another process has written a newer one."""
        generation = current_generation(self.folder) if (self.folder / CURRENT).exists() else None
        with self._swap:
            if generation is not None and (self._snapshot is None or self._snapshot.generation != generation):
                self._snapshot = open_snapshot(self.folder, self.settings, verify=False)
                self._retriever = None
            return self._snapshot

    def _require(self) -> tuple[Snapshot, Retriever]:
        snapshot = self.snapshot()
        if snapshot is None:
            raise IndexNotFoundError(f"no index in {self.folder}: build one with: rag ingest PATH... "
                                     f"--index {self.folder}")
        with self._swap:
            if self._retriever is None or self._retriever.snapshot is not snapshot:
                self._retriever = Retriever(snapshot, load_embedder(self.settings))
            return snapshot, self._retriever

    def __len__(self) -> int:
        snapshot = self.snapshot()
        return 0 if snapshot is None else snapshot.count

    def documents(self) -> list[Document]:
        """The indexed files with their page and chunk counts."""
        snapshot = self.snapshot()
        return [] if snapshot is None else snapshot.documents()

    def stats(self) -> dict[str, Any]:
        """Counts and settings of the live index, for display."""
        snapshot = self.snapshot()
        docs = self.documents()
        return {
            "folder": str(self.folder),
            "documents": len(docs),
            "pages": sum(d.pages for d in docs),
            "chunks": 0 if snapshot is None else snapshot.count,
            "dense_index": None if snapshot is None else snapshot.dense_kind,
            "embedding": f"{self.settings.embed_model} ({self.settings.embed_backend})",
            "fingerprint": self.settings.fingerprint(),
        }

    def page_text(self, source: str, page: int) -> str | None:
        """A page's full text as indexed (what every quote is checked against)."""
        snapshot = self.snapshot()
        return None if snapshot is None else snapshot.page_text(source, page)

    # -- writing ---------------------------------------------------------------------------

    def ingest(self, paths: Iterable[str | Path], progress: _ingest.Progress | None = None,
               rebuild: bool = False, wait: float = 0.0) -> IngestReport:
        """Add new and changed files under ``paths``; drop indexed files deleted from those folders."""
        return self._write_generation(paths, (), progress, rebuild, wait)

    def remove(self, sources: Sequence[str], wait: float = 0.0) -> IngestReport:
        """Remove documents (by path or file name) from the index."""
        known = {d.source: d for d in self.documents()}
        chosen = []
        for wanted in sources:
            matches = [s for s in known if s == wanted or Path(s).name == wanted
                       or s == str(Path(wanted).expanduser().resolve())]
            if not matches:
                raise RagError(f"{wanted}: not in the index")
            chosen += matches
        return self._write_generation((), chosen, None, False, wait)

    def _write_generation(self, paths: Iterable[str | Path], remove: Sequence[str],
                          progress: _ingest.Progress | None, rebuild: bool, wait: float) -> IngestReport:
        paths = list(paths)
        with self._write, WriteLock(self.folder, timeout=wait):
            previous = None if rebuild else self.snapshot()
            snapshot, report = _ingest.run(self.folder, paths, self.settings, previous, progress, remove)
            if snapshot is not None:
                with self._swap:
                    self._snapshot = snapshot
                    self._retriever = None
        self.last_report = report
        return report

    # -- reading ---------------------------------------------------------------------------

    def search(self, question: str, k: int | None = None, *, sources: Iterable[str] | None = None,
               pages: tuple[int, int] | None = None, **overrides: Any) -> list[Hit]:
        """The ``k`` passages that best answer ``question``, best first.

        Args:
            question: the question, in plain words.
            k: how many hits (default ``settings.k``).
            sources: only search these files (paths or file names).
            pages: only search this page range, inclusive, e.g. ``(3, 5)``.
            **overrides: per-query settings, e.g. ``fusion="rrf"`` or ``mmr=True``.
        """
        _, retriever = self._require()
        settings = self.settings.replace(**overrides) if overrides else self.settings
        return retriever.search(question, settings, k=k, sources=sources, pages=pages)

    def ask(self, question: str, k: int | None = None, **overrides: Any) -> Answer:
        """Answer ``question`` from the documents, with verified verbatim quotes.

        The default answerer is extractive (no LLM, no network). When the documents do not hold
        the answer, ``Answer.found`` is false and the closest passages are still in ``hits``.
        """
        from .answer import answer

        _, retriever = self._require()
        settings = self.settings.replace(**overrides) if overrides else self.settings
        hits = retriever.search(question, settings, k=k)
        return answer(question, hits, retriever, settings)
