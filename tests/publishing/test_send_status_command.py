"""`campaign_send_status`: the operator's view of a send, scoped to the named workspace."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from publishing.services import campaigns, sending

from .conftest import make_campaign, smtp_account

pytestmark = pytest.mark.django_db


def _run(*args) -> str:
    out = StringIO()
    call_command("campaign_send_status", *[str(a) for a in args], stdout=out)
    return out.getvalue()


def test_status_line_follows_the_send_to_the_end(workspace, smtp_sink, fast_gateway):
    smtp_account(workspace, smtp_sink.host, smtp_sink.port)
    campaign = make_campaign(workspace, 3, name="Watch me")
    out = _run(campaign.pk, "--workspace", workspace.slug)
    assert f'"Watch me" #{campaign.pk} draft: 0/0 sent' in out
    campaigns.campaign_send_now(campaign=campaign)
    out = _run(campaign.pk, "--workspace", workspace.slug)
    assert "sending: 0/3 sent, 0 failed, 0 uncertain, 0 skipped, 3 queued, 0 in flight (job 0%)" in out
    while sending.campaign_send_batch(campaign_id=campaign.pk).more:
        pass
    # Sent: --follow prints the final line and returns instead of watching.
    out = _run(campaign.pk, "--workspace", str(workspace.pk), "--follow", "--interval", "0.01")
    assert out.count("\n") == 1 and "sent: 3/3 sent" in out and "(job 100%)" in out


def test_status_is_workspace_scoped_and_checks_its_arguments(workspace, other_workspace):
    campaign = make_campaign(workspace, 1)
    with pytest.raises(CommandError, match="No campaign"):
        _run(campaign.pk, "--workspace", other_workspace.slug)
    with pytest.raises(CommandError, match="No workspace"):
        _run(campaign.pk, "--workspace", "nope")
    with pytest.raises(CommandError, match="positive"):
        _run(campaign.pk, "--workspace", workspace.slug, "--interval", "0")
