"""The JSON that the page's API endpoints serve to ``gradio_client``: ``/ask`` and ``/search``.

They are not ``Answer.to_dict`` and ``Hit.to_dict`` (what the CLI and the MCP tools print): files
by name alone (``file``, no path), scores rounded, an answer's passages as ``passages``, and its
left-out sentences (``unsupported``) included.

Example:
    >>> from gradio_client import Client
    >>> Client("http://127.0.0.1:7860/").predict("Who called for UN visits?", api_name="/ask")["citations"]
"""

from __future__ import annotations

from typing import Any

from .types import Answer, Hit


def answer_payload(answer: Answer) -> dict[str, Any]:
    """The JSON form of an answer served by the ``/ask`` endpoint.

    Example:
        >>> payload = answer_payload(index.ask("Who called for UN visits?"))
        >>> payload["found"], payload["citations"][0]["file"], payload["citations"][0]["page"]
    """
    return {
        "question": answer.question,
        "query": answer.query or answer.question,
        "answer": answer.text,
        "found": answer.found,
        "span": answer.span,
        "mode": answer.mode,
        "confidence": round(float(answer.confidence), 4),
        "notes": list(answer.notes),
        "unsupported": list(answer.unsupported),
        "citations": [{"n": n, "text": q.text, "file": q.name, "page": q.page, "start": q.start, "end": q.end}
                      for n, q in enumerate(answer.citations, start=1)],
        "passages": [hit_payload(hit) for hit in answer.hits],
    }


def hit_payload(hit: Hit) -> dict[str, Any]:
    """The JSON form of a passage served by the ``/search`` endpoint and in an answer's ``passages``.

    Example:
        >>> hit_payload(index.search("Who called for UN visits?", k=1)[0])["file"]
    """
    return {"rank": hit.rank, "file": hit.name, "page": hit.page, "start": hit.chunk.start, "end": hit.chunk.end,
            "score": round(float(hit.score), 4), "text": hit.chunk.text, "quote": hit.quote.text}

