"""Account settings a workspace admin may give: base URLs (HTTP and mail) through the SSRF guard, a private
CA as PEM text (never a server path), only declared options; DNS failures as transient configuration
problems of the account, never bad input."""

from __future__ import annotations

import http.server
import importlib
import socket
import ssl
import threading
from pathlib import Path

import pytest
from django.apps import apps as global_apps
from django.core.exceptions import ValidationError

from aicmo.models import AuditEvent
from gateway import breaker, services
from gateway.errors import DNS_CAUSE, ErrorKind, ProviderError, ProvidersUnavailable, classify_exception
from gateway.health import build_adapter
from gateway.models import AccountState, ProviderAccount
from gateway.selectors import recommendations
from gateway.ssrf import HostUnresolvable
from gateway.tls import CA_PEM_MAX_CHARS, validate_ca_pem
from tests.gateway.conftest import self_signed_cert
from tests.gateway.factories import ProviderAccountFactory, fixture_gateway_fast, fixture_test_adapters  # noqa: F401

BASE = "/api/v1/gateway"
PUBLIC_IP = "93.184.215.14"  # a literal: saving it needs no DNS


def create(workspace, **fields):
    fields = {"capability": "send_email", "adapter": "smtp", "name": "Mail", **fields}
    return services.account_create(workspace=workspace, by=None, **fields)


# ------------------------------------------------------------------------------------ mail server URLs


@pytest.mark.parametrize(
    ("capability", "adapter", "url", "server"),
    [
        ("send_email", "smtp", f"smtp://{PUBLIC_IP}:587", (PUBLIC_IP, 587, "starttls")),
        ("send_email", "smtp", f"smtps://{PUBLIC_IP}", (PUBLIC_IP, 465, "ssl")),
        ("send_email", "smtp", f"smtp+plain://{PUBLIC_IP}:2525", (PUBLIC_IP, 2525, "none")),
        ("fetch_replies", "imap", f"imaps://{PUBLIC_IP}", (PUBLIC_IP, 993, "ssl")),
        ("fetch_replies", "imap", f"imap://{PUBLIC_IP}:1143", (PUBLIC_IP, 1143, "starttls")),
    ],
)
def test_documented_mail_server_urls_can_be_saved(workspace, capability, adapter, url, server):
    account = create(workspace, capability=capability, adapter=adapter, base_url=url)
    assert build_adapter(account).server == server


@pytest.mark.parametrize(
    ("url", "options", "field"),
    [
        ("", {}, "base_url"),  # a mail account needs its server
        (f"http://{PUBLIC_IP}", {}, "base_url"),
        (f"smtp://user:pw@{PUBLIC_IP}", {}, "base_url"),
        ("smtp+plain://127.1:1025", {}, "base_url"),
        ("smtp+plain://[::ffff:127.0.0.1]:1025", {}, "base_url"),
        ("smtp+plain://2130706433:1025", {}, "base_url"),
        ("smtp+plain://localhost:1025", {}, "base_url"),
        ("smtps://169.254.169.254", {}, "base_url"),
        (f"smtp://{PUBLIC_IP}", {"host": "127.0.0.1", "port": 1025}, "options"),  # no second way
        (f"smtp://{PUBLIC_IP}", {"security": "none"}, "options"),
        (f"smtp://{PUBLIC_IP}", {"ca_file": "/etc/passwd"}, "options"),
    ],
)
def test_mail_settings_outside_the_documented_form_are_refused(workspace, url, options, field):
    with pytest.raises(ValidationError) as info:
        create(workspace, base_url=url, options=options)
    assert field in info.value.message_dict
    assert not ProviderAccount.objects.exists()


def test_loopback_mail_server_is_saved_only_when_its_port_is_allow_listed(workspace, settings):
    settings.GATEWAY_LOOPBACK_ALLOW = ["127.0.0.1:1025"]
    account = create(workspace, base_url="smtp+plain://127.1:1025")
    assert build_adapter(account).server == ("127.1", 1025, "none")
    with pytest.raises(ValidationError):
        create(workspace, name="Other port", base_url="smtp+plain://127.0.0.1:1026")


@pytest.fixture
def admin(api_client_for, gateway_fast):
    return api_client_for("admin")


def test_api_refuses_ca_file_and_a_path_as_ca(admin):
    for body in (
        {"options": {"ca_file": "/etc/passwd"}},
        {"ca_pem": "/etc/passwd"},
        {"options": {"from_email": "a@acme.test", "cert_file": "/etc/ssl/private/key.pem"}},
    ):
        resp = admin.post(
            f"{BASE}/accounts/",
            {"capability": "send_email", "adapter": "smtp", "name": "M", "base_url": f"smtp://{PUBLIC_IP}"}
            | body,
            format="json",
        )
        assert resp.status_code == 400, resp.content
        assert set(resp.json()["error"]["fields"]) & {"options", "ca_pem"}
    assert not ProviderAccount.objects.exists()


def test_unresolvable_base_url_is_a_clear_form_error_on_save(workspace, dns_down):
    with pytest.raises(ValidationError) as info:
        create(workspace, base_url="smtp://smtp.typo-vendor.example")
    assert DNS_CAUSE in info.value.message_dict["base_url"][0]


# ------------------------------------------------------------------------------------------- CA as PEM


def _pem(tmp_path, name="ca.example") -> str:
    cert, _key = self_signed_cert(tmp_path, name)
    return Path(cert).read_text()


def test_ca_pem_accepts_certificates_only(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one = _pem(tmp_path / "a")
    two = _pem(tmp_path / "b", "other.example")
    assert validate_ca_pem("") == ""
    assert validate_ca_pem("\r\n" + one.replace("\n", "\r\n")) == one
    assert validate_ca_pem(one + two) == one + two
    key = (tmp_path / "a" / "key.pem").read_text()
    broken = one.replace(one.splitlines()[3], "A" * len(one.splitlines()[3]))
    for bad in (
        "/etc/passwd",
        "file:///etc/ssl/certs/ca.pem",
        key,
        one + key,
        "garbage\n" + one,
        broken,
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----",
        one * 11,
        one + "x" * CA_PEM_MAX_CHARS,
    ):
        with pytest.raises(ValidationError) as info:
            validate_ca_pem(bad)
        assert "ca_pem" in info.value.message_dict


def test_ca_pem_is_stored_with_the_account_and_trusted_for_https(
    workspace, tmp_path, resolve_to_loopback, settings
):
    """The account's CA (and only it) makes a private-CA vendor reachable; name verification stays on."""
    cert, key = self_signed_cert(tmp_path, "vendor.example")
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    settings.GATEWAY_LOOPBACK_ALLOW = [f"127.0.0.1:{port}"]
    resolve_to_loopback("vendor.example")
    try:
        trusted = services.account_create(
            workspace=workspace,
            by=None,
            capability="enrich_person",
            adapter="apollo",
            name="Private CA",
            base_url=f"https://vendor.example:{port}",
            ca_pem=Path(cert).read_text(),
            credentials={"api_key": "k"},
        )
        trusted.refresh_from_db()
        assert trusted.ca_pem.startswith("-----BEGIN CERTIFICATE-----")
        adapter = build_adapter(trusted)
        assert adapter.client.get("/").status_code in (200, 404)
        adapter.close()
        services.account_update(account=trusted, by=None, ca_pem="")
        with pytest.raises(ProviderError) as info:
            build_adapter(trusted).request("GET", "/")
        assert "CERTIFICATE_VERIFY_FAILED" in info.value.message
    finally:
        server.shutdown()
        server.server_close()


def test_migration_drops_server_paths_with_an_audit_note_and_converts_old_mail_settings(workspace):
    migration = importlib.import_module("gateway.migrations.0004_account_ca_pem")
    old_smtp = ProviderAccount.objects.create(
        workspace=workspace,
        capability="send_email",
        adapter="smtp",
        name="Old SMTP",
        options={"host": PUBLIC_IP, "security": "ssl", "ca_file": "/etc/passwd", "from_email": "a@b.c"},
    )
    old_imap = ProviderAccount.objects.create(
        workspace=workspace,
        capability="fetch_replies",
        adapter="imap",
        name="Old IMAP",
        base_url="imap://imap.acme.test:1143",
        options={"security": "none"},
    )
    untouched = ProviderAccountFactory(workspace=workspace)
    migration.forwards(global_apps, None)
    old_smtp.refresh_from_db()
    old_imap.refresh_from_db()
    assert old_smtp.options == {"from_email": "a@b.c"} and old_smtp.base_url == f"smtps://{PUBLIC_IP}:465"
    assert old_imap.options == {} and old_imap.base_url == "imap+plain://imap.acme.test:1143"
    note = AuditEvent.objects.get(target_id=str(old_smtp.pk))
    assert note.changes["ca_file"][0] == "/etc/passwd" and "ca_pem" in note.changes["ca_file"][1]
    assert not AuditEvent.objects.filter(target_id=str(untouched.pk)).exists()
    old_smtp.full_clean(exclude=["workspace"])  # what the migration leaves is valid under the new rules


# ------------------------------------------------------------------------------------------------- DNS


@pytest.mark.parametrize(
    "wrap",
    [
        lambda e: e,
        lambda e: HostUnresolvable("api.vendor.example", str(e)),
        lambda e: _chained(__import__("httpx").ConnectError("connect failed"), e),
        lambda e: _chained(OSError("wrapped"), HostUnresolvable("api.vendor.example")),
    ],
)
@pytest.mark.parametrize("errno", [socket.EAI_NONAME, socket.EAI_AGAIN, socket.EAI_FAIL])
def test_every_form_of_dns_failure_is_transient_with_the_dns_cause(wrap, errno):
    error = classify_exception(wrap(socket.gaierror(errno, "resolver says no")), provider="p")
    assert error.kind is ErrorKind.TRANSIENT and DNS_CAUSE in error.message


def _chained(outer: BaseException, cause: BaseException) -> BaseException:
    outer.__cause__ = cause
    return outer


def test_unresolvable_host_is_retried_later_then_flags_the_account(workspace, gateway_fast, dns_down):
    """Every call: ProvidersUnavailable (the crm run retries at retry_at; no contact is failed). Once it
    persists the breaker opens and the account's state and recommendation name the base URL."""
    account = ProviderAccountFactory(workspace=workspace, base_url="http://api.vendor.example")

    for _ in range(2):
        with pytest.raises(ProvidersUnavailable) as info:
            services.verify_email(workspace=workspace, email="a@example.test")
        assert info.value.retry_at is not None
        error = info.value.errors[account.name]
        assert error.kind is ErrorKind.TRANSIENT and DNS_CAUSE in error.message
    assert set(dns_down) == {"api.vendor.example"}
    assert breaker.status(account.pk).state == breaker.OPEN
    account.refresh_from_db()
    assert account.state == AccountState.COOLING and DNS_CAUSE in account.state_cause
    recs = {r.code: r for r in recommendations(workspace) if r.account_id == account.pk}
    assert "cooling" not in recs  # the specific advice replaces the generic one
    assert recs["dns_unresolved"].severity == "critical"
    assert "http://api.vendor.example" in recs["dns_unresolved"].message


# ------------------------------------------------------------------------------ SMTPUTF8 through the chain


@pytest.mark.parametrize("smtp_sink", [{"smtputf8": False}], indirect=True)
def test_address_needing_smtputf8_fails_alone_without_tripping_the_breaker(
    workspace, gateway_fast, smtp_sink
):
    from gateway.capabilities import OutgoingEmail

    account = create(
        workspace,
        base_url=f"smtp+plain://{smtp_sink.host}:{smtp_sink.port}",
        options={"from_email": "news@acme.test"},
        credentials={"username": "u", "password": "p"},
    )
    for _ in range(4):  # more than the breaker's consecutive-failure threshold (3 in gateway_fast)
        with pytest.raises(ProviderError) as info:
            services.send_email(
                workspace=workspace, message=OutgoingEmail(to="jürgen@exämple.de", subject="s", text="t")
            )
        assert info.value.kind is ErrorKind.BAD_INPUT and "SMTPUTF8" in info.value.message
    assert breaker.status(account.pk).state == breaker.CLOSED
    result = services.send_email(
        workspace=workspace, message=OutgoingEmail(to="ok@example.test", subject="next", text="t")
    )
    assert result.to == "ok@example.test" and smtp_sink.wait_for(1)[0]["Subject"] == "next"
    account.refresh_from_db()
    assert account.state == AccountState.HEALTHY


def test_crm_verification_run_is_retried_not_failed_per_contact_when_dns_fails(
    workspace, gateway_fast, dns_down
):
    """crm's run step lets ProvidersUnavailable through (its task retries the chunk at retry_at): with an
    unresolvable provider host no contact is counted failed or given a verdict."""
    from aicmo.models import Job
    from crm import services as crm_services
    from crm.models import Contact
    from tests.crm.factories import ContactFactory

    ProviderAccountFactory(workspace=workspace, base_url="http://api.vendor.example")
    contacts = ContactFactory.create_batch(3, workspace=workspace)
    job = crm_services.verification_start(workspace=workspace, contact_ids=[c.pk for c in contacts])

    with pytest.raises(ProvidersUnavailable) as info:
        crm_services.run_lane_step(job_id=job.pk, offset=0)
    assert info.value.retry_at is not None
    job = Job.objects.get(pk=job.pk)
    assert job.failed == 0 and job.done == 0
    assert set(
        Contact.objects.filter(pk__in=[c.pk for c in contacts]).values_list("verification", flat=True)
    ) == {""}


def test_selfcheck_of_an_unresolvable_host_degrades_the_account_with_the_dns_advice(
    workspace, gateway_fast, dns_down
):
    from gateway.health import selfcheck_account

    account = ProviderAccountFactory(workspace=workspace, base_url="http://api.vendor.example")

    check = selfcheck_account(account=account)
    assert not check.ok and check.error_kind == ErrorKind.TRANSIENT and DNS_CAUSE in check.message
    account.refresh_from_db()
    assert account.state == AccountState.DEGRADED and DNS_CAUSE in account.state_cause
    codes = {r.code for r in recommendations(workspace) if r.account_id == account.pk}
    assert "dns_unresolved" in codes and "selfcheck_failed" not in codes
