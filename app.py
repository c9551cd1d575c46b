"""The web chat: ``python app.py`` serves index/ (filled from docs/ when empty) on http://127.0.0.1:7860.

The same server as ``rag serve``: the page, and the OpenAI-compatible API under /v1. Settings come
from the environment: RAG_INDEX, RAG_HOST, RAG_PORT, RAG_CORPUS (folders to index first, separated
by ':'), RAG_COLLECTION, RAG_API_KEY and every RAG_* setting of ``rag.Settings``.
"""

import os

from rag.serve.server import serve

if __name__ == "__main__":
    corpus = os.environ.get("RAG_CORPUS")
    serve(os.environ.get("RAG_INDEX", "index"), os.environ.get("RAG_HOST", "127.0.0.1"),
          int(os.environ.get("RAG_PORT", "7860")), corpus.split(os.pathsep) if corpus else None,
          collection=os.environ.get("RAG_COLLECTION") or None, api_key=os.environ.get("RAG_API_KEY") or None)
