"""rag: ask questions of your own documents and get answers backed by verbatim, checked quotes.

Example:
    >>> from rag import Index
    >>> index = Index.build(["docs/"], "index/")
    >>> hit = index.search("How do I add documents?", k=1)[0]
    >>> print(hit.name, hit.page, hit.quote.text)
"""

from rag.errors import (
    AnswerCancelled,
    ChatRequestError,
    ClientGone,
    CollectionError,
    CorpusMissingError,
    EmbeddingModelError,
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexNotFoundError,
    LLMError,
    LoadError,
    MilvusStoreError,
    OptionError,
    PageViewError,
    PortInUseError,
    QueryError,
    QuestionTooLongError,
    RagError,
    ReaderModelError,
    SettingsError,
    SlotsBusy,
)
from rag.index import Index
from rag.settings import Settings
from rag.types import (
    ANSWER_KINDS,
    Answer,
    AnswerKind,
    Chunk,
    Document,
    Hit,
    IngestReport,
    LoadFailure,
    Operand,
    Page,
    Quote,
    TextBox,
    Working,
)

__all__ = [
    "ANSWER_KINDS",
    "Answer",
    "AnswerCancelled",
    "AnswerKind",
    "ChatRequestError",
    "Chunk",
    "ClientGone",
    "CollectionError",
    "CorpusMissingError",
    "Document",
    "EmbeddingModelError",
    "Hit",
    "Index",
    "IndexCorruptError",
    "IndexLockedError",
    "IndexMismatchError",
    "IndexNotFoundError",
    "IngestReport",
    "LLMError",
    "LoadError",
    "LoadFailure",
    "MilvusStoreError",
    "Operand",
    "OptionError",
    "Page",
    "PageViewError",
    "PortInUseError",
    "QueryError",
    "QuestionTooLongError",
    "Quote",
    "RagError",
    "ReaderModelError",
    "Settings",
    "SettingsError",
    "SlotsBusy",
    "TextBox",
    "Working",
]
__version__ = "0.1.0"
