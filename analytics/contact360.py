"""Contact 360: one contact's figures (engagement score and tier with its history, engagement counts,
historical order value per currency, RFM and the lifetime-value prediction of the latest fit) and one
timeline of what happened to the contact across apps, newest first.

Reads only (a selector module). The figures are a fixed number of aggregate queries whatever the number of
events; the timeline is one ``UNION ALL`` over the source tables, ordered and sliced in SQL, so a page
costs two queries (count and page) however long the history is.
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import (
    Case,
    CharField,
    Count,
    DecimalField,
    F,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Concat

from aicmo.models import AuditEvent, Workspace
from crm.models import ConsentEvent, Contact, EnrichmentRecord, LifecycleTransition
from publishing.models import EngagementEvent, EngagementKind

from . import lifetime_selectors
from .models import CUSTOMER_VALUE_FIGURES, ContactScore, CustomerValue, Order
from .selectors import score_history

TIMELINE_COLUMNS = ("at", "source", "kind", "title", "detail", "amount", "currency", "ref")
PREFIX = "entry_"
ENGAGEMENT_KINDS = tuple(EngagementKind.values)
_TEXT = CharField()
_MONEY = DecimalField(max_digits=16, decimal_places=2)


def _text(value: str) -> Value:
    return Value(value, output_field=_TEXT)


def engagement_counts(workspace: Workspace | int, contact_id: int) -> dict:
    """``{kind: events}`` for every engagement kind, opens split into ``open_human`` / ``open_machine``
    (machine opens — privacy proxies, scanners — are not the person), plus ``last_event_at`` (any kind)
    and ``last_human_at`` (human open, click, reply or conversion). One aggregate query over the contact's
    events (index ``contact, occurred_at``)."""
    human = Q(kind__in=("click", "reply", "conversion")) | Q(kind="open", machine=False)
    aggregates = {k: Count("pk", filter=Q(kind=k)) for k in ENGAGEMENT_KINDS if k != "open"}
    aggregates["open_human"] = Count("pk", filter=Q(kind="open", machine=False))
    aggregates["open_machine"] = Count("pk", filter=Q(kind="open", machine=True))
    aggregates["last_event_at"] = Max("occurred_at")
    aggregates["last_human_at"] = Max("occurred_at", filter=human)
    return (
        EngagementEvent.objects.for_workspace(workspace).filter(contact_id=contact_id).aggregate(**aggregates)
    )


def order_history(workspace: Workspace | int, contact_id: int) -> list[dict]:
    """Historical value per currency (never summed across currencies), all orders up to now:
    ``[{currency, orders, revenue, aov, first_order_at, last_order_at}]`` sorted by currency; money as
    strings with 2 decimals, AOV = revenue / orders (half-up to the cent). One aggregate query."""
    rows = (
        Order.objects.for_workspace(workspace)
        .filter(contact_id=contact_id)
        .values("currency")
        .annotate(
            orders=Count("pk"),
            revenue=Sum("amount"),
            first_order_at=Min("ordered_at"),
            last=Max("ordered_at"),
        )
        .order_by("currency")
    )
    out = []
    for r in rows:
        revenue = Decimal(r["revenue"] or 0)
        out.append(
            {
                "currency": r["currency"],
                "orders": r["orders"],
                "revenue": f"{revenue:.2f}",
                "aov": f"{(revenue / r['orders']).quantize(Decimal('0.01')):.2f}",
                "first_order_at": r["first_order_at"],
                "last_order_at": r["last"],
            }
        )
    return out


def prediction(workspace: Workspace | int, contact_id: int) -> dict:
    """The latest lifetime fit's view of the contact: ``{"state", "fit", "value"}``.

    ``state``: ``no_fit`` (no finished fit yet), ``not_in_fit`` (the fit saw no order of this contact in its
    currency up to its observation date), ``not_predicted`` (history and RFM only: the models could not be
    fitted, ``fit.error`` says why) or ``predicted``. ``fit``: ``{id, observation_date, currency, months,
    monthly_discount, error}``; ``value``: the `CustomerValue` figures (expected purchases over the horizon,
    P(alive), expected spend per purchase, CLV over the horizon in the fit currency, RFM scores and segment,
    and the fit's historical inputs)."""
    fit = lifetime_selectors.latest_fit(workspace)
    if fit is None:
        return {"state": "no_fit", "fit": None, "value": None}
    fit_out = {
        "id": fit.pk,
        "observation_date": fit.observation_date,
        "currency": fit.currency,
        "months": fit.months,
        "monthly_discount": fit.monthly_discount,
        "error": fit.error,
    }
    value = (
        CustomerValue.objects.for_workspace(workspace)
        .filter(contact_id=contact_id, fit_id=fit.pk)
        .values(*CUSTOMER_VALUE_FIGURES)
        .first()
    )
    if value is None:
        return {"state": "not_in_fit", "fit": fit_out, "value": None}
    for money in ("revenue", "aov"):
        value[money] = f"{value[money]:.2f}"
    state = "predicted" if value["clv"] is not None else "not_predicted"
    return {"state": state, "fit": fit_out, "value": value}


def contact_figures(workspace: Workspace | int, contact: Contact) -> dict:
    """Every figure of the contact 360 page and its API: ``{contact: {id, email, first_name, last_name,
    lifecycle, company, created_at, erased}, score: {score, tier, last_human_at, history: [{day, score,
    tier}]}, engagement: engagement_counts, orders: order_history, prediction: prediction}``. Six queries."""
    scored = (
        ContactScore.objects.for_workspace(workspace)
        .filter(contact_id=contact.pk)
        .values_list("last_human_at", flat=True)
        .first()
    )
    return {
        "contact": {
            "id": contact.pk,
            "email": contact.email,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
            "lifecycle": contact.lifecycle,
            "company": contact.company.name if contact.company_id else "",
            "created_at": contact.created_at,
            "erased": contact.erased_at is not None,
        },
        "score": {
            "score": contact.engagement_score,
            "tier": contact.engagement_tier,
            "last_human_at": scored,
            "history": score_history(workspace, contact.pk),
        },
        "engagement": engagement_counts(workspace, contact.pk),
        "orders": order_history(workspace, contact.pk),
        "prediction": prediction(workspace, contact.pk),
    }


def _part(rows: QuerySet, at: str, source: str, kind, title, detail, amount=None, currency=None) -> QuerySet:
    """One source table's rows in the timeline's columns (unordered: a ``UNION`` branch may not order).
    SQL names carry a prefix: an annotation may not shadow a model field (``kind``, ``at``, …)."""
    values = (
        F(at), _text(source), kind, title, detail,
        amount if amount is not None else Value(None, output_field=_MONEY),
        currency if currency is not None else _text(""), F("pk"),
    )  # fmt: skip
    return rows.order_by().values(
        **{f"{PREFIX}{name}": value for name, value in zip(TIMELINE_COLUMNS, values, strict=True)}
    )


def _flag(field: str, yes: str, no: str) -> Case:
    return Case(When(**{field: True}, then=_text(yes)), default=_text(no), output_field=_TEXT)


def entry(row: dict) -> dict:
    """A timeline row with its public column names (``TIMELINE_COLUMNS``)."""
    return {name: row[f"{PREFIX}{name}"] for name in TIMELINE_COLUMNS}


def timeline(workspace: Workspace | int, contact_id: int, *, include_audit: bool) -> QuerySet:
    """The contact's history across apps as one ``UNION ALL`` queryset of dicts with ``TIMELINE_COLUMNS``,
    newest first (ties: source, then row id, descending):

    - ``engagement``: every engagement event (kind; ``open (machine)`` for machine opens; title the
      campaign's name; detail the channel; amount the conversion value);
    - ``order``: orders (title the shop's order id, amount and currency);
    - ``crm``: lifecycle changes (``from → to``, the reason), consent given or withdrawn (the consent kind,
      the source), enrichment fetches (the provider, matched or not);
    - ``audit``: audit entries about the contact (verb, actor) — only with ``include_audit`` (the audit log
      is for admins).

    Slice it for a page (SQL ``LIMIT``/``OFFSET``); ``count()`` is one query. Columns are named
    ``entry_<column>``; `entry` gives a row its public names."""

    def mine(model):
        return model.objects.for_workspace(workspace).filter(contact_id=contact_id)

    machine_open = When(kind="open", machine=True, then=_text("open (machine)"))
    events = _part(
        mine(EngagementEvent), "occurred_at", "engagement",
        Case(machine_open, default=F("kind"), output_field=_TEXT),
        Coalesce(F("campaign__name"), _text("")), F("channel"), amount=F("value"),
    )  # fmt: skip
    stage_change = Concat(F("from_stage"), _text(" → "), F("to_stage"), output_field=_TEXT)
    parts = [
        _part(mine(Order), "ordered_at", "order", _text("order"), F("external_id"), F("source"), F("amount"),
              F("currency")),
        _part(mine(LifecycleTransition), "at", "crm", _text("lifecycle"), stage_change, F("reason")),
        _part(mine(ConsentEvent), "at", "crm", _flag("granted", "consent given", "consent withdrawn"),
              F("kind"), F("source")),
        _part(mine(EnrichmentRecord), "fetched_at", "crm", _text("enrichment"), F("provider"),
              _flag("matched", "matched", "no match")),
    ]  # fmt: skip
    if include_audit:
        about = AuditEvent.objects.for_workspace(workspace).filter(
            target_type=Contact._meta.label_lower, target_id=str(contact_id)
        )
        parts.append(_part(about, "at", "audit", _text("audit"), F("verb"), F("actor_label")))
    return events.union(*parts, all=True).order_by(f"-{PREFIX}at", f"-{PREFIX}source", f"-{PREFIX}ref")
