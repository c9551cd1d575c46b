"""The page's HTML: Markdown rendered, everything a document or a model wrote made inert, and the
quote's mark on exactly the quote's characters.

The HTML is parsed back with the standard library's parser (as a browser would build its tree)
to check what elements and attributes a hostile document could have produced.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from rag import Answer, Quote
from rag.serve.markdown_marks import markdown_html, passage_html, plain_html
from rag.serve.render import VIEW_CHARS, message_html, render_reply, render_viewer

HOSTILE = """# Notes

<script>alert('owned')</script>
<img src=x onerror=alert(1)>
<a href="javascript:alert(2)">click</a>
[a link](javascript:alert(3)) and [data](data:text/html;base64,PHNjcmlwdD5hbGVydCg0KTwvc2NyaXB0Pg==)
![pixel](http://tracker.example/p.gif) ![inline](data:image/png;base64,iVBORw0KGgo=)
<http://evil.example/login> and [fine](https://example.org/page "title")
<iframe src="http://evil.example"></iframe><svg onload=alert(5)></svg>
"""


class Tree(HTMLParser):
    """Every start tag with its attributes, and the text outside tags."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.marked: list[str] = []
        self._depth = 0
        self.feed(markup)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "mark":
            self._depth += 1
            self.marked.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "mark":
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._depth:
            self.marked[-1] += data

    def names(self) -> set[str]:
        return {tag for tag, _ in self.tags}


def test_a_hostile_document_renders_inert() -> None:
    out = markdown_html(HOSTILE)
    tree = Tree(out)
    assert tree.names() <= {"h1", "p", "a", "br", "span"}, tree.names()
    for tag, attrs in tree.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if tag == "a":
            assert attrs["href"] in ("http://evil.example/login", "https://example.org/page"), attrs
            assert attrs["rel"] == "noopener noreferrer nofollow" and attrs["target"] == "_blank"
    text = "".join(tree.text)
    # The raw HTML and the refused links are still there, as text to read.
    for shown in ("<script>alert('owned')</script>", "<img src=x onerror=alert(1)>", "[a link](javascript:alert(3))",
                  "(data:text/html;base64,", '<a href="javascript:alert(2)">click</a>', "<svg onload=alert(5)>"):
        assert shown in text
    assert "[image: pixel]" in text and "tracker.example" not in out, "no image is ever loaded"


def test_no_image_and_no_script_whatever_the_mark() -> None:
    for a in range(0, len(HOSTILE), 7):
        out = markdown_html(HOSTILE, (a, min(len(HOSTILE), a + 40)))
        names = Tree(out).names()
        assert not names & {"script", "img", "iframe", "svg", "style"}, (a, names)
        assert "javascript:" not in "".join(f"{v}" for _, attrs in Tree(out).tags for v in attrs.values())


def test_a_markdown_table_becomes_a_table() -> None:
    text = ("| fault | what the tool did | test |\n|---|---|---|\n| SIGKILL during save | the index was never lost "
            "| test_crash.py |\n| full disk | the write failed cleanly | test_reliability.py |\n")
    tree = Tree(markdown_html(text))
    assert [t for t, _ in tree.tags].count("table") == 1
    assert [t for t, _ in tree.tags].count("th") == 3 and [t for t, _ in tree.tags].count("td") == 6
    start = text.index("full disk")
    end = text.index(" | test_reliability")
    marked = Tree(markdown_html(text, (start, end))).marked
    assert marked == ["full disk", "the write failed cleanly"], "one mark per cell, no pipe marked"


def test_headings_lists_emphasis_and_code_render() -> None:
    text = "# Guide\n\n## Install\n\n- **Python 3.10+** is needed.\n- No *GPU*.\n\n`rag ingest docs/`\n\n```\nmake run\n```\n"
    names = Tree(markdown_html(text)).names()
    assert {"h1", "h2", "ul", "li", "strong", "em", "code", "pre"} <= names


@pytest.mark.parametrize("quote", [
    "**Python 3.10+** is needed.",         # starts at emphasis, inside a list item
    "Install",                             # a whole heading
    "is needed.\n- No *GPU*.",             # across two list items
    "No *GPU*.\n\n`rag ingest",            # into inline code of the next paragraph
    "rag ingest docs/",                    # inside inline code
    "make run",                            # inside a code block
    "## Install\n\n- **Python",            # from the heading's own markup on
])
def test_the_mark_covers_exactly_the_quote(quote: str) -> None:
    text = "# Guide\n\n## Install\n\n- **Python 3.10+** is needed.\n- No *GPU*.\n\n`rag ingest docs/`\n\n```\nmake run\n```\n"
    start = text.index(quote)
    tree = Tree(markdown_html(text, (start, start + len(quote))))
    # What is marked is the quote's characters as shown: the Markdown syntax in it is not text.
    shown = re.sub(r"^#+ |^- |\*|`", "", quote, flags=re.MULTILINE)
    assert re.sub(r"\s+", "", "".join(tree.marked)) == re.sub(r"\s+", "", shown)
    assert tree.names() >= {"h1", "h2", "ul"}, "marking did not break the structure"


def test_a_mark_that_markdown_cannot_keep_falls_back_to_exact_plain_text() -> None:
    text = "See [the guide](https://example.org/guide/install) for more."
    start = text.index("example.org")
    out = markdown_html(text, (start, start + 11))
    assert out == plain_html(text, (start, start + 11))
    assert Tree(out).marked == ["example.org"]


def test_plain_text_keeps_its_characters_and_marks_them() -> None:
    text = "1. not a list *not emphasis* <b>not bold</b>"
    out = passage_html(text, (3, 13), "/d/notes.txt")
    tree = Tree(out)
    assert tree.marked == ["not a list"] and "".join(tree.text) == text
    assert tree.names() == {"div", "mark"}


def test_a_passage_starting_inside_a_table_keeps_the_header() -> None:
    text = "| city | tide |\n|---|---|\n" + "".join(f"| town {i} | {i}.5 m |\n" for i in range(40))
    start = text.index("| town 30") + 2
    out = passage_html(text, (start, start + 7), "/d/tides.md", context=60)
    tree = Tree(out)
    assert [t for t, _ in tree.tags].count("th") == 2 and "city" in tree.text
    assert tree.marked == ["town 30"]
    # A chunk's context can bring the header when the passage itself starts mid-table:
    rows = "".join(f"| town {i} | {i}.5 m |\n" for i in range(3))
    for context in ("Tides\n| city | tide |\n|---|---|", "Tides · | city | tide |"):  # the second as rag.ingest.chunk has it
        out = passage_html(rows, (2, 8), "/d/tides.md", header=context)
        assert [t for t, _ in Tree(out).tags].count("th") == 2 and Tree(out).marked == ["town 0"], context


def test_answers_never_link_and_keep_code_blocks_whole() -> None:
    text = "Go to http://evil.example/login or [here](https://evil.example) <https://x.example> a@evil.example.\n\n" \
           "```\n    indented\n\nafter a blank line\n```"
    out = message_html(text)
    assert "\n" not in out, "one line: the chat's cleandoc cannot re-indent it"
    tree = Tree(out)
    assert "a" not in tree.names() and "href" not in out
    shown = "".join(tree.text)
    assert "http://evil.example/login" in shown and "a@evil.example" in shown
    assert "    indented\n\nafter a blank line" in shown
    # Text an autolinker could turn into a link is written with character references:
    assert not re.search(r"https?://|www\.|\w@\w", out)


def test_reply_lists_where_the_quotes_are() -> None:
    quote = Quote(text="Mrs. Maryam Rajavi has called", source="/d/seed.txt", page=1, start=0, end=29)
    answer = Answer(question="q", text="**Mrs. Maryam Rajavi** has called [1]", found=True, citations=(quote,),
                    hits=(), mode="extractive", query="Who called? <b>x</b>", span="Mrs. Maryam Rajavi", kind="fact")
    out = render_reply(answer)
    tree = Tree(out)
    text = "".join(tree.text)
    assert "strong" in tree.names() and "[1] seed.txt, page 1" in text and "searched: Who called? <b>x</b>" in text
    assert "b" not in tree.names()
    # A fact: its span alone as the headline, then its sentence with the span in bold.
    assert out.startswith('<p class="rag-headline">Mrs. Maryam Rajavi</p>') and "has called [1]" in text


def test_the_viewer_shows_the_whole_document_with_the_quote_marked() -> None:
    page = "# Tides\n\nHigh tide in Brest reached 7.2 metres.\n\n| port | master |\n|---|---|\n| Brest | Yannick Le Goff |\n"
    start = page.index("Yannick")
    quote = Quote(text="Yannick Le Goff", source="/d/tides.md", page=1, start=start, end=start + 15, ocr=True)
    out = render_viewer(quote, page)
    tree = Tree(out)
    assert tree.marked == ["Yannick Le Goff"] and {"h1", "table"} <= tree.names()
    assert "read by OCR" in "".join(tree.text)
    assert ("div", {"class": "rag-viewer", "role": "dialog", "aria-modal": "true",
                    "aria-label": "tides.md, page 1"}) in tree.tags
    changed = render_viewer(quote, page.replace("Yannick", "Jean"))
    assert "no longer at its place" in changed and not Tree(changed).marked


def test_the_viewer_shows_a_window_of_a_huge_document() -> None:
    page = "".join(f"Line {i} of a very long log file.\n" for i in range(40_000))
    start = page.index("Line 30000 ")
    quote = Quote(text="Line 30000", source="/d/log.txt", page=1, start=start, end=start + 10)
    out = render_viewer(quote, page)
    assert len(out) < VIEW_CHARS * 1.2 and Tree(out).marked == ["Line 30000"]
    assert "around the quote" in out


def test_the_viewer_draws_boxes_over_a_page_image() -> None:
    from rag.types import TextBox

    quote = Quote(text="twelve hectares", source="/d/orchard.pdf", page=2, start=10, end=25)
    page = "The field twelve hectares near Lyon."
    out = render_viewer(quote, page, png=b"\x89PNG fake", size=(918, 1188),
                        boxes=(TextBox(10, 25, 0.1, 0.2, 0.35, 0.225),))
    tree = Tree(out)
    image = next(attrs for tag, attrs in tree.tags if tag == "img")
    assert str(image["src"]).startswith("data:image/png;base64,") and image["width"] == "918"
    box = next(attrs for tag, attrs in tree.tags if tag == "span" and attrs.get("class") == "rag-box")
    assert box["style"] == "left:10.000%;top:20.000%;width:25.000%;height:2.500%"
