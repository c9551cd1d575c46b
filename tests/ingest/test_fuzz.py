"""Random bytes and text against the loaders, the chunker and the upload names, for a bounded time.

Each property allows two outcomes only: the input is read into well-formed pages and chunks, or it
is refused with ``LoadError`` and a reason. Any other exception is a crash and fails the test.
A longer, coverage-guided run with atheris lives in ``bench/robustness/fuzz_atheris.py``.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import write_pdf
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bench.common import text_pdf

from rag.embed import model_token_counter
from rag.errors import LoadError
from rag.ingest.chunk import Chunker
from rag.file_types import supported_suffixes
from rag.ingest.load import html_to_text, load_file
from rag.settings import Settings
from rag.text import count_tokens, split_sentences
from rag.types import Page

ROOT = Path(__file__).resolve().parents[2]
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def chunker() -> Chunker:
    counter, limit = model_token_counter()
    return Chunker(Settings(chunk_tokens=48, chunk_overlap=8), counter, limit)


@functools.cache
def seed_pdfs() -> tuple[bytes, ...]:
    with tempfile.TemporaryDirectory() as folder:
        made = write_pdf(Path(folder) / "seed.pdf", ["Harbour log. The ferry left at noon.", "Second page, more text."])
        return made.read_bytes(), text_pdf(["Hello world page one", "Second page here"])


def _load_bytes(data: bytes, suffix: str) -> list[Page] | None:
    """Pages, or None when refused with a reason; anything else propagates and fails the test."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            pages = load_file(path, max_bytes=10_000_000, time_limit=30)
        except LoadError as exc:
            assert exc.reason.strip() and exc.source == str(path)
            return None
    assert [p.page for p in pages] == list(range(1, len(pages) + 1))
    for page in pages:
        assert "\x00" not in page.text
        page.text.encode("utf-8")  # no lone surrogates: SQLite and JSON take it as it is
    return pages


def _check_chunks(page: Page) -> None:
    chunks = chunker().chunk(page)
    counter, limit = model_token_counter()
    covered: set[int] = set()
    for chunk in chunks:
        assert page.text[chunk.start:chunk.end] == chunk.text and chunk.text.strip()
        assert count_tokens([chunk.text])[0] <= 48 and counter([chunk.text])[0] <= limit
        covered.update(range(chunk.start, chunk.end))
    # Nothing readable is dropped: every visible character of every sentence is in some chunk
    # (the spaces between two pieces of an over-long sentence may fall between chunks).
    for start, end in split_sentences(page.text):
        assert {i for i in range(start, end) if not page.text[i].isspace()} <= covered


@FUZZ
@given(data=st.binary(max_size=4096), suffix=st.sampled_from(sorted(supported_suffixes())))
def test_random_bytes_under_any_supported_name(data: bytes, suffix: str) -> None:
    pages = _load_bytes(data, suffix)
    for page in pages or []:
        _check_chunks(page)


@st.composite
def mutated_pdf(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(seed_pdfs())))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "duplicate", "digit"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 256))]
        elif kind == "duplicate":
            data[at:at] = data[at:at + draw(st.integers(1, 512))]
        elif kind == "digit" and data:
            # Numbers drive a PDF parser (offsets, lengths, counts, object numbers): change one.
            data[at:at + 1] = str(draw(st.integers(0, 10**9))).encode()
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=mutated_pdf())
def test_mutated_pdfs(data: bytes) -> None:
    pages = _load_bytes(data, ".pdf")
    for page in pages or []:
        _check_chunks(page)


_TAGS = ["p", "div", "span", "script", "style", "pre", "br", "table", "td", "title", "head", "svg", "b", "!--",
         "![CDATA[", "?xml", "template"]

_ATTRIBUTES = ["", " a=1", ' x="<>"', " /", ' on="js()"']
_ENTITIES = ["&amp;", "&#0;", "&#x110000;", "&bogus;", "&#99999999;", "&", "<", ">"]


@st.composite
def tag_soup(draw: st.DrawFn) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 60))):
        choice = draw(st.integers(0, 4))
        tag = draw(st.sampled_from(_TAGS))
        if choice == 0:
            attribute = draw(st.sampled_from(_ATTRIBUTES))
            parts.append(f"<{tag}{attribute}>")
        elif choice == 1:
            parts.append(f"</{tag}>")
        elif choice == 2:
            parts.append(draw(st.sampled_from(_ENTITIES)))
        else:
            parts.append(draw(st.text(max_size=40)))
    return "".join(parts)


@FUZZ
@given(html=tag_soup())
def test_html_tag_soup(html: str) -> None:
    text = html_to_text(html)
    assert isinstance(text, str)
    pages = _load_bytes(html.encode("utf-8"), ".html")
    for page in pages or []:
        _check_chunks(page)


@FUZZ
@given(text=st.text(max_size=3000), encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32"]))
def test_any_text_in_any_unicode_encoding_reads_back(text: str, encoding: str) -> None:
    assume(text.strip() and "\x00" not in text)
    pages = _load_bytes(text.encode(encoding), ".txt")
    if pages is None:
        return  # refused as binary: text made mostly of control characters
    assert pages[0].text == text
    _check_chunks(pages[0])


@FUZZ
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=4000))
def test_chunker_on_any_text(text: str) -> None:
    _check_chunks(Page("/fuzz.txt", 1, text))


@FUZZ
@given(words=st.lists(st.text(min_size=1, max_size=400), max_size=30),
       joiner=st.sampled_from([" ", "", "\n", ". ", "\n\n", "\u3002", "\t"]))
def test_chunker_on_long_words_and_odd_joins(words: list[str], joiner: str) -> None:
    _check_chunks(Page("/fuzz.txt", 2, joiner.join(words)))


# --------------------------------------------------------------------------------------------
# Upload names (the page stores uploads under names the library makes safe)


@FUZZ
@given(name=st.text(max_size=300))
def test_upload_names_never_leave_the_upload_folder(name: str) -> None:
    from rag.serve.uploads import safe_filename

    safe = safe_filename(name)
    assert safe and "/" not in safe and "\\" not in safe and "\x00" not in safe
    assert not safe.startswith(".") and safe not in (".", "..")
    assert len(safe.encode("utf-8")) <= 255
    folder = Path("/srv/index/uploads")
    assert (folder / safe).parent == folder


@pytest.mark.parametrize("name", ["..pdf", ".hidden.pdf", "..\\..\\etc\\passwd.txt", "a\nb.md", "\u202etxt.pdf",
                                  "CON.txt", "x" * 250 + ".pdf", "report.PDF", "ünïcödé résumé.html"])
def test_stored_uploads_stay_inside_the_folder(tmp_path: Path, name: str) -> None:
    from rag.serve.uploads import store_uploads

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    upload = incoming / name
    upload.write_text("Some text to index.")
    folder = tmp_path / "index" / "uploads"
    stored, refused = store_uploads([upload], folder)
    assert not refused
    [(original, path)] = stored
    assert original == name and path.parent == folder and path.is_file() and not path.is_symlink()
    assert not path.name.startswith(".")
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted([name, path.name])


# --------------------------------------------------------------------------------------------
# atheris, when it is installed: a short coverage-guided run of the same harness


@pytest.mark.slow
def test_atheris_finds_no_crash_in_a_short_run(tmp_path: Path) -> None:
    pytest.importorskip("atheris")
    result = subprocess.run([sys.executable, "-m", "bench.robustness.fuzz_atheris", "--seconds", "60",
                             "--corpus", str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Done" in result.stderr or "DONE" in result.stderr or "runs in" in result.stderr
