"""DKIM: keys per sending domain (generated or uploaded, stored encrypted), the DNS record to publish, and
signatures over the bytes the real SMTP sink received, verified with dkimpy answering the DNS query from
the stored public key."""

from __future__ import annotations

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.core.exceptions import ValidationError

from aicmo.models import AuditEvent, Role
from publishing.models import DkimKey
from publishing.services import campaigns, preview, sending
from publishing.services import dkim as dkim_services

from .conftest import make_audience, make_content, smtp_account

pytestmark = pytest.mark.django_db


def dns_for(*keys: DkimKey):
    """dkimpy's ``dnsfunc``: the TXT records the workspace would have published for ``keys``."""
    records = {
        dkim_services.dns_record(k).name.encode() + b".": dkim_services.dns_record(k).value.encode()
        for k in keys
    }

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name if name.endswith(b".") else name + b".")

    return dnsfunc


def send_campaign(workspace, smtp_sink, n=2, sender=None):
    smtp_account(workspace, smtp_sink.host, smtp_sink.port)
    contact_list, _ = make_audience(workspace, n)
    campaign = campaigns.campaign_create(
        workspace=workspace,
        name="Signed",
        content=make_content(workspace, sender=sender),
        audience={"lists": [contact_list.pk]},
    )
    campaigns.campaign_send_now(campaign=campaign)
    sending.campaign_send_batch(campaign_id=campaign.pk)
    return smtp_sink.wait_for(n)


def signature_tags(raw: bytes) -> dict[str, str]:
    """The DKIM-Signature's tags (unfolded, whitespace removed)."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode().replace("\r\n\t", " ").replace("\r\n ", " ")
    value = next(line for line in head.split("\r\n") if line.startswith("DKIM-Signature:"))
    value = value.split(":", 1)[1]
    return {
        k.strip(): v.replace(" ", "")
        for k, _, v in (part.partition("=") for part in value.split(";"))
        if k.strip()
    }


def test_campaign_mail_is_signed_and_verifies_against_the_published_record(
    workspace, smtp_sink, fast_gateway, django_capture_on_commit_callbacks
):
    key = dkim_services.dkim_key_create(workspace=workspace, domain="Acme.example", selector="s2026")
    assert key.active and key.domain == "acme.example"
    received = send_campaign(workspace, smtp_sink)
    for message in received:
        assert dkim.verify(message.raw, dnsfunc=dns_for(key)), message.raw[:400]
    tags = signature_tags(received[0].raw)
    assert (tags["d"], tags["s"], tags["c"], tags["a"]) == (
        "acme.example",
        "s2026",
        "relaxed/relaxed",
        "rsa-sha256",
    )
    assert tags["h"].lower().split(":") == [
        "from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post",
        "mime-version", "content-type",
    ]  # fmt: skip


def test_tampering_with_body_or_signed_header_fails_verification(
    workspace, smtp_sink, fast_gateway, django_capture_on_commit_callbacks
):
    key = dkim_services.dkim_key_create(workspace=workspace, domain="acme.example", selector="s1")
    raw = send_campaign(workspace, smtp_sink, n=1)[0].raw
    assert dkim.verify(raw, dnsfunc=dns_for(key))
    assert b"Offer" in raw
    assert not dkim.verify(raw.replace(b"Offer", b"0ffer", 1), dnsfunc=dns_for(key))
    assert not dkim.verify(raw.replace(b"Subject: Hi", b"Subject: Yo", 1), dnsfunc=dns_for(key))
    # another workspace's key for the same domain and selector is not the one that signed
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = DkimKey(domain="acme.example", selector="s1", public_key=_public_b64(other))
    assert not dkim.verify(raw, dnsfunc=dns_for(forged))


def _public_b64(private) -> str:
    import base64

    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def test_mail_from_a_domain_without_key_goes_out_unsigned(
    workspace, other_workspace, smtp_sink, fast_gateway, django_capture_on_commit_callbacks
):
    dkim_services.dkim_key_create(workspace=workspace, domain="other.example", selector="s1")
    # the same domain's key in another workspace does not sign this workspace's mail
    dkim_services.dkim_key_create(workspace=other_workspace, domain="acme.example", selector="s1")
    received = send_campaign(workspace, smtp_sink, n=1)
    assert received[0]["DKIM-Signature"] is None
    assert b"DKIM-Signature" not in received[0].raw


def test_rotation_signs_with_the_activated_selector(
    workspace, smtp_sink, fast_gateway, django_capture_on_commit_callbacks
):
    old = dkim_services.dkim_key_create(workspace=workspace, domain="acme.example", selector="old")
    new = dkim_services.dkim_key_create(workspace=workspace, domain="acme.example", selector="new")
    assert (old.active, new.active) == (True, False)  # published first, activated later
    dkim_services.dkim_key_activate(key=new)
    old.refresh_from_db()
    assert not old.active
    raw = send_campaign(workspace, smtp_sink, n=1)[0].raw
    assert signature_tags(raw)["s"] == "new"
    assert dkim.verify(raw, dnsfunc=dns_for(old, new))
    assert not dkim.verify(raw, dnsfunc=dns_for(old))
    assert AuditEvent.objects.filter(verb="publishing.dkim.activated", target_id=str(new.pk)).exists()


def test_test_copies_are_signed(workspace, smtp_sink, fast_gateway):
    key = dkim_services.dkim_key_create(workspace=workspace, domain="acme.example", selector="t1")
    smtp_account(workspace, smtp_sink.host, smtp_sink.port)
    content = make_content(workspace)
    assert preview.content_send_test(content=content, addresses="qa@example.net") == {
        "qa@example.net": "sent"
    }
    raw = smtp_sink.wait_for(1)[0].raw
    assert signature_tags(raw)["h"].lower().split(":") == [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
    ]  # fmt: skip  (no List-Unsubscribe on test copies)
    assert dkim.verify(raw, dnsfunc=dns_for(key))


def test_idn_sender_domain_is_matched_by_its_a_label(workspace):
    key = dkim_services.dkim_key_create(workspace=workspace, domain="exämple.de", selector="s1")
    assert key.domain == "xn--exmple-cua.de"
    for address in ("news@exämple.de", "news@xn--exmple-cua.de", "news@EXÄMPLE.de"):
        assert dkim_services.signing_key(workspace.pk, address).domain == "xn--exmple-cua.de"
    assert dkim_services.signing_key(workspace.pk, "news@example.de") is None


def test_private_key_is_stored_encrypted_and_the_record_is_the_public_half(workspace):
    key = dkim_services.dkim_key_create(workspace=workspace, domain="acme.example", selector="s1")
    assert "PRIVATE KEY" not in key.private_key_encrypted
    record = dkim_services.dns_record(key)
    assert record.name == "s1._domainkey.acme.example"
    assert record.value.startswith("v=DKIM1; k=rsa; p=MIIBIjAN")  # RSA 2048 SubjectPublicKeyInfo
    assert "".join(record.chunks) == record.value and all(len(c) <= 255 for c in record.chunks)
    signing = dkim_services.signing_key(workspace.pk, "news@ACME.example")
    private = serialization.load_pem_private_key(signing.private_key_pem.encode(), password=None)
    assert private.key_size == 2048 and _public_b64(private) == key.public_key
    assert "PRIVATE" not in repr(signing)


@pytest.mark.parametrize(
    "fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL]
)
def test_uploaded_pem_is_accepted_and_stored_as_pkcs1(workspace, fmt):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()
    key = dkim_services.dkim_key_create(
        workspace=workspace, domain="acme.example", selector="up", private_key_pem=pem
    )
    assert key.public_key == _public_b64(private)
    stored = dkim_services.signing_key(workspace.pk, "a@acme.example").private_key_pem
    assert stored.startswith("-----BEGIN RSA PRIVATE KEY-----")  # the form dkimpy reads


# `openssl genrsa 512`: cryptography refuses to generate keys this small, but a PEM of one can be uploaded.
RSA_512 = """-----BEGIN PRIVATE KEY-----
MIIBVQIBADANBgkqhkiG9w0BAQEFAASCAT8wggE7AgEAAkEApa5lyTJ6xtPYZW1e
eY1q2+1G4lawIDIqabgUUQstgh8rgBq7zNPjNr70XIk8e/5Q1DxmvQeOhJevJQfJ
scKfVwIDAQABAkEAjlWq4BRb4eAxMcGpvic9vD61/NCYcrBmO3iHC7DcocGfj6ng
OON6ozdMwuZv8blAFiEo93alhthevxyKIDLZIQIhAM/WXJzKFapSUEs7eRjHUmKr
k1hRX2Ws7JuW+PEEfNXfAiEAzBMwIX1m3C/R/hUpsscsDc7hbIU/ph8E0OZMbJDz
NYkCIDqvU30uDooGLgfgJiRZ+6hCvBse9unVtwWDzoz3cGxPAiA3CCGdllyLmhWt
x/UzscQugRCHHDO6z3iUANaxHDGJyQIhAJXnqpD7KA7Oqec3j67VuWYQi3BRQVUf
T3FKTak1e2wi
-----END PRIVATE KEY-----"""


def _pem(private, password=None) -> str:
    enc = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc).decode()


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"domain": "localhost"}, {"domain"}),
        ({"domain": "bad..example"}, {"domain"}),
        ({"selector": "has space"}, {"selector"}),
        ({"selector": "-x"}, {"selector"}),
        ({"private_key_pem": "not a key"}, {"private_key"}),
        (
            {"private_key_pem": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"},
            {"private_key"},
        ),
        ({"private_key_pem": "ec"}, {"private_key"}),
        ({"private_key_pem": "small"}, {"private_key"}),
        ({"private_key_pem": "encrypted"}, {"private_key"}),
        ({"domain": "", "selector": ""}, {"domain", "selector"}),
    ],
)
def test_bad_input_is_a_field_error_and_writes_nothing(workspace, fields, errors):
    special = {
        "ec": lambda: _pem(ec.generate_private_key(ec.SECP256R1())),
        "small": lambda: RSA_512,
        "encrypted": lambda: _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048), b"pw"),
    }
    data = {"domain": "acme.example", "selector": "s1", **fields}
    if data.get("private_key_pem") in special:
        data["private_key_pem"] = special[data["private_key_pem"]]()
    with pytest.raises(ValidationError) as exc:
        dkim_services.dkim_key_create(workspace=workspace, **data)
    assert set(exc.value.message_dict) == errors
    assert not DkimKey.objects.exists()


def test_a_selector_is_unique_per_domain(workspace):
    dkim_services.dkim_key_create(workspace=workspace, domain="acme.example", selector="s1")
    with pytest.raises(ValidationError) as exc:
        dkim_services.dkim_key_create(workspace=workspace, domain="ACME.example", selector="S1")
    assert "selector" in exc.value.message_dict
    assert DkimKey.objects.count() == 1


def test_admin_generates_a_key_shows_the_record_never_the_key_and_is_scoped(
    staff_for, workspace, other_workspace
):
    client = staff_for(Role.ADMIN)
    resp = client.post(
        "/admin/publishing/dkimkey/add/",
        {"workspace": workspace.pk, "domain": "acme.example", "selector": "adm", "private_key": ""},
    )
    assert resp.status_code == 302, resp.content.decode()[:2000]
    key = DkimKey.objects.get()
    page = client.get(f"/admin/publishing/dkimkey/{key.pk}/change/").content.decode()
    assert "adm._domainkey.acme.example" in page and key.public_key in page
    assert "PRIVATE KEY" not in page and key.private_key_encrypted not in page
    resp = client.post(
        "/admin/publishing/dkimkey/add/",
        {"workspace": workspace.pk, "domain": "acme.example", "selector": "bad", "private_key": "junk"},
    )
    assert resp.status_code == 200 and "Not an unencrypted PEM private key" in resp.content.decode()
    assert DkimKey.objects.count() == 1
    other = staff_for(Role.ADMIN, other_workspace)
    assert other.get(f"/admin/publishing/dkimkey/{key.pk}/change/").status_code == 404
    assert "acme.example" not in other.get("/admin/publishing/dkimkey/").content.decode()


def test_marketer_cannot_add_keys_in_admin(staff_for, workspace):
    client = staff_for(Role.MARKETER)
    resp = client.post(
        "/admin/publishing/dkimkey/add/",
        {"workspace": workspace.pk, "domain": "acme.example", "selector": "m", "private_key": ""},
    )
    assert resp.status_code == 403
    assert not DkimKey.objects.exists()


# ---------------------------------------------------------------- API: /api/v1/publishing/dkim-keys/

KEYS = "/api/v1/publishing/dkim-keys/"


def test_api_generates_a_key_returns_the_record_never_the_private_key(api_client_for):
    admin = api_client_for(role=Role.ADMIN)
    resp = admin.post(KEYS, {"domain": "Mail.ACME.example", "selector": "api1"}, format="json")
    assert resp.status_code == 201, resp.content
    key = DkimKey.objects.get()
    body = resp.json()
    assert body["id"] == key.pk and body["domain"] == "mail.acme.example" and body["active"] is True
    record = dkim_services.dns_record(key)
    assert body["dns_record"] == {"name": record.name, "value": record.value, "chunks": record.chunks}
    assert "".join(body["dns_record"]["chunks"]) == record.value and all(
        len(c) <= 255 for c in body["dns_record"]["chunks"]
    )
    for answer in (resp, admin.get(f"{KEYS}{key.pk}/"), admin.get(KEYS)):
        assert b"PRIVATE" not in answer.content and key.private_key_encrypted.encode() not in answer.content
        assert b"private_key" not in answer.content
    assert AuditEvent.objects.filter(verb="publishing.dkim.created", workspace=admin.workspace).exists()


def test_api_uploaded_pem_publishes_its_public_half(api_client_for):
    admin = api_client_for(role=Role.ADMIN)
    private = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    resp = admin.post(
        KEYS, {"domain": "acme.example", "selector": "up", "private_key": _pem(private)}, format="json"
    )
    assert resp.status_code == 201, resp.content
    assert resp.json()["dns_record"]["value"] == f"v=DKIM1; k=rsa; p={_public_b64(private)}"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"domain": "localhost", "selector": "s1"}, {"domain"}),
        ({"domain": "acme.example", "selector": "bad selector"}, {"selector"}),
        ({"domain": "acme.example", "selector": "s1", "private_key": "junk"}, {"private_key"}),
        (
            {"domain": "nodot", "selector": "-x-", "private_key": "junk"},
            {"domain", "selector", "private_key"},
        ),
        ({"selector": "s1"}, {"domain"}),
        ({"domain": "acme.example", "selector": "s" * 64}, {"selector"}),
    ],
)
def test_api_bad_key_input_is_400_naming_each_field(api_client_for, body, fields):
    resp = api_client_for(role=Role.ADMIN).post(KEYS, body, format="json")
    assert resp.status_code == 400, resp.content
    assert set(resp.json()["error"]["fields"]) == fields
    assert not DkimKey.objects.exists()


def test_api_rotation_duplicate_selector_and_delete_rules(api_client_for):
    admin = api_client_for(role=Role.ADMIN)
    first = admin.post(KEYS, {"domain": "acme.example", "selector": "old"}, format="json").json()
    taken = admin.post(KEYS, {"domain": "ACME.example", "selector": "OLD"}, format="json")
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "conflict"
    assert set(taken.json()["error"]["fields"]) == {"selector"}
    new = admin.post(KEYS, {"domain": "acme.example", "selector": "new"}, format="json").json()
    assert new["active"] is False  # waits until its record is published

    # the signing key cannot go while the domain has another one
    blocked = admin.delete(f"{KEYS}{first['id']}/")
    assert blocked.status_code == 409 and DkimKey.objects.count() == 2

    activated = admin.post(f"{KEYS}{new['id']}/activate/")
    assert activated.status_code == 200 and activated.json()["active"] is True
    assert admin.get(KEYS, {"active": "true"}).json()["results"][0]["selector"] == "new"
    assert dkim_services.signing_key(admin.workspace.pk, "news@acme.example").selector == "new"

    assert admin.delete(f"{KEYS}{first['id']}/").status_code == 204
    assert admin.delete(f"{KEYS}{new['id']}/").status_code == 204  # the domain's only key may go
    assert not DkimKey.objects.exists()
    assert dkim_services.signing_key(admin.workspace.pk, "news@acme.example") is None
    verbs = set(AuditEvent.objects.filter(verb__startswith="publishing.dkim.").values_list("verb", flat=True))
    assert verbs == {"publishing.dkim.created", "publishing.dkim.activated", "publishing.dkim.deleted"}


@pytest.mark.parametrize("role", [Role.VIEWER, Role.MARKETER, Role.REVIEWER])
def test_api_keys_are_for_admins_only(api_client_for, workspace, role):
    key = dkim_services.dkim_key_create(workspace=workspace, domain="acme.example", selector="s1")
    client = api_client_for(role=role)
    assert client.get(KEYS).status_code == 403
    assert client.get(f"{KEYS}{key.pk}/").status_code == 403
    assert client.post(KEYS, {"domain": "acme.example", "selector": "s2"}, format="json").status_code == 403
    assert client.post(f"{KEYS}{key.pk}/activate/").status_code == 403
    assert client.delete(f"{KEYS}{key.pk}/").status_code == 403
    assert DkimKey.objects.count() == 1


def test_api_another_workspaces_keys_are_404_and_unlisted(api_client_for, other_workspace):
    theirs = dkim_services.dkim_key_create(workspace=other_workspace, domain="acme.example", selector="s1")
    waiting = dkim_services.dkim_key_create(workspace=other_workspace, domain="acme.example", selector="s2")
    admin = api_client_for(role=Role.ADMIN)
    assert admin.get(KEYS).json()["results"] == []
    assert admin.get(KEYS, {"domain": "acme.example"}).json()["results"] == []
    assert admin.get(f"{KEYS}{theirs.pk}/").status_code == 404
    assert admin.post(f"{KEYS}{waiting.pk}/activate/").status_code == 404
    assert admin.delete(f"{KEYS}{waiting.pk}/").status_code == 404
    # the same domain and selector in this workspace is no conflict with theirs
    assert admin.post(KEYS, {"domain": "acme.example", "selector": "s1"}, format="json").status_code == 201
    theirs.refresh_from_db(), waiting.refresh_from_db()
    assert (theirs.active, waiting.active) == (True, False)


def test_api_key_list_query_count_is_flat(api_client_for, django_assert_max_num_queries):
    admin = api_client_for(role=Role.ADMIN)
    private = _pem(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    for n in range(12):
        dkim_services.dkim_key_create(
            workspace=admin.workspace, domain=f"d{n}.example", selector="s1", private_key_pem=private
        )
    with django_assert_max_num_queries(8):  # session, membership, count, page: not per key
        resp = admin.get(KEYS, {"page_size": 50})
    assert resp.status_code == 200 and len(resp.json()["results"]) == 12


def test_api_schema_documents_keys_and_their_errors(api_client_for):
    schema = api_client_for(role=Role.ADMIN).get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    create = paths[KEYS]["post"]
    assert {"201", "400", "403", "409"} <= set(create["responses"])
    assert "private_key" not in str(create["responses"]["201"])
    assert {"204", "404", "409"} <= set(paths[KEYS + "{id}/"]["delete"]["responses"])
    assert {"200", "404"} <= set(paths[KEYS + "{id}/activate/"]["post"]["responses"])
    record = schema["components"]["schemas"]["DkimDnsRecord"]
    assert set(record["properties"]) == {"name", "value", "chunks"}


def test_admin_keeps_the_signing_key_while_the_domain_has_another(staff_for, workspace):
    active = dkim_services.dkim_key_create(workspace=workspace, domain="acme.example", selector="s1")
    waiting = dkim_services.dkim_key_create(workspace=workspace, domain="acme.example", selector="s2")
    client = staff_for(Role.ADMIN)
    assert client.get(f"/admin/publishing/dkimkey/{active.pk}/delete/").status_code == 403
    resp = client.post(f"/admin/publishing/dkimkey/{waiting.pk}/delete/", {"post": "yes"})
    assert resp.status_code == 302
    assert list(DkimKey.objects.values_list("selector", flat=True)) == ["s1"]
    assert AuditEvent.objects.filter(verb="publishing.dkim.deleted").count() == 1
