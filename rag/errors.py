"""The library's own errors. The CLI and the web page translate them into one clear line each."""

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
