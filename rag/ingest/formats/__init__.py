"""The file formats besides PDF and plain text, one small module each; ``rag.file_types`` names
the reader of each suffix, and ``rag.ingest.reading`` is the contract every reader keeps."""
