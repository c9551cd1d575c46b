"""The other formats (rag.ingest.formats): reading speed against the format's own library, peak memory
on a large spreadsheet and a large deck, and the delay of a watched folder from save to searchable.

Speed: each format's sample file is made here with its own library (python-docx, python-pptx,
openpyxl, csv, zipfile, email/mailbox), then read in alternating rounds (a) by the library alone,
doing the least that yields all the text (``docx.Document`` + every paragraph's and cell's text;
``pptx.Presentation`` + every shape's text and the notes; openpyxl read-only ``iter_rows``; a
``csv.reader`` over the decoded text; every spine chapter's HTML through ``html_to_text``; every
message parsed, its four headers and its body taken) and (b) by ``rag.ingest.load.read_file``; medians. Overhead = (b) /
(a) - 1. Then ``Index.build`` over all of them (model already loaded) gives the ingest rate.

Memory: ``read_file`` of a 100,000-row spreadsheet and of a 500-slide deck, each in a fresh child
process that reports its peak resident memory (VmHWM) before and after the read.

Watch: an index watching a folder (``Index.watch``); a new Markdown file holding a fresh sentence
is saved, and the time until ``Index.search`` returns it is measured, ``--saves`` times.

Usage:
    .venv/bin/python -m bench.perf.ingest_formats                 # all three, 3 rounds, 5 saves
    .venv/bin/python -m bench.perf.ingest_formats --rounds 1 --saves 2 --rows 20000   # quick check

Results: ``bench/results/perf_ingest_formats.md``.
"""

from __future__ import annotations

import argparse
import csv
import email
import email.policy
import io
import json
import mailbox
import sys
import tempfile
import time
import zipfile
from email.message import EmailMessage
from pathlib import Path

from bench.common import Timer, header, median, run_code, write

from rag import Index, Settings
from rag.embed import load_embedder
from rag.ingest.load import decode_text, html_to_text, read_file

WORDS = ("harbour ferry salt ledger cargo tide lantern captain manifest customs berth quay anchor crane "
         "timetable invoice warehouse pilot dock rope").split()


def sentence(n: int) -> str:
    return " ".join(WORDS[(n * 7 + k * 3) % len(WORDS)] for k in range(12)).capitalize() + f" number {n}."


# --------------------------------------------------------------------------------------------
# Sample files, made with the formats' own libraries


def make_docx(path: Path, sections: int = 60) -> Path:
    import docx

    document = docx.Document()
    for s in range(sections):
        document.add_heading(f"Section {s}", level=1)
        for p in range(8):
            document.add_paragraph(sentence(s * 10 + p))
        table = document.add_table(rows=6, cols=4)
        for r, row in enumerate(table.rows):
            for c, cell in enumerate(row.cells):
                cell.text = f"r{r}c{c} {WORDS[(r + c + s) % len(WORDS)]}"
    document.save(str(path))
    return path


def make_pptx(path: Path, slides: int) -> Path:
    import pptx

    deck = pptx.Presentation()
    layout = deck.slide_layouts[1]
    for n in range(slides):
        slide = deck.slides.add_slide(layout)
        slide.shapes.title.text = f"Slide {n}: {WORDS[n % len(WORDS)]}"
        slide.placeholders[1].text_frame.text = sentence(n)
        for k in range(3):
            slide.placeholders[1].text_frame.add_paragraph().text = sentence(n + k + 1)
        slide.notes_slide.notes_text_frame.text = "Say: " + sentence(n + 99)
    deck.save(str(path))
    return path


def make_xlsx(path: Path, rows: int) -> Path:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Ledger")
    sheet.append(["Id", "Date", "Cargo", "Tonnes", "Port", "Note"])
    for n in range(rows):
        sheet.append([n, f"2024-{n % 12 + 1:02d}-{n % 28 + 1:02d}", WORDS[n % len(WORDS)], n * 0.5,
                      WORDS[(n * 3) % len(WORDS)], sentence(n)[:40]])
    book.save(str(path))
    return path


def make_csv(path: Path, rows: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["Id", "Cargo", "Tonnes", "Note"])
        for n in range(rows):
            writer.writerow([n, WORDS[n % len(WORDS)], n * 0.5, sentence(n)[:40]])
    return path


def make_epub(path: Path, chapters: int = 80) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr("META-INF/container.xml",
                   '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:'
                   'container"><rootfiles><rootfile full-path="content.opf"/></rootfiles></container>')
        items = "".join(f'<item id="c{n}" href="c{n}.xhtml" media-type="application/xhtml+xml"/>' for n in range(chapters))
        spine = "".join(f'<itemref idref="c{n}"/>' for n in range(chapters))
        z.writestr("content.opf", f'<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" '
                                  f'version="3.0"><manifest>{items}</manifest><spine>{spine}</spine></package>')
        for n in range(chapters):
            body = "".join(f"<p>{sentence(n * 40 + k)}</p>" for k in range(40))
            z.writestr(f"c{n}.xhtml", f'<html xmlns="http://www.w3.org/1999/xhtml"><body><h1>Chapter {n}</h1>'
                                      f'{body}</body></html>')
    return path


def make_mbox(path: Path, messages: int = 1000) -> Path:
    box = mailbox.mbox(str(path))
    for n in range(messages):
        message = EmailMessage()
        message["From"] = f"clerk{n % 9}@harbour.example"
        message["To"] = "office@harbour.example"
        message["Subject"] = f"Manifest {n}"
        message["Date"] = "Fri, 01 Mar 2024 10:00:00 +0000"
        message.set_content("\n\n".join(sentence(n * 5 + k) for k in range(5)))
        box.add(message)
    box.flush()
    box.close()
    return path


# --------------------------------------------------------------------------------------------
# Each library alone: the least that yields the text


def alone_docx(path: Path) -> int:
    import docx

    document = docx.Document(str(path))
    n = sum(len(p.text) for p in document.paragraphs)
    return n + sum(len(c.text) for t in document.tables for row in t.rows for c in row.cells)


def alone_pptx(path: Path) -> int:
    import pptx

    n = 0
    for slide in pptx.Presentation(str(path)).slides:
        n += sum(len(s.text_frame.text) for s in slide.shapes if s.has_text_frame)
        if slide.has_notes_slide:
            n += len(slide.notes_slide.notes_text_frame.text)
    return n


def alone_xlsx(path: Path) -> int:
    import openpyxl

    book = openpyxl.load_workbook(str(path), read_only=True, data_only=True)
    n = sum(len(str(v)) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True) for v in row
            if v is not None)
    book.close()
    return n


def alone_csv(path: Path) -> int:
    text = decode_text(str(path), path.read_bytes())
    return sum(len(c) for row in csv.reader(io.StringIO(text, newline="")) for c in row)


def alone_epub(path: Path) -> int:
    with zipfile.ZipFile(path) as z:
        return sum(len(html_to_text(z.read(name).decode("utf-8"))) for name in z.namelist() if name.endswith(".xhtml"))


def alone_mbox(path: Path) -> int:
    box = mailbox.mbox(str(path), create=False)
    n = 0
    for key in box.keys():
        message = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
        n += sum(len(str(message.get(name, ""))) for name in ("From", "To", "Date", "Subject"))
        body = message.get_body(preferencelist=("plain", "html"))
        n += len(body.get_content()) if body is not None else 0  # type: ignore[attr-defined]
    box.close()
    return n


def measure_speed(folder: Path, rounds: int, rows: int, share: float = 1.0) -> tuple[list[str], dict[str, Path]]:
    def size(n: int) -> int:
        return max(1, round(n * share))

    samples = {
        "docx": (make_docx(folder / "report.docx", size(60)), alone_docx, "python-docx"),
        "pptx": (make_pptx(folder / "deck.pptx", size(200)), alone_pptx, "python-pptx"),
        "xlsx": (make_xlsx(folder / "ledger.xlsx", rows), alone_xlsx, "openpyxl (read-only)"),
        "csv": (make_csv(folder / "ledger.csv", rows), alone_csv, "csv"),
        "epub": (make_epub(folder / "book.epub", size(80)), alone_epub, "zipfile + html_to_text"),
        "mbox": (make_mbox(folder / "inbox.mbox", size(1000)), alone_mbox, "mailbox + email"),
    }
    lines = ["## Reading: rag.ingest.load.read_file against the library alone", "",
             "| format | sample | library | library alone (s) | read_file (s) | overhead | pages | characters |",
             "|---|---|---|---|---|---|---|---|"]
    for name, (path, alone, library) in samples.items():
        ours: list[float] = []
        theirs: list[float] = []
        for r in range(rounds):
            order = (0, 1) if r % 2 == 0 else (1, 0)
            for side in order:
                with Timer() as t:
                    if side == 0:
                        alone(path)
                    else:
                        read = read_file(path)
                (theirs if side == 0 else ours).append(t.seconds)
        pages = read.pages
        size = f"{path.stat().st_size / 1e6:.1f} MB"
        lines.append(f"| {name} | {size} | {library} | {median(theirs):.3f} | {median(ours):.3f} | "
                     f"{median(ours) / median(theirs) - 1:+.0%} | {len(pages)} | {sum(len(p.text) for p in pages):,} |")
        print(lines[-1], file=sys.stderr)
    return lines, {name: path for name, (path, _, _) in samples.items()}


def measure_ingest(files: dict[str, Path], settings: Settings) -> list[str]:
    load_embedder(settings)  # loaded once, outside the timings
    lines = ["", "## Ingest: Index.build over each sample (model loaded, cold embedding cache)", "",
             "| format | seconds | chunks | read and cut (s) | embed (s) |", "|---|---|---|---|---|"]
    for name, path in files.items():
        with tempfile.TemporaryDirectory() as folder:
            index = Index.build([path], Path(folder) / "idx", settings=settings)
        report = index.last_report
        assert report is not None and not report.failed, report
        lines.append(f"| {name} | {report.seconds:.1f} | {report.chunks_total:,} | "
                     f"{report.extra.get('load_chunk', 0):.1f} | {report.extra.get('embed', 0):.1f} |")
        print(lines[-1], file=sys.stderr)
    return lines


_CHILD = """
import json, sys
from pathlib import Path
from rag.ingest.load import read_file
import docx, pptx, openpyxl  # imported before the baseline: the read is measured, not the imports
def hwm():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
before = hwm()
read = read_file(sys.argv[1])
print(json.dumps({"before": before, "after": hwm(), "pages": len(read.pages),
                  "chars": sum(len(p.text) for p in read.pages)}))
"""


def measure_memory(folder: Path, rows: int, slides: int) -> list[str]:
    lines = ["", "## Peak memory of read_file (fresh child process, libraries imported first)", "",
             "| file | size | peak before (MiB) | peak after (MiB) | added by the read (MiB) | pages | characters |",
             "|---|---|---|---|---|---|---|"]
    for label, path in ((f"{rows:,}-row spreadsheet (6 columns)", make_xlsx(folder / "big.xlsx", rows)),
                        (f"{slides}-slide deck with notes", make_pptx(folder / "big.pptx", slides))):
        out = run_code(_CHILD, str(path), capture_output=True, text=True, check=True)
        data = json.loads(out.stdout.strip().splitlines()[-1])
        lines.append(f"| {label} | {path.stat().st_size / 1e6:.1f} MB | {data['before']:.0f} | {data['after']:.0f} | "
                     f"{data['after'] - data['before']:.0f} | {data['pages']} | {data['chars']:,} |")
        print(lines[-1], file=sys.stderr)
    return lines


def measure_watch(folder: Path, saves: int, settings: Settings) -> list[str]:
    docs = folder / "watched"
    docs.mkdir()
    (docs / "start.md").write_text("# Start\n\nThe watched folder holds the harbour notes.\n", encoding="utf-8")
    index = Index.build([docs], folder / "watch-idx", settings=settings)
    delays = []
    with index.watch([docs]) as watcher:
        watcher.wait_for_update(1, timeout=120)
        for n in range(saves):
            marker = f"zebra{n}quokka"
            start = time.perf_counter()
            (docs / f"note{n}.md").write_text(f"# Note {n}\n\nThe pilot boat code word is {marker}.\n",
                                              encoding="utf-8")
            while not any(marker in h.text for h in index.search(f"pilot boat code word {marker}", k=3)):
                watcher.wait_for_update(watcher.updates + 1, timeout=60)
            delays.append(time.perf_counter() - start)
            print(f"save {n}: searchable after {delays[-1]:.2f} s", file=sys.stderr)
    return ["", "## Watch: from a file saved to it found by search", "",
            f"{saves} saves of a new Markdown file into a watched folder (quiet time {watcher.quiet} s, settle "
            f"{watcher.settle} s): median {median(delays):.2f} s, max {max(delays):.2f} s "
            f"({', '.join(f'{d:.2f}' for d in delays)})."]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the large spreadsheet (memory)")
    parser.add_argument("--slides", type=int, default=500, help="slides of the large deck (memory)")
    parser.add_argument("--speed-rows", type=int, default=5_000, help="rows of the spreadsheet and CSV timed")
    parser.add_argument("--saves", type=int, default=5)
    parser.add_argument("--share", type=float, default=1.0,
                        help="the timed Word, PowerPoint, EPUB and mail samples at this share of their size "
                             "(a quick check)")
    parser.add_argument("--backend", default="onnx-int8", choices=["onnx", "onnx-int8", "torch"])
    args = parser.parse_args(argv)
    settings = Settings(embed_backend=args.backend)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        speed, files = measure_speed(folder, args.rounds, args.speed_rows, args.share)
        ingest = measure_ingest(files, settings)
        memory = measure_memory(folder, args.rows, args.slides)
        watch = measure_watch(folder, args.saves, settings)
    lines = header("Other formats: reading, memory, watched folders", sys.argv[1:] if argv is None else argv,
                   __spec__.name, [f"embedding backend: {args.backend}; samples made by the script with each "
                                         "format's own library"])
    write("perf_ingest_formats", lines + speed + ingest + memory + watch)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
