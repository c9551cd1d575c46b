"""Quality studies: retrieval, fusion, answers, tables, conversations, against reference data."""
