"""List-Unsubscribe mailto: requests read from a real IMAP mailbox (dovecot) through the gateway's
``fetch_replies`` and applied by the same unsubscribe service as the one-click URL."""

from __future__ import annotations

from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from crm.models import ConsentEvent, Suppression
from publishing.models import Delivery, EngagementEvent, WebhookDelivery
from publishing.services import campaigns, sending, webhooks
from publishing.services.tracking import mailto_unsubscribes_process
from publishing.tasks import mailto_unsubscribes_task
from tests.gateway.test_adapters_mail import _append

from .conftest import imap_account, make_audience, make_content, smtp_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailbox(dovecot):
    """``mailbox(workspace)``: the workspace's fetch_replies account on the real dovecot mailbox."""

    def make(workspace):
        return imap_account(workspace, dovecot)

    make.port = dovecot
    return make


def mail(to: str, subject: str, sender: str = "reader@example.com") -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    message["Message-ID"] = f"<{abs(hash(subject))}@example.com>"
    message.set_content("Please unsubscribe me.")
    return bytes(message)


def send_and_read_mailtos(workspace, smtp_sink, n: int) -> dict[str, tuple[str, str]]:
    """Send a real campaign to ``n`` contacts; each recipient's List-Unsubscribe mailto (address, subject)."""
    smtp_account(workspace, smtp_sink.host, smtp_sink.port)
    contact_list, _ = make_audience(workspace, n)
    campaign = campaigns.campaign_create(
        workspace=workspace, name="M", content=make_content(workspace), audience={"lists": [contact_list.pk]}
    )
    campaigns.campaign_send_now(campaign=campaign)
    sending.campaign_send_batch(campaign_id=campaign.pk)
    out = {}
    for message in smtp_sink.wait_for(n):
        parts = urlsplit(message["List-Unsubscribe"].split(",")[1].strip(" <>"))
        assert parts.scheme == "mailto"
        out[message["To"]] = (unquote(parts.path), parse_qs(parts.query)["subject"][0])
    return out


def test_mailto_unsubscribe_from_the_mailbox(workspace, smtp_sink, fast_gateway, mailbox):
    mailbox(workspace)
    recipient, (address, subject) = sorted(send_and_read_mailtos(workspace, smtp_sink, 2).items())[0]
    assert subject.startswith("unsubscribe ")
    _append(mailbox.port, mail(address, subject))
    _append(mailbox.port, mail(address, "unsubscribe forged:token"))  # bad signature: ignored
    _append(mailbox.port, mail(address, "Question about the offer"))  # not a request: ignored
    webhooks.endpoint_create(
        workspace=workspace, by=None, url="https://hooks.example/in", event_types=["contact.unsubscribed"]
    )

    assert mailto_unsubscribes_process(workspace=workspace) == 1
    assert mailto_unsubscribes_task() == 1  # the beat task re-reads the mailbox: idempotent
    delivery = Delivery.objects.get(email=recipient)
    suppression = Suppression.objects.get()
    assert (suppression.contact_id, suppression.channel, suppression.reason) == (
        delivery.contact_id,
        "email",
        "unsubscribed",
    )
    assert ConsentEvent.objects.filter(contact_id=delivery.contact_id, granted=False).count() == 1
    assert EngagementEvent.objects.filter(kind="unsubscribe", metadata__source="mailto").count() == 1
    (hook,) = WebhookDelivery.objects.filter(
        event_type="contact.unsubscribed"
    )  # once, the re-read added none
    assert (hook.payload["source"], hook.payload["contact"]["id"]) == ("mailto", delivery.contact_id)


def test_a_request_for_another_workspace_is_not_applied(
    workspace, other_workspace, smtp_sink, fast_gateway, mailbox
):
    mailbox(other_workspace)
    [(address, subject)] = send_and_read_mailtos(workspace, smtp_sink, 1).values()
    _append(mailbox.port, mail(address, subject))
    assert mailto_unsubscribes_process(workspace=other_workspace) == 0
    assert not Suppression.objects.exists()
