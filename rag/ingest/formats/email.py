"""E-mail: ``.eml`` (one message) and ``.mbox`` (a mailbox) through the standard library's
``email`` (default policy) and ``mailbox``: one page per message, cited as "message 14".

A message's page opens with a heading made of its subject, sender, recipients and date, which
the chunker gives every passage of it as context, then those four headers as lines, then the
body (plain text preferred; HTML read as text). Attachments of a type the index reads (a
.docx, a .pdf, a .csv ...) are read by their own format and their text follows the message's under
"## Attachment: NAME", so a quote from one is cited as the message it came with. An attachment
over ``MAX_ATTACHMENT_BYTES`` is measured from its encoded size and never decoded.

Example:
    >>> # read_eml(Path("invoice.eml"), ReadContext()).pages[0].text.splitlines()[0]
    >>> # '# Invoice 42 (from Ann <ann@example.com>, to bob@example.com, 2024-03-01)'
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import mailbox
import re
import tempfile
from email.message import EmailMessage, Message
from pathlib import Path

from rag.errors import LoadError
from rag.file_types import format_for
from rag.ingest.formats.common import MAX_ATTACHMENT_BYTES, MAX_MESSAGES
from rag.ingest.load import html_to_text
from rag.ingest.pdf import clean_text
from rag.ingest.reading import FileRead, ReadContext, read_with
from rag.types import Page

_MAILBOX_SUFFIXES = (".eml", ".mbox")
"""Attachments of these types are not opened: a message inside a message is read as its text."""


def read_eml(path: Path, context: ReadContext) -> FileRead:
    """One message as one page."""
    source = str(path)
    try:
        with path.open("rb") as f:
            message = email.message_from_binary_file(f, policy=email.policy.default)
    except OSError as exc:
        raise LoadError(source, f"cannot read the file ({exc.strerror or exc})") from None
    if not message.keys():
        raise LoadError(source, "not an e-mail message (no headers)")
    notes: list[str] = []
    text = message_text(message, 1, notes, context)
    if not text.strip():
        raise LoadError(source, "no text in the message")
    return FileRead(pages=[Page(source=source, page=1, text=text)], notes=tuple(notes))


def read_mbox(path: Path, context: ReadContext) -> FileRead:
    """Each message of a mailbox as a page, in the mailbox's order, up to ``MAX_MESSAGES``."""
    source = str(path)
    try:
        box = mailbox.mbox(str(path), factory=None, create=False)
        keys = box.keys()
    except (OSError, mailbox.Error) as exc:
        raise LoadError(source, f"cannot read the mailbox ({exc})") from None
    notes: list[str] = []
    if len(keys) > MAX_MESSAGES:
        notes.append(f"messages {MAX_MESSAGES + 1}-{len(keys)} over the limit of {MAX_MESSAGES:,}")
        keys = keys[:MAX_MESSAGES]
    pages: list[Page] = []
    try:
        for number, key in enumerate(keys, 1):
            raw = box.get_bytes(key)
            message = email.message_from_bytes(raw, policy=email.policy.default)
            pages.append(Page(source=source, page=number, text=message_text(message, number, notes, context)))
    finally:
        box.close()
    if not any(page.text.strip() for page in pages):
        raise LoadError(source, "no messages in the mailbox (an mbox file starts each one with a 'From ' line)")
    return FileRead(pages=pages, notes=tuple(notes))


def message_text(message: EmailMessage, number: int, notes: list[str], context: ReadContext) -> str:
    """A message as its page text: heading, headers, body, readable attachments."""
    headers = {name: " ".join(str(message.get(name, "") or "").split()) for name in ("From", "To", "Date", "Subject")}
    when = headers["Date"]
    try:
        parsed = email.utils.parsedate_to_datetime(when) if when else None
        when = parsed.date().isoformat() if parsed is not None else when
    except (TypeError, ValueError):
        pass
    about = ", ".join(part for part in (f"from {headers['From']}" if headers["From"] else "",
                                         f"to {headers['To']}" if headers["To"] else "", when) if part)
    heading = "# " + (headers["Subject"] or "(no subject)") + (f" ({about})" if about else "")
    lines = [heading, "", *(f"{name}: {value}" for name, value in headers.items() if value), ""]
    body = message.get_body(preferencelist=("plain", "html"))
    if body is not None:
        content = _content(body)
        if body.get_content_type() == "text/html":
            content = html_to_text(content)
        lines.append(content)
    if message.is_multipart():  # a single-part message has no attachment, and asking costs a header parse
        lines += _attachments(message, number, notes, context)
    return clean_text("\n".join(lines))


def _content(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, ValueError, AssertionError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else ""


def _attachments(message: EmailMessage, number: int, notes: list[str], context: ReadContext) -> list[str]:
    out: list[str] = []
    for part in message.iter_attachments():
        name = part.get_filename() or ""
        fmt = format_for(name) if name else None
        if fmt is None or Path(name).suffix.lower() in _MAILBOX_SUFFIXES:
            continue
        encoded = part.get_payload()
        size = len(encoded) * 3 // 4 if isinstance(encoded, str) else 0
        where = f"attachment {name!r} of message {number}"
        if size > MAX_ATTACHMENT_BYTES:
            notes.append(f"{where} ({size / 1e6:.0f} MB) over the {MAX_ATTACHMENT_BYTES / 1e6:.0f} MB attachment "
                         "limit, not read")
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes) or not data:
            continue
        safe = re.sub(r"[^\w.-]+", "_", Path(name).name)[-100:] or "attachment"
        with tempfile.TemporaryDirectory(prefix="rag-attachment-") as folder:
            file = Path(folder) / safe
            file.write_bytes(data)
            try:
                pages = read_with(fmt, file, context).pages
            except LoadError as exc:
                notes.append(f"{where} not read: {exc.reason}")
                continue
        text = "\n\n".join(page.text for page in pages if page.text.strip())
        if text:
            out += ["", f"## Attachment: {' '.join(name.split())}", "", text]
    return out
