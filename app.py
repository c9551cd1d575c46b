"""The web chat: ``python app.py`` serves index/ (filled from docs/ when empty) on http://127.0.0.1:7860.

Settings come from the environment: RAG_INDEX, RAG_HOST, RAG_PORT, RAG_CORPUS (folders to index
first, separated by ':') and every RAG_* setting of ``rag.Settings``.
"""

import os

from rag.ui import serve

if __name__ == "__main__":
    corpus = os.environ.get("RAG_CORPUS")
    serve(index_folder=os.environ.get("RAG_INDEX", "index"), host=os.environ.get("RAG_HOST", "127.0.0.1"),
          port=int(os.environ.get("RAG_PORT", "7860")), corpus=corpus.split(os.pathsep) if corpus else None)
