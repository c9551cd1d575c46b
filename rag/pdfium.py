"""The one way into PDFium (pypdfium2): its import, and the lock every call holds.

PDFium is not thread-safe, not even across documents: the loader (text layer, OCR renders) and
the web page (page images, character boxes) run in different threads of one process, so every
call into it, in any module, holds ``LOCK``. It is held per page, so reading a long file never
stalls a page image for long.
"""

from __future__ import annotations

import threading
from typing import Any

from .errors import RagError

LOCK = threading.RLock()


def load() -> Any:  # noqa: ANN401 - the pypdfium2 module
    """The pypdfium2 module, or an error naming the package to install."""
    try:
        import pypdfium2
    except ImportError:
        raise RagError("reading PDF pages with PDFium needs the 'pypdfium2' package (pip install pypdfium2)") from None
    return pypdfium2
