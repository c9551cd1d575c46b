"""The loaders against real and hostile files: every file is read with its true page count or
refused with a reason a person understands, and nothing crashes, hangs or eats the memory.

Hostile PDFs are written by hand here (with ``bench.common.pdf_bytes``, which the fuzzing shares) so
that each defect is exactly the one named:
a truncated file, a broken cross-reference table, a page tree that loops, a decompression bomb.
"""

from __future__ import annotations

import codecs
import functools
import json
import os
import random
import re
import shutil
import subprocess
import sys
import textwrap
import unicodedata
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from conftest import shared_path, write_pdf

from bench.common import PDF_FONT as FONT
from bench.common import PDF_PAGE as _PAGE
from bench.common import pdf_bytes, text_pdf
from bench.common import pdf_stream as stream

from rag.embed import model_token_counter
from rag.errors import LoadError
from rag.ingest.chunk import Chunker
from rag.ingest.load import find_files, html_to_text, load_file
from rag.settings import Settings
from rag.text import count_tokens, split_sentences
from rag.types import Page

# --------------------------------------------------------------------------------------------
# Hand-made PDFs


def one_page_pdf(content: bytes, content_extra: bytes = b"", resources: bytes = b"",
                 more: Sequence[bytes] = ()) -> bytes:
    """One page whose content stream is ``content`` (object 5); ``more`` are objects 6.."""
    return pdf_bytes([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>", FONT,
                      _PAGE % (resources, 5), stream(content, content_extra), *more])


@functools.cache
def hostile_pdfs() -> dict[str, tuple[bytes, str | None]]:
    """name -> (bytes, None when the text must come back, else a word the refusal must contain)."""
    good = text_pdf(["Hello world page one", "Second page here"])
    sx = int(good[good.rindex(b"startxref") + 10:].split()[0])
    return {
        "truncated-10pc": (good[:len(good) // 10], "incomplete"),
        "truncated-50pc": (good[:len(good) // 2], "incomplete"),
        "truncated-90pc": (good[:len(good) * 9 // 10], "incomplete"),
        "no-eof-marker": (good[:good.rindex(b"%%EOF")], "incomplete"),
        "header-only": (b"%PDF-1.4\n", "incomplete"),
        # Broken cross-reference tables: pypdf rebuilds them by scanning the file.
        "xref-offsets-wrong": (re.sub(rb"\d{10} 00000 n", b"0000000001 00000 n", good), None),
        "startxref-wrong": (good.replace(b"startxref\n", b"startxref\n9"), None),
        "no-xref-table": (pdf_bytes([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
                                     FONT, _PAGE % (b"", 5), stream(b"BT /F1 12 Tf 72 720 Td (Hello world) Tj ET")],
                                    xref=False), None),
        "xref-prev-loop": (good.replace(b"/Root 1 0 R", b"/Root 1 0 R /Prev %d" % sx), None),
        "page-tree-loop": (pdf_bytes([b"<< /Type /Catalog /Pages 2 0 R >>",
                                      b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
                                      b"<< /Type /Page /Parent 2 0 R >>"]), "damaged"),
        "page-tree-not-array": (pdf_bytes([b"<< /Type /Catalog /Pages 2 0 R >>",
                                           b"<< /Type /Pages /Kids 2 0 R /Count 1 >>"]), "damaged"),
        "deep-array": (pdf_bytes([b"<< /Type /Catalog /Pages 2 0 R /X " + b"[" * 100_000 + b"]" * 100_000 + b" >>",
                                  b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                                  b"<< /Type /Page /Parent 2 0 R >>"]), "damaged"),
        "huge-page-count": (pdf_bytes([b"<< /Type /Catalog /Pages 2 0 R >>",
                                       b"<< /Type /Pages /Kids [3 0 R] /Count 999999999 >>",
                                       b"<< /Type /Page /Parent 2 0 R >>"]), "no extractable text"),
        # 300 MB of zeros in 300 kB: pypdf's decompression limit (75 MB) stops it.
        "flate-bomb": (one_page_pdf(zlib.compress(b"0" * 300_000_000, 9), b"/Filter /FlateDecode "),
                       "extraction failed"),
        "deep-graphics-nesting": (one_page_pdf(b"q " * 200_000 + b"BT /F1 12 Tf (deep) Tj ET " + b"Q " * 200_000),
                                  None),
        "form-draws-itself": (one_page_pdf(b"BT /F1 12 Tf (outer) Tj ET /X Do", resources=b"/XObject << /X 6 0 R >> ",
                                           more=[stream(b"BT /F1 12 Tf (inner) Tj ET /X Do",
                                                        b"/Type /XObject /Subtype /Form /BBox [0 0 9 9] /Resources "
                                                        b"<< /Font << /F1 3 0 R >> /XObject << /X 6 0 R >> >> ")]),
                              None),
        "length-is-its-own-object": (pdf_bytes([b"<< /Type /Catalog /Pages 2 0 R >>",
                                                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                                                b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>",
                                                b"<< /Length 4 0 R >>\nstream\nBT ET\nendstream"]),
                                     "no extractable text"),
        "junk-named-pdf": (bytes(random.Random(7).randbytes(20_000)), "not a PDF"),
        "text-named-pdf": (b"Just some notes, saved with the wrong extension.\n" * 20, "not a PDF"),
    }


@pytest.mark.parametrize("name", sorted(hostile_pdfs()))
def test_hostile_pdf_is_read_or_refused_with_a_reason(tmp_path: Path, name: str) -> None:
    data, refusal = hostile_pdfs()[name]
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(data)
    if refusal is None:
        pages = load_file(path)
        assert pages and any(word in " ".join(p.text for p in pages) for word in ("Hello", "deep", "outer"))
        return
    with pytest.raises(LoadError) as caught:
        load_file(path)
    assert caught.value.source == str(path)
    assert refusal in caught.value.reason


@pytest.mark.slow
def test_pdf_with_too_many_operators_is_refused_with_pypdfs_limit(tmp_path: Path) -> None:
    # 2 million text operators on one page: pypdf gives up at its token limit instead of
    # building an endless string; the reason says extraction failed, not "image-only".
    ops = b"BT /F1 12 Tf " + b"(a) Tj " * 2_000_000 + b"ET"
    path = tmp_path / "many-ops.pdf"
    path.write_bytes(one_page_pdf(zlib.compress(ops), b"/Filter /FlateDecode "))
    with pytest.raises(LoadError, match="extraction failed on 1 of 1 page"):
        load_file(path)


def test_one_bad_page_keeps_the_others_and_the_true_page_count(tmp_path: Path) -> None:
    good = b"BT /F1 12 Tf 72 720 Td (Readable page) Tj ET"
    bomb = zlib.compress(b"0" * 200_000_000, 9)
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [4 0 R 6 0 R] /Count 2 >>", FONT,
               _PAGE % (b"", 5), stream(good), _PAGE % (b"", 7), stream(bomb, b"/Filter /FlateDecode ")]
    path = tmp_path / "half.pdf"
    path.write_bytes(pdf_bytes(objects))
    pages = load_file(path)
    assert [p.page for p in pages] == [1, 2]
    assert "Readable page" in pages[0].text and pages[1].text == ""


@pytest.mark.parametrize(("extractor", "expected"), [("pypdf", "\ufffdB\ufffd\ufffd\U0001f600B"),
                                                   ("pdfium", "B\U0001f600B")])
def test_pdf_mapping_glyphs_to_utf16_halves_gives_clean_text(tmp_path: Path, extractor: str, expected: str) -> None:
    # A ToUnicode map may send a glyph to one half of a UTF-16 pair. pypdf passes such halves on;
    # the tokenizers, SQLite and JSON all refuse them, so the loader joins or replaces them
    # (PDFium drops a lone half itself).
    cmap = (b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap /CMapName /X def\n"
            b"1 begincodespacerange <00> <FF> endcodespacerange\n"
            b"4 beginbfchar <41> <D800> <42> <0042> <43> <DC00DC00> <44> <D83DDE00> endbfchar\n"
            b"endcmap CMapName currentdict /CMap defineresource pop end end")
    font = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 6 0 R >>"
    path = tmp_path / "halves.pdf"
    path.write_bytes(pdf_bytes([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
                                font, _PAGE % (b"", 5), stream(b"BT /F1 12 Tf 72 720 Td (ABCDB) Tj ET"),
                                stream(cmap)]))
    page = load_file(path, settings=Settings(pdf_extractor=extractor))[0]
    assert page.text == expected
    counter, limit = model_token_counter()
    assert Chunker(Settings(), counter, limit).chunk(page)[0].text == page.text
    page.text.encode("utf-8")  # strict: what SQLite and JSON need


def test_two_thousand_page_pdf(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "long.pdf", [f"Page {n} holds the marker word token{n}." for n in range(1, 2001)])
    pages = load_file(path)
    assert [p.page for p in pages] == list(range(1, 2001))
    assert "token2000" in pages[-1].text and "token1" in pages[0].text
    counter, limit = model_token_counter()
    chunks = [c for p in pages for c in Chunker(Settings(), counter, limit).chunk(p)]
    assert {c.page for c in chunks} == set(range(1, 2001))


def test_pdf_time_limit_stops_a_slow_pdf_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "many.pdf"
    path.write_bytes(text_pdf([f"Page {n}" for n in range(50)]))
    with pytest.raises(LoadError, match=r"longer than 0 s \(stopped at page \d+ of 50\)"):
        load_file(path, time_limit=0.0)


# --------------------------------------------------------------------------------------------
# The shared real PDFs


def _truth() -> dict[str, dict]:
    folder = shared_path("data", "pdfs")
    return {entry["path"]: entry for entry in json.loads((folder / "files.json").read_text())["data"]}


# The files of ../shared/data/pdfs that cannot be indexed, and the word their reason must hold.
_REFUSED = {
    "005-libreoffice-writer-password/libreoffice-writer-password.pdf": "password",
    # Its page tree object is missing from the file (only 3 of its 4 page objects survive).
    "017-unreadable-meta-data/unreadablemetadata.pdf": "damaged",
}
# Pictures without a text layer: refused without OCR; with it, read if OCR finds words in them.
_IMAGES = {
    "007-imagemagick-images/imagemagick-ASCII85Decode.pdf", "007-imagemagick-images/imagemagick-CCITTFaxDecode.pdf",
    "007-imagemagick-images/imagemagick-lzw.pdf", "019-grayscale-image/grayscale-image.pdf",
    "023-cmyk-image/cmyk-image.pdf",
}


# OCR on with the default extractor only: what OCR reads does not depend on the extractor.
@pytest.mark.parametrize("settings", [Settings(), Settings(pdf_extractor="pypdf", ocr=False)],
                         ids=["pdfium+ocr", "pypdf"])
def test_every_shared_pdf_has_its_true_page_count_or_a_reason(settings: Settings) -> None:
    folder = shared_path("data", "pdfs")
    truth = _truth()
    loaded = 0
    for relative, entry in sorted(truth.items()):
        path = folder / relative
        if not path.exists():  # files.json lists one file that the shared copy leaves out
            continue
        if relative in _REFUSED or (relative in _IMAGES and not settings.ocr):
            with pytest.raises(LoadError) as caught:
                load_file(path, settings=settings)
            reason = _REFUSED.get(relative, "no extractable text")
            assert reason in caught.value.reason, (relative, caught.value.reason)
            if relative in _IMAGES:
                assert "OCR is off" in caught.value.reason
            continue
        try:
            pages = load_file(path, settings=settings)
        except LoadError as exc:
            assert relative in _IMAGES and "no extractable text" in exc.reason and "OCR" in exc.reason, exc.reason
            continue
        assert len(pages) == entry["pages"], relative
        assert [p.page for p in pages] == list(range(1, entry["pages"] + 1))
        assert any(p.text.strip() for p in pages)
        loaded += 1
    assert loaded >= 20


@pytest.mark.parametrize("settings", [Settings(), Settings(pdf_extractor="pypdf", ocr=False)],
                         ids=["pdfium+ocr", "pypdf"])
def test_every_pypdf_resource_is_read_or_refused_with_a_reason(settings: Settings) -> None:
    folder = shared_path("data", "pdfs-pypdf")
    from pypdf import PdfReader

    outcomes = {}
    for path in sorted(folder.rglob("*.pdf")):
        try:
            pages = load_file(path, settings=settings)
        except LoadError as exc:
            assert exc.reason and exc.source == str(path)
            outcomes[path.name] = exc.reason
            continue
        reader = PdfReader(path)
        if reader.is_encrypted:
            reader.decrypt("")
        assert len(pages) == len(reader.pages), path.name
        outcomes[path.name] = "ok"
    assert len(outcomes) == 67
    assert sum(v == "ok" for v in outcomes.values()) >= 45
    # pypdf's expected-text files: the extracted text holds their words.
    expected = (folder / "crazyones.txt").read_text(encoding="utf-8")
    text = " ".join(p.text for p in load_file(folder / "crazyones.pdf", settings=settings))
    assert _words(expected[:300]) <= _words(text)


def _words(text: str) -> set[str]:
    # NFKC: the expected text writes ligatures ("diﬀerently"), which PDFium spells out.
    return set(re.findall(r"[A-Za-z]{4,}", unicodedata.normalize("NFKC", text)))


# pypdf's encryption samples. The r5/r6 "user-password" files have an empty *owner* password,
# so the empty password opens them fully; the others need the user password "asdfzxcv".
_OPENS = ["r2-empty-password", "r2-owner-password", "r3-empty-password", "r4-owner-password",
          "r4-aes-v2-no-key-length", "r5-empty-password", "r5-owner-password", "r5-user-password",
          "r6-empty-password", "r6-owner-password", "r6-user-password"]
_LOCKED = ["r2-user-password", "r3-user-password", "r4-user-password", "r4-aes-user-password",
           "r6-both-passwords"]


@pytest.mark.parametrize("name", _OPENS)
def test_encrypted_pdf_opens_with_the_empty_password(name: str) -> None:
    pytest.importorskip("cryptography")  # AES (r4-aes, r5, r6) needs it
    folder = shared_path("data", "pdfs-pypdf", "encryption")
    assert load_file(folder / f"{name}.pdf")[0].text == load_file(folder / "unencrypted.pdf")[0].text


@pytest.mark.parametrize("name", _LOCKED)
def test_pdf_locked_by_a_user_password_is_reported(name: str) -> None:
    pytest.importorskip("cryptography")
    folder = shared_path("data", "pdfs-pypdf", "encryption")
    with pytest.raises(LoadError, match="encrypted with a password"):
        load_file(folder / f"{name}.pdf")


def test_aes_without_cryptography_names_the_package_to_install(tmp_path: Path) -> None:
    # Run where 'cryptography' cannot be imported, as on a machine that lacks it.
    path = shared_path("data", "pdfs-pypdf", "encryption", "r6-empty-password.pdf")
    code = ("import sys; sys.modules['cryptography'] = None\n"
            "from rag.ingest.load import load_file\nfrom rag.errors import LoadError\n"
            f"try: load_file({str(path)!r})\nexcept LoadError as e: print(e.reason)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "needs the 'cryptography' package" in out


# --------------------------------------------------------------------------------------------
# Text, Markdown and HTML

LATIN = "Café crème, naïve façade; Øresund — 50 € «quoted». Ärger über Größe.\n" * 20


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16", "utf-16-le",
                                      "utf-16-be", "utf-32"])
def test_text_in_any_common_encoding(tmp_path: Path, encoding: str) -> None:
    text = LATIN if encoding != "latin-1" else LATIN.replace("—", "-").replace("€", "EUR")
    path = tmp_path / "notes.txt"
    path.write_bytes(text.encode(encoding))
    assert load_file(path)[0].text == text


def test_utf16_with_a_broken_tail_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cut.txt"
    path.write_bytes(codecs.BOM_UTF16_LE + "Hello there".encode("utf-16-le") + b"\x00\xd8")
    with pytest.raises(LoadError, match="invalid utf-16"):
        load_file(path)


@pytest.mark.parametrize("suffix", [".pdf", ".txt", ".md", ".html"])
def test_zero_byte_file(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"empty{suffix}"
    path.write_bytes(b"")
    with pytest.raises(LoadError, match=r"empty \(0 bytes\)"):
        load_file(path)


@pytest.mark.parametrize("suffix", [".txt", ".md", ".html"])
@pytest.mark.parametrize("kind", ["random", "png", "zip", "elf"])
def test_binary_junk_renamed_as_text(tmp_path: Path, suffix: str, kind: str) -> None:
    rng = random.Random(hash((suffix, kind)) & 0xFFFF)
    head = {"random": b"", "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "zip": b"PK\x03\x04\x14\x00",
            "elf": b"\x7fELF\x02\x01\x01\x00"}[kind]
    path = tmp_path / f"junk{suffix}"
    path.write_bytes(head + rng.randbytes(50_000))
    with pytest.raises(LoadError, match="binary"):
        load_file(path)


def test_whitespace_only_text_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "blank.md"
    path.write_text(" \n\t\n" * 100)
    with pytest.raises(LoadError, match="no text"):
        load_file(path)


def test_nul_characters_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "nul.txt"
    path.write_bytes((b"Hello world. " * 100 + b"\x00") * 10)
    assert "\x00" not in load_file(path)[0].text


def test_deeply_nested_html(tmp_path: Path) -> None:
    depth = 200_000
    html = "<html><body>" + "<div><span>" * depth + "Deep inside the nest." + "</span></div>" * depth + "</body></html>"
    path = tmp_path / "deep.html"
    path.write_text(html)
    assert load_file(path)[0].text == "Deep inside the nest."


def test_unclosed_html_tags_and_scripts(tmp_path: Path) -> None:
    html = "<p>Visible text" + "<b><i><table><tr><td>" * 50_000 + "<script>var x = '</p>';" * 10 + "still hidden"
    path = tmp_path / "broken.html"
    path.write_text(html)
    text = load_file(path)[0].text
    assert text.startswith("Visible text") and "var x" not in text and "still hidden" not in text


def test_html_headings_and_list_items_read_as_markdown() -> None:
    html = ("<h1>Tidewater</h1><p>Charts for sailors.</p><h2>Install <b>it</b></h2>"
            "<ul><li>Run the installer</li><li>Restart</li></ul><h3> </h3><ul><li></li></ul><p>Done.</p>")
    text = html_to_text(html)
    assert text == "# Tidewater\n\nCharts for sailors.\n\n## Install it\n\n- Run the installer\n\n- Restart\n\nDone."
    # So the chunker cuts sections and list items as it does in Markdown.
    assert [text[a:b] for a, b in split_sentences(text)] == [
        "# Tidewater", "Charts for sailors.", "## Install it", "- Run the installer", "- Restart", "Done."]


def test_html_tables_become_markdown_tables_cut_by_rows() -> None:
    # Before: each cell became a line of its own, and the header was lost to every chunk but one.
    cells = "".join(f"<tr><td>Store {i}</td><td>{i * 1000 + 17:,}</td><td>{i * 7}</td></tr>" for i in range(80))
    html = ("<h2>Revenue</h2><table><caption>By store</caption><thead><tr><th>store</th><th>revenue</th>"
            f"<th>staff</th></tr></thead><tbody>{cells}<tr><td>a|b</td><td><table><tr><td>in</td></tr></table>"
            "</td><td></td></tr></tbody></table><p>After.</p>")
    text = html_to_text(html)
    assert "By store\n| store | revenue | staff |\n|---|---|---|\n| Store 0 | 17 | 0 |\n" in text
    assert "| a\\|b | in |  |" in text and text.endswith("After.")
    counter, limit = model_token_counter()
    chunks = Chunker(Settings(), counter, limit).chunk(Page("/d/t.html", 1, text))
    rows = [c for c in chunks if "| Store 40 |" in c.text]
    assert len(rows) == 1 and "| store | revenue | staff |" in rows[0].context


def test_html_is_never_fetched_or_executed() -> None:
    html = ('<img src="http://127.0.0.1:9/x.png"><iframe src="file:///etc/passwd"></iframe>'
            '<script>document.write("injected")</script><p onclick="alert(1)">Plain &amp; simple &lt;b&gt;</p>'
            '<object data="file:///etc/shadow"></object>')
    assert html_to_text(html) == "Plain & simple <b>"


def test_very_long_line_without_spaces_is_chunked_within_limits(tmp_path: Path) -> None:
    line = "".join(random.Random(3).choices("abcdefghijklmnopqrstuvwxyz0123456789+/", k=300_000))
    path = tmp_path / "blob.txt"
    path.write_text(line)
    page = load_file(path)[0]
    counter, limit = model_token_counter()
    settings = Settings()
    chunks = Chunker(settings, counter, limit).chunk(page)
    assert chunks[0].start == 0 and chunks[-1].end == len(line)
    for a, b in zip(chunks, chunks[1:]):
        assert b.start <= a.end  # nothing skipped
    for chunk in chunks[::50]:
        assert page.text[chunk.start:chunk.end] == chunk.text
        assert count_tokens([chunk.text])[0] <= settings.chunk_tokens
        assert counter([chunk.text])[0] <= limit


def test_file_over_the_size_limit_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with open(path, "wb") as f:
        f.truncate(3 * 1024 ** 3)  # sparse: 3 GB on paper, nothing on disk
    with pytest.raises(LoadError, match=r"3221 MB, over the 537 MB limit \(raise max_file_bytes"):
        load_file(path, max_bytes=Settings().max_file_bytes)


def test_unreadable_and_unsupported_paths(tmp_path: Path) -> None:
    (tmp_path / "pic.png").write_bytes(b"\x89PNG")
    os.symlink("/dev/zero", tmp_path / "zero.txt")
    os.symlink("/dev/urandom", tmp_path / "random.md")
    os.symlink(tmp_path / "nowhere.txt", tmp_path / "dangling.txt")
    os.mkfifo(tmp_path / "pipe.txt")
    files, failures = find_files([tmp_path, tmp_path / "missing.pdf", tmp_path / "pic.png"])
    assert files == []  # devices, FIFOs and dangling links are not regular files
    reasons = {Path(f.source).name: f.reason for f in failures}
    assert set(reasons) == {"missing.pdf", "pic.png"}
    assert reasons["missing.pdf"] == "no such file or folder"
    assert "unsupported file type '.png'" in reasons["pic.png"]
    for name in ("zero.txt", "random.md", "pipe.txt"):
        with pytest.raises(LoadError):  # named explicitly: refused, never read forever
            load_file(tmp_path / name)


def test_special_files_named_explicitly_are_refused_before_anything_opens_them(tmp_path: Path) -> None:
    # Before: find_files passed a named FIFO or a link to /dev/zero on, and the ingest's hash
    # step blocked on the FIFO or read /dev/zero without end (`rag ingest pipe.txt` hung).
    os.mkfifo(tmp_path / "pipe.txt")
    os.symlink("/dev/zero", tmp_path / "zero.txt")
    os.symlink("/dev/urandom", tmp_path / "random.md")
    files, failures = find_files([tmp_path / "pipe.txt", tmp_path / "zero.txt", tmp_path / "random.md"])
    assert files == []
    reasons = {Path(f.source).name: f.reason for f in failures}
    assert reasons == {"pipe.txt": "not a regular file (a FIFO (named pipe)); only regular files are read",
                       "zero.txt": "not a regular file (a character device); only regular files are read",
                       "random.md": "not a regular file (a character device); only regular files are read"}
    with pytest.raises(LoadError, match="not a regular file"):
        load_file(tmp_path / "pipe.txt")


def test_rag_ingest_of_a_fifo_is_refused_within_seconds(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.txt")
    os.symlink("/dev/zero", tmp_path / "zero.txt")
    rag = Path(sys.executable).with_name("rag")
    for name in ("pipe.txt", "zero.txt"):
        result = subprocess.run([str(rag), "ingest", str(tmp_path / name), "--index", str(tmp_path / "idx"),
                                 "--no-progress"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 3, result.stderr
        assert f"{name}: not a regular file" in result.stderr


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_unreadable_folder_is_reported_not_skipped_silently(tmp_path: Path) -> None:
    (tmp_path / "open").mkdir()
    (tmp_path / "open" / "a.txt").write_text("Readable.")
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "b.txt").write_text("Hidden behind permissions.")
    (tmp_path / "locked").chmod(0)
    try:
        if os.geteuid() == 0:
            # root reads any folder: walk without the capabilities that let it, as a user would.
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root without setpriv to drop CAP_DAC_OVERRIDE")
            script = ("import sys, json; from rag.ingest.load import find_files; files, failures = find_files([sys.argv[1]]);"
                      "print(json.dumps([[str(f) for f in files], [[x.source, x.reason] for x in failures]]))")
            caps = "-dac_override,-dac_read_search"
            result = subprocess.run([setpriv, f"--bounding-set={caps}", f"--inh-caps={caps}", sys.executable, "-c",
                                     script, str(tmp_path)], capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stderr
            names, failures = json.loads(result.stdout)
            files = [Path(n) for n in names]
        else:
            found, found_failures = find_files([tmp_path])
            files, failures = found, [[f.source, f.reason] for f in found_failures]
    finally:
        (tmp_path / "locked").chmod(0o755)
    assert files == [tmp_path / "open" / "a.txt"]
    assert failures == [[str(tmp_path / "locked"),
                         "cannot read the folder (Permission denied); its files were not indexed"]]


def test_link_to_a_file_outside_the_folder_is_not_followed(tmp_path: Path) -> None:
    # Before: the walk followed it and indexed the target under its own path, outside the folder,
    # so deleting the link never removed it from the index.
    outside, folder = tmp_path / "outside", tmp_path / "folder"
    outside.mkdir()
    folder.mkdir()
    (outside / "secret.txt").write_text("An outside file.")
    (folder / "own.txt").write_text("Inside.")
    os.symlink(outside / "secret.txt", folder / "link.txt")
    os.symlink(folder / "own.txt", folder / "alias.txt")  # inside: same file, indexed once
    files, failures = find_files([folder])
    assert files == [folder / "own.txt"] and failures == []
    files, failures = find_files([folder / "link.txt"])  # named: the user means it
    assert files == [outside / "secret.txt"] and failures == []


def test_symlink_loops_do_not_hang_the_folder_walk(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "x.txt").write_text("Hello.")
    os.symlink(tmp_path / "a", tmp_path / "a" / "b" / "loop")
    os.symlink(tmp_path, tmp_path / "a" / "up")
    files, failures = find_files([tmp_path])
    assert files == [tmp_path / "a" / "b" / "x.txt"] and failures == []


# --------------------------------------------------------------------------------------------
# The 200 MB text file: load and chunk only (embedding 300,000 chunks takes hours on 2 cores)

_BIG_TEXT_SCRIPT = textwrap.dedent("""
    import random, sys
    from rag.ingest.chunk import Chunker
    from rag.embed import model_token_counter
    from rag.ingest.load import load_file
    from rag.settings import Settings
    path, megabytes = sys.argv[1], int(sys.argv[2])
    words = "harbour tide moon ship anchor sail wind rope deck mast keel gull storm coast light".split()
    rng = random.Random(1)
    sentences = [" ".join(rng.choice(words) for _ in range(rng.randint(5, 25))).capitalize() + ". "
                 for _ in range(5000)]
    with open(path, "w") as f:
        written, i = 0, 0
        while written < megabytes * 1_000_000:
            block = "".join(sentences[(i * 7 + j) % 5000] for j in range(1000)) + "\\n\\n"
            f.write(block)
            written += len(block)
            i += 1
    pages = load_file(path, Settings().max_file_bytes)
    counter, limit = model_token_counter()
    chunker = Chunker(Settings(), counter, limit)
    count, covered, text = 0, 0, pages[0].text
    for chunk in chunker.chunk(pages[0]):
        assert text[chunk.start:chunk.end] == chunk.text
        covered = max(covered, chunk.end)
        count += 1
    # VmHWM, not ru_maxrss: ru_maxrss survives exec and would count the parent pytest's memory.
    peak_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(count, covered == len(text.rstrip()), peak_kb // 1024)
""")


def _load_and_chunk_in_child(tmp_path: Path, megabytes: int) -> tuple[int, bool, int]:
    if not Path("/proc/self/status").exists():
        pytest.skip("peak memory is read from /proc (Linux)")
    result = subprocess.run([sys.executable, "-c", _BIG_TEXT_SCRIPT, str(tmp_path / "big.txt"), str(megabytes)],
                            capture_output=True, text=True, check=True)
    count, complete, peak_mb = result.stdout.split()
    return int(count), complete == "True", int(peak_mb)


def test_large_text_file_loads_and_chunks_in_bounded_memory(tmp_path: Path) -> None:
    count, complete, peak_mb = _load_and_chunk_in_child(tmp_path, 2)
    assert count > 3000 and complete
    assert peak_mb < 1024


@pytest.mark.slow
def test_200_megabyte_text_file_loads_and_chunks_in_bounded_memory(tmp_path: Path) -> None:
    count, complete, peak_mb = _load_and_chunk_in_child(tmp_path, 200)
    assert count > 300_000 and complete
    assert peak_mb < 3 * 1024


# --------------------------------------------------------------------------------------------
# Issue #16: shared content streams, warning floods


def _pages_sharing_one_stream(path: Path, pages: int, megabytes: int) -> None:
    content = b"BT /F1 12 Tf 72 720 Td (Shared page text.) Tj ET\n" + b" " * (megabytes * 1_000_000)
    data = zlib.compress(content, 9)
    kids = b" ".join(f"{4 + i} 0 R".encode() for i in range(pages))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [" + kids + b"] /Count " + str(pages).encode() + b" >>",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
                b"/Contents " + str(4 + pages).encode() + b" 0 R >>"] * pages
    objects.append(b"<< /Length " + str(len(data)).encode() + b" /Filter /FlateDecode >>\nstream\n" + data
                   + b"\nendstream")
    path.write_bytes(pdf_bytes(objects))


def test_pages_sharing_one_content_stream_are_read_once(tmp_path: Path) -> None:
    # Before: every page parsed the shared stream again (80 KB, 50 pages, one 70 MB stream: 275 s of CPU).
    import time

    _pages_sharing_one_stream(tmp_path / "one.pdf", 1, 4)
    _pages_sharing_one_stream(tmp_path / "twenty.pdf", 20, 4)
    assert (tmp_path / "twenty.pdf").stat().st_size < 20_000
    started = time.process_time()
    one = load_file(tmp_path / "one.pdf")
    single = time.process_time() - started
    started = time.process_time()
    twenty = load_file(tmp_path / "twenty.pdf")
    shared = time.process_time() - started
    assert len(one) == 1 and len(twenty) == 20
    assert all(page.text == one[0].text == "Shared page text." for page in twenty)
    assert shared < 4 * single + 0.5, f"20 pages took {shared:.1f} s of CPU, one took {single:.1f} s"


def _deeply_nested_pdf(path: Path) -> None:
    nest = b"<< /A " * 5000 + b"1" + b" >>" * 5000
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /X " + nest + b" >> "
               b"/Contents 4 0 R >>",
               b"<< /Length 44 >>\nstream\nBT /F1 12 Tf 72 720 Td (Hello nested.) Tj ET\nendstream"]
    path.write_bytes(pdf_bytes(objects))


def test_damaged_pdf_is_called_damaged_when_pypdf_is_quieted(tmp_path: Path) -> None:
    # The CLI quiets pypdf's logger; that once hid the warnings the damage check reads, so the
    # same file was called "image-only or scanned" after any in-process CLI run.
    import logging

    _deeply_nested_pdf(tmp_path / "nested.pdf")
    logger = logging.getLogger("pypdf")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with pytest.raises(LoadError, match=r"the PDF is damaged and no text could be read from it"):
            load_file(tmp_path / "nested.pdf")
    finally:
        logger.setLevel(level)


def test_damaged_pdf_warns_a_few_times_and_is_not_called_image_only(tmp_path: Path) -> None:
    # Before: 50,000 nested dictionaries wrote 16,504 identical warning lines, and the file was
    # called "image-only or scanned". Counted at the root logger, where the application's
    # handlers are (pytest 9 also hooks the pypdf logger itself, which stops propagating).
    import logging

    class Lines(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.WARNING)
            self.lines: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.lines.append(record.getMessage())

    logging.getLogger("pypdf").setLevel(logging.NOTSET)  # an in-process CLI run quiets it
    _deeply_nested_pdf(tmp_path / "nested.pdf")
    root, seen = logging.getLogger(), Lines()
    root.addHandler(seen)
    try:
        with pytest.raises(LoadError, match=r"the PDF is damaged and no text could be read from it \(pypdf: "):
            load_file(tmp_path / "nested.pdf")
    finally:
        root.removeHandler(seen)
    lines = seen.lines
    assert 2 <= len(lines) <= 11, f"{len(lines)} warning lines"
    assert max(lines.count(line) for line in lines) <= 3
    assert "more repeats of pypdf's warnings above were not logged" in lines[-1]
