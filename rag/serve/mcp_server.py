"""``rag mcp``: the index as Model Context Protocol tools, for Claude Desktop, IDEs and agents.

Three tools, each a thin call on ``Index``: ``search`` (passages with file, page, offsets and the
best sentence), ``ask`` (an answer with ``[n]`` marks and its verified quotes) and
``list_documents``; plus ``list_collections``. Every tool takes an optional ``collection``; without
it the server's own (``--collection``) is used. The transport is stdio by default (the client
starts ``rag mcp`` itself) or streamable HTTP on 127.0.0.1 with ``--http``. Built on the official
``mcp`` SDK (``pip install 'rag[mcp]'``).

Example:
    >>> from rag.serve.mcp_server import build_server
    >>> build_server("index/", collection="demo").run("stdio")     # or: rag mcp --index index/

    A client's configuration (Claude Desktop's ``mcpServers``)::

        {"rag": {"command": "rag", "args": ["mcp", "--index", "/home/me/index"]}}
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import anyio
from pydantic import Field

from rag.collections import Collections
from rag.errors import RagError
from rag.limits import MAX_PASSAGES, check_k, check_pages
from rag.serve.inert import inert
from rag.serve.logsafe import install
from rag.serve.public import public_message, public_records
from rag.serve.webguard import allowed_hosts

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

T = TypeVar("T")
log = logging.getLogger(__name__)

# The tools' arguments, described in the JSON schema the client shows its model (and validated
# by the SDK against it before a tool runs). The bounds of ``k`` are only shown there: the tools check
# them with ``check_k``, so a wrong ``k`` is told in rag's one line, as on every other surface.
Question = Annotated[str, Field(min_length=1, description="The question or search words, in plain language.")]
Passages = Annotated[int, Field(json_schema_extra={"minimum": 1, "maximum": MAX_PASSAGES},
                                description=f"How many passages to read or return (1-{MAX_PASSAGES}).")]
Collection = Annotated[str | None, Field(description="Which document collection (see list_collections); "
                                                     "null or empty for the server's default one.")]
Sources = Annotated[list[str] | None, Field(description="Only read these documents: file names or paths, see "
                                                        "list_documents; null for all.")]
PageRange = Annotated[list[int] | None, Field(min_length=2, max_length=2, description="Only read this page range, "
                                                                                   "[first, last], from 1; null for all.")]

INSTRUCTIONS = (
    "Search and question the user's own indexed documents. Prefer `ask` for a direct question: its "
    "answer cites verbatim quotes as [n], each with file and page. Use `search` to read passages, "
    "`list_documents` to see what is indexed and `list_collections` for the separate document sets."
)


def _require_mcp() -> type[MCPServer]:
    try:
        # the MCP SDK loads only for `rag mcp`
        from mcp.server.mcpserver import MCPServer
    except ImportError:
        # mcp 1.x has FastMCP instead, with another run() signature: ask for the SDK we test with.
        raise RagError("the MCP server needs the official MCP SDK 2.x: pip install 'rag[mcp]' "
                       "(or: pip install 'mcp>=2')") from None
    return MCPServer


def _tool(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` with our errors turned into the SDK's ``ToolError``: the client then reads our message
    (the SDK hides the text of any other exception, as it would a crash's)."""
    # the MCP SDK loads only for `rag mcp`
    from mcp.server.mcpserver.exceptions import ToolError

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except RagError as exc:
            raise ToolError(public_message(str(exc))) from exc

    return call


def _async_tool(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """``_tool`` for a coroutine function."""
    # the MCP SDK loads only for `rag mcp`
    from mcp.server.mcpserver.exceptions import ToolError

    @functools.wraps(fn)
    async def call(*args: Any, **kwargs: Any) -> T:
        try:
            return await fn(*args, **kwargs)
        except RagError as exc:
            raise ToolError(public_message(str(exc))) from exc

    return call


async def until_cancelled(work: Callable[[Callable[[], bool]], T]) -> T:
    """``work(stop)`` in a worker thread; ``stop()`` turns true when the client cancels the call.

    A client that gives up on a tool call (its timeout, its user's Stop) sends
    ``notifications/cancelled``; the SDK then cancels the tool's await. The thread cannot be
    cancelled, so it is left to end by itself and told to stop: ``Index.ask`` ends at its next
    stage (``rag.cancel``), before any LLM request not yet sent.
    """
    left = threading.Event()
    try:
        return await anyio.to_thread.run_sync(lambda: work(left.is_set), abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        left.set()
        log.info("an MCP tool call was cancelled by its client: its answer stops at its next stage")
        raise


def reply(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer as a tool returns it: without the question the client sent (the SDK's whole
    message is at most 1 MB, and ``to_dict`` holds the question twice, as ``question`` and ``query``),
    with ``query`` only when the follow-up resolver searched something else.

    Example:
        >>> reply({"question": "q", "query": "q", "answer": "a"})
        {'answer': 'a'}
    """
    question = answer.pop("question", None)
    if answer.get("query") == question:
        answer.pop("query", None)
    return answer


def build_server(folder: str | Path, collection: str | None = None) -> MCPServer:
    """An MCP server whose tools search and question the collections of the index folder ``folder``.

    Args:
        folder: the index folder (as ``--index``).
        collection: the collection the tools use when a call names none (default: the folder's own).

    Example:
        >>> server = build_server("index/")
        >>> server.run("stdio")
    """
    library = Collections(folder, default=collection)
    server = _require_mcp()("rag", instructions=INSTRUCTIONS, log_level="WARNING")
    # the MCP SDK loads only for `rag mcp`
    from mcp.types import ToolAnnotations

    # Every tool only reads: a client may call them without asking the user first.
    reads = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)

    @server.tool(annotations=reads)
    @_tool
    def search(question: Question, k: Passages = 5, collection: Collection = None) -> list[dict[str, Any]]:
        """The passages of the documents that best match a question, best first.

        Each passage has its file (source, name), page, character offsets, text, score and `quote`:
        its sentence that best matches the question, verbatim.
        """
        k = check_k(k, MAX_PASSAGES)
        index = library.get(collection)
        return public_records([inert_hit(hit.to_dict()) for hit in index.search(question, k)], index)

    @server.tool(annotations=reads)
    @_async_tool
    async def ask(question: Question, k: Passages = 5, collection: Collection = None, sources: Sources = None,
                  pages: PageRange = None) -> dict[str, Any]:
        """Answer a question from the documents, with verbatim quotes checked against their pages.

        Returns `answer` (text citing its quotes as [1], [2]...), `found` (false when the
        documents do not hold the answer), `citations` ([{n, text, source, name, page, start,
        end}]), the passages read (`hits`) and `query` when what was searched differs from the question.
        `sources` and `pages` ask one document, or a page range, alone.
        """
        k, span = check_k(k, MAX_PASSAGES), check_pages(pages)

        def answer(stop: Callable[[], bool]) -> dict[str, Any]:
            index = library.get(collection)
            answer = inert_answer(reply(index.ask(question, k, sources=sources or None, pages=span,
                                                  stop=stop).to_dict()))
            return {**answer, "citations": public_records(answer["citations"], index),
                    "hits": public_records(answer["hits"], index)}

        return await until_cancelled(answer)

    @server.tool(annotations=reads)
    @_tool
    def list_documents(collection: Collection = None) -> list[dict[str, Any]]:
        """The indexed documents of a collection: source path, name, pages (with `unit`: what a page is for its
        file type, e.g. "slide"), chunks and size in bytes."""
        index = library.get(collection)
        return public_records([d.to_dict() for d in index.documents()], index)

    @server.tool(annotations=reads)
    @_tool
    def list_collections() -> list[str]:
        """The names of the separate document collections of this index (\"default\" is the folder's own)."""
        return library.names()

    return server


def inert_hit(hit: dict[str, Any]) -> dict[str, Any]:
    """A hit's passage text made inert for clients that render Markdown (``rag.serve.inert``); its
    ``quote`` stays verbatim, as citations do."""
    return {**hit, **{key: inert(hit[key]) for key in ("text", "context") if isinstance(hit.get(key), str)}}


def inert_answer(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer's text and passages made inert; its ``citations`` stay verbatim."""
    return {**answer, "answer": inert(answer["answer"]), "hits": [inert_hit(h) for h in answer.get("hits", ())]}


def serve(folder: str | Path, collection: str | None = None, *, http: bool = False,
          host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve the tools until the client goes away (stdio) or until interrupted (HTTP on ``/mcp``).

    Example:
        >>> serve("index/", http=True, port=8765)     # clients connect to http://127.0.0.1:8765/mcp
    """
    install()   # control characters from requests are escaped in every log line
    server = build_server(folder, collection)
    if http:
        server.run("streamable-http", host=host, port=port, transport_security=transport_security(host, port))
    else:
        server.run("stdio")


def transport_security(bind: str, port: int = 8765) -> Any:  # noqa: ANN401 - mcp's TransportSecuritySettings
    """The SDK's DNS-rebinding guard with the host names the web page answers to (``rag.serve.webguard``).

    The SDK guards a loopback bind by itself, and nothing else: bound to a LAN address, any web
    page the user visits could otherwise reach the tools through a name that resolves to it.
    Origins must be those names on this server's ``port``: a page of another local program
    (``http://localhost:9999``) is another site.
    """
    # the MCP SDK loads only for `rag mcp`
    from mcp.server.transport_security import TransportSecuritySettings

    names = sorted(f"[{name}]" if ":" in name else name for name in allowed_hosts(bind))
    return TransportSecuritySettings(enable_dns_rebinding_protection=True,
                                     allowed_hosts=[f"{name}:*" for name in names] + names,
                                     allowed_origins=[f"{scheme}://{name}:{port}" for name in names
                                                      for scheme in ("http", "https")])
