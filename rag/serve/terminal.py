"""Document text made harmless for a terminal.

A file name or a passage can hold escape sequences: printed raw, they recolour or clear the
screen, rewrite the window title, move the cursor over earlier lines (hiding a warning), or, on
some terminals, answer back with keystrokes. What reaches a terminal from the CLI goes through
``strip_controls``; a pipe or a file gets the text unchanged, and ``--json`` escapes C0 controls
itself.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from typing import TextIO

# ESC sequences whole (CSI "ESC [ ... final", OSC "ESC ] ... BEL|ST", DCS/PM/APC/SOS up to ST,
# and two-character ones), then any other control: C0 but tab and newline, DEL, and C1, which
# some terminals obey as 8-bit CSI (U+009B) or OSC (U+009D).
_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -~]?")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_controls(text: str) -> str:
    """``text`` without escape sequences or control characters (tab and newline stay).

    Example:
        >>> strip_controls("\\x1b[2J\\x1b]0;pwned\\x07report\\x9b31m.pdf")
        'report31m.pdf'
    """
    return _CONTROL.sub("", _SEQUENCE.sub("", text))


def terminal_safe(text: str, stream: TextIO | None = None) -> str:
    """``text`` stripped of controls when ``stream`` (default stdout) is a terminal, else unchanged."""
    stream = sys.stdout if stream is None else stream
    return strip_controls(text) if _isatty(stream) else text


class _Filtered:
    """A text stream that strips controls from everything written to it."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(strip_controls(text))
        return len(text)

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


@contextlib.contextmanager
def safe_stdout() -> Iterator[None]:
    """While inside, what is printed to a terminal on stdout is stripped of controls."""
    original = sys.stdout
    if not _isatty(original):
        yield
        return
    sys.stdout = _Filtered(original)  # typeshed types sys.stdout as TextIO | Any
    try:
        yield
    finally:
        sys.stdout = original


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, ValueError, OSError):
        return False
