"""Speed and memory: ingest, queries, answers, scale, start-up, embedding backends, formats."""
