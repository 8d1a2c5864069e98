"""Demo data and the demo mail catcher: a real catcher process, a real send, the staff outbox page."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from aicmo.models import Role
from gateway.models import ProviderAccount
from publishing import demo
from publishing.models import Campaign, Content
from publishing.selectors import campaign_report
from publishing.services import preview

from .conftest import make_audience, make_content, smtp_account

pytestmark = pytest.mark.django_db


def test_seed_adds_content_a_sent_campaign_with_events_and_a_scheduled_one(workspace, loopback_allow):
    loopback_allow("127.0.0.1", 1025)
    make_audience(workspace, 300)  # the demo's first list (crm's own demo data is tested in tests/crm)
    demo.seed(workspace, users={})
    account = ProviderAccount.objects.get(workspace=workspace, name=demo.CATCHER_ACCOUNT)
    assert account.base_url == "smtp+plain://127.0.0.1:1025"
    sent = Campaign.objects.get(workspace=workspace, status="sent")
    t = campaign_report(sent).total
    assert t.sent > 100 and 0 < t.opens_human < t.sent and 0 < t.clicks_unique <= t.opens_human
    assert t.delivered > 0 and t.bounces_hard > 0 and t.conversions > 0 and t.revenue > 0
    scheduled = Campaign.objects.get(workspace=workspace, status="scheduled")
    assert scheduled.scheduled_at is not None and scheduled.max_per_second == 5
    demo.seed(workspace, users={})  # idempotent
    assert Content.objects.for_workspace(workspace).count() == 1
    assert Campaign.objects.for_workspace(workspace).count() == 2


def test_seed_without_the_loopback_allowance_skips_only_the_catcher_account(workspace, settings):
    settings.GATEWAY_LOOPBACK_ALLOW = []
    make_audience(workspace, 5)
    demo.seed(workspace, users={})
    assert not ProviderAccount.objects.filter(name=demo.CATCHER_ACCOUNT).exists()
    assert Campaign.objects.for_workspace(workspace).count() == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def catcher(tmp_path, settings):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "publishing.democatcher", "--port", str(port), "--dir", str(tmp_path)],
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        settings.PUBLISHING_DEMO_OUTBOX_DIR = tmp_path
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def test_catcher_stores_real_mail_and_staff_read_it_in_the_outbox(
    workspace, catcher, loopback_allow, fast_gateway, client_for, tmp_path
):
    loopback_allow("127.0.0.1", catcher)
    smtp_account(workspace, "127.0.0.1", catcher)
    results = preview.content_send_test(content=make_content(workspace), addresses="me@x.example")
    assert results == {"me@x.example": "sent"}
    stored = list(tmp_path.glob("*.eml"))
    assert len(stored) == 1
    staff = client_for(Role.MARKETER)
    staff.user.is_staff = True
    staff.user.save()
    page = staff.get("/publishing/demo-outbox/").content.decode()
    assert "[TEST] Hi First" in page and "me@x.example" in page
    message = staff.get(f"/publishing/demo-outbox/{stored[0].name}/").content.decode()
    assert "srcdoc=" in message and 'sandbox="allow-popups' in message and "Hello First" in message
    assert staff.get("/publishing/demo-outbox/..%2Fsecrets.eml/").status_code == 404
    not_staff = client_for(Role.ADMIN)
    not_staff.user.is_staff = False
    not_staff.user.save()
    assert not_staff.get("/publishing/demo-outbox/").status_code == 403
