"""Text that is on a page but says nothing: navigation bars, cookie notices, page furniture.

A web page saved as HTML carries its menu ("Home About Contact Us Site Map"), a PDF its running
header and page number; retrieval finds them beside the question's words, and the reader, asked
"what do we do after a flood disaster?", answered "Contact Us Site Map". ``is_boilerplate`` tells
such a line or sentence apart so that answers neither quote nor read it; ``repeated_lines`` finds
the running headers and footers of a many-page document (a line on most of its pages).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

_NOTICE = re.compile(
    r"(?i)\b(?:cookies?|skip to (?:main )?content|all rights reserved|copyright\s*(?:©|\(c\))?\s*\d{4}|"
    r"privacy (?:policy|statement|notice)|terms (?:of (?:use|service)|and conditions)|site ?map|"
    r"(?:sign|log) ?(?:in|up|out)\b|subscribe to (?:our|the) newsletter|follow us on|share (?:this|on)|"
    r"back to top|print this page|was this (?:page|article) helpful|javascript (?:is )?(?:disabled|required)|"
    r"enable javascript|page \d+ of \d+)")
_NAV_WORDS = frozenset(
    "home about contact us site map sitemap menu search login log in sign up help faq faqs news careers "
    "privacy terms accessibility feedback skip main content navigation next previous back top print share "
    "subscribe follow language english español español français deutsch more resources services".split())
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?|\d+")
_VERBISH = re.compile(r"(?i)\b(?:is|are|was|were|be|been|has|have|had|do|does|did|can|could|will|would|should|may|"
                      r"must|shall|\w+(?:ed|es|ing))\b")


def is_boilerplate(text: str) -> bool:
    """True for page furniture: a notice (cookies, copyright, "Skip to content") or a run of menu
    words with no sentence in it ("Contact Us Site Map", "Home | About | Services").

    Example:
        >>> is_boilerplate("Contact Us Site Map"), is_boilerplate("Call the county office after a flood.")
        (True, False)
    """
    words = _WORD.findall(text)
    if not words:
        return True
    if len(words) <= 40 and _NOTICE.search(text) and not _ends_like_sentence(text, words):
        return True
    lowered = [w.lower() for w in words]
    nav = sum(w in _NAV_WORDS for w in lowered)
    if nav >= 2 and nav >= 0.5 * len(words) and not _VERBISH.search(text):
        return True
    # A menu: many short capitalised items, no sentence punctuation, no verb.
    capitalised = sum(w[0].isupper() for w in words if w[0].isalpha())
    separators = len(re.findall(r"\s[|•·»>/]\s|\t", text))
    return (len(words) >= 4 and capitalised >= 0.8 * len(words) and not re.search(r"[.!?:;,]", text)
            and not _VERBISH.search(text) and (separators >= 2 or nav >= 2))


def _ends_like_sentence(text: str, words: Sequence[str]) -> bool:
    """A real sentence that mentions cookies or a copyright ("The law protects copyright for 70 years.")."""
    return len(words) >= 8 and text.rstrip().endswith((".", "!", "?")) and bool(_VERBISH.search(text))


def repeated_lines(pages: Sequence[str], share: float = 0.5, min_pages: int = 3) -> frozenset[str]:
    """Lines (whitespace folded, digits as "#") found on at least ``share`` of ``pages``: running
    headers and footers ("ACME Corp. 2023 Annual Report", "Page # of #").

    Example:
        >>> sorted(repeated_lines(["Report\\nA.\\n1", "Report\\nB.\\n2", "Report\\nC.\\n3"]))
        ['#', 'Report']
    """
    if len(pages) < min_pages:
        return frozenset()
    counts: Counter[str] = Counter()
    for text in pages:
        counts.update({line_key(line) for line in text.splitlines() if line.strip()})
    return frozenset(line for line, n in counts.items() if n >= max(min_pages, share * len(pages)))


def line_key(line: str) -> str:
    """A line as ``repeated_lines`` compares it: whitespace folded, every digit run a "#"."""
    return re.sub(r"\d+", "#", " ".join(line.split()))


__all__ = ["is_boilerplate", "line_key", "repeated_lines"]
