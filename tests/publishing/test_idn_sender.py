"""Senders on internationalized domains with non-ASCII display names: a campaign goes out through the real
SMTP sink (one that does not offer SMTPUTF8) with the domain as its A-label in the envelope, the From
header and the Message-ID, the name RFC 2047-encoded, and the DKIM signature of the domain verifying."""

from __future__ import annotations

from email.header import decode_header, make_header

import dkim
import pytest
from django.utils import timezone

from publishing.models import Delivery, Sender
from publishing.services import campaigns, sending
from publishing.services import dkim as dkim_services

from .conftest import make_audience, make_content, smtp_account
from .test_dkim import dns_for

pytestmark = pytest.mark.django_db

A_LABEL = "xn--bcher-kva.example"


@pytest.mark.parametrize("smtp_sink", [{"smtputf8": False}], indirect=True)
def test_campaign_from_an_idn_sender_with_a_non_ascii_name_is_sent_and_signed(
    workspace, smtp_sink, fast_gateway
):
    # Given a verified sender news@bücher.example named with umlauts and RFC 5322 specials, and its DKIM key
    sender = Sender.objects.create(
        workspace=workspace,
        email="news@bücher.example",
        name='Bücher & Söhne, "Verlag"',
        verified_at=timezone.now(),
    )
    key = dkim_services.dkim_key_create(workspace=workspace, domain="bücher.example", selector="s1")
    smtp_account(workspace, smtp_sink.host, smtp_sink.port)
    contact_list, _ = make_audience(workspace, 2)
    campaign = campaigns.campaign_create(
        workspace=workspace,
        name="IDN",
        content=make_content(workspace, sender=sender),
        audience={"lists": [contact_list.pk]},
    )
    campaigns.campaign_send_now(campaign=campaign)
    # When the batch is sent
    outcome = sending.campaign_send_batch(campaign_id=campaign.pk)
    # Then both went out, with the A-label everywhere an ASCII-only server needs it
    assert (outcome.sent, outcome.failed) == (2, 0)
    received = smtp_sink.wait_for(2)
    for message in received:
        head = message.raw.split(b"\r\n\r\n", 1)[0]
        assert head.isascii()
        assert message.envelope_from == f"news@{A_LABEL}"
        assert message["From"].addresses[0].addr_spec == f"news@{A_LABEL}"
        raw_from = next(
            line for line in head.decode().replace("\r\n ", " ").split("\r\n") if line.startswith("From:")
        )
        assert (
            str(make_header(decode_header(raw_from[5:].strip())))
            == f'Bücher & Söhne, "Verlag" <news@{A_LABEL}>'
        )
        assert message["Message-ID"].endswith(f"@{A_LABEL}>")
        assert dkim.verify(message.raw, dnsfunc=dns_for(key)), message.raw[:400]
    stored = set(Delivery.objects.filter(campaign=campaign).values_list("message_id", flat=True))
    assert stored == {m["Message-ID"] for m in received}
