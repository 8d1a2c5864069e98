"""Conversions through the API (API key) and the signed public URL: last human click attribution within
the window, idempotency by order id, per-field errors and tenant isolation."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from html import unescape

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from aicmo.apikeys import api_key_create
from aicmo.roles import Role
from crm.models import Contact
from publishing.models import Delivery, EngagementEvent
from publishing.services import conversions

from .conftest import drain_tracking, send_to_one

pytestmark = pytest.mark.django_db
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0"


@pytest.fixture
def clicked(workspace, smtp_sink, fast_gateway, settings):
    """A really sent message whose tracked link a person clicked: (delivery, click token)."""
    delivery, message = send_to_one(workspace, smtp_sink)
    Delivery.objects.update(sent_at=timezone.now() - timedelta(minutes=1))
    html = message.get_body(("html",)).get_content()
    url = next(unescape(h) for h in re.findall(r'href="([^"]+)"', html) if "/publishing/t/c/" in h)
    response = Client().get(url[len(settings.PUBLIC_BASE_URL) :], HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 302
    drain_tracking()  # the click is buffered; the flush task stores it
    return delivery, url.rstrip("/").rsplit("/", 1)[1]


def api_key_client(workspace, member_factory, role=Role.MARKETER) -> APIClient:
    secret = api_key_create(
        workspace=workspace, name="shop", role=role, by=member_factory(workspace, Role.ADMIN)
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret.secret}")
    return client


def test_api_conversion_is_attributed_to_the_last_click_and_recorded_once(workspace, member_factory, clicked):
    delivery, token = clicked
    client = api_key_client(workspace, member_factory)
    body = {"order_id": "A-1001", "value": "49.90", "currency": "eur", "click": token}
    first = client.post("/api/v1/publishing/conversions/", body, format="json")
    again = client.post("/api/v1/publishing/conversions/", {**body, "value": "1.00"}, format="json")
    assert first.status_code == 201, first.json()
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    event = EngagementEvent.objects.get(kind="conversion")
    assert (event.campaign_id, event.delivery_id, event.contact_id) == (
        delivery.campaign_id,
        delivery.pk,
        delivery.contact_id,
    )
    assert event.value == Decimal("49.90")
    assert event.metadata == {"order_id": "A-1001", "currency": "EUR", "attributed": True}
    assert Contact.objects.get(pk=delivery.contact_id).lifecycle == "converted"


def test_public_signed_url_by_email_and_pixel(workspace, clicked):
    delivery, _ = clicked
    url = reverse("publishing:conversion", args=[conversions.conversion_token(workspace)])
    s2s = Client().post(
        url,
        data={"order_id": "B-7", "value": "10", "currency": "USD", "email": delivery.email.upper()},
        content_type="application/json",
    )
    assert s2s.status_code == 201 and s2s.json()["created"] is True
    pixel = Client().get(url, {"order_id": "B-8", "value": "5.5", "currency": "USD", "email": delivery.email})
    assert pixel.status_code == 200 and pixel["Content-Type"] == "image/gif"
    events = EngagementEvent.objects.filter(kind="conversion").order_by("id")
    assert [(e.metadata["order_id"], e.value, e.campaign_id) for e in events] == [
        ("B-7", Decimal("10.00"), delivery.campaign_id),
        ("B-8", Decimal("5.50"), delivery.campaign_id),
    ]


def test_outside_the_window_or_machine_clicks_are_not_attributed(workspace, clicked, settings):
    delivery, token = clicked
    settings.PUBLISHING_CONVERSION_WINDOW_DAYS = 7
    later = timezone.now() + timedelta(days=7, minutes=1)
    late = conversions.conversion_record(
        workspace=workspace, order_id="late", value="1", currency="EUR", click_token=token, at=later
    )
    assert late.created and late.event.campaign_id is None and late.event.metadata["attributed"] is False
    assert late.event.contact_id == delivery.contact_id
    EngagementEvent.objects.filter(kind="click").update(machine=True)
    scanned = conversions.conversion_record(
        workspace=workspace, order_id="scan", value="1", currency="EUR", click_token=token
    )
    assert scanned.event.campaign_id is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"order_id": "", "value": "1", "currency": "EUR"}, "order_id"),
        ({"order_id": "x", "value": "-1", "currency": "EUR"}, "value"),
        ({"order_id": "x", "value": "NaN", "currency": "EUR"}, "value"),
        ({"order_id": "x", "value": "1e30", "currency": "EUR"}, "value"),
        ({"order_id": "x", "value": "ten", "currency": "EUR"}, "value"),
        ({"order_id": "x", "value": "1", "currency": "EURO"}, "currency"),
        ({"order_id": "x", "value": "1", "currency": "XYZ"}, "currency"),
        ({"order_id": "x", "value": "1", "currency": "EUR", "click": "forged:token"}, "click"),
    ],
)
def test_bad_input_is_a_field_error_and_writes_nothing(workspace, api_client_for, body, field):
    api = api_client_for(Role.MARKETER).post("/api/v1/publishing/conversions/", body, format="json")
    url = reverse("publishing:conversion", args=[conversions.conversion_token(workspace)])
    public = Client().post(url, data=body, content_type="application/json")
    assert api.status_code == 400 and field in api.json()["error"]["fields"]
    assert public.status_code == 400 and field in public.json()["errors"]
    assert not EngagementEvent.objects.exists()


@hsettings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(value=st.one_of(st.text(max_size=20), st.decimals(allow_nan=True, allow_infinity=True).map(str)))
def test_any_value_is_recorded_as_cents_or_refused(workspace, value):
    try:
        _, amount, _ = conversions.clean_order(order_id="o", value=value, currency="EUR")
    except ValidationError as err:
        fields = set(err.message_dict)
    else:
        fields = set()
    assert fields <= {"value"}
    if fields:
        return
    assert Decimal(0) <= amount <= conversions.MAX_VALUE and amount == amount.quantize(Decimal("0.01"))


def test_tenant_isolation(workspace, other_workspace, member_factory, clicked):
    """Another workspace's click token, token URL or order ids never reach this workspace's data."""
    delivery, token = clicked
    theirs = api_key_client(other_workspace, member_factory)
    forged_click = theirs.post(
        "/api/v1/publishing/conversions/",
        {"order_id": "A-1", "value": "1", "currency": "EUR", "click": token},
        format="json",
    )
    assert forged_click.status_code == 400
    by_email = theirs.post(
        "/api/v1/publishing/conversions/",
        {"order_id": "A-1", "value": "1", "currency": "EUR", "email": delivery.email},
        format="json",
    )
    assert by_email.status_code == 201
    event = EngagementEvent.objects.get(kind="conversion")
    assert (event.workspace_id, event.contact_id, event.campaign_id) == (other_workspace.pk, None, None)
    ours = api_key_client(workspace, member_factory).post(
        "/api/v1/publishing/conversions/",
        {"order_id": "A-1", "value": "1", "currency": "EUR", "click": token},
        format="json",
    )
    assert ours.status_code == 201  # the same order id in another workspace is another order
    bad = reverse("publishing:conversion", args=[conversions.conversion_token(workspace) + "x"])
    assert Client().post(bad, data={"order_id": "z", "value": "1", "currency": "EUR"}).status_code == 404
    viewer = api_key_client(workspace, member_factory, Role.VIEWER)
    assert viewer.post("/api/v1/publishing/conversions/", {}, format="json").status_code == 403


def test_click_redirect_cookie_attributes_a_pixel_conversion(workspace, smtp_sink, fast_gateway, settings):
    """The same browser clicks the mail's link, then the shop's thank-you page loads our conversion pixel."""
    delivery, message = send_to_one(workspace, smtp_sink)
    Delivery.objects.update(sent_at=timezone.now() - timedelta(minutes=1))
    html = message.get_body(("html",)).get_content()
    link = next(unescape(h) for h in re.findall(r'href="([^"]+)"', html) if "/publishing/t/c/" in h)
    browser = Client(HTTP_USER_AGENT=BROWSER)
    redirect = browser.get(link[len(settings.PUBLIC_BASE_URL) :])
    drain_tracking()
    cookie = redirect.cookies[conversions.CLICK_COOKIE]
    assert redirect.status_code == 302 and cookie["samesite"] == "None" and cookie["secure"]
    pixel_url = reverse("publishing:conversion", args=[conversions.conversion_token(workspace)])
    assert browser.get(pixel_url, {"order_id": "P-1", "value": "20", "currency": "GBP"}).status_code == 200
    event = EngagementEvent.objects.get(kind="conversion")
    assert (event.contact_id, event.campaign_id) == (delivery.contact_id, delivery.campaign_id)
    forged = Client(HTTP_USER_AGENT=BROWSER)
    forged.cookies[conversions.CLICK_COOKIE] = "forged:value"
    forged.get(pixel_url, {"order_id": "P-2", "value": "20", "currency": "GBP"})
    assert EngagementEvent.objects.get(metadata__order_id="P-2").contact_id is None
