"""Conversions: an order (id, value, currency) recorded once per workspace and order id, attributed to the
contact's last human click within ``PUBLISHING_CONVERSION_WINDOW_DAYS`` (default 7; last-click
attribution). The contact is named by the signed click token of our click redirect or by email.

Two doors call ``conversion_record``: the API (``POST /api/v1/publishing/conversions/``, API key or
session) and the public signed endpoint ``/publishing/c/<token>/`` for pixels and server-to-server calls,
whose token is the workspace's conversion token (``conversion_token``), not a secret of any contact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from aicmo.currencies import currency_code_clean
from aicmo.models import Workspace
from crm import services as crm_services
from crm.models import Contact

from ..models import Delivery, EngagementEvent, EngagementKind
from . import webhooks
from .tracking import SALT_CLICK, _unsign

SALT_CONVERSION = "publishing.conversion"
MAX_VALUE = Decimal("999999999999.99")  # EngagementEvent.value: 14 digits, 2 decimals


@dataclass(frozen=True)
class ConversionResult:
    event: EngagementEvent
    created: bool


CLICK_COOKIE = "aicmo_click"


def click_cookie_set(response, click_token: str) -> None:
    """Remember the last click for the conversion pixel, which is served from our host too. A third-party
    cookie on the shop's page: ``SameSite=None; Secure``, HttpOnly, kept for the attribution window."""
    response.set_cookie(
        CLICK_COOKIE,
        click_token,
        max_age=settings.PUBLISHING_CONVERSION_WINDOW_DAYS * 86400,
        secure=True,
        httponly=True,
        samesite="None",
    )


def click_cookie_get(request) -> str | None:
    """The click token of the cookie when it is still validly signed (a stale or forged one is ignored)."""
    token = request.COOKIES.get(CLICK_COOKIE, "")
    return token if token and _unsign(SALT_CLICK, token) is not None else None


def conversion_token(workspace: Workspace) -> str:
    """The token of a workspace's public conversion URL (signed slug; another workspace's is invalid)."""
    return signing.Signer(salt=SALT_CONVERSION).sign(workspace.slug)


def workspace_for_conversion_token(token: str) -> Workspace | None:
    slug = _unsign(SALT_CONVERSION, token)
    return None if slug is None else Workspace.objects.filter(slug=slug).first()


def clean_order(*, order_id, value, currency) -> tuple[str, Decimal, str]:
    """(order id, value rounded to cents, ISO 4217 code) or ``ValidationError`` per field."""
    errors: dict[str, str] = {}
    order_id = str(order_id or "").strip()
    if not order_id or len(order_id) > 150:
        errors["order_id"] = "An order id of 1 to 150 characters is required."
    try:
        amount = Decimal(str(value).strip())
        if not amount.is_finite() or amount < 0 or amount > MAX_VALUE:
            raise InvalidOperation
        amount = amount.quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError, TypeError):
        errors["value"] = "A decimal amount from 0 to 999999999999.99 is required."
        amount = Decimal(0)
    code = currency_code_clean(currency)
    if code is None:
        errors["currency"] = "An ISO 4217 currency code (e.g. EUR) is required."
    if errors:
        raise ValidationError(errors)
    return order_id, amount, code


def _contact(workspace: Workspace, click_token: str | None, email: str | None) -> Contact | None:
    if click_token:
        value = _unsign(SALT_CLICK, click_token)
        delivery = (
            Delivery.objects.filter(workspace=workspace, token=value.split(".", 1)[0]).first()
            if value
            else None
        )
        if delivery is None:
            raise ValidationError({"click": "Unknown click token."})
        return delivery.contact
    if email:
        return Contact.objects.for_workspace(workspace).filter(email=email.strip().lower()).first()
    return None


def last_click(*, contact: Contact, before: datetime) -> EngagementEvent | None:
    """The contact's last human click in the attribution window ending at ``before``."""
    window = timedelta(days=settings.PUBLISHING_CONVERSION_WINDOW_DAYS)
    return (
        EngagementEvent.objects.filter(
            workspace_id=contact.workspace_id,
            contact=contact,
            kind=EngagementKind.CLICK,
            machine=False,
            occurred_at__gt=before - window,
            occurred_at__lte=before,
        )
        .order_by("-occurred_at", "-id")
        .first()
    )


def conversion_record(
    *,
    workspace: Workspace,
    order_id,
    value,
    currency,
    click_token: str | None = None,
    email: str | None = None,
    at: datetime | None = None,
) -> ConversionResult:
    """Record a ``conversion`` event (value; metadata order_id, currency, attributed) once per order id.

    A repeat of the order id returns the first event unchanged (``created`` False). Errors:
    ``ValidationError`` per field (order_id, value, currency, click)."""
    order_id, amount, code = clean_order(order_id=order_id, value=value, currency=currency)
    dedupe_key = f"order:{order_id}"
    existing = EngagementEvent.objects.filter(workspace=workspace, dedupe_key=dedupe_key).first()
    if existing is not None:
        return ConversionResult(existing, False)
    contact = _contact(workspace, click_token, email)
    at = at or timezone.now()
    click = last_click(contact=contact, before=at) if contact is not None else None
    try:
        with transaction.atomic():
            event = EngagementEvent.objects.create(
                workspace=workspace,
                kind=EngagementKind.CONVERSION,
                campaign_id=click.campaign_id if click else None,
                delivery_id=click.delivery_id if click else None,
                contact=contact,
                occurred_at=at,
                value=amount,
                metadata={"order_id": order_id, "currency": code, "attributed": click is not None},
                dedupe_key=dedupe_key,
            )
            if contact is not None:
                crm_services.contact_record_engagement(contact_id=contact.pk, at=at, converted=True)
            webhooks.engagement_events_emit([event], {contact.pk: contact.email} if contact else {})
    except IntegrityError:  # the same order id recorded concurrently
        return ConversionResult(
            EngagementEvent.objects.get(workspace=workspace, dedupe_key=dedupe_key), False
        )
    return ConversionResult(event, True)
