"""Open pixel, click redirect and unsubscribe, driven from the links inside a really sent message."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from crm.models import ConsentEvent, Contact, Suppression
from publishing.models import Delivery, EngagementEvent
from publishing.services.event_buffer import tracking_events_drain
from publishing.services.tracking import SALT_CLICK, SALT_OPEN, SALT_UNSUBSCRIBE

from .conftest import send_to_one

pytestmark = pytest.mark.django_db
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0"


@pytest.fixture
def sent(workspace, smtp_sink, fast_gateway, settings, django_capture_on_commit_callbacks):
    """One message really sent; returns (delivery, html part, message) with sent_at moved a minute back."""
    _, message = send_to_one(workspace, smtp_sink)
    html = message.get_body(("html",)).get_content()
    Delivery.objects.update(sent_at=timezone.now() - timedelta(minutes=1))
    return Delivery.objects.get(), html, message


def path_of(url: str, settings) -> str:
    assert url.startswith(settings.PUBLIC_BASE_URL)
    return url[len(settings.PUBLIC_BASE_URL) :]


def links(html: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'href="([^"]+)"', html)]


def test_pixel_records_an_open_and_answers_a_gif(sent, settings):
    delivery, html, _ = sent
    pixel = unescape(re.search(r'<img src="([^"]+)"', html).group(1))
    response = Client().get(path_of(pixel, settings), HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    assert response.content.startswith(b"GIF89a") and "no-cache" in response["Cache-Control"]
    assert not EngagementEvent.objects.filter(
        kind="open"
    ).exists()  # buffered in Redis, written by the flush task
    assert tracking_events_drain().read == 1
    event = EngagementEvent.objects.get(kind="open")
    assert (event.delivery_id, event.contact_id, event.machine) == (delivery.pk, delivery.contact_id, False)
    assert Contact.objects.get(pk=delivery.contact_id).lifecycle == "engaged"


@pytest.mark.parametrize(
    ("agent", "seconds_after_send", "machine"),
    [
        (BROWSER, 60, False),
        ("Mozilla/5.0", 60, True),  # Apple Mail Privacy Protection proxy
        ("Mozilla/5.0 (compatible; Barracuda scanner)", 60, True),
        ("", 60, True),
        (BROWSER, 2, True),  # prefetch within seconds of delivery
    ],
)
def test_machine_opens_are_flagged(sent, settings, agent, seconds_after_send, machine):
    delivery, html, _ = sent
    Delivery.objects.update(sent_at=timezone.now() - timedelta(seconds=seconds_after_send))
    pixel = unescape(re.search(r'<img src="([^"]+)"', html).group(1))
    Client().get(path_of(pixel, settings), HTTP_USER_AGENT=agent)
    tracking_events_drain()
    assert EngagementEvent.objects.get(kind="open").machine is machine


def test_click_redirects_to_the_stored_target_only(sent, settings):
    _, html, _ = sent
    click = next(u for u in links(html) if "/publishing/t/c/" in u)
    response = Client().get(path_of(click, settings), HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 302 and response["Location"] == "https://acme.example/offer"
    tracking_events_drain()
    assert EngagementEvent.objects.get(kind="click").metadata["url"] == "https://acme.example/offer"
    token = click.rstrip("/").rsplit("/", 1)[1]
    for forged in (token[:-1] + ("A" if token[-1] != "A" else "B"), "x", token + "x"):
        assert Client().get(f"/publishing/t/c/{forged}/").status_code == 404
    tracking_events_drain()
    assert EngagementEvent.objects.filter(kind="click").count() == 1


def test_tokens_are_per_purpose_and_expose_no_sequential_id(sent, settings):
    delivery, html, _ = sent
    pixel = unescape(re.search(r'<img src="([^"]+)"', html).group(1))
    open_token = pixel.rstrip("/").rsplit("/", 1)[1]
    assert open_token.split(":")[0] == delivery.token and len(delivery.token) >= 22  # random, not the row id
    # an open token is not an unsubscribe or click token
    assert Client().post(f"/publishing/u/{open_token}/", {"List-Unsubscribe": "One-Click"}).status_code == 404
    assert Client().get(f"/publishing/t/c/{open_token}/").status_code == 404
    assert not Suppression.objects.exists()
    assert len({SALT_OPEN, SALT_CLICK, SALT_UNSUBSCRIBE}) == 3


def test_bad_pixel_token_still_answers_a_gif_and_records_nothing(db):
    response = Client().get("/publishing/t/o/not-a-token/")
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    assert not EngagementEvent.objects.exists()


def test_one_click_unsubscribe_needs_no_cookie_and_is_idempotent(sent, settings):
    delivery, _, message = sent
    https = message["List-Unsubscribe"].split(",")[0].strip(" <>")
    client = Client(enforce_csrf_checks=True)
    for _ in range(2):
        response = client.post(path_of(https, settings), {"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200
    suppression = Suppression.objects.get(contact_id=delivery.contact_id)
    assert (suppression.channel, suppression.reason) == ("email", "unsubscribed")
    assert ConsentEvent.objects.filter(contact_id=delivery.contact_id, granted=False).count() == 1
    assert EngagementEvent.objects.filter(kind="unsubscribe").count() == 1


def test_confirm_page_unsubscribes_and_resubscribes(sent, settings):
    delivery, html, _ = sent
    page = next(u for u in links(html) if "/publishing/u/" in u)
    client = Client(enforce_csrf_checks=True)
    response = client.get(path_of(page, settings))
    assert response.status_code == 200 and b"Unsubscribe" in response.content
    response = client.post(path_of(page, settings), {"action": "unsubscribe"})
    assert b"is unsubscribed" in response.content
    assert Suppression.objects.filter(contact_id=delivery.contact_id).exists()
    response = client.post(path_of(page, settings), {"action": "resubscribe"})
    assert b"subscribed again" in response.content
    assert not Suppression.objects.filter(contact_id=delivery.contact_id).exists()
    assert ConsentEvent.objects.filter(contact_id=delivery.contact_id, granted=True).count() == 1


def test_bounced_contact_cannot_resubscribe_from_the_page(sent, settings):
    from crm import services as crm_services

    delivery, html, _ = sent
    crm_services.contact_suppress(contact=delivery.contact, reason="bounced")
    page = next(u for u in links(html) if "/publishing/u/" in u)
    response = Client().post(path_of(page, settings), {"action": "resubscribe"})
    assert response.status_code == 400 and b"bounced" in response.content
    assert Suppression.objects.filter(contact_id=delivery.contact_id, reason="bounced").exists()


@pytest.mark.django_db
@given(
    token=st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/\x00"),
        min_size=1,
        max_size=80,
    )
)
@hsettings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_forged_token_redirects_unsubscribes_or_records(token):
    from publishing.services import tracking

    assert tracking.track_click(token=token) is None
    assert tracking.track_open(token=token) is False
    assert tracking.unsubscribe(token=token, source="t") is None
    assert not EngagementEvent.objects.exists() and not Suppression.objects.exists()


@given(
    token=st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.:", min_size=1, max_size=80
    )
)
@hsettings(max_examples=200)
def test_token_urls_equal_reverse_for_every_signed_token_shape(token):
    """The cached route gives what reverse() gives for any token made of the signer's characters."""
    from django.urls import reverse

    from publishing.services.tracking import _token_url, public_url

    for name in ("publishing:track-open", "publishing:track-click", "publishing:unsubscribe"):
        assert _token_url(name, token) == public_url(reverse(name, args=[token]))
