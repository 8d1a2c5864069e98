"""Order services: the API's idempotent create, orders from publishing's conversion events and the CSV/XLSX
import of order history (`analytics.order_import`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from aicmo.audit import audit_record
from aicmo.models import Workspace
from crm.models import Contact
from publishing.models import EngagementEvent, EngagementKind

from .models import Order, OrderSource

MAX_AMOUNT = Decimal("999999999999.99")


class OrderConflict(Exception):
    """An order id that already exists with different details (the API answers 409)."""

    def __init__(self, order: Order):
        super().__init__(f"Order {order.external_id} already exists with different details.")
        self.order = order


def default_currency() -> str:
    return getattr(settings, "ANALYTICS_DEFAULT_CURRENCY", "USD")


def clean_amount(value) -> Decimal:
    """A non-negative amount with at most 2 decimals (ISO 4217 minor units of the common currencies)."""
    try:
        amount = Decimal(str(value).strip().replace(" ", ""))
    except (InvalidOperation, ValueError):
        raise ValidationError({"amount": "Not a number."}) from None
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        raise ValidationError({"amount": "Must be a finite amount between 0 and 999999999999.99."})
    if amount != amount.quantize(Decimal("0.01")):
        raise ValidationError({"amount": "At most 2 decimal places."})
    return amount.quantize(Decimal("0.01"))


# What `clean_currency` accepts once stripped (the API's schema publishes it): three ASCII letters.
CURRENCY_PATTERN = r"^[A-Za-z]{3}$"


def clean_currency(value) -> str:
    code = str(value or "").strip().upper()
    if not re.fullmatch(CURRENCY_PATTERN, code):
        raise ValidationError({"currency": "A three-letter ISO 4217 code, e.g. EUR."})
    return code


def clean_external_id(value) -> str:
    text = str(value or "").strip()
    if not text or len(text) > 100 or "\x00" in text:
        raise ValidationError({"external_id": "An order id of 1 to 100 characters."})
    return text


@dataclass(frozen=True)
class OrderResult:
    order: Order
    created: bool


def _same(order: Order, contact_id, ordered_at, amount, currency) -> bool:
    return (order.contact_id, order.ordered_at, order.amount, order.currency) == (
        contact_id,
        ordered_at,
        amount,
        currency,
    )


def order_record(
    *,
    workspace: Workspace | int,
    external_id: str,
    ordered_at,
    amount,
    currency: str,
    contact: Contact | None = None,
    source: str = OrderSource.API,
    by=None,
) -> OrderResult:
    """Create an order once. The same order id again with the same details returns the stored order
    (``created=False``); with different details raises `OrderConflict`. Bad values raise ValidationError."""
    workspace_id = getattr(workspace, "pk", workspace)
    external_id = clean_external_id(external_id)
    amount, currency = clean_amount(amount), clean_currency(currency)
    if contact is not None and contact.workspace_id != workspace_id:
        raise ValidationError({"contact": "Unknown contact."})
    contact_id = contact.pk if contact else None
    existing = Order.objects.filter(workspace_id=workspace_id, external_id=external_id).first()
    if existing is None:
        try:
            with transaction.atomic():
                order = Order.objects.create(
                    workspace_id=workspace_id,
                    external_id=external_id,
                    ordered_at=ordered_at,
                    amount=amount,
                    currency=currency,
                    contact_id=contact_id,
                    source=source,
                )
                audit_record(
                    workspace=order.workspace, actor=by, verb="analytics.order.created", target=order
                )
                return OrderResult(order, True)
        except IntegrityError:  # a concurrent create of the same id won
            existing = Order.objects.get(workspace_id=workspace_id, external_id=external_id)
    existing.refresh_from_db()
    if not _same(existing, contact_id, ordered_at, amount, currency):
        raise OrderConflict(existing)
    return OrderResult(existing, False)


def order_delete(*, order: Order, by=None) -> None:
    with transaction.atomic():
        audit_record(workspace=order.workspace, actor=by, verb="analytics.order.deleted", target=order)
        order.delete()


def orders_from_conversions(*, workspace_id: int, after_id: int, upto_id: int) -> int:
    """Turn conversion events with id in (after_id, upto_id] into orders (source ``conversion``). The order
    id is the event's ``metadata.order_id`` when given, else ``event-<id>``; an id already present is kept
    as it is (a conversion re-reported by the shop does not duplicate revenue)."""
    events = EngagementEvent.objects.filter(
        workspace_id=workspace_id, kind=EngagementKind.CONVERSION, id__gt=after_id, id__lte=upto_id
    ).only("id", "contact_id", "occurred_at", "value", "metadata")
    orders = []
    for event in events.iterator(chunk_size=2000):
        meta = event.metadata if isinstance(event.metadata, dict) else {}
        try:
            external_id = clean_external_id(meta.get("order_id") or f"event-{event.pk}")
            currency = clean_currency(meta.get("currency") or default_currency())
            amount = clean_amount(event.value if event.value is not None else 0)
        except ValidationError:
            continue
        orders.append(
            Order(
                workspace_id=workspace_id,
                contact_id=event.contact_id,
                external_id=external_id,
                ordered_at=event.occurred_at,
                amount=amount,
                currency=currency,
                source=OrderSource.CONVERSION,
            )
        )
    Order.objects.bulk_create(orders, batch_size=2000, ignore_conflicts=True)
    return len(orders)
