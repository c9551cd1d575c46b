"""Adapters that let other frameworks use an ``Index``; each needs its own optional extra.

- ``rag.integrations.langchain.RagRetriever``: a LangChain ``BaseRetriever`` (``pip install 'rag[langchain]'``).
- ``rag.integrations.llama_index.RagRetriever``: a LlamaIndex retriever (``pip install 'rag[llamaindex]'``).

Nothing here is imported by ``rag`` itself, so neither framework is needed to use the library.
"""
