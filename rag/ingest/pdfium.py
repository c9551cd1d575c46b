"""The one way into PDFium (pypdfium2): its import, and the lock every call holds.

PDFium is not thread-safe, not even across documents: the loader (text layer, OCR renders) and
the web page (page images, character boxes) run in different threads of one process, so every
call into it, in any module, holds ``LOCK``. It is held per page, so reading a long file never
stalls a page image for long.
"""

from __future__ import annotations

import threading
from typing import Any

from rag.errors import RagError

LOCK = threading.RLock()


def load() -> Any:  # noqa: ANN401 - the pypdfium2 module
    """The pypdfium2 module, or an error naming the package to install."""
    try:
        # PDFium loads with the first PDF
        import pypdfium2
    except ImportError:
        raise RagError("reading PDF pages with PDFium needs the 'pypdfium2' package (pip install pypdfium2)") from None
    return pypdfium2


MAX_RENDER_PIXELS = 8_000_000
"""Most pixels one rendered page may have (a Letter page at scale 4 has 7.8 million): a page's
MediaBox says its size, and a 621-byte PDF can say 14,400 points square, which at scale 1.5
asked PDFium for a 21,600-pixel square bitmap (1.4 GB; the server's peak went to 3.85 GB)."""


def capped_scale(page: Any, scale: float, max_pixels: int = MAX_RENDER_PIXELS) -> float:  # noqa: ANN401
    """``scale``, lowered so that ``page`` (a pypdfium2 page) renders within ``max_pixels``.

    Example:
        >>> # capped_scale(doc[0], 1.5)   # 1.5 for a Letter page; 0.196 for a 14,400 pt square one
    """
    width, height = page.get_size()
    area = max(float(width), 1.0) * max(float(height), 1.0)
    if area * scale * scale <= max_pixels:
        return scale
    return 0.99 * (max_pixels / area) ** 0.5   # PDFium rounds each side up
