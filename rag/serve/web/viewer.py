"""The viewer of a cited source: the page as an image with the quote's boxes where its file type
draws pages (``rag.file_types.has_page_images``), else the stored text with the quote marked."""

from __future__ import annotations

from rag.errors import RagError
from rag.file_types import has_page_images
from rag.index import Index
from rag.serve.render import render_viewer, viewer_error
from rag.types import Quote

PAGE_SCALE = 1.5
"""Page images are drawn at 108 pixels per inch (a Letter page is 918 x 1188): sharp at the viewer's
width, and a few hundred KB inside the page's HTML."""


def viewer_html(index: Index, quote: Quote) -> str:
    """The viewer of a cited source: a PDF page as an image with the quote's region highlighted,
    or the passage in its whole document with the quote marked.

    Example:
        >>> html_text = viewer_html(index, index.ask("Who called for UN visits?").citations[0])
    """
    try:
        text = index.page_text(quote.source, quote.page)
        if not has_page_images(quote.source):
            return render_viewer(quote, text)
        try:
            image = index.page_image(quote.source, quote.page, scale=PAGE_SCALE)
            boxes = index.quote_boxes(quote)
        except RagError as exc:
            # (a file changed or moved since it was indexed): its stored text can still be shown.
            return render_viewer(quote, text, note=f"The page image cannot be shown: {exc}")
        return render_viewer(quote, text, png=image.png, size=(image.width, image.height), boxes=boxes)
    except RagError as exc:
        return viewer_error(str(exc))
