"""PDF text extractors (pypdf, PDFium) and OCR engines (RapidOCR, Tesseract), measured.

Extractors, on three things:

- **character error rate** on pypdf's expected-text files (``../shared/data/pdfs-pypdf/``: the
  files whose expected text is in reading order), whitespace runs folded to one space and
  NFKC-normalised on both sides (a ligature "ﬁ" counts as "fi");
- **broken words** in the FinanceBench filings (``../shared/data/financebench/pdfs``): a word
  split apart ("me mbership": two neighbouring tokens, one or both not words, that join into a
  word) or run together ("reasonableassurance": a non-word of 8+ letters that splits into two
  words of 3+ letters), per 1,000 tokens. "Word" means in a dictionary made from neither
  extractor: the lowercase words seen 3+ times in the SQuAD 1.1 training articles
  (``../shared/data/train``), plus each filing's words that both extractors read alike (names);
  and the **evidence recall**: the share of the annotators' evidence words (copied from a
  viewer) found on the evidence page;
- **speed**: pages per second over the same filings (OCR off), in this process, one after the other.

OCR engines (``--ocr``): pages whose text is known are rendered by PDFium, OCR'd, and compared
with the text layer (CER as above, and the share of the words recovered, which does not mind
reading order), with seconds per page.

Usage:
    .venv/bin/python -m bench.studies.pdf_extract [--files 17] [--ocr] [--ocr-pages 6]
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import sys
import time
import unicodedata
from pathlib import Path

from bench.common import CACHE, SHARED, header, write


from rag.ingest.pdf import OcrOptions, read_pdf

EXPECTED = [("crazyones.pdf", "crazyones.txt"), ("toy.pdf", "toy.layout.txt"),
            ("pdflatex-forms.pdf", "010-pdflatex-forms.txt")]
_WORD = re.compile(r"[A-Za-z]+")


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).split())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, a row at a time in numpy: within a row, insertions are a running
    minimum, ``row[j] = j + min(x[k] - k for k <= j)``."""
    import numpy as np

    if not b:
        return len(a)
    bs = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    steps = np.arange(len(b) + 1)
    previous = steps.copy()
    for i, ca in enumerate(a.encode("utf-32-le")[k:k + 4] for k in range(0, 4 * len(a), 4)):
        code = int.from_bytes(ca, "little")
        x = np.empty(len(b) + 1, dtype=np.int64)
        x[0] = i + 1
        x[1:] = np.minimum(previous[1:] + 1, previous[:-1] + (bs != code))
        previous = np.minimum.accumulate(x - steps) + steps
    return int(previous[-1])


def cer(truth: str, got: str) -> float:
    truth, got = normalise(truth), normalise(got)
    return edit_distance(truth, got) / max(1, len(truth))


def dictionary() -> set[str]:
    data = json.load(gzip.open(SHARED / "train" / "squad1.1-train.json.gz"))
    counts: collections.Counter[str] = collections.Counter()
    for article in data["data"]:
        for paragraph in article["paragraphs"]:
            counts.update(w.lower() for w in _WORD.findall(paragraph["context"]))
    return {w for w, n in counts.items() if n >= 3 and (len(w) > 1 or w in ("a", "i"))}


def broken_words(text: str, words: set[str]) -> tuple[int, int, int]:
    """(tokens, split apart, run together) of one text."""
    tokens = [t.lower() for t in _WORD.findall(text)]
    split = sum(1 for a, b in zip(tokens, tokens[1:])
                if (a not in words or b not in words) and len(a + b) >= 5 and (a + b) in words)
    joined = 0
    for t in tokens:
        if len(t) >= 8 and t not in words and any(t[:k] in words and t[k:] in words for k in range(3, len(t) - 2)):
            joined += 1
    return len(tokens), split, joined


def evidence_recall(text: str, evidence: str) -> float:
    have = collections.Counter(w.lower() for w in _WORD.findall(normalise(text)))
    want = [w.lower() for w in _WORD.findall(normalise(evidence))]
    hits = 0
    for w in want:
        if have[w] > 0:
            have[w] -= 1
            hits += 1
    return hits / max(1, len(want))


def extractors(args: argparse.Namespace) -> list[str]:
    lines = ["## Character error rate on pypdf's expected-text files", "",
             "| file | characters | pypdf CER | pdfium CER |", "| --- | ---: | ---: | ---: |"]
    folder = SHARED / "pdfs-pypdf"
    totals = {"pypdf": [0, 0], "pdfium": [0, 0]}
    for pdf, txt in EXPECTED:
        truth = (folder / txt).read_text(encoding="utf-8")
        row = [pdf, str(len(normalise(truth)))]
        for name in ("pypdf", "pdfium"):
            got = "\n".join(p.text for p in read_pdf(folder / pdf, extractor=name, ocr=OcrOptions(False)).pages)
            errors = edit_distance(normalise(truth), normalise(got))
            totals[name][0] += errors
            totals[name][1] += len(normalise(truth))
            row.append(f"{errors / max(1, len(normalise(truth))):.2%}")
        lines.append("| " + " | ".join(row) + " |")
    lines.append(f"| **all** | {totals['pypdf'][1]} | **{totals['pypdf'][0] / totals['pypdf'][1]:.2%}** | "
                 f"**{totals['pdfium'][0] / totals['pdfium'][1]:.2%}** |")
    words = dictionary()
    # Fewer than all: the smallest filings (a quick check), in the same order.
    files = sorted(sorted((SHARED / "financebench" / "pdfs").glob("*.pdf"), key=lambda p: p.stat().st_size)[:args.files])
    questions = [json.loads(line) for line in
                 (SHARED / "financebench" / "questions.jsonl").read_text().splitlines() if line]
    stats = {name: {"pages": 0, "seconds": 0.0, "tokens": 0, "split": 0, "joined": 0, "recall": []}
             for name in ("pypdf", "pdfium")}
    for path in files:
        texts = {}
        for name in ("pypdf", "pdfium"):
            t0 = time.perf_counter()
            pages = read_pdf(path, extractor=name, ocr=OcrOptions(False)).pages
            stats[name]["seconds"] += time.perf_counter() - t0
            stats[name]["pages"] += len(pages)
            texts[name] = [p.text for p in pages]
        # The filing's own names and terms: words both extractors read alike, not in SQuAD.
        common = ({w.lower() for t in texts["pypdf"] for w in _WORD.findall(t)}
                  & {w.lower() for t in texts["pdfium"] for w in _WORD.findall(t)})
        known = words | common
        for name in ("pypdf", "pdfium"):
            n, split, joined = broken_words("\n".join(texts[name]), known)
            stats[name]["tokens"] += n
            stats[name]["split"] += split
            stats[name]["joined"] += joined
        for q in questions:
            for ev in q["evidence"]:
                if ev["doc_name"] == path.stem:
                    page = int(ev["evidence_page_num"])
                    for name in ("pypdf", "pdfium"):
                        if page < len(texts[name]):
                            stats[name]["recall"].append(evidence_recall(texts[name][page], ev["evidence_text"]))
    lines += ["", f"## Broken words and speed on {len(files)} FinanceBench filings "
              f"({stats['pypdf']['pages']} pages)", "",
              "| extractor | tokens | split apart /1k | run together /1k | broken words /1k | evidence recall "
              "| pages/s |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name in ("pypdf", "pdfium"):
        s = stats[name]
        k = 1000 / max(1, s["tokens"])
        recall = sum(s["recall"]) / max(1, len(s["recall"]))
        lines.append(f"| {name} | {s['tokens']} | {s['split'] * k:.2f} | {s['joined'] * k:.2f} | "
                     f"**{(s['split'] + s['joined']) * k:.2f}** | {recall:.1%} ({len(s['recall'])} pages) | "
                     f"**{s['pages'] / s['seconds']:.1f}** |")
    lines += ["", "pdfium's pages/s include pypdf opening each file and walking its page tree (every guard "
              "reads pypdf's view of the file), and pypdf re-reading the pages PDFium finds empty."]
    return lines


def seed_pdf(path: Path) -> Path:
    """The seed article as a two-page text PDF (fpdf2, as the tests write PDFs)."""
    from fpdf import FPDF

    text = (SHARED.parent / "seeds" / "000_17d6ea71f6fbed30.txt").read_text(encoding="utf-8")
    for a, b in (("\u2019", "'"), ("\u2018", "'"), ("\u201c", '"'), ("\u201d", '"'), ("\u2013", "-")):
        text = text.replace(a, b)
    text = text.encode("latin-1", "replace").decode("latin-1")
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    half = len(paragraphs) // 2
    pdf = FPDF()
    for part in (paragraphs[:half], paragraphs[half:]):
        pdf.add_page()
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, "\n\n".join(part))
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(path))
    return path


def ocr_engines(args: argparse.Namespace) -> list[str]:
    from rag.ingest import ocr

    pages: list[tuple[Path, int, str]] = []
    seed = seed_pdf(CACHE / "seed-text.pdf")
    for path, number in [(SHARED / "pdfs-pypdf" / "crazyones.pdf", 1), (seed, 1), (seed, 2)]:
        pages.append((path, number, read_pdf(path, ocr=OcrOptions(False)).pages[number - 1].text))
    for path, number in [(SHARED / "financebench" / "pdfs" / "AMCOR_2023Q4_EARNINGS.pdf", 1),
                         (SHARED / "financebench" / "pdfs" / "PEPSICO_2023Q1_EARNINGS.pdf", 1),
                         (SHARED / "financebench" / "pdfs" / "3M_2018_10K.pdf", 10)]:
        if path.exists():
            pages.append((path, number, read_pdf(path, ocr=OcrOptions(False)).pages[number - 1].text))
    pages = pages[: args.ocr_pages]
    configs = [("rapidocr", 1.5), ("rapidocr", 2.0), ("rapidocr", 3.0), ("tesseract", 2.0), ("tesseract", 4.0)]
    lines = ["## OCR engines on rendered pages of known text", "",
             f"{len(pages)} pages: {', '.join(f'{p.name} p.{n}' for p, n, _ in pages)}; the reference is the "
             "page's text layer (PDFium). Word recall ignores reading order (tables, columns).", "",
             "| engine | scale (dpi) | CER | word recall | s/page |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, scale in configs:
        try:
            engine = ocr.engine(name)
        except Exception as exc:  # noqa: BLE001 - an engine that is not installed is reported, not fatal
            lines.append(f"| {name} | {scale:g} ({72 * scale:.0f}) | not installed ({exc}) | | |")
            continue
        engine.read(ocr.render(pages[0][0], pages[0][1], 1.0))  # warm-up: model load
        errors = chars = 0
        recalls = []
        seconds = 0.0
        for path, number, truth in pages:
            t0 = time.perf_counter()
            text, _ = ocr.read_page(engine, path, number, scale)
            seconds += time.perf_counter() - t0
            errors += edit_distance(normalise(truth), normalise(text))
            chars += len(normalise(truth))
            recalls.append(evidence_recall(text, truth))
        lines.append(f"| {name} | {scale:g} ({72 * scale:.0f}) | {errors / chars:.2%} | "
                     f"{sum(recalls) / len(recalls):.1%} | {seconds / len(pages):.2f} |")
        print(lines[-1], file=sys.stderr)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=17, help="FinanceBench filings to read (fewer than 17: the smallest)")
    parser.add_argument("--ocr", action="store_true", help="also compare the OCR engines")
    parser.add_argument("--ocr-pages", type=int, default=6)
    args = parser.parse_args(argv)
    argv = sys.argv[1:] if argv is None else argv
    if not (SHARED / "pdfs-pypdf").exists():
        print(f"missing data: {SHARED}", file=sys.stderr)
        return 2
    body = extractors(args)
    if args.ocr:
        body += [""] + ocr_engines(args)
    lines = header("PDF text extractors and OCR engines", argv, __spec__.name,
                   ["extractors: `rag.ingest.pdf.read_pdf(extractor=...)` with OCR off; dictionary for broken words: "
                    "SQuAD 1.1 train words seen 3+ times, plus each filing's words both extractors read",
                    "what the figures decided is written in rag/ingest/pdf.py (the extractor) and rag/ingest/ocr.py (the OCR "
                    "engine and scale); the machine is shared (see the load), so compare figures within a table"]) + body
    write("pdf_extract", lines)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
