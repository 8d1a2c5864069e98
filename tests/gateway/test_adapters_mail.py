import grp
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.adapters.mail import IMAPAdapter, SMTPAdapter, parse_inbound
from gateway.capabilities import InboundKind, OutgoingEmail
from gateway.errors import ErrorKind, ProviderError

# ---------------------------------------------------------------------------------------------- SMTP


def smtp(sink, scheme="smtp+plain", **options):
    return SMTPAdapter(
        base_url=f"{scheme}://{sink.host}:{sink.port}",
        credentials={"username": "mailer", "password": "s3cret"},
        options={"from_email": "news@acme.test", "from_name": "Acme News", **options},
        timeout=5,
    )


def test_smtp_batch_reuses_one_connection_with_our_message_ids(smtp_sink):
    adapter = smtp(smtp_sink, reply_to="replies@acme.test")
    msgs = [
        OutgoingEmail(
            to=f"p{i}@example.test",
            subject=f"Hello {i}",
            text="Hi",
            html="<p>Hi</p>",
            message_id=f"<m{i}@acme.test>",
        )
        for i in range(3)
    ]
    results = adapter.send_emails(msgs)
    adapter.close()
    received = smtp_sink.wait_for(3)
    assert [r.message_id for r in results] == ["<m0@acme.test>", "<m1@acme.test>", "<m2@acme.test>"]
    assert smtp_sink.logins == [("mailer", "s3cret")]  # one login = one connection for the batch
    first = received[0]
    assert first["Message-ID"] == "<m0@acme.test>" and first["Reply-To"] == "replies@acme.test"
    assert first["From"] == "Acme News <news@acme.test>" and first.envelope_from == "news@acme.test"
    assert first.envelope_to == ["p0@example.test"]
    assert first.get_body(("html",)).get_content().strip() == "<p>Hi</p>"


def test_smtp_mints_message_id_on_from_domain_and_per_message_from(smtp_sink):
    with smtp(smtp_sink) as adapter:
        result = adapter.send_email(
            OutgoingEmail(
                to="a@example.test",
                subject="s",
                text="t",
                from_email="owner@brand.test",
                reply_to="r@brand.test",
            )
        )
    msg = smtp_sink.wait_for(1)[0]
    assert result.message_id.endswith("@brand.test>") and msg["Message-ID"] == result.message_id
    assert msg.envelope_from == "owner@brand.test" and msg["Reply-To"] == "r@brand.test"


def test_smtp_header_injection_and_missing_body_are_bad_input(smtp_sink):
    with smtp(smtp_sink) as adapter:
        for msg in (
            OutgoingEmail(to="a@example.test", subject="hi\r\nBcc: victim@example.test", text="t"),
            OutgoingEmail(to="a@example.test", subject="s"),
            OutgoingEmail(to="not-an-address", subject="s", text="t"),
            OutgoingEmail(to="a@example.test", subject="s", text="t", headers={"Bcc": "x@example.test"}),
        ):
            with pytest.raises(ProviderError) as info:
                adapter.send_email(msg)
            assert info.value.kind is ErrorKind.BAD_INPUT
    assert smtp_sink.messages == []


class _Refusing:
    """aiosmtpd handler answering RCPT with a chosen code, or AUTH with 535."""

    def __init__(self, rcpt_code=None, auth_ok=True):
        self.rcpt_code = rcpt_code
        self.auth_ok = auth_ok

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if self.rcpt_code:
            return f"{self.rcpt_code} refused by test"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_AUTH(self, server, session, envelope, args):  # noqa: N802
        if self.auth_ok:
            session.authenticated = True
            return "235 2.7.0 Authentication successful"
        return "535 5.7.8 Authentication credentials invalid"


@pytest.fixture
def refusing_server(loopback_allow):
    from aiosmtpd.controller import Controller

    from aicmo.localredis import free_port

    controllers = []

    def start(**kw):
        handler = _Refusing(**kw)
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port, auth_require_tls=False)
        controller.start()
        controllers.append(controller)
        loopback_allow("127.0.0.1", port)
        return port

    yield start
    for controller in controllers:
        controller.stop()


@pytest.mark.parametrize(
    ("code", "kind"), [(550, ErrorKind.BAD_INPUT), (451, ErrorKind.TRANSIENT), (452, ErrorKind.TRANSIENT)]
)
def test_smtp_recipient_refusals_are_classified(refusing_server, code, kind):
    port = refusing_server(rcpt_code=code)
    adapter = SMTPAdapter(
        base_url=f"smtp+plain://127.0.0.1:{port}",
        credentials={"username": "u", "password": "p"},
        options={"from_email": "a@acme.test"},
    )
    with adapter, pytest.raises(ProviderError) as info:
        adapter.send_email(OutgoingEmail(to="x@example.test", subject="s", text="t"))
    assert info.value.kind is kind and info.value.status == code


def test_smtp_535_is_reauth(refusing_server):
    port = refusing_server(auth_ok=False)
    adapter = SMTPAdapter(
        base_url=f"smtp+plain://127.0.0.1:{port}",
        credentials={"username": "u", "password": "bad"},
        options={"from_email": "a@acme.test"},
    )
    with pytest.raises(ProviderError) as info:
        adapter.health_check()
    assert info.value.kind is ErrorKind.REAUTH and info.value.status == 535


def test_smtp_connection_refused_is_transient_and_host_guarded(smtp_sink, loopback_allow, settings):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    loopback_allow("127.0.0.1", port)
    with pytest.raises(ProviderError) as info:
        SMTPAdapter(
            base_url=f"smtp+plain://127.0.0.1:{port}", options={"from_email": "a@acme.test"}
        ).send_email(OutgoingEmail(to="x@example.test", subject="s", text="t"))
    assert info.value.kind is ErrorKind.TRANSIENT
    settings.GATEWAY_LOOPBACK_ALLOW = []  # the sink's port is no longer allowed: every spelling is refused
    for host in (smtp_sink.host, "127.1", "2130706433", "0x7f000001", "[::ffff:127.0.0.1]", "localhost"):
        with pytest.raises(ProviderError) as info:
            SMTPAdapter(
                base_url=f"smtp+plain://{host}:{smtp_sink.port}", options={"from_email": "a@acme.test"}
            ).send_email(OutgoingEmail(to="x@example.test", subject="s", text="t"))
        assert info.value.kind is ErrorKind.BAD_INPUT and "loopback" in info.value.message
    assert smtp_sink.messages == []


def test_smtp_starttls_unavailable_is_bad_input(smtp_sink):
    adapter = smtp(smtp_sink, scheme="smtp")
    with pytest.raises(ProviderError) as info:
        adapter.health_check()
    assert info.value.kind is ErrorKind.BAD_INPUT


# ----------------------------------------------------------------------------- IMAP: parsing (pure)

OURS = "<c1.42@acme.test>"


def _reply(in_reply_to=OURS, references=OURS) -> bytes:
    msg = EmailMessage()
    msg["From"] = "Prospect <p@example.test>"
    msg["To"] = "news@acme.test"
    msg["Subject"] = "Re: Hello"
    msg["Message-ID"] = "<r1@example.test>"
    msg["Date"] = format_datetime(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    msg.set_content("Interested, call me.")
    return msg.as_bytes()


def _dsn(original_id=OURS, recipient="gone@example.test") -> bytes:
    return (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.test>\r\n"
        "To: news@acme.test\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn1@mx.example.test>\r\nDate: Fri, 20 Nov 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="BB"\r\n\r\n'
        "--BB\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--BB\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.test\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        "--BB\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: news@acme.test\r\nTo: {recipient}\r\nSubject: Hello\r\nMessage-ID: {original_id}\r\n\r\n"
        "--BB--\r\n"
    ).encode()


def test_parse_reply_matched_by_in_reply_to_or_references():
    known = {"c1.42@acme.test"}
    parsed = parse_inbound(_reply(), known)
    assert parsed.kind is InboundKind.REPLY and parsed.matched_message_id == "c1.42@acme.test"
    assert parsed.from_email == "p@example.test" and parsed.received_at.year == 2026
    assert (
        parse_inbound(_reply(in_reply_to="<other@x>", references=f"<a@x> {OURS}"), known).kind
        is InboundKind.REPLY
    )
    assert parse_inbound(_reply(in_reply_to="<other@x>", references="<a@x>"), known) is None


def test_parse_dsn_bounce():
    parsed = parse_inbound(_dsn(), {"c1.42@acme.test"})
    assert parsed.kind is InboundKind.BOUNCE and parsed.bounced_recipient == "gone@example.test"
    assert parsed.matched_message_id == "c1.42@acme.test"


def test_parse_heuristic_bounce_without_dsn():
    raw = (
        "From: postmaster@mx.example.test\r\nTo: news@acme.test\r\nSubject: Delivery Status Notification (Failure)\r\n"
        "Message-ID: <b2@mx>\r\n\r\nDelivery to the following recipient failed permanently:\r\n\r\n    lost@example.test\r\n\r\n"
        f"Original message: Message-ID: {OURS}\r\n"
    ).encode()
    parsed = parse_inbound(raw, {"c1.42@acme.test"})
    assert parsed.kind is InboundKind.BOUNCE and parsed.bounced_recipient == "lost@example.test"
    assert parsed.matched_message_id == "c1.42@acme.test"


# ---------------------------------------------------------------------------- IMAP: real dovecot

DOVECOT = shutil.which("dovecot") or (os.path.exists("/usr/sbin/dovecot") and "/usr/sbin/dovecot")


@pytest.fixture
def dovecot(tmp_path, loopback_allow):
    if not DOVECOT:
        pytest.skip(
            "dovecot is not installed (apt-get install dovecot-imapd): IMAP adapter not tested against a real server"
        )
    from aicmo.localredis import free_port

    port = free_port()
    uid, gid = os.getuid(), os.getgid()
    user, group = pwd.getpwuid(uid).pw_name, grp.getgrgid(gid).gr_name
    login_user = "dovenull" if uid == 0 else user
    mail_root = Path(tempfile.mkdtemp(prefix="aicmo-imap-"))
    if uid == 0:  # dovecot refuses mail access as root: the mailbox belongs to nobody
        nobody = pwd.getpwnam("nobody")
        mail_uid, mail_gid = nobody.pw_uid, nobody.pw_gid
        os.chmod(mail_root, 0o755)
        os.chown(mail_root, mail_uid, mail_gid)
    else:
        mail_uid, mail_gid = uid, gid
    (tmp_path / "passwd").write_text(f"inbox:{{PLAIN}}pw123:{mail_uid}:{mail_gid}::{mail_root}/home\n")
    conf = tmp_path / "dovecot.conf"
    conf.write_text(
        f"""
base_dir = {tmp_path}/run
state_dir = {tmp_path}/state
log_path = {tmp_path}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 0
mail_location = maildir:{mail_root}/mail
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {login_user}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
  chroot =
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
passdb {{
  driver = passwd-file
  args = {tmp_path}/passwd
}}
userdb {{
  driver = passwd-file
  args = {tmp_path}/passwd
}}
"""
    )
    proc = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    else:
        proc.terminate()
        pytest.fail("dovecot did not start")
    if proc.poll() is not None:
        log = (tmp_path / "dovecot.log").read_text() if (tmp_path / "dovecot.log").exists() else ""
        pytest.fail(f"dovecot exited: {proc.stdout.read().decode()} {log}")
    loopback_allow("127.0.0.1", port)
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(mail_root, ignore_errors=True)


def _append(port: int, raw: bytes) -> None:
    conn = imaplib.IMAP4("127.0.0.1", port)
    conn.login("inbox", "pw123")
    conn.append("INBOX", None, None, raw)
    conn.logout()


def imap(port, host="127.0.0.1", **kw):
    return IMAPAdapter(
        base_url=f"imap+plain://{host}:{port}",
        credentials={"username": "inbox", "password": "pw123"},
        **kw,
    )


def test_imap_fetches_replies_and_bounces_from_real_server(dovecot):
    _append(dovecot, _reply())
    _append(dovecot, _dsn())
    _append(dovecot, _reply(in_reply_to="<unrelated@x>", references=""))  # not ours: ignored
    adapter = imap(dovecot)
    adapter.health_check()
    found = adapter.fetch_replies(date(2020, 1, 1), [OURS, "<other@acme.test>"])
    kinds = sorted((m.kind.value, m.matched_message_id, m.bounced_recipient) for m in found)
    assert kinds == [("bounce", "c1.42@acme.test", "gone@example.test"), ("reply", "c1.42@acme.test", "")]
    # read-only: the messages stay unseen for a human reading the same mailbox
    conn = imaplib.IMAP4("127.0.0.1", dovecot)
    conn.login("inbox", "pw123")
    conn.select("INBOX")
    assert len(conn.search(None, "UNSEEN")[1][0].split()) == 3
    conn.logout()


def test_imap_wrong_password_is_reauth(dovecot):
    adapter = IMAPAdapter(
        base_url=f"imap+plain://127.0.0.1:{dovecot}",
        credentials={"username": "inbox", "password": "nope"},
    )
    with pytest.raises(ProviderError) as info:
        adapter.fetch_replies(date(2020, 1, 1), [OURS])
    assert info.value.kind is ErrorKind.REAUTH


def test_imap_host_guard(dovecot, settings):
    settings.GATEWAY_LOOPBACK_ALLOW = [f"127.0.0.1:{dovecot + 1}"]  # another port: not this server
    for host in ("127.0.0.1", "127.1", "localhost", "[::ffff:127.0.0.1]"):
        with pytest.raises(ProviderError) as info:
            imap(dovecot, host=host).fetch_replies(date(2020, 1, 1), [OURS])
        assert info.value.kind is ErrorKind.BAD_INPUT and "loopback" in info.value.message


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_smtp_tls_modes_verify_the_server_name(tmp_path, resolve_to_loopback, loopback_allow, security):
    import ssl

    from aiosmtpd.controller import Controller

    from aicmo.localredis import free_port
    from tests.fixtures.services import SmtpSink
    from tests.gateway.conftest import self_signed_cert

    cert, key = self_signed_cert(tmp_path, "smtp.example")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    sink = SmtpSink(host="127.0.0.1", port=free_port())
    kwargs = (
        {"tls_context": server_ctx, "require_starttls": True}
        if security == "starttls"
        else {"ssl_context": server_ctx, "auth_require_tls": False}
    )
    controller = Controller(
        sink, hostname="127.0.0.1", port=sink.port, authenticator=sink.authenticate, **kwargs
    )
    controller.start()
    loopback_allow("127.0.0.1", sink.port)
    ca_pem = Path(cert).read_text()
    scheme = "smtp" if security == "starttls" else "smtps"
    resolve_to_loopback("smtp.example")
    try:
        adapter = SMTPAdapter(
            base_url=f"{scheme}://smtp.example:{sink.port}",
            credentials={"username": "u", "password": "p"},
            options={"from_email": "a@acme.test"},
            ca_pem=ca_pem,
        )
        with adapter:
            adapter.send_email(OutgoingEmail(to="x@example.test", subject="tls", text="t"))
        assert sink.wait_for(1)[0]["Subject"] == "tls" and sink.logins == [("u", "p")]
        wrong_name = SMTPAdapter(
            base_url=f"{scheme}://127.0.0.1:{sink.port}",
            options={"from_email": "a@acme.test"},
            ca_pem=ca_pem,
        )
        with pytest.raises(ProviderError) as info:
            wrong_name.health_check()
        assert info.value.kind is ErrorKind.BAD_INPUT  # certificate does not match: configuration problem
    finally:
        controller.stop()


def test_smtp_reconnects_once_when_the_server_dropped_the_idle_connection(smtp_sink):
    with smtp(smtp_sink) as adapter:
        adapter.send_email(OutgoingEmail(to="a@example.test", subject="one", text="t"))
        adapter._smtp.sock.shutdown(
            socket.SHUT_RDWR
        )  # what an idle-timeout on the server side looks like to us
        adapter.send_email(OutgoingEmail(to="b@example.test", subject="two", text="t"))
    assert [m["Subject"] for m in smtp_sink.wait_for(2)] == ["one", "two"]
    assert len(smtp_sink.logins) == 2


@pytest.mark.parametrize(
    ("cls", "base_url", "options", "expected"),
    [
        (SMTPAdapter, "smtps://mail.acme.test", {}, ("mail.acme.test", 465, "ssl")),
        (SMTPAdapter, "smtp://mail.acme.test", {}, ("mail.acme.test", 587, "starttls")),
        (SMTPAdapter, "smtp+plain://mx.acme.test", {}, ("mx.acme.test", 25, "none")),
        (SMTPAdapter, "smtp://mx.acme.test:2525", {}, ("mx.acme.test", 2525, "starttls")),
        (IMAPAdapter, "imaps://imap.acme.test", {}, ("imap.acme.test", 993, "ssl")),
        (IMAPAdapter, "imap://imap.acme.test:1143", {}, ("imap.acme.test", 1143, "starttls")),
        (IMAPAdapter, "imap+plain://imap.acme.test", {}, ("imap.acme.test", 143, "none")),
    ],
)
def test_mail_server_settings(cls, base_url, options, expected):
    assert cls(base_url=base_url, options=options).server == expected


def test_mail_server_settings_refuse_nonsense():
    for adapter in (
        SMTPAdapter(),
        SMTPAdapter(base_url="https://mail.acme.test"),
        IMAPAdapter(base_url="smtp://imap.acme.test"),
        IMAPAdapter(base_url="imaps://u:p@imap.acme.test"),
    ):
        with pytest.raises(ProviderError) as info:
            adapter.server  # noqa: B018
        assert info.value.kind is ErrorKind.BAD_INPUT


@given(
    st.text(max_size=80),
    st.text(max_size=80),
    st.sampled_from(["multipart/report; report-type=delivery-status", "text/plain", "multipart/mixed"]),
    st.binary(max_size=300),
)
@settings(max_examples=150, deadline=None)
def test_parse_inbound_never_crashes_on_hostile_mail(subject, from_header, ctype, body):
    head = f'From: {from_header}\r\nSubject: {subject}\r\nContent-Type: {ctype}; boundary="BB"\r\nIn-Reply-To: {OURS}\r\n\r\n'
    raw = head.encode("utf-8", "surrogateescape") + body
    parsed = parse_inbound(raw, {"c1.42@acme.test"})
    assert parsed is None or parsed.kind in (InboundKind.REPLY, InboundKind.BOUNCE)


# ------------------------------------------------------------------------ internationalized addresses


def test_smtputf8_address_is_sent_when_the_server_offers_it(smtp_sink):
    with smtp(smtp_sink) as adapter:
        result = adapter.send_email(OutgoingEmail(to="jürgen@exämple.de", subject="Grüße", text="Hallo"))
    [msg] = smtp_sink.wait_for(1)
    assert msg.envelope_to == ["jürgen@exämple.de"] and result.to == "jürgen@exämple.de"
    assert msg["To"] == "jürgen@exämple.de" and msg["Subject"] == "Grüße"


@pytest.mark.parametrize("smtp_sink", [{"smtputf8": False}], indirect=True)
def test_without_smtputf8_only_that_delivery_fails_as_bad_input(smtp_sink):
    with smtp(smtp_sink) as adapter:
        for to in ("jürgen@exämple.de", "jürgen@example.de", "иван@пример.рф"):
            with pytest.raises(ProviderError) as info:
                adapter.send_email(OutgoingEmail(to=to, subject="s", text="t"))
            assert info.value.kind is ErrorKind.BAD_INPUT
            assert "SMTPUTF8" in info.value.message and to in info.value.message
        # an ASCII local part with an internationalized domain goes out with the domain's A-label
        adapter.send_email(OutgoingEmail(to="info@exämple.de", subject="idn", text="t"))
        adapter.send_email(OutgoingEmail(to="next@example.test", subject="ascii", text="t"))
    received = smtp_sink.wait_for(2)
    assert [m.envelope_to for m in received] == [["info@xn--exmple-cua.de"], ["next@example.test"]]
    assert received[0]["To"] == "info@xn--exmple-cua.de"
