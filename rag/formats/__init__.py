"""The file formats the index reads, one small module each, found by suffix in ``registry``.

Example:
    >>> from rag.formats import format_for
    >>> format_for("deck.pptx").unit
    'slide'
"""

from .registry import (
    FORMATS,
    FileRead,
    Format,
    ReadContext,
    format_for,
    has_page_images,
    page_label,
    page_word,
    skipped_summary,
    stored_as_markdown,
    supported_suffixes,
)

__all__ = ["FORMATS", "FileRead", "Format", "ReadContext", "format_for", "has_page_images", "page_label",
           "page_word", "skipped_summary", "stored_as_markdown",
           "supported_suffixes"]
