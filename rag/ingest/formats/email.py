"""E-mail: ``.eml`` (one message) and ``.mbox`` (a mailbox) through the standard library's
``email`` (default policy) and ``mailbox``: one page per message, cited as "message 14".

A message's page opens with a heading made of its subject, sender, recipients and date, which
the chunker gives every passage of it as context, then those four headers as lines, then the
body (plain text preferred; HTML read as text). Each attachment of a type the index reads (a
.docx, a .pdf, a .csv ...) is read by its own format into a document of its own
(``FileRead.attached``), named after the message (``rag.file_types.attachment_source``:
``/mail/invoice.eml#attachment-1/report.pdf``), so a quote from it is cited as "page 2 of
report.pdf (attached to invoice.eml)"; the message's page names it under "## Attachment: NAME".
An attachment over ``MAX_ATTACHMENT_BYTES`` is measured from its encoded size and never decoded;
one that cannot be read is a note with its reason, and the message is indexed all the same.

Example:
    >>> # read_eml(Path("invoice.eml"), ReadContext()).pages[0].text.splitlines()[0]
    >>> # '# Invoice 42 (from Ann <ann@example.com>, to bob@example.com, 2024-03-01)'
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import hashlib
import email.utils
import mailbox
import re
import tempfile
from email.message import EmailMessage, Message
from pathlib import Path

from rag.errors import LoadError
from rag.file_types import attachment_source, format_for
from rag.ingest.formats.common import MAX_ATTACHMENT_BYTES, MAX_MESSAGES
from rag.ingest.load import html_to_text
from rag.ingest.pdf import clean_text
from rag.ingest.reading import Attached, FileRead, ReadContext, read_with
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
    attached: list[Attached] = []
    text = message_text(message, 1, notes, context, _Attaching(source, None, attached))
    if not text.strip():
        raise LoadError(source, "no text in the message")
    return FileRead(pages=[Page(source=source, page=1, text=text)], notes=tuple(notes), attached=tuple(attached))


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
    attached: list[Attached] = []
    try:
        for number, key in enumerate(keys, 1):
            raw = box.get_bytes(key)
            message = email.message_from_bytes(raw, policy=email.policy.default)
            text = message_text(message, number, notes, context, _Attaching(source, number, attached))
            pages.append(Page(source=source, page=number, text=text))
    finally:
        box.close()
    if not any(page.text.strip() for page in pages):
        raise LoadError(source, "no messages in the mailbox (an mbox file starts each one with a 'From ' line)")
    return FileRead(pages=pages, notes=tuple(notes), attached=tuple(attached))


@dataclasses.dataclass(frozen=True)
class _Attaching:
    """Where a message's attachments go: the e-mail file, the message's number in a mailbox (None
    in an .eml), and the list of documents read from them."""

    container: str
    message: int | None
    out: list[Attached]


def message_text(message: EmailMessage, number: int, notes: list[str], context: ReadContext,
                 attaching: _Attaching | None = None) -> str:
    """A message as its page text: heading, headers, body, and the names of its attachments, which
    are read into ``attaching.out`` as documents of their own (without ``attaching``, not read)."""
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
    if message.is_multipart() and attaching is not None:
        # (a single-part message has no attachment, and asking costs a header parse)
        lines += _attachments(message, number, notes, context, attaching)
    return clean_text("\n".join(lines))


def _content(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
    except (LookupError, ValueError, AssertionError):
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else ""


def _attachments(message: EmailMessage, number: int, notes: list[str], context: ReadContext,
                 attaching: _Attaching) -> list[str]:
    """Each attachment of a type the index reads, read by its format into ``attaching.out``; the
    lines that name them in the message's page.

    The attachment's text is not repeated in the message's page. Twice indexed, each passage
    would be found twice: the two copies would take two of a search's few places, and a quote
    could cite the message where the attachment says it ("message 1" instead of "page 2 of
    report.pdf"). The page keeps the attachment's name under "## Attachment: NAME", so a search
    for the message still says what came with it, and the attachment's source starts with the
    message's, so each is found from the other.
    """
    out: list[str] = []
    for position, part in enumerate(message.iter_attachments(), 1):
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
        # Numbered by its place among the message's attachments, so the name stays the same when
        # the message is read again, and two attachments of one name stay two documents.
        source = attachment_source(attaching.container, position, name, attaching.message)
        safe = re.sub(r"[^\w.-]+", "_", Path(name).name)[-100:] or "attachment"
        with tempfile.TemporaryDirectory(prefix="rag-attachment-") as folder:
            file = Path(folder) / safe
            file.write_bytes(data)
            try:
                read = read_with(fmt, file, context)
            except LoadError as exc:
                notes.append(f"{where} not read: {exc.reason}")
                continue
        pages = [dataclasses.replace(page, source=source) for page in read.pages]
        if not any(page.text.strip() for page in pages):
            notes.append(f"{where} not read: no text in it")
            continue
        notes += [f"{where}: {note}" for note in read.notes]
        attaching.out.append(Attached(source=source, pages=pages, sha256=hashlib.sha256(data).hexdigest(),
                                      size=len(data)))
        out += ["", f"## Attachment: {Path(source).name}", "", "(indexed as a document of its own)"]
    return out
