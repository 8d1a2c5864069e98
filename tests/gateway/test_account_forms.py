"""Provider accounts on the dashboard: the per-adapter form, write-only secrets, Test connection in words,
service validation as form errors, the role matrix and tenant isolation."""

from __future__ import annotations

import pytest

from gateway.adapters import ADAPTERS
from gateway.errors import ErrorKind
from gateway.forms import AccountForm
from gateway.models import HealthCheck, ProviderAccount
from tests.fixtures.services import smtp_account_for_sink
from tests.gateway.factories import ProviderAccountFactory
from tests.gateway.test_adapters_mail import dovecot  # noqa: F401 - the real IMAP server fixture

ADD = "/gateway/accounts/add/"
SECRET = "pw-Zq81-never-shown"


@pytest.fixture(autouse=True)
def _real_redis(redis_client):
    """Self-checks and the health page read the breaker and failure log in Redis."""


def _post_data(**over):
    data = {
        "name": "Office mail",
        "priority": "100",
        "enabled": "on",
        "timeout_seconds": "10",
        "rate_limit_burst": "1",
    }
    data.update(over)
    return data


@pytest.mark.parametrize("key", sorted(ADAPTERS))
def test_every_adapter_declares_a_form_spec_for_each_of_its_fields(key):
    cls = ADAPTERS[key]
    assert set(cls.field_specs) == set(cls.credential_fields) | set(cls.option_fields), key
    form = AccountForm(adapter_cls=cls)
    for name in cls.credential_fields:
        assert form.fields[f"cred_{name}"].label
    for name in cls.option_fields:
        assert form.fields[f"opt_{name}"].label
    if not cls.is_demo and cls.credential_fields:
        assert cls.docs_url.startswith("https://"), f"{key} has credentials but no docs link"


def test_picker_lists_every_capability_and_adapter(client_for):
    html = client_for("admin").get(ADD).content.decode()
    assert "Send email" in html and "adapter=smtp" in html and "adapter=imap" in html
    assert "adapter=hunter" in html and "adapter=airtable" in html


def test_smtp_account_added_tested_and_secret_never_echoed(client_for, smtp_sink):
    client = client_for("admin")
    form = client.get(ADD + "?capability=send_email&adapter=smtp").content.decode()
    assert "From address" in form and "smtp+plain://" in form and "rfc6409" in form
    resp = client.post(
        ADD + "?adapter=smtp",
        _post_data(
            base_url=f"smtp+plain://{smtp_sink.host}:{smtp_sink.port}",
            cred_username="mailer",
            cred_password=SECRET,
            opt_from_email="team@acme.test",
            opt_verify_tls="on",
        ),
    )
    assert resp.status_code == 302, resp.content.decode()[:2000]
    account = ProviderAccount.objects.get(workspace=client.workspace, name="Office mail")
    assert (account.capability, account.adapter) == ("send_email", "smtp")
    assert account.get_credentials() == {"username": "mailer", "password": SECRET}
    assert account.options == {"from_email": "team@acme.test", "verify_tls": True}
    page = client.get(resp["Location"]).content.decode()
    assert SECRET not in page and "Not tested yet" in page and 'value="mailer"' in page

    resp = client.post(f"/gateway/accounts/{account.pk}/selfcheck/", {"next": "account"})
    assert resp["Location"] == f"/gateway/accounts/{account.pk}/#connection"
    page = client.get(f"/gateway/accounts/{account.pk}/").content.decode()
    assert 'data-ok="true"' in page and "Connected: SMTP answered in" in page
    assert SECRET not in page

    # an edit with the password left blank keeps it; a new value replaces it
    resp = client.post(
        f"/gateway/accounts/{account.pk}/",
        _post_data(
            name="Office mail 2",
            base_url=account.base_url,
            cred_username="mailer",
            cred_password="",
            opt_from_email="team@acme.test",
        ),
    )
    assert resp.status_code == 302
    account.refresh_from_db()
    assert account.name == "Office mail 2" and account.get_credentials()["password"] == SECRET
    assert account.options == {"from_email": "team@acme.test", "verify_tls": False}
    client.post(
        f"/gateway/accounts/{account.pk}/",
        _post_data(name="Office mail 2", base_url=account.base_url, cred_username="m2", cred_password="new"),
    )
    account.refresh_from_db()
    assert account.get_credentials() == {"username": "m2", "password": "new"}

    # another server with the password left blank: an error on the password, nothing changed; entered
    # again, it is stored for the new server
    moved = "smtp://8.8.8.8:587"
    edit = _post_data(name="Office mail 3", base_url=moved, cred_username="m3", cred_password="")
    resp = client.post(f"/gateway/accounts/{account.pk}/", edit)
    assert resp.status_code == 400 and "only sent to the server it was given for" in resp.content.decode()
    account.refresh_from_db()
    assert (account.name, account.get_credentials()) == (
        "Office mail 2",
        {"username": "m2", "password": "new"},
    )
    resp = client.post(f"/gateway/accounts/{account.pk}/", edit | {"cred_password": "for-the-new-one"})
    assert resp.status_code == 302
    account.refresh_from_db()
    assert (account.base_url, account.get_credentials()) == (
        moved,
        {"username": "m3", "password": "for-the-new-one"},
    )


def test_http_vendor_account_test_connection_success_and_failure_in_words(client_for, vendor_server):
    client = client_for("admin")
    vendor_server.json("GET", "/v2/account", {"data": {"email": "a@b.test"}}, once=True)
    resp = client.post(
        ADD + "?adapter=hunter",
        _post_data(name="Hunter", base_url=vendor_server.base_url, cred_api_key=SECRET),
    )
    assert resp.status_code == 302, resp.content.decode()[:2000]
    account = ProviderAccount.objects.get(workspace=client.workspace, adapter="hunter")
    assert account.capability == "verify_email"
    client.post(f"/gateway/accounts/{account.pk}/selfcheck/", {"next": "account"})
    assert vendor_server.requests[-1].headers["X-API-KEY"] == SECRET
    assert "Connected: Hunter answered" in client.get(f"/gateway/accounts/{account.pk}/").content.decode()

    vendor_server.json("GET", "/v2/account", {"errors": [{"details": "bad key"}]}, status=401, once=True)
    client.post(f"/gateway/accounts/{account.pk}/selfcheck/", {"next": "account"})
    page = client.get(f"/gateway/accounts/{account.pk}/").content.decode()
    assert 'data-ok="false"' in page and ErrorKind.REAUTH.words in page
    assert "<details><summary>Technical detail</summary>" in page and "<code>reauth</code>" in page
    assert SECRET not in page
    index = client.get("/gateway/").content.decode()
    assert f'href="/gateway/accounts/{account.pk}/">Fix this account' in index
    assert ErrorKind.REAUTH.words in index


def test_imap_account_against_a_real_server(client_for, dovecot):  # noqa: F811
    client = client_for("admin")
    resp = client.post(
        ADD + "?adapter=imap",
        _post_data(
            name="Replies",
            base_url=f"imap+plain://127.0.0.1:{dovecot}",
            cred_username="inbox",
            cred_password="pw123",
            opt_mailbox="INBOX",
        ),
    )
    assert resp.status_code == 302, resp.content.decode()[:2000]
    account = ProviderAccount.objects.get(workspace=client.workspace, adapter="imap")
    assert account.capability == "fetch_replies" and account.options == {
        "mailbox": "INBOX",
        "verify_tls": False,
    }
    client.post(f"/gateway/accounts/{account.pk}/selfcheck/", {"next": "account"})
    assert HealthCheck.objects.get(account=account).ok
    client.post(
        f"/gateway/accounts/{account.pk}/",
        _post_data(name="Replies", base_url=account.base_url, cred_username="inbox", cred_password="wrong"),
    )
    client.post(f"/gateway/accounts/{account.pk}/selfcheck/", {"next": "account"})
    page = client.get(f"/gateway/accounts/{account.pk}/").content.decode()
    assert ErrorKind.REAUTH.words in page and "wrong" not in page


@pytest.mark.parametrize(
    ("adapter", "data", "field_text"),
    [
        ("smtp", {"base_url": ""}, "This field is required"),
        ("smtp", {"base_url": "http://mail.example.com"}, "URLs are allowed"),
        ("smtp", {"base_url": "smtp://127.0.0.1:25"}, ""),
        ("hunter", {"base_url": "http://169.254.169.254/latest"}, ""),
        ("hunter", {"timeout_seconds": "0"}, "greater than or equal to 0.1"),
        ("smtp", {"base_url": "smtp://mail.example.com", "opt_from_email": "not an address"}, "valid email"),
        ("smtp", {"base_url": "smtp://mail.example.com", "ca_pem": "-----BEGIN CERTIFICATE-----\nxx"}, ""),
        ("dropcontact", {"opt_max_wait": "-1"}, "greater than or equal to 1"),
        ("hunter", {"cred_api_key": ""}, "This field is required"),
    ],
)
def test_bad_values_are_form_errors_and_write_nothing(client_for, adapter, data, field_text):
    client = client_for("admin")
    payload = _post_data(**{"cred_api_key": "k", "cred_username": "u", "cred_password": "p", **data})
    resp = client.post(ADD + f"?adapter={adapter}", payload)
    assert resp.status_code == 400
    html = resp.content.decode()
    errors = html[html.index('class="errorlist') :]
    assert field_text in errors
    assert not ProviderAccount.objects.exists()


def test_duplicate_name_is_a_form_error(client_for):
    client = client_for("admin")
    ProviderAccountFactory(workspace=client.workspace, name="Hunter", capability="verify_email")
    resp = client.post(ADD + "?adapter=hunter", _post_data(name="Hunter", cred_api_key="k"))
    assert resp.status_code == 400 and "already has this name" in resp.content.decode()


def test_delete_asks_then_deletes(client_for):
    client = client_for("admin")
    account = ProviderAccountFactory(workspace=client.workspace, name="Old vendor")
    page = client.get(f"/gateway/accounts/{account.pk}/delete/").content.decode()
    assert "Delete Old vendor?" in page and "those calls fail until you add one" in page
    assert ProviderAccount.objects.filter(pk=account.pk).exists()
    assert client.post(f"/gateway/accounts/{account.pk}/delete/").status_code == 302
    assert not ProviderAccount.objects.filter(pk=account.pk).exists()


@pytest.mark.parametrize("role", ["marketer", "reviewer", "viewer"])
def test_only_admins_manage_accounts(client_for, role):
    client = client_for(role)
    account = ProviderAccountFactory(workspace=client.workspace)
    for url in (ADD, ADD + "?adapter=hunter", f"/gateway/accounts/{account.pk}/",
                f"/gateway/accounts/{account.pk}/delete/"):  # fmt: skip
        assert client.get(url).status_code == 403, url
        assert client.post(url, _post_data(cred_api_key="k")).status_code == 403, url
    assert ProviderAccount.objects.filter(pk=account.pk).exists()
    assert ProviderAccount.objects.count() == 1
    html = client.get("/gateway/").content.decode()
    assert "Add provider account" not in html and f"/gateway/accounts/{account.pk}/" not in html


def test_admin_sees_add_and_edit_links(client_for):
    client = client_for("admin")
    account = ProviderAccountFactory(workspace=client.workspace)
    html = client.get("/gateway/").content.decode()
    assert "Add provider account" in html and f'href="/gateway/accounts/{account.pk}/"' in html


def test_another_workspaces_account_is_404(client_for, other_workspace):
    client = client_for("admin")
    foreign = ProviderAccountFactory(workspace=other_workspace, name="Globex vendor")
    for url in (f"/gateway/accounts/{foreign.pk}/", f"/gateway/accounts/{foreign.pk}/delete/"):
        assert client.get(url).status_code == 404
        assert client.post(url, _post_data(cred_api_key="k")).status_code == 404
    assert client.post(f"/gateway/accounts/{foreign.pk}/selfcheck/", {"next": "account"}).status_code == 404
    foreign.refresh_from_db()
    assert foreign.name == "Globex vendor" and not HealthCheck.objects.exists()


def test_account_page_query_count(client_for, smtp_sink, django_assert_max_num_queries):
    client = client_for("admin")
    account = smtp_account_for_sink(client.workspace, smtp_sink)
    with django_assert_max_num_queries(10):
        assert client.get(f"/gateway/accounts/{account.pk}/").status_code == 200


def test_failed_selfcheck_recommendation_in_words_with_the_detail_behind_a_click(client_for, vendor_server):
    client = client_for("admin")
    account = ProviderAccount.objects.create(
        workspace=client.workspace, capability="verify_email", adapter="hunter", name="Hunter",
        base_url=vendor_server.base_url,
    )  # fmt: skip
    HealthCheck.objects.create(
        workspace=client.workspace, account=account, at=account.created_at, ok=False, latency_ms=3,
        error_kind="transient", message="[transient] hunter: ConnectError: connection refused",
    )  # fmt: skip
    html = client.get("/gateway/").content.decode()
    recs = html.split('id="recs-title"', 1)[1].split("</section>", 1)[0]
    assert "Hunter (Hunter) failed its last self-check: " + ErrorKind.TRANSIENT.words.lower() in recs
    summary, detail = recs.split("<details><summary>Technical detail</summary>", 1)
    assert "ConnectError" not in summary and "ConnectError: connection refused" in detail
    assert f'href="/gateway/accounts/{account.pk}/">Fix this account' in recs
