"""The other formats (rag.ingest.formats): Word and PowerPoint files written by python-docx's and
python-pptx's own test suites, spreadsheets, CSVs, EPUBs, e-mails and OpenDocument files made with
their own libraries (openpyxl, csv, zipfile, email, mailbox), then indexed and quoted; and the
hostile files of issue #33, each refused or read within bounds with a one-line reason."""

from __future__ import annotations

import email.policy
import mailbox
import os
import re
import shutil
import zipfile
from email.message import EmailMessage
from pathlib import Path

import openpyxl
import pytest

from rag import Index, LoadError, Settings
from rag.errors import RagError
from rag.file_types import attached_to, format_for, has_page_images, page_label, skipped_summary, supported_suffixes
from rag.ingest.formats.common import MAX_ATTACHMENT_BYTES, MAX_EMPTY_ROWS, MAX_SLIDES, markdown_table
from rag.ingest.load import find_files, is_temporary, read_file
from rag.serve.render import render_sources, render_viewer, source_card
from rag.types import Quote
from tests.conftest import shared_path, write_pdf

FAST = Settings(embed_backend="onnx-int8")


def office(kind: str, name: str) -> Path:
    folder = shared_path("data", "office", kind)
    path = folder / name
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    return path.resolve()


# --------------------------------------------------------------------------------------------
# Files made here with the formats' own libraries


def make_xlsx(path: Path) -> Path:
    book = openpyxl.Workbook()
    sales = book.active
    sales.title = "Sales"
    sales.append(["Region", "Revenue", "Manager"])
    sales.append(["North|East", 1204.5, "Ann Lovelace"])
    sales.append([])  # an empty row is left out, not a row of empty cells
    sales.append(["South", 877, "Bob Hopper"])
    sales["D1"] = "Total"
    sales["D2"] = "=B2+B4"  # a formula openpyxl cannot compute: no cached value, so no text
    staff = book.create_sheet("Staff")
    staff.append(["Name", "Office"])
    staff.append(["Grace Kestrel", "Lisbon harbour office"])
    book.save(path)
    return path


def make_epub(path: Path) -> Path:
    chapter = ('<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>t</title>'
               '<script>document.write("never run")</script></head><body><h1>{title}</h1><p>{body}</p></body></html>')
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        z.writestr("META-INF/container.xml",
                   '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:'
                   'container"><rootfiles><rootfile full-path="OEBPS/content.opf" media-type="application/'
                   'oebps-package+xml"/></rootfiles></container>')
        # The manifest lists the chapters in another order than the spine: the spine is the reading order.
        z.writestr("OEBPS/content.opf",
                   '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0">'
                   '<manifest><item id="c2" href="text/two.xhtml" media-type="application/xhtml+xml"/>'
                   '<item id="c1" href="text/one.xhtml" media-type="application/xhtml+xml"/>'
                   '<item id="css" href="style.css" media-type="text/css"/></manifest>'
                   '<spine><itemref idref="c1"/><itemref idref="c2"/></spine></package>')
        z.writestr("OEBPS/text/one.xhtml", chapter.format(title="The Salt Road",
                                                           body="The caravan reached Timbuktu after forty days."))
        z.writestr("OEBPS/text/two.xhtml", chapter.format(title="The River",
                                                           body="Boats carried the salt slabs down the Niger."))
        z.writestr("OEBPS/style.css", "p { color: red }")
    return path


def make_odt(path: Path) -> Path:
    ns = ('xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
          'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
          'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0"')
    content = (f'<?xml version="1.0"?><office:document-content {ns}><office:body><office:text>'
               '<text:h text:outline-level="1">Minutes</text:h><text:p>The board met on<text:s/>Tuesday.</text:p>'
               '<text:list><text:list-item><text:p>Approve the budget</text:p></text:list-item></text:list>'
               '<text:h text:outline-level="1">Votes</text:h>'
               '<table:table><table:table-row><table:table-cell><text:p>Motion</text:p></table:table-cell>'
               '<table:table-cell><text:p>Result</text:p></table:table-cell></table:table-row>'
               '<table:table-row><table:table-cell><text:p>Budget</text:p></table:table-cell>'
               '<table:table-cell><text:p>carried 7 to 2</text:p></table:table-cell></table:table-row></table:table>'
               '</office:text></office:body></office:document-content>')
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.text", compress_type=zipfile.ZIP_STORED)
        z.writestr("content.xml", content)
        z.writestr("META-INF/manifest.xml", '<?xml version="1.0"?><manifest:manifest xmlns:manifest="urn:oasis:'
                                            'names:tc:opendocument:xmlns:manifest:1.0"/>')
    return path


def make_deck(path: Path) -> Path:
    import pptx

    deck = pptx.Presentation()
    for title, body, notes in (("Welcome", "The harbour authority's winter briefing.", ""),
                               ("Ferry timetable", "The night ferry to Helsinki leaves at 23:15 from pier 4.",
                                "Remind them that pier 4 has moved since the autumn.")):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text_frame.text = body
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    deck.save(str(path))
    return path


def make_message(subject: str, body: str, sender: str = "Ann Lovelace <ann@example.com>") -> EmailMessage:
    message = EmailMessage(policy=email.policy.default)
    message["From"] = sender
    message["To"] = "Bob Hopper <bob@example.com>"
    message["Date"] = "Fri, 01 Mar 2024 10:00:00 +0000"
    message["Subject"] = subject
    message.set_content(body)
    return message


# --------------------------------------------------------------------------------------------
# Each reader


def test_registry_names_every_format_and_its_page_word() -> None:
    assert {".docx", ".pptx", ".xlsx", ".csv", ".epub", ".eml", ".mbox", ".odt", ".pdf", ".md"} <= supported_suffixes()
    assert [page_label(f"/d/x{s}", 3) for s in (".pdf", ".pptx", ".xlsx", ".docx", ".epub", ".mbox")] == \
        ["page 3", "slide 3", "sheet 3", "section 3", "chapter 3", "message 3"]
    assert format_for("REPORT.DOCX") is not None and format_for("x.doc") is None


def test_markdown_table_is_the_pipe_table_the_table_engine_reads() -> None:
    assert markdown_table([["Year", "Sales"], ["2024", "1|2"], ["2025"]]) == \
        "| Year | Sales |\n|---|---|\n| 2024 | 1\\|2 |\n| 2025 |  |"


def test_docx_by_python_docx_headings_tables_headers_once() -> None:
    page = read_file(office("docx", "tests_test_files_test.docx")).pages[0]
    assert page.text == "# python-docx was here!\n\npython-docx was here too!"
    tables = read_file(office("docx", "features_steps_test_files_tbl-having-applied-style.docx")).pages[0].text
    assert tables.startswith("| foobar | barfoo |\n|---|---|\n| foo | bar |\n")
    # The odd and even page headers are said once each, not once per page.
    text = read_file(office("docx", "features_steps_test_files_doc-odd-even-hdrs.docx")).pages[0].text
    assert text.count("Header: Odd page header.") == 1 and text.count("Header: Even page header.") == 1
    listed = read_file(office("docx", "features_steps_test_files_num-having-numbering-part.docx")).pages[0].text
    assert listed == "- Paragraph having List Number style."


def test_docx_cut_into_sections_at_its_top_headings(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Annual report", 0)  # the Title style: read as a heading, cuts no section
    document.add_paragraph("Prepared by the harbour board.")
    for title, body in (("Sales", "Sales rose 4%."), ("Costs", "Costs fell.")):
        document.add_heading(title, 1)
        document.add_paragraph(body)
    document.add_heading("Detail", 2)
    document.add_paragraph("Fuel was the largest cost.", style="List Bullet")
    document.save(str(tmp_path / "report.docx"))
    assert [p.text for p in read_file(tmp_path / "report.docx").pages] == [
        "# Annual report\n\nPrepared by the harbour board.", "# Sales\n\nSales rose 4%.",
        "# Costs\n\nCosts fell.\n\n## Detail\n\n- Fuel was the largest cost."]


def test_pptx_by_python_pptx_one_page_per_slide_notes_marked() -> None:
    pages = read_file(office("pptx", "tests_test_files_test_slides.pptx")).pages
    assert pages[0].page == 1
    # A table inside the slide (and text inside a group) in reading order, the table as a pipe table.
    assert "Group test text" in pages[0].text
    assert "| Col head 1 | Col head 2 |\n|---|---|\n| Cell text 1 | Cell text 2 |" in pages[0].text
    titled = read_file(office("pptx", "features_steps_test_files_test.pptx")).pages[0].text
    assert titled == "# Presentation Title Text\n\nSubtitle Text"
    notes = read_file(office("pptx", "features_steps_test_files_sld-notes.pptx")).pages
    assert [p.page for p in notes] == [1, 2]
    assert notes[0].text == "## Speaker notes\n\nNotes"
    breaks = read_file(office("pptx", "features_steps_test_files_txt-text.pptx")).pages[0].text
    assert "\x0b" not in breaks and "Foo Bar \n Baz Zoo \n1" in breaks


def test_xlsx_sheets_as_pages_values_not_formulas(tmp_path: Path) -> None:
    pages = read_file(make_xlsx(tmp_path / "q3.xlsx")).pages
    assert [p.page for p in pages] == [1, 2]
    assert pages[0].text == ("## Sheet: Sales\n\n| Region | Revenue | Manager | Total |\n|---|---|---|---|\n"
                             "| North\\|East | 1204.5 | Ann Lovelace |  |\n| South | 877 | Bob Hopper |  |")
    assert "=B2" not in pages[0].text
    assert pages[1].text.endswith("| Grace Kestrel | Lisbon harbour office |")


def test_csv_dialect_and_encoding_sniffed(tmp_path: Path) -> None:
    path = tmp_path / "costs.csv"
    path.write_bytes("Poste;Montant;Note\nCafé;3,50;\"a;b\"\nLoyer;900;\n".encode("cp1252"))
    page = read_file(path).pages[0]
    assert page.text == ("## Sheet: costs\n\n| Poste | Montant | Note |\n|---|---|---|\n"
                         "| Café | 3,50 | a;b |\n| Loyer | 900 |  |")


def test_epub_chapters_in_spine_order_scripts_never_read(tmp_path: Path) -> None:
    pages = read_file(make_epub(tmp_path / "salt.epub")).pages
    assert [p.text.splitlines()[0] for p in pages] == ["# The Salt Road", "# The River"]
    assert all("never run" not in p.text and "color" not in p.text for p in pages)


def test_epub_with_encrypted_chapters_is_refused(tmp_path: Path) -> None:
    path = make_epub(tmp_path / "drm.epub")
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("META-INF/encryption.xml",
                   '<encryption xmlns="urn:oasis:names:tc:opendocument:xmlns:container" '
                   'xmlns:enc="http://www.w3.org/2001/04/xmlenc#"><enc:EncryptedData><enc:EncryptionMethod '
                   'Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/><enc:CipherData><enc:CipherReference '
                   'URI="OEBPS/text/one.xhtml"/></enc:CipherData></enc:EncryptedData></encryption>')
    with pytest.raises(LoadError, match="encrypted \\(DRM\\)"):
        read_file(path)


def test_eml_headers_as_context_and_attachments_read(tmp_path: Path) -> None:
    message = make_message("Travel budget", "The travel budget for the Riga trip is 4,200 euros.")
    message.add_attachment(b"item,amount\nferry,310\n", maintype="text", subtype="csv", filename="costs.csv")
    message.add_attachment(office("docx", "tests_test_files_test.docx").read_bytes(), maintype="application",
                           subtype="vnd.openxmlformats-officedocument.wordprocessingml.document", filename="memo.docx")
    message.add_attachment(b"\x89PNG....", maintype="image", subtype="png", filename="photo.png")
    path = tmp_path / "budget.eml"
    path.write_bytes(bytes(message))
    read = read_file(path)
    text = read.pages[0].text
    assert text.startswith("# Travel budget (from Ann Lovelace <ann@example.com>, to Bob Hopper <bob@example.com>, "
                           "2024-03-01)\n\nFrom: Ann Lovelace")
    assert "Subject: Travel budget" in text and "is 4,200 euros." in text
    # Each attachment is a document of its own, named after the message; the page names it only.
    assert "## Attachment: costs.csv" in text and "| ferry | 310 |" not in text
    assert "## Attachment: memo.docx" in text and "python-docx was here too!" not in text
    assert "photo.png" not in text and read.notes == ()
    assert [doc.source for doc in read.attached] == [f"{path}#attachment-1/costs.csv", f"{path}#attachment-2/memo.docx"]
    costs, memo = read.attached
    assert "| ferry | 310 |" in costs.pages[0].text and all(p.source == costs.source for p in costs.pages)
    assert any("python-docx was here too!" in p.text for p in memo.pages)
    assert costs.size == len(b"item,amount\nferry,310\n") and len(costs.sha256) == 64


def test_mbox_one_page_per_message(tmp_path: Path) -> None:
    path = tmp_path / "inbox.mbox"
    box = mailbox.mbox(str(path))
    for n, (subject, body) in enumerate([("Ferry times", "The ferry leaves at 07:40."),
                                         ("Menu", "<p>Soup of the day: <b>borscht</b></p>"),
                                         ("Keys", "The spare keys are with the harbour master.")]):
        message = make_message(subject, body)
        if n == 1:
            message.set_content(body, subtype="html")
        box.add(message)
    box.flush()
    box.close()
    pages = read_file(path).pages
    assert [p.page for p in pages] == [1, 2, 3]
    assert pages[1].text.startswith("# Menu (") and "Soup of the day: borscht" in pages[1].text
    assert "<b>" not in pages[1].text


def test_mbox_attachments_named_after_their_message(tmp_path: Path) -> None:
    path = tmp_path / "inbox.mbox"
    box = mailbox.mbox(str(path))
    box.add(make_message("Ferry times", "The ferry leaves at 07:40."))
    message = make_message("Costs", "The costs are attached.")
    message.add_attachment(b"item,amount\nferry,310\n", maintype="text", subtype="csv", filename="../costs.csv")
    box.add(message)
    box.flush()
    box.close()
    read = read_file(path)
    (costs,) = read.attached
    assert costs.source == f"{path.resolve()}#message-2/attachment-1/costs.csv"
    assert Quote(text="x", source=costs.source, page=1, start=0, end=1).name == \
        "costs.csv (attached to message 2 of inbox.mbox)"
    assert page_label(costs.source, 1) == "sheet 1" and "## Attachment: costs.csv" in read.pages[1].text


def test_odt_sections_lists_and_tables(tmp_path: Path) -> None:
    pages = read_file(make_odt(tmp_path / "minutes.odt")).pages
    assert [p.text for p in pages] == ["# Minutes\n\nThe board met on Tuesday.\n\n- Approve the budget",
                                       "# Votes\n\n| Motion | Result |\n|---|---|\n| Budget | carried 7 to 2 |"]


# --------------------------------------------------------------------------------------------
# Hostile and damaged files: refused, or read within bounds, with a one-line reason


def test_docx_zip_bomb_refused_before_unpacking(tmp_path: Path) -> None:
    path = tmp_path / "bomb.docx"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("word/document.xml", "w", force_zip64=True) as part:
            zeros = bytes(1 << 20)
            for _ in range(300):  # 300 MB of zeros, about 300 KB on disk
                part.write(zeros)
    assert path.stat().st_size < 2_000_000
    with pytest.raises(LoadError) as caught:
        read_file(path)
    assert "word/document.xml would unpack to 315 MB, over the limit of 268 MB (a zip bomb?)" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_xlsx_with_a_million_empty_rows_read_within_bounds(tmp_path: Path) -> None:
    base = make_xlsx(tmp_path / "base.xlsx")
    for variant, row in (("bare", '<row r="{n}"/>'), ("blank", '<row r="{n}"><c r="A{n}" t="inlineStr"><is><t></t></is></c></row>')):
        path = tmp_path / f"million-{variant}.xlsx"
        filler = "".join(row.format(n=n) for n in range(10, 1_000_010)).encode()
        with zipfile.ZipFile(base) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
            for info in src.infolist():
                data = src.read(info.filename)
                if info.filename == "xl/worksheets/sheet1.xml":
                    # The dimension says so too: openpyxl's read-only mode reads no row beyond it.
                    data = re.sub(rb'<dimension ref="[^"]*"/>', b'<dimension ref="A1:D1000009"/>', data)
                    data = data.replace(b"</sheetData>", filler + b"</sheetData>")
                out.writestr(info.filename, data)
        read = read_file(path)
        assert "| South | 877 | Bob Hopper |  |" in read.pages[0].text
        if variant == "blank":  # cells holding "": the run of empty rows ends the sheet
            assert read.notes == (f"sheet 'Sales' after row {MAX_EMPTY_ROWS + 4}: {MAX_EMPTY_ROWS:,} empty rows in a "
                                  "row, the rest taken to be empty",)


def test_eml_with_a_20_mb_attachment_reads_the_message_not_the_attachment(tmp_path: Path) -> None:
    message = make_message("Scans", "The scans of the contract are attached.")
    message.add_attachment(os.urandom(20_000_000), maintype="application", subtype="pdf", filename="scan.pdf")
    path = tmp_path / "scans.eml"
    path.write_bytes(bytes(message))
    read = read_file(path)
    assert "The scans of the contract are attached." in read.pages[0].text
    assert read.notes == (f"attachment 'scan.pdf' of message 1 (20 MB) over the {MAX_ATTACHMENT_BYTES / 1e6:.0f} MB "
                          "attachment limit, not read",)


def test_pptx_with_10000_slides_refused_from_its_zip(tmp_path: Path) -> None:
    path = tmp_path / "huge.pptx"
    shutil.copy(office("pptx", "features_steps_test_files_test.pptx"), path)
    with zipfile.ZipFile(path, "a") as z:
        for n in range(2, 10_001):
            z.writestr(f"ppt/slides/slide{n}.xml", "<p:sld/>")
    with pytest.raises(LoadError, match=f"the deck has 10,000 slides, over the limit of {MAX_SLIDES:,}; split it"):
        read_file(path)


def test_damaged_and_password_protected_office_files_named_with_the_reason(tmp_path: Path) -> None:
    cut = tmp_path / "cut.docx"
    cut.write_bytes(office("docx", "tests_test_files_test.docx").read_bytes()[:3000])
    locked = tmp_path / "locked.xlsx"
    # An encrypted Office file is an OLE compound file holding an "EncryptionInfo" stream.
    locked.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + "EncryptionInfo".encode("utf-16-le"))
    old = tmp_path / "old.docx"
    old.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(1000))
    reasons = {}
    for path in (cut, locked, old):
        with pytest.raises(LoadError) as caught:
            read_file(path)
        assert caught.value.source == str(path)
        reasons[path.name] = caught.value.reason
    assert reasons == {
        "cut.docx": "damaged or not a Word document (not a readable zip archive)",
        "locked.xlsx": "the Excel workbook is password-protected (encrypted); save an unprotected copy to index it",
        "old.docx": "an old binary Office file (OLE), not a Word document: save it in the current format (.docx) "
                    "to index it",
    }


# --------------------------------------------------------------------------------------------
# A folder of every type, indexed in one ingest


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Index:
    folder = tmp_path_factory.mktemp("mixed")
    shutil.copy(office("docx", "tests_test_files_test.docx"), folder / "memo.docx")
    shutil.copy(office("pptx", "tests_test_files_test_slides.pptx"), folder / "deck.pptx")
    make_deck(folder / "briefing.pptx")
    make_xlsx(folder / "q3.xlsx")
    (folder / "ferries.csv").write_text("Route,Departure\nTallinn-Helsinki,07:30\nRiga-Stockholm,17:00\n",
                                        encoding="utf-8")
    make_epub(folder / "salt.epub")
    make_odt(folder / "minutes.odt")
    (folder / "keys.eml").write_bytes(bytes(make_message(
        "Spare keys", "The spare keys to the boathouse are kept by the harbour master in Klaipeda.")))
    (folder / "legacy.doc").write_bytes(b"\xd0\xcf\x11\xe0 old Word")
    (folder / "photo.png").write_bytes(b"\x89PNG")
    (folder / "~$memo.docx").write_bytes(b"owner file of an open Word document")
    index = Index.build([folder], tmp_path_factory.mktemp("idx"), settings=FAST)
    return index


def test_one_ingest_reads_every_type_and_reports_the_rest_as_skipped(library: Index) -> None:
    report = library.last_report
    assert report is not None and report.failed == ()
    assert sorted(Path(s).name for s in report.added) == ["briefing.pptx", "deck.pptx", "ferries.csv", "keys.eml",
                                                          "memo.docx", "minutes.odt", "q3.xlsx", "salt.epub"]
    assert sorted(Path(s).name for s in report.skipped) == ["legacy.doc", "photo.png"]  # the lock file is not news
    assert "skipped 2 files of types not read (.doc, .png)" in report.summary()


@pytest.mark.parametrize(("question", "name", "place", "words"), [
    ("Who manages the North East region revenue?", "q3.xlsx", "sheet 1", "Ann Lovelace"),
    ("Where is the Lisbon harbour office staff member?", "q3.xlsx", "sheet 2", "Grace Kestrel"),
    ("Who keeps the spare keys to the boathouse?", "keys.eml", "message 1", "harbour master"),
    ("Cell text in the table under Col head 2", "deck.pptx", "slide 1", "Cell text 2"),
    ("Which pier has moved since the autumn?", "briefing.pptx", "slide 2", "## Speaker notes"),
    ("When does the Riga-Stockholm ferry depart?", "ferries.csv", "sheet 1", "17:00"),
    ("How long did the caravan take to reach Timbuktu?", "salt.epub", "chapter 1", "forty days"),
    ("How did the budget motion vote end?", "minutes.odt", "section 2", "carried 7 to 2"),
])
def test_each_type_searchable_quotes_verbatim_with_its_place(library: Index, question: str, name: str, place: str,
                                                             words: str) -> None:
    hits = [h for h in library.search(question, k=8) if h.name == name and words in h.text]
    assert hits, f"{name} not found for {question!r}"
    hit = hits[0]
    page = library.page_text(hit.source, hit.page)
    assert page is not None and page[hit.quote.start:hit.quote.end] == hit.quote.text
    assert page[hit.chunk.start:hit.chunk.end] == hit.chunk.text
    assert hit.place == place and hit.to_dict()["unit"] == place.split()[0]


def test_answers_from_a_slide_a_sheet_cell_and_an_email(library: Index) -> None:
    for question, name, expected in (("Who keeps the spare keys to the boathouse?", "keys.eml", "harbour master"),
                                     ("Which office is Grace Kestrel in?", "q3.xlsx", "Lisbon harbour office"),
                                     ("When does the night ferry to Helsinki leave?", "briefing.pptx", "23:15")):
        answer = library.ask(question)
        cited = [q for q in answer.citations if q.name == name]
        assert answer.found and cited, (question, answer.text, [q.name for q in answer.citations])
        assert expected in answer.text or any(expected in q.text for q in cited)
        for quote in cited:
            assert library.page_text(quote.source, quote.page)[quote.start:quote.end] == quote.text


def test_sources_and_viewer_name_the_slide_and_mark_the_quote(library: Index) -> None:
    hit = next(h for h in library.search("Cell text 2 in the slide's table", k=8) if h.name == "deck.pptx")
    card = source_card(1, hit.quote, [hit], library, "citation", 0)
    assert '<span class="rag-page">slide 1</span>' in card and "Show the slide" in card
    viewer = render_viewer(hit.quote, library.page_text(hit.source, hit.page))
    assert 'aria-label="deck.pptx, slide 1"' in viewer and "<mark" in viewer
    assert "<table" in viewer  # the slide's table, rendered from its Markdown
    answer = library.ask("Who keeps the spare keys to the boathouse?")
    assert "message 1" in render_sources(answer, library)


def test_find_files_skips_unread_types_and_editor_files(tmp_path: Path) -> None:
    for name in ("a.docx", "b.DOCX", "~$a.docx", ".~lock.c.odt#", "d.tmp", "e.doc", "f.xyz", "g.pptx"):
        (tmp_path / name).write_bytes(b"x")
    skipped: list[Path] = []
    files, failures = find_files([tmp_path], skipped=skipped)
    assert [f.name for f in files] == ["a.docx", "b.DOCX", "g.pptx"] and failures == []
    assert skipped_summary(skipped) == "skipped 2 files of types not read (.doc, .xyz)"
    assert is_temporary("~WRL0005.tmp") and is_temporary("#notes.md#") and not is_temporary("notes.md")


def test_quote_place_defaults_to_page_for_unknown_and_pdf() -> None:
    assert Quote(text="x", source="/d/a.pdf", page=2, start=0, end=1).place == "page 2"
    assert Quote(text="x", source="/d/a.mbox", page=9, start=0, end=1).to_dict()["unit"] == "message"
    assert re.fullmatch(r"sheet \d+", Quote(text="x", source="/d/a.tsv", page=1, start=0, end=1).place)


def test_rag_docs_lists_slides_sheets_and_messages(library: Index, capsys: pytest.CaptureFixture[str]) -> None:
    from rag.serve.cli import main

    assert main(["docs", "--index", str(library.folder)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"deck\.pptx\t1 slide\t\d+ chunks", out) and re.search(r"q3\.xlsx\t2 sheets\t", out)
    assert re.search(r"keys\.eml\t1 message\t", out) and "8 documents" in out


def test_viewer_shows_a_sheet_as_its_page_with_the_quote_marked(library: Index) -> None:
    from rag.serve.web.viewer import viewer_html

    hit = next(h for h in library.search("Which office is Grace Kestrel in?", k=8) if h.name == "q3.xlsx")
    html_text = viewer_html(library, hit.quote)
    assert 'aria-label="q3.xlsx, sheet 2"' in html_text and "<mark" in html_text and "<table" in html_text
    assert "<img" not in html_text  # no page image for a sheet: its text is the page


def test_uploads_accept_the_new_types(tmp_path: Path) -> None:
    from rag.serve.uploads import add_uploads

    made = [make_xlsx(tmp_path / "q3.xlsx"), make_epub(tmp_path / "salt.epub"), tmp_path / "old.doc"]
    made[2].write_bytes(b"\xd0\xcf\x11\xe0")
    index = Index(tmp_path / "idx", FAST)
    stored, failed, report = add_uploads(index, [str(p) for p in made])
    assert sorted(name for name, _ in stored) == ["q3.xlsx", "salt.epub"]
    assert [Path(f.source).name for f in failed] == ["old.doc"] and "unsupported file type" in failed[0].reason
    assert report is not None and len(report.added) == 2


# --------------------------------------------------------------------------------------------
# An e-mail's attachments, each a document of its own named after the message


def make_invoice(path: Path, folder: Path, docx: bool = True) -> Path:
    """invoice.eml: a message with a two-page PDF, a Word file made by python-docx, and a damaged .docx."""
    import docx as python_docx

    message = make_message("Invoice 42", "Please find the invoice and the inspection report attached.")
    pdf = write_pdf(folder / "made-report.pdf", [
        "Inspection report for the harbour of Klaipeda. Summary of the findings follows.",
        "The harbour crane inspection was carried out by Oskar Lindqvist on 14 November.",
    ])
    message.add_attachment(pdf.read_bytes(), maintype="application", subtype="pdf", filename="report.pdf")
    if docx:
        document = python_docx.Document()
        document.add_heading("Catering", level=1)
        document.add_paragraph("The dock party's catering is provided by Marguerite Fontaine of Nantes.")
        document.save(folder / "made-menu.docx")
        message.add_attachment((folder / "made-menu.docx").read_bytes(), maintype="application",
                               subtype="vnd.openxmlformats-officedocument.wordprocessingml.document",
                               filename="menu.docx")
    message.add_attachment(b"PK\x03\x04 not really a zip", maintype="application",
                           subtype="vnd.openxmlformats-officedocument.wordprocessingml.document", filename="broken.docx")
    path.write_bytes(bytes(message))
    return path


@pytest.fixture(scope="module")
def mailroom(tmp_path_factory: pytest.TempPathFactory) -> tuple[Index, Path]:
    folder = tmp_path_factory.mktemp("mail")
    made = tmp_path_factory.mktemp("made")
    make_invoice(folder / "invoice.eml", made)
    (folder / "notes.md").write_text("# Notes\n\nThe ferry to Riga leaves at nine.\n", encoding="utf-8")
    return Index.build([folder], tmp_path_factory.mktemp("idx"), settings=FAST), folder


def test_attachments_indexed_as_their_own_documents_named_after_the_message(mailroom: tuple[Index, Path]) -> None:
    index, folder = mailroom
    eml = str((folder / "invoice.eml").resolve())
    report = index.last_report
    assert report is not None
    assert sorted(report.added) == sorted([eml, f"{eml}#attachment-1/report.pdf", f"{eml}#attachment-2/menu.docx",
                                           str((folder / "notes.md").resolve())])
    # The damaged attachment is reported with its reason; the message and the others are indexed.
    (failure,) = report.failed
    assert failure.source == eml and "attachment 'broken.docx' of message 1 not read: damaged or not a Word " \
        "document" in failure.reason and "\n" not in failure.reason
    documents = {d.source: d for d in index.documents()}
    assert documents[f"{eml}#attachment-1/report.pdf"].pages == 2
    assert documents[f"{eml}#attachment-1/report.pdf"].name == "report.pdf (attached to invoice.eml)"
    message = index.page_text(eml, 1)
    assert message is not None and "## Attachment: report.pdf" in message and "Oskar" not in message


def test_question_answered_only_by_the_attachment_cites_it_and_its_message(mailroom: tuple[Index, Path]) -> None:
    index, folder = mailroom
    eml = str((folder / "invoice.eml").resolve())
    for question, source, place, words in (
            ("Who carried out the harbour crane inspection?", f"{eml}#attachment-1/report.pdf", "page 2",
             "Oskar Lindqvist"),
            ("Who provides the catering of the dock party?", f"{eml}#attachment-2/menu.docx", "section 1",
             "Marguerite Fontaine")):
        answer = index.ask(question)
        cited = [q for q in answer.citations if q.source == source]
        assert answer.found and cited, (question, answer.text, [q.source for q in answer.citations])
        quote = cited[0]
        assert words in answer.text or words in quote.text
        assert quote.place == place and quote.name.endswith("(attached to invoice.eml)")
        assert index.page_text(quote.source, quote.page)[quote.start:quote.end] == quote.text
        assert "attached to invoice.eml" in source_card(1, quote, [], index, "citation", 0)


def test_a_search_in_a_message_reads_its_attachments_too(mailroom: tuple[Index, Path]) -> None:
    index, folder = mailroom
    eml = str((folder / "invoice.eml").resolve())
    hits = index.search("harbour crane inspection", k=10, sources=["invoice.eml"])
    assert hits and {h.chunk.source for h in hits} <= {eml, f"{eml}#attachment-1/report.pdf",
                                                        f"{eml}#attachment-2/menu.docx"}
    assert any(h.chunk.source == f"{eml}#attachment-1/report.pdf" for h in hits)
    # The attachment alone by its own name; a name's "_" and "%" are characters, not patterns.
    assert {h.chunk.source for h in index.search("inspection", k=10, sources=["report.pdf"])} == {
        f"{eml}#attachment-1/report.pdf"}
    assert index.search("inspection", k=10, sources=["invoice_eml"]) == []
    assert index.search("inspection", k=10, sources=["%"]) == []


def test_viewer_shows_an_attached_pdf_as_its_stored_text(mailroom: tuple[Index, Path]) -> None:
    from rag.serve.web.viewer import viewer_html

    index, folder = mailroom
    source = f"{(folder / 'invoice.eml').resolve()}#attachment-1/report.pdf"
    assert attached_to(source) == (str((folder / "invoice.eml").resolve()), None, "report.pdf")
    assert not has_page_images(source) and has_page_images(folder / "report.pdf")
    hit = next(h for h in index.search("harbour crane inspection", k=8) if h.source == source)
    html_text = viewer_html(index, hit.quote)
    assert "<mark" in html_text and "<img" not in html_text and "Oskar Lindqvist" in html_text
    with pytest.raises(RagError, match="an e-mail's attachment has no page images"):
        index.page_image(source, 2)


def test_attachments_follow_their_email_when_changed_or_removed(tmp_path: Path) -> None:
    folder, made = tmp_path / "mail", tmp_path / "made"
    folder.mkdir()
    made.mkdir()
    path = make_invoice(folder / "invoice.eml", made)
    index = Index.build([folder], tmp_path / "idx", settings=FAST)
    eml = str(path.resolve())
    pdf, menu = f"{eml}#attachment-1/report.pdf", f"{eml}#attachment-2/menu.docx"
    assert {pdf, menu} <= {d.source for d in index.documents()}
    report = index.ingest([folder])  # unchanged: the attachments stay
    assert report.unchanged == (eml,) and {pdf, menu} <= {d.source for d in index.documents()}
    make_invoice(path, made, docx=False)  # the Word file is no longer attached
    os.utime(path, (1, 1))
    index.ingest([folder])
    assert {d.source for d in index.documents()} == {eml, pdf}
    report = index.remove(["invoice.eml"])  # removing the e-mail by its name takes its attachments too
    assert sorted(report.removed) == [eml, pdf] and index.documents() == []
    assert sorted(index.ingest([folder]).added) == [eml, pdf]
    path.unlink()
    report = index.ingest([folder])
    assert sorted(report.removed) == [eml, pdf] and index.documents() == []
    assert not any(h.source == pdf for h in index.search("harbour crane inspection", k=8))
