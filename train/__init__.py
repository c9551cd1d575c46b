"""The scripts that fit rag's shipped models (``rag/models``), each with its model card: the reader
(``python -m train.reader``) and the sentence chooser (``train/sentence_choice.py``)."""
