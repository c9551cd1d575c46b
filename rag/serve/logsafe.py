"""Log lines that cannot write to the terminal: control characters from requests are escaped.

A request path, a header or a file name can hold ESC, BEL, CR and LF: printed raw, they set the
terminal's title, move its cursor or forge a whole log line ("...\\nINFO: admin logged in").
``install`` makes every log record of the process escape them (``\\x1b``, ``\\n``) in its
message and arguments; the servers install it when they start.

Example:
    >>> import logging
    >>> install()
    >>> logging.getLogger("rag").warning("path %s", "/a\\x1b]0;PWNED\\x07")
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any


def escape_controls(text: str) -> str:
    """``text`` with control characters (ESC, BEL, CR, LF, C1...) written as escapes, for one log line.

    Example:
        >>> print(escape_controls("a\\x1b]0;PWNED\\x07\\nFAKE"))
        a\\x1b]0;PWNED\\x07\\nFAKE
    """
    return _CONTROLS.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escaped(value: Any) -> Any:
    return escape_controls(value) if isinstance(value, str) else value


def install() -> None:
    """Escape control characters in every log record made from now on, by any logger of this process.

    A record factory rather than a handler filter: uvicorn and Gradio configure their own handlers
    when they start, and the factory sees every record whichever handler prints it. The message
    and each text argument are escaped apart, so formatters that read ``record.args`` (uvicorn's
    access log) still work.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "escapes_controls", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.msg = _escaped(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_escaped(a) for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {k: _escaped(v) for k, v in record.args.items()}
        return record

    factory.escapes_controls = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
