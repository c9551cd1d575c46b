"""The library's own errors, every one of them. The CLI, the web page, the ``/v1`` API and MCP translate them
into one clear line each.

Example:
    >>> from rag import Index, QueryError
    >>> try:
    ...     Index.open("index/").search("fees", k=0)
    ... except QueryError as exc:
    ...     print(exc)
    k must be a whole number of at least 1, not 0
"""

from __future__ import annotations


class RagError(Exception):
    """Base of every error this library raises on purpose."""


class LoadError(RagError):
    """A file could not be read into pages. The message names the file and the reason."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class IndexNotFoundError(RagError):
    """There is no index in the folder that was named."""


class IndexMismatchError(RagError):
    """The index on disk was built with other settings than the ones asked for."""


class IndexCorruptError(RagError):
    """A file of the index is damaged or missing; the message says which and how to rebuild."""


class IndexLockedError(RagError):
    """Another process is writing this index."""


class QueryError(RagError, ValueError):
    """A search or question that cannot be run as asked: not text, ``k`` out of range, an unknown argument."""


class SettingsError(RagError):
    """A setting has a value that cannot work; raised when the settings are made."""


class EmbeddingModelError(RagError):
    """The packaged embedding model (or the int8 ONNX one) is not installed or cannot load."""


class ReaderModelError(RagError):
    """The shipped reading model is missing, damaged (checksum) or cannot load."""


class LLMError(RagError):
    """The configured LLM endpoint failed or answered something unusable."""


class PageViewError(RagError):
    """A page image or quote boxes were asked of a source or page that the index cannot show."""


class QuestionTooLongError(RagError):
    """A question longer than ``rag.limits.MAX_QUESTION_CHARS``; the message says the limit."""


class CollectionError(RagError):
    """A collection name that cannot be a folder name, or a collection that does not exist."""


class MilvusStoreError(RagError):
    """The Milvus server cannot be reached or refused a request; the message says which and why."""


class CorpusMissingError(RagError):
    """A question set names documents that are not on this machine (e.g. ``../shared`` is absent)."""


class PortInUseError(RagError):
    """The port asked for is taken; the message names the options that choose another."""


class SlotsBusy(RagError):
    """Every reader slot of the API is taken and the queue is full: retry in a moment (HTTP 503)."""


class ClientGone(RagError):
    """The client disconnected before its question was answered."""


class OptionError(RagError):
    """A chat request option rag cannot honour or that is malformed; ``param`` names it, as OpenAI's errors do."""

    def __init__(self, message: str, param: str, code: str = "unsupported_parameter") -> None:
        super().__init__(message)
        self.param = param
        self.code = code


class ChatRequestError(RagError):
    """A chat request that cannot be answered as sent; its message says what to change."""

    def __init__(self, message: str, status: int = 400, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class AnswerCancelled(RagError):
    """The caller no longer wanted the answer (``Index.ask``'s ``stop`` said so): it stopped between two stages."""
