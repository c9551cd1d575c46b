"""``Index``: the one front object. Build, open, update, search and ask.

The parts that vary are passed in or named in ``Settings`` (``rag.protocols``): the embedder, the
dense and lexical indexes (recorded in the manifest), an optional reranker and the answerer.

Readers never wait for writers: every search runs on an immutable snapshot of the index, and an
ingest swaps in a new snapshot only once it is completely on disk. Another process's ingest is
picked up on the next query.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag import pageview
from rag.answer.extractive import answer
from rag.answer.kinds import classify, wants_sentences
from rag.answer.summary import summarize
from rag.backends import EMBEDDERS
from rag.cancel import stop_point, stopping
from rag.collection_paths import collection_folder
from rag.embed import load_embedder
from rag.errors import IndexNotFoundError, RagError
from rag.limits import check_k, check_pages, check_sources, clean_question
from rag.protocols import Answerer, Embedder, Reranker
from rag.search.conversation import condense, content_words, resolve, search_conversation
from rag.search.filing import named_sources
from rag.search.focus import focus
from rag.search.retriever import CachedPages, Retriever
from rag.search.statement_pages import named_statements, statement_pages
from rag.settings import Settings
from rag.store.snapshot import CURRENT, Snapshot, current_generation, open_snapshot, settings_from_manifest
from rag.store.writer import WriteLock
from rag.types import Answer, Document, Hit, IngestReport, Quote, TextBox
from rag.watch import Watcher

if TYPE_CHECKING:
    from rag import pipeline  # the pipeline (loaders, chunker, pypdf) is imported by the first write
    from rag.pageview import PageImage

DEFAULT_FOLDER = "index"
MAX_STATEMENT_SOURCES = 3
"""A question naming a statement ("in the balance sheet") reads that statement first in at most
this many filings (those it names); among more, it names no one filing and retrieval decides."""
STATEMENT_HITS = 2
"""Passages of the named statement's page put before the others."""


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
                 snapshot: Snapshot | None = None, *, embedder: Embedder | None = None,
                 reranker: Reranker | None = None, answerer: Answerer | None = None) -> None:
        """``embedder``, ``reranker`` and ``answerer`` are objects satisfying ``rag.protocols``;
        without them the ones ``settings`` names are used (``Settings()`` when none are given:
        the library never reads the environment; ``Settings.from_env()`` is the CLI's choice)."""
        self.folder = Path(folder).expanduser().resolve()
        settings = settings or Settings()
        if embedder is not None:
            # The manifest records which embedder made the vectors: its name and its class.
            settings = settings.replace(embed_model=embedder.name, embed_backend=_class_name(type(embedder)))
        self.settings = settings
        self.embedder = embedder
        self.reranker = reranker
        self.answerer = answerer
        self._snapshot = snapshot
        self._swap = threading.Lock()
        self._write = threading.Lock()
        self._retriever: Retriever | None = None
        self._statements: dict[tuple[str, str, str], list[int]] = {}
        """Pages that are a named statement, by (generation, source, statement): found once."""
        self.last_report: IngestReport | None = None

    # -- construction ----------------------------------------------------------------------

    @classmethod
    def open(cls, folder: str | Path = DEFAULT_FOLDER, settings: Settings | None = None,
             verify: bool = True, *, collection: str | None = None, **parts: Any) -> Index:
        """Open the index in ``folder`` (or its named ``collection``, see ``rag.collections``).

        Without ``settings``, the index-shaping ones (embedder, backends, chunking) are taken from
        the index itself, so an index opens with the backends its manifest records; with them, an
        index built another way raises ``IndexMismatchError`` saying how to rebuild. ``parts``:
        ``embedder``, ``reranker``, ``answerer`` objects, as for ``Index(...)``.
        """
        folder = collection_folder(folder, collection)
        index = cls(folder, settings or settings_from_manifest(folder, Settings()), **parts)
        index._snapshot = open_snapshot(folder, index.settings, verify=verify)
        return index

    @classmethod
    def build(cls, paths: Iterable[str | Path], folder: str | Path = DEFAULT_FOLDER,
              settings: Settings | None = None, progress: pipeline.Progress | None = None,
              rebuild: bool = False, wait: float = 0.0, *, collection: str | None = None,
              **parts: Any) -> Index:
        """Index ``paths`` (files and folders) into ``folder`` (or its ``collection``) and return it.

        An existing index there is updated incrementally (only new or changed files are read,
        only unseen text is embedded); ``rebuild=True`` starts it afresh. The ingest report is
        in ``index.last_report``.
        """
        folder = collection_folder(folder, collection)
        index = cls(folder, settings, **parts)
        if not rebuild and current_generation(folder) is not None:
            index._snapshot = open_snapshot(folder, index.settings)
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
                embedder = self.embedder or load_embedder(self.settings)
                self._retriever = Retriever(snapshot, embedder, self.reranker)
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
            "store": f"{self.settings.dense_name} + {self.settings.lexical_name}",
            "embedding": f"{self.settings.embed_model} ({self.settings.embed_backend})",
            "fingerprint": self.settings.fingerprint(),
        }

    def page_text(self, source: str, page: int) -> str | None:
        """A page's full text as indexed (what every quote is checked against)."""
        snapshot = self.snapshot()
        return None if snapshot is None else snapshot.page_text(source, page)

    def page_image(self, source: str, page: int, *, scale: float = 1.5) -> PageImage:
        """A page of an indexed PDF as a PNG (rendered by PDFium on demand, cached on disk).

        ``source`` is the indexed path or its file name; ``scale`` 1.0 is 72 pixels per inch.
        Raises ``PageViewError`` (a ``RagError``) for a source that is not an indexed PDF, a page
        it does not have, or a file changed since it was indexed.

        Example:
            >>> # image = index.page_image("report.pdf", 2)
            >>> # Path("page.png").write_bytes(image.png); (image.width, image.height)
        """
        return pageview.page_image(self._snapshot_or_raise(), self.folder / "cache" / "pages", source, page, scale,
                                   cache_bytes=self.settings.page_cache_mb * 2**20)

    def quote_boxes(self, quote: Quote) -> tuple[TextBox, ...]:
        """Where the quote's characters are on its page image: one box per line run, as fractions
        of the page (origin top left). Empty for text, Markdown and HTML sources.

        Example:
            >>> # hit = index.search("Who called for UN visits?")[0]
            >>> # for box in index.quote_boxes(hit.quote): print(box.x0, box.y0, box.x1, box.y1)
        """
        return pageview.quote_boxes(self._snapshot_or_raise(), quote)

    def _snapshot_or_raise(self) -> Snapshot:
        snapshot = self.snapshot()
        if snapshot is None:
            raise IndexNotFoundError(f"no index in {self.folder}: build one with: rag ingest PATH... "
                                     f"--index {self.folder}")
        return snapshot

    # -- writing ---------------------------------------------------------------------------

    def ingest(self, paths: Iterable[str | Path], progress: pipeline.Progress | None = None,
               rebuild: bool = False, wait: float = 0.0) -> IngestReport:
        """Add new and changed files under ``paths``; drop indexed files deleted from those folders."""
        return self._write_generation(paths, (), progress, rebuild, wait)

    def watch(self, paths: Iterable[str | Path], *, on_update: Callable[[IngestReport], None] | None = None
              ) -> Watcher:
        """Keep the index in step with ``paths`` (folders or files) until stopped: a started
        ``rag.watch.Watcher``, also a context manager. It ingests once at the start, then each
        batch of saved, renamed or deleted files a moment after the folder is quiet.

        Example:
            >>> with index.watch(["~/Documents"]) as watcher:
            ...     watcher.wait_for_update(1)     # the first sync is done
            ...     index.search("quarterly revenue")
        """
        return Watcher(self, list(paths), on_update=on_update).start()

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
                          progress: pipeline.Progress | None, rebuild: bool, wait: float) -> IngestReport:
        from rag import pipeline  # the pipeline (loaders, chunker, pypdf) loads with the first write

        paths = list(paths)
        with self._write, WriteLock(self.folder, timeout=wait):
            previous = None if rebuild else self.snapshot()
            snapshot, report = pipeline.run(self.folder, paths, self.settings, previous, progress, remove,
                                           embedder=self.embedder)
            if snapshot is not None:
                with self._swap:
                    self._snapshot = snapshot
                    self._retriever = None
        self.last_report = report
        return report

    # -- reading ---------------------------------------------------------------------------

    def search(self, question: str, k: int | None = None, *, sources: Iterable[str] | None = None,
               pages: tuple[int, int] | None = None, history: Sequence[Mapping[str, Any]] | None = None,
               **overrides: Any) -> list[Hit]:
        """The ``k`` passages that best answer ``question``, best first.

        Args:
            question: the question, in plain words.
            k: how many hits (default ``settings.k``).
            sources: only search these files (paths or file names).
            pages: only search this page range, inclusive, e.g. ``(3, 5)``.
            history: earlier turns as OpenAI-style messages; a follow-up is searched standalone
                (offline resolver, ``rag.search.conversation.resolve``).
            **overrides: per-query settings, e.g. ``fusion="rrf"`` or ``mmr=True``.
        """
        question = clean_question(question)
        k, sources, pages = _checked(k, sources, pages)
        _, retriever = self._require()
        settings = self.settings.replace(**overrides) if overrides else self.settings
        if settings.focus_question:
            question = focus(question)
        if not history:
            return retriever.search(question, settings, k=k, sources=sources, pages=pages)

        hits, _, _ = search_conversation(retriever, resolve(question, history), settings, k, sources, pages)
        return hits

    def ask(self, question: str, k: int | None = None, *, history: Sequence[Mapping[str, Any]] | None = None,
            sources: Iterable[str] | None = None, pages: tuple[int, int] | None = None,
            stop: Callable[[], bool] | None = None, **overrides: Any) -> Answer:
        """Answer ``question`` from the documents, with verified verbatim quotes.

        The default answerer is extractive (no LLM, no network). When the documents do not hold
        the answer, ``Answer.found`` is false and the closest passages are still in ``hits``.
        Instructions around the question ("Answer in USD millions.") are left out of the search
        and the reading (``rag.search.focus``); ``Answer.query`` then says what was searched.

        Args:
            history: the earlier turns, oldest first, as OpenAI-style messages
                (``{"role": "user"|"assistant", "content": str}``). A follow-up that leans on
                them is searched as a standalone question (``Answer.query``); see
                ``rag.search.conversation``.
            sources: only read these files (paths or file names), as ``search`` takes them:
                "this document".
            pages: only read this page range, inclusive, e.g. ``(3, 5)``.
            stop: asked between the stages (before the search, before the reading, before each
                request to an LLM, before a summary); once it returns true the question ends
                with ``AnswerCancelled`` and no further work is done for it (``rag.cancel``): a
                client that left. Without it, answers are as before.
        """
        with stopping(stop):
            return self._ask(question, k, history=history, sources=sources, pages=pages, **overrides)

    def _ask(self, question: str, k: int | None, *, history: Sequence[Mapping[str, Any]] | None,
             sources: Iterable[str] | None, pages: tuple[int, int] | None, **overrides: Any) -> Answer:
        question = clean_question(question)   # text within MAX_QUESTION_CHARS, every way in
        k, sources, pages = _checked(k, sources, pages)
        snapshot, retriever = self._require()
        settings = self.settings.replace(**overrides) if overrides else self.settings
        asked = focus(question) if settings.focus_question else question
        kind = classify(asked, history)   # a follow-up ("and the fees?") wants what the question before it did
        if kind == "summary":
            document = self._document_meant(asked, retriever, settings, history, sources)
            if document is not None:
                stop_point("the summary")
                return dataclasses.replace(summarize(snapshot, document, question), question=question)
        resolved = None
        if history:
            resolved = (condense(asked, history, settings) if settings.answer_mode == "llm"
                        else resolve(asked, history))
        stop_point("the search")   # after an LLM's rewrite of a follow-up, which may take seconds
        if sources is None and pages is None:
            # among many filings, the one the question names by company and year ("3M's FY2018 ...")
            sources = named_sources(asked, [d.source for d in snapshot.documents()])
        if resolved:   # a question that stands alone comes back searched alone (``resolved.search == asked``)
            hits, query, resolved = search_conversation(retriever, resolved, settings, k, sources, pages)
        else:
            query = retriever.context(asked, settings, sources, pages)
            hits = retriever.search(asked, settings, k=k, context=query)
        searched = resolved.search if resolved else asked
        statements = named_statements(asked) if pages is None else []
        if statements:
            hits = self._statement_hits(statements, searched, hits, snapshot, retriever, settings, sources)
        stop_point("reading")
        # Pages read once per question, whichever steps ask for them (quotes, the answerer, checks).
        page_texts = CachedPages(snapshot, query.pages)
        read = resolved.read if resolved else asked
        if resolved and wants_sentences(kind) and resolved.read == resolved.search != asked and \
                content_words(asked):
            # A follow-up with words of its own ("What are ETFs?") is read as asked when it wants
            # sentences: read as its search, with the earlier turns' words glued on, it was no
            # definition of anything. Chosen on the tune halves: doc2dial-a follow-ups answer F1
            # 0.278 -> 0.288, MTRAG's 0.258 -> 0.267 (two content words at least: 0.288 / 0.262;
            # every such follow-up: 0.281 / 0.267).
            read = asked
        if self.answerer is None:
            # The default answerer weighs sentences with the index's own embedder.
            result = answer(read, hits, settings, page_texts, embedder=retriever.embedder, typed=question, kind=kind)
        else:
            result = self.answerer(read, hits, settings, page_texts)
        shown = resolved.shown if resolved else searched
        if shown == question:
            return result
        return dataclasses.replace(result, question=question, query=shown)

    def _statement_hits(self, statements: list[str], question: str, hits: list[Hit], snapshot: Snapshot,
                        retriever: Retriever, settings: Settings, sources: Iterable[str] | None) -> list[Hit]:
        """``hits`` led by the best passages of the statements the question names ("in the balance
        sheet"), in the filing it names or the index's only one: the statement's own page, not a note
        that mentions the same line item (``rag.search.statement_pages``)."""
        documents = snapshot.documents()
        wanted = set(sources) if sources is not None else None
        chosen = [d for d in documents if wanted is None or d.source in wanted or d.name in wanted]
        if not 0 < len(chosen) <= MAX_STATEMENT_SOURCES:
            return hits
        led: list[Hit] = []
        for document, statement in itertools.product(chosen, statements):
            key = (snapshot.generation, document.source, statement)
            if key not in self._statements:
                self._statements[key] = statement_pages(statement, document.pages,
                                                        functools.partial(snapshot.page_text, document.source))
            for page in self._statements[key][:1]:
                context = retriever.context(question, settings, [document.source], (page, page))
                led += retriever.search(question, settings, k=STATEMENT_HITS, context=context)
        seen = {h.chunk for h in led}
        merged = led + [h for h in hits if h.chunk not in seen]
        return [dataclasses.replace(h, rank=n) for n, h in enumerate(merged, 1)]

    def summarize(self, source: str) -> Answer:
        """An extractive summary of one indexed document: 3 to 7 of its own sentences covering
        its main points, in document order, each a verified quote (``rag.answer.summary``).

        ``source`` is the indexed path or its file name; ``RagError`` when it is not indexed.

        Example:
            >>> # answer = index.summarize("report.pdf")
            >>> # print(answer.text); [(q.page, q.text) for q in answer.citations]
        """
        snapshot = self._snapshot_or_raise()
        documents = snapshot.documents()
        wanted = [d for d in documents if source in (d.source, d.name)
                  or d.source == str(Path(source).expanduser().resolve())]
        if not wanted:
            names = ", ".join(d.name for d in documents[:10]) or "none"
            raise RagError(f"{source}: not in the index (indexed: {names})")
        return summarize(snapshot, wanted[0])

    def _document_meant(self, question: str, retriever: Retriever, settings: Settings,
                        history: Sequence[Mapping[str, Any]] | None, sources: Iterable[str] | None = None
                        ) -> Document | None:
        """The document a summary question is about: the one asked about ("this document"), the
        one it names, the only one, or the one the question (with the conversation before it)
        finds first."""
        documents = self.documents()
        if sources is not None:
            wanted = set(sources)
            documents = [d for d in documents if d.source in wanted or d.name in wanted] or documents
        if len(documents) == 1:
            return documents[0]
        lowered = question.lower()
        named = [d for d in documents if d.name.lower() in lowered or Path(d.name).stem.lower() in lowered]
        if named:
            return max(named, key=lambda d: len(d.name))
        search = question
        if history:
            search = resolve(question, history).search
        hits = retriever.search(search, settings, k=1)
        return next((d for d in documents if hits and d.source == hits[0].source), None)

    def chat(self, k: int | None = None, **overrides: Any) -> Conversation:
        """A conversation whose ``ask`` keeps the earlier turns (``reset()`` starts over).

        Example:
            >>> # chat = index.chat()
            >>> # chat.ask("Who called for UN visits?"); chat.ask("What did she say they should assess?")
        """
        self.settings.replace(**overrides)  # a wrong setting fails here, not at the first question
        return Conversation(self, k=None if k is None else check_k(k), **overrides)


def _class_name(cls: type) -> str:
    """A shipped backend's short name, or ``package.module:Class`` for anyone else's."""
    path = f"{cls.__module__}:{cls.__qualname__}"
    return next((name for name, known in EMBEDDERS.items() if known == path), path)


def _checked(k: object, sources: object, pages: object
             ) -> tuple[int | None, list[str] | None, tuple[int, int] | None]:
    """The arguments of a search or a question, checked before any work (``QueryError``)."""
    return None if k is None else check_k(k), check_sources(sources), check_pages(pages)


class Conversation:
    """A conversation with an index: each ``ask`` sees the turns before it.

    Example:
        >>> # chat = index.chat()
        >>> # chat.ask("Who called for UN visits?").span
        >>> # chat.ask("What did she say they should assess?").query
        >>> # chat.reset()
    """

    def __init__(self, index: Index, k: int | None = None, **overrides: Any) -> None:
        self.index = index
        self.k = k
        self.overrides = overrides
        self.messages: list[dict[str, str]] = []

    def ask(self, question: str) -> Answer:
        answer = self.index.ask(question, k=self.k, history=self.messages, **self.overrides)
        self.messages += [{"role": "user", "content": question},
                          {"role": "assistant", "content": answer.span if answer.found and answer.span
                           else answer.text}]
        return answer

    def reset(self) -> None:
        """Forget the turns: the next question starts a new conversation."""
        self.messages = []
