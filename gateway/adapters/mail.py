"""SMTP sending and IMAP reply/bounce fetching over the standard library, through the SSRF guard."""

from __future__ import annotations

import binascii
import contextlib
import email
import email.policy
import imaplib
import re
import smtplib
import ssl
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.errors import HeaderParseError
from email.header import Header, decode_header, make_header
from email.message import Message
from email.utils import escapesre, getaddresses, make_msgid, parseaddr, parsedate_to_datetime, specialsre
from typing import Any, ClassVar
from urllib.parse import urlsplit

import idna

from gateway.adapters.base import Adapter, FieldSpec
from gateway.capabilities import Capability, InboundKind, InboundMessage, OutgoingEmail, SendResult
from gateway.dkimsign import DkimSigningError, dkim_sign
from gateway.errors import ErrorKind, ProviderError, classify_exception
from gateway.ssrf import UnsafeURL, check_host, check_url, guarded_create_connection
from gateway.tls import tls_context


def _server_from(adapter: _MailServerAdapter) -> tuple[str, int, str]:
    """(host, port, security) from the account's base URL, e.g. ``smtp://mail.example.com:587``.

    The scheme decides TLS (``adapter.schemes``): ``smtp``/``imap`` STARTTLS, ``smtps``/``imaps``
    implicit TLS, ``smtp+plain``/``imap+plain`` no TLS (local catchers only). The same URL was checked by
    the SSRF guard on save; the connection checks the resolved address again.
    """
    if not adapter.base_url:
        raise adapter.fail(ErrorKind.BAD_INPUT, f"No mail server configured: {adapter.base_url_help}")
    try:
        check_url(adapter.base_url, resolve=False, schemes=adapter.url_schemes)
    except UnsafeURL as exc:
        raise adapter.fail(ErrorKind.BAD_INPUT, str(exc)) from exc
    parts = urlsplit(adapter.base_url)
    scheme = parts.scheme.lower()
    return str(parts.hostname), parts.port or adapter.url_schemes[scheme], adapter.schemes[scheme]


def ascii_domain(domain: str) -> str:
    """A domain as it goes into SMTP commands and ASCII headers: itself when ASCII, else its IDNA 2008
    A-label (UTS #46 mapping, ``idna`` package; RFC 5890): ``bücher.example`` → ``xn--bcher-kva.example``.
    Raises ValueError for a domain that is not a valid IDN."""
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"invalid internationalized domain {domain!r}: {exc}") from exc


def smtp_mailbox(address: str) -> tuple[str, bool]:
    """(address to put on the wire, whether it needs SMTPUTF8) for one bare ``local@domain`` address.

    RFC 6531: a non-ASCII local part can only travel with SMTPUTF8; a non-ASCII domain alone is written
    as its A-label (`ascii_domain`), which every server accepts. Raises ValueError for a domain that is
    not a valid IDN.
    """
    local, _, domain = address.rpartition("@")
    if not local.isascii():
        return address, True
    return f"{local}@{ascii_domain(domain)}", False


# Headers the adapter writes itself; ``OutgoingEmail.headers`` may not set them.
_OWN_HEADERS = frozenset(
    {"from", "to", "subject", "message-id", "date", "reply-to", "bcc", "cc", "mime-version", "content-type",
     "content-transfer-encoding"}
)  # fmt: skip


def _norm_id(value: str) -> str:
    return value.strip().strip("<>").strip().lower()


def _ids(value: str | None) -> list[str]:
    return [m.lower() for m in re.findall(r"<([^<>\s]+)>", value or "")]


FOLD_AT = 78  # RFC 5322 §2.1.1: lines SHOULD be at most 78 characters (and MUST be at most 998)
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def _folded_ascii(name: str, value: str) -> str | None:
    """``value`` folded at its spaces so lines stay within 78 characters where a space allows it (RFC 5322
    §2.2.3), lines joined with CRLF + space, or None when it is not plain printable ASCII or a word would
    make a line pass 998.

    The standard library's folding turns a word longer than a line into RFC 2047 encoded-words, which is
    wrong for structured headers such as ``List-Unsubscribe: <https://…long…>`` (RFC 2369 wants the URLs
    as written: mail clients did not find them); a long word is kept whole on its own line instead."""
    if not value.isascii() or _CONTROL.search(value):
        return None
    lines, line, room = [], "", FOLD_AT - len(name) - 2
    for word in value.split(" "):
        if line and len(line) + 1 + len(word) > room:
            lines.append(line)
            line, room = word, FOLD_AT - 1
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    if len(name) + 2 + len(lines[0]) > 998 or any(len(x) + 1 > 998 for x in lines[1:]):
        return None
    return "\r\n ".join(lines)


def _header_line(name: str, value: str, policy: email.policy.EmailPolicy) -> bytes:
    """One header field as wire bytes ending in CRLF. Plain ASCII values are folded as written
    (`_folded_ascii`, much cheaper than the header parser); anything else goes through ``policy``'s header
    factory (non-ASCII: RFC 2047 encoded-words, or raw UTF-8 under an SMTPUTF8 policy). Raises ValueError
    for a line break in the value (header injection), like ``EmailMessage.__setitem__``."""
    if "\r" in value or "\n" in value:
        raise ValueError("Header values may not contain linefeed or carriage return characters")
    folded = _folded_ascii(name, value)
    if folded is not None:
        return f"{name}: {folded}\r\n".encode("ascii")
    return policy.fold_binary(name, value)


def mailbox_line(field: str, name: str, address: str) -> bytes:
    """One address header field (From, To, Reply-To) with one mailbox, as wire bytes ending in CRLF:
    ``Field: Name <local@domain>``, or the bare address when ``name`` is empty.

    The domain is written as its IDNA A-label (`smtp_mailbox`, RFC 5890: ``news@bücher.example`` →
    ``news@xn--bcher-kva.example``), so the header agrees with the envelope. An ASCII display name is a
    quoted-string when it holds RFC 5322 specials (``"Acme, Inc."``, quotes and backslashes escaped,
    ``email.utils.formataddr``'s rule); any other name is written as RFC 2047 encoded-words of at most 75
    characters, folded (``email.header.Header``), which every reader decodes. A non-ASCII local part stays
    as written (valid only in an SMTPUTF8 message, RFC 6532). Raises ValueError for an invalid
    internationalized domain or a line that would pass 998 characters."""
    wire, _international = smtp_mailbox(address)
    if not name:
        display = ""
    elif name.isascii() and not _CONTROL.search(name):
        display = '"' + escapesre.sub(r"\\\g<0>", name) + '"' if specialsre.search(name) else name
    else:
        display = Header(name, "utf-8", header_name=field).encode(linesep="\r\n")
    if not display:
        line = f"{field}: {wire}"
    else:
        last = f"{field}: {display}".rpartition("\r\n")[2]
        fold = "\r\n " if len(last) + len(wire) + 3 > FOLD_AT else " "
        line = f"{field}: {display}{fold}<{wire}>"
    if any(len(part.encode()) > 998 for part in line.split("\r\n")):
        raise ValueError(f"the {field} header would pass 998 characters")
    return line.encode("utf-8") + b"\r\n"


def _body_part(text: str, subtype: str) -> tuple[bytes, bytes]:
    """(MIME part headers, encoded body) of one UTF-8 text part, CRLF line endings, the body ending with
    CRLF. 7bit when the text is ASCII with lines of at most 78 characters, else quoted-printable
    (``binascii.b2a_qp``, RFC 2045 §6.7: soft breaks keep every line within 76 characters)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    raw = text.encode("utf-8")
    if raw.isascii() and all(len(line) <= FOLD_AT for line in raw.split(b"\n")):
        cte, body = b"7bit", raw
    else:
        cte, body = b"quoted-printable", binascii.b2a_qp(raw, istext=True)
    head = b'Content-Type: text/%s; charset="utf-8"\r\nContent-Transfer-Encoding: %s\r\n' % (
        subtype.encode("ascii"),
        cte,
    )
    return head, body.replace(b"\n", b"\r\n")


def mime_body(text: str, html: str) -> tuple[bytes, bytes]:
    """(top-level MIME headers incl. ``MIME-Version``, body) for a text and/or HTML message:
    multipart/alternative (text first, RFC 2046 §5.1.4: the preferred last) when both are given, the one
    part otherwise. The layout is what ``EmailMessage.set_content`` + ``add_alternative`` write."""
    parts = [_body_part(t, subtype) for t, subtype in ((text, "plain"), (html, "html")) if t]
    if len(parts) == 1:
        return b"MIME-Version: 1.0\r\n" + parts[0][0], parts[0][1]
    boundary = b"=_" + uuid.uuid4().hex.encode("ascii")
    while any(boundary in body for _head, body in parts):  # "=_" cannot occur in quoted-printable
        boundary = b"=_" + uuid.uuid4().hex.encode("ascii")
    body = b"".join(b"--%s\r\n%s\r\n%s\r\n" % (boundary, head, part) for head, part in parts)
    head = b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="%s"\r\n' % boundary
    return head, body + b"--%s--\r\n" % boundary


@dataclass(frozen=True)
class WireMessage:
    """A message ready for ``sendmail``: envelope addresses as they go on the wire (IDNA domains),
    whether it needs SMTPUTF8, its Message-ID and its bytes (CRLF, DKIM-signed when a key was given)."""

    envelope_from: str
    recipient: str
    international: bool
    message_id: str
    data: bytes


class _GuardedSMTP(smtplib.SMTP):
    def _get_socket(self, host, port, timeout):
        return guarded_create_connection(host, port, timeout, source_address=self.source_address)


class _GuardedSMTPSSL(smtplib.SMTP_SSL):
    def _get_socket(self, host, port, timeout):
        sock = guarded_create_connection(host, port, timeout, source_address=self.source_address)
        return self.context.wrap_socket(sock, server_hostname=self._host)


class _MailServerAdapter(Adapter):
    """A mail server is configured by one base URL, ``scheme://host[:port]``; the scheme picks TLS."""

    credential_fields = ("username", "password")
    default_base_url = ""
    field_specs = {
        "username": FieldSpec("User name", "The login the mail server expects (often the address)."),
        "password": FieldSpec("Password", "The mailbox or app password.", kind="secret"),
        "verify_tls": FieldSpec(
            "Verify the server's certificate",
            "Leave on. Turn off only for a local demo server with a self-signed certificate.",
            kind="bool",
        ),
    }
    base_url_required = True
    schemes: ClassVar[dict[str, str]] = {}  # URL scheme -> "starttls" | "ssl" | "none"

    @property
    def server(self) -> tuple[str, int, str]:
        return _server_from(self)

    def tls_context(self) -> ssl.SSLContext:
        """System trust store plus the account's ``ca_pem``; option ``verify_tls: false`` (demo servers
        only) turns verification off."""
        return tls_context(ca_pem=self.ca_pem, verify=self.options.get("verify_tls") is not False)


class SMTPAdapter(_MailServerAdapter):
    """Sends mail over one reused SMTP connection per adapter instance.

    Message-IDs are ours (the caller's, or minted on the From domain) so replies and bounces can be
    matched later by the IMAP adapter.
    """

    key = "smtp"
    label = "SMTP"
    capabilities = frozenset({Capability.SEND_EMAIL})
    option_fields = ("from_email", "from_name", "reply_to", "verify_tls")
    docs_url = "https://www.rfc-editor.org/rfc/rfc6409"
    field_specs = {
        **_MailServerAdapter.field_specs,
        "from_email": FieldSpec(
            "From address", "Sender address of every mail. Blank: the user name.", kind="email"
        ),
        "from_name": FieldSpec("From name", "Shown next to the address, e.g. your company name."),
        "reply_to": FieldSpec(
            "Reply-to address", "Where replies go when not the From address.", kind="email"
        ),
    }
    url_schemes: ClassVar[dict[str, int]] = {"smtp": 587, "smtps": 465, "smtp+plain": 25}
    schemes: ClassVar[dict[str, str]] = {"smtp": "starttls", "smtps": "ssl", "smtp+plain": "none"}
    base_url_help = "smtp://host:587 (STARTTLS), smtps://host:465 (TLS) or smtp+plain://host:25 (no TLS)"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        host, port, security = self.server
        try:
            check_host(host, port)
            conn: smtplib.SMTP
            if security == "ssl":
                conn = _GuardedSMTPSSL(timeout=self.timeout, context=self.tls_context())
            else:
                conn = _GuardedSMTP(timeout=self.timeout)
            conn._host = (
                host  # smtplib only sets it when the host goes to __init__; STARTTLS needs it for SNI
            )
            conn.connect(host, port)
            if security != "ssl":
                conn.ehlo()
                if security == "starttls":
                    conn.starttls(context=self.tls_context())
                    conn.ehlo()
            username = self.credentials.get("username")
            if username:
                self._login(conn, str(username), str(self.credentials.get("password") or ""))
        except UnsafeURL as exc:
            raise self.fail(ErrorKind.BAD_INPUT, str(exc)) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise classify_exception(exc, provider=self.key) from exc
        return conn

    @staticmethod
    def _login(conn: smtplib.SMTP, username: str, password: str) -> None:
        """One AUTH attempt with the strongest advertised mechanism (smtplib.login would retry the same
        wrong password with every mechanism, which some servers count as several failed logins)."""
        conn.ehlo_or_helo_if_needed()
        if not conn.has_extn("auth"):
            raise smtplib.SMTPNotSupportedError("The SMTP server does not offer AUTH")
        advertised = conn.esmtp_features["auth"].upper().split()
        mechanism = next((m for m in ("CRAM-MD5", "PLAIN", "LOGIN") if m in advertised), None)
        if mechanism is None:
            raise smtplib.SMTPNotSupportedError(f"No supported AUTH mechanism in {advertised}")
        conn.user, conn.password = username, password
        code, resp = conn.auth(mechanism, getattr(conn, "auth_" + mechanism.lower().replace("-", "_")))
        if code not in (235, 503):
            raise smtplib.SMTPAuthenticationError(code, resp)

    @property
    def connection(self) -> smtplib.SMTP:
        if self._smtp is None:
            self._smtp = self._connect()
        return self._smtp

    def _drop_connection(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None
        super().close()

    def build_message(self, msg: OutgoingEmail) -> WireMessage:
        """The message as it goes on the wire (`WireMessage`), written directly rather than through
        ``EmailMessage`` (whose header parsing and generator cost ~3 ms a message): headers folded per
        RFC 5322, non-ASCII text RFC 2047-encoded (raw UTF-8 only when the envelope needs SMTPUTF8, as
        ``smtplib.send_message`` would write it), addresses through `mailbox_line` (IDNA domains), the
        body from `mime_body`. DKIM-signed with ``msg.dkim`` when given: the signed bytes are the sent
        bytes. Raises ProviderError(BAD_INPUT) for a missing/invalid address, no body, an overridden or
        injected header, an invalid IDN domain or a key that cannot sign."""
        from_name, from_address = parseaddr(
            msg.from_email or str(self.options.get("from_email") or self.credentials.get("username") or "")
        )
        from_name = msg.from_name or from_name or str(self.options.get("from_name") or "")
        to_name, to_address = parseaddr(msg.to)
        if "@" not in from_address:
            raise self.fail(ErrorKind.BAD_INPUT, "No valid From address configured for this SMTP account")
        if "@" not in to_address:
            raise self.fail(ErrorKind.BAD_INPUT, f"Invalid recipient {msg.to!r}")
        if not (msg.text or msg.html):
            raise self.fail(ErrorKind.BAD_INPUT, "Email has neither a text nor an HTML body")
        for name in msg.headers:
            if name.lower() in _OWN_HEADERS:
                raise self.fail(ErrorKind.BAD_INPUT, f"Header {name!r} cannot be overridden")
        try:
            envelope_from, from_intl = smtp_mailbox(from_address)
            recipient, to_intl = smtp_mailbox(to_address)
            international = from_intl or to_intl
            policy = email.policy.SMTPUTF8 if international else email.policy.SMTP
            message_id = msg.message_id or make_msgid(domain=ascii_domain(from_address.rpartition("@")[2]))
            reply_to = msg.reply_to or str(self.options.get("reply_to") or "")
            head = mailbox_line("From", from_name, from_address) + mailbox_line("To", to_name, to_address)
            if reply_to:
                head += mailbox_line("Reply-To", *parseaddr(reply_to))
            fields = [
                ("Subject", msg.subject),
                ("Message-ID", message_id),
                ("Date", email.utils.format_datetime(datetime.now(UTC))),
                *msg.headers.items(),
            ]
            head += b"".join(_header_line(name, value, policy) for name, value in fields)
        except ValueError as exc:  # header injection / malformed header / invalid IDN
            raise self.fail(ErrorKind.BAD_INPUT, f"Invalid email header: {exc}") from exc
        mime_head, body = mime_body(msg.text, msg.html)
        data = head + mime_head + b"\r\n" + body
        if msg.dkim is not None:
            try:
                data = dkim_sign(data, msg.dkim)
            except DkimSigningError as exc:
                raise self.fail(ErrorKind.BAD_INPUT, str(exc)) from exc
        return WireMessage(envelope_from, recipient, international, message_id, data)

    def send_email(self, msg: OutgoingEmail) -> SendResult:
        """Send one message. An address with a non-ASCII local part goes out with SMTPUTF8 (RFC 6531) when
        the server offers it; otherwise this message fails as bad input (the server works, the address
        cannot travel through it) and the connection stays usable for the next one. A non-ASCII domain
        alone travels as its A-label and needs nothing from the server."""
        wire = self.build_message(msg)
        for attempt in (1, 2):
            conn = self.connection
            if wire.international and not conn.has_extn("smtputf8"):
                _name, to_address = parseaddr(msg.to)
                to_intl = not to_address.rpartition("@")[0].isascii()
                who = f"recipient {wire.recipient!r}" if to_intl else f"sender {wire.envelope_from!r}"
                raise self.fail(
                    ErrorKind.BAD_INPUT,
                    f"The {who} has a non-ASCII local part, which needs SMTPUTF8 (RFC 6531); this SMTP "
                    "server does not offer it, so the message cannot be sent through this account",
                )
            try:
                conn.sendmail(
                    wire.envelope_from,
                    [wire.recipient],
                    wire.data,
                    mail_options=("SMTPUTF8", "BODY=8BITMIME") if wire.international else (),
                )
                break
            except smtplib.SMTPServerDisconnected as exc:
                # A reused connection may have been dropped by the server while idle: reconnect once.
                self._drop_connection()
                if attempt == 2:
                    raise classify_exception(exc, provider=self.key) from exc
            except (smtplib.SMTPException, OSError) as exc:
                if isinstance(exc, OSError) or getattr(exc, "smtp_code", None) == 421:
                    self._drop_connection()  # 421: the server is closing the channel
                raise classify_exception(exc, provider=self.key) from exc
        return SendResult(message_id=wire.message_id, provider=self.key, to=parseaddr(msg.to)[1])

    def health_check(self) -> None:
        conn = self._connect()
        try:
            code, _ = conn.noop()
            if code != 250:
                raise self.fail(ErrorKind.TRANSIENT, f"SMTP NOOP answered {code}", status=code)
        finally:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()


class _GuardedIMAP(imaplib.IMAP4):
    def _create_socket(self, timeout):
        return guarded_create_connection(self.host, self.port, timeout)


class _GuardedIMAPSSL(imaplib.IMAP4_SSL):
    def _create_socket(self, timeout):
        sock = guarded_create_connection(self.host, self.port, timeout)
        return self.ssl_context.wrap_socket(sock, server_hostname=self.host)


_BOUNCE_SENDERS = ("mailer-daemon", "postmaster", "mail delivery")
_BOUNCE_SUBJECTS = (
    "undeliverable",
    "undelivered mail",
    "delivery status notification",
    "mail delivery failed",
    "returned mail",
    "delivery failure",
    "failure notice",
    "could not be delivered",
)
_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def _header(message: Message, name: str) -> str:
    """A header as text, RFC 2047 words decoded; never raises on hostile or broken headers."""
    value = message.get(name)
    if value is None:
        return ""
    try:
        return str(make_header(decode_header(str(value))))
    except (HeaderParseError, LookupError, UnicodeError, ValueError):
        return str(value)


def _text_of(message: Message) -> str:
    parts: list[str] = []
    for part in message.walk():
        if part.get_content_maintype() == "text" and part.get_content_subtype() in ("plain", "html"):
            payload = part.get_payload(decode=True) or b""
            charset = part.get_content_charset() or "utf-8"
            try:
                parts.append(payload.decode(charset, "replace"))
            except LookupError:
                parts.append(payload.decode("utf-8", "replace"))
    return "\n".join(parts)


def _dsn_details(message: Message) -> tuple[str, list[str]]:
    """(failed recipient, Message-IDs of the original) from a multipart/report DSN."""
    recipient = ""
    original_ids: list[str] = []
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype == "message/delivery-status":
            for block in part.get_payload() or []:
                if not isinstance(block, Message):
                    continue
                action = str(block.get("Action", "")).lower()
                final = str(block.get("Final-Recipient") or block.get("Original-Recipient") or "")
                if final and (not action or action in ("failed", "delayed")) and not recipient:
                    recipient = final.split(";", 1)[-1].strip()
        elif ctype in ("message/rfc822", "message/global", "text/rfc822-headers"):
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if inner is None and isinstance(payload, str):
                inner = email.message_from_string(payload)
            if isinstance(inner, Message):
                original_ids.extend(_ids(str(inner.get("Message-ID", ""))))
    return recipient, original_ids


def parse_inbound(raw: bytes, known_ids: set[str]) -> InboundMessage | None:
    """Classify one fetched message as a reply or bounce to one of ``known_ids`` (normalized ids).

    Bounces are returned even when the original id is not ours to find (the recipient still
    matters for suppression); replies only when they answer one of our messages.
    """
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    subject = _header(message, "Subject")
    from_header = _header(message, "From")
    from_email = parseaddr(from_header)[1].lower()
    in_reply_to = _ids(_header(message, "In-Reply-To"))
    references = _ids(_header(message, "References"))
    received_at = None
    if message.get("Date"):
        try:
            received_at = parsedate_to_datetime(_header(message, "Date"))
            if received_at.tzinfo is None:
                received_at = received_at.replace(tzinfo=UTC)
        except (TypeError, ValueError):
            received_at = None

    is_report = message.get_content_type() == "multipart/report" and (
        str(message.get_param("report-type", "")).lower() == "delivery-status"
    )
    lowered_subject = subject.lower()
    looks_bounce = any(s in from_header.lower() for s in _BOUNCE_SENDERS) or any(
        s in lowered_subject for s in _BOUNCE_SUBJECTS
    )
    body = _text_of(message)
    common = {
        "message_id": _header(message, "Message-ID").strip(),
        "in_reply_to": in_reply_to[0] if in_reply_to else "",
        "references": tuple(references),
        "from_email": from_email,
        "subject": subject,
        "received_at": received_at,
        "body_text": body[:2000],
    }
    if is_report or looks_bounce:
        recipient, original_ids = _dsn_details(message) if is_report else ("", [])
        if not recipient:
            header = _header(message, "X-Failed-Recipients")
            found = [addr for _, addr in getaddresses([header]) if addr] or _EMAIL_RE.findall(body)
            recipient = next((a for a in found if a.lower() != from_email), "")
        candidates = (
            original_ids
            + in_reply_to
            + references
            + [m.lower() for m in re.findall(r"<([^<>\s]+@[^<>\s]+)>", body)]
        )
        matched = next((c for c in candidates if c in known_ids), "")
        if is_report or recipient or matched:
            return InboundMessage(
                **common,
                kind=InboundKind.BOUNCE,
                bounced_recipient=recipient.lower(),
                matched_message_id=matched,
            )
    matched = next((c for c in in_reply_to + references[::-1] if c in known_ids), "")
    if not matched:
        # A List-Unsubscribe mailto: request (RFC 2369): our header sets the subject "unsubscribe <token>".
        if re.match(r"\s*unsubscribe\s+\S", lowered_subject):  # folded long subjects keep their CRLF
            return InboundMessage(**common, kind=InboundKind.UNSUBSCRIBE)
        return None
    return InboundMessage(**common, kind=InboundKind.REPLY, matched_message_id=matched)


class IMAPAdapter(_MailServerAdapter):
    """Fetches replies and bounces to our Message-IDs from one IMAP mailbox (read-only)."""

    key = "imap"
    label = "IMAP"
    capabilities = frozenset({Capability.FETCH_REPLIES})
    option_fields = ("mailbox", "verify_tls")
    docs_url = "https://www.rfc-editor.org/rfc/rfc9051"
    field_specs = {
        **_MailServerAdapter.field_specs,
        "mailbox": FieldSpec("Mailbox", "The folder replies arrive in. Blank: INBOX."),
    }
    url_schemes: ClassVar[dict[str, int]] = {"imap": 143, "imaps": 993, "imap+plain": 143}
    schemes: ClassVar[dict[str, str]] = {"imap": "starttls", "imaps": "ssl", "imap+plain": "none"}
    base_url_help = "imap://host:143 (STARTTLS), imaps://host:993 (TLS) or imap+plain://host:143 (no TLS)"

    def _connect(self) -> imaplib.IMAP4:
        host, port, security = self.server
        try:
            if security == "ssl":
                conn: imaplib.IMAP4 = _GuardedIMAPSSL(
                    host, port, ssl_context=self.tls_context(), timeout=self.timeout
                )
            else:
                conn = _GuardedIMAP(host, port, timeout=self.timeout)
                if security == "starttls":
                    conn.starttls(ssl_context=self.tls_context())
            conn.login(self.credential("username"), self.credential("password"))
        except UnsafeURL as exc:
            raise self.fail(ErrorKind.BAD_INPUT, str(exc)) from exc
        except ProviderError:
            raise
        except (imaplib.IMAP4.error, OSError) as exc:
            raise classify_exception(exc, provider=self.key) from exc
        return conn

    @staticmethod
    def _logout(conn: imaplib.IMAP4) -> None:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            conn.logout()

    def fetch_replies(self, since: datetime | date, known_message_ids: Iterable[str]) -> list[InboundMessage]:
        known = {_norm_id(m) for m in known_message_ids if m}
        day = since.date() if isinstance(since, datetime) else since
        conn = self._connect()
        try:
            mailbox = str(self.options.get("mailbox") or "INBOX")
            status, _ = conn.select(mailbox, readonly=True)
            if status != "OK":
                raise self.fail(ErrorKind.BAD_INPUT, f"IMAP mailbox {mailbox!r} cannot be selected")
            status, data = conn.uid("SEARCH", None, "SINCE", day.strftime("%d-%b-%Y"))
            if status != "OK":
                raise self.fail(ErrorKind.TRANSIENT, f"IMAP SEARCH failed: {data!r}")
            uids = (data[0] or b"").split()
            out: list[InboundMessage] = []
            for start in range(0, len(uids), 50):
                chunk = b",".join(uids[start : start + 50]).decode()
                status, fetched = conn.uid("FETCH", chunk, "(BODY.PEEK[])")
                if status != "OK":
                    raise self.fail(ErrorKind.TRANSIENT, f"IMAP FETCH failed: {fetched!r}")
                for item in fetched:
                    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
                        parsed = parse_inbound(item[1], known)
                        if parsed is not None:
                            out.append(parsed)
            return out
        except (imaplib.IMAP4.error, OSError) as exc:
            raise classify_exception(exc, provider=self.key) from exc
        finally:
            self._logout(conn)

    def health_check(self) -> None:
        conn = self._connect()
        try:
            status, _ = conn.noop()
            if status != "OK":
                raise self.fail(ErrorKind.TRANSIENT, f"IMAP NOOP answered {status}")
        finally:
            self._logout(conn)
