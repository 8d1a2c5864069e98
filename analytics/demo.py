"""Demo analytics data (seed_demo hook): a year of a shop's email marketing and orders, so every analytics
dashboard shows figures that follow from the data — nothing is written into the rollups, scores or lifetime
values by hand; the services production runs compute them.

What is added (deterministic: one seeded random stream per workspace; idempotent: nothing is added when the
demo content "Demo — Weekly digest" exists):

- `CUSTOMERS` shop customers (contact ``source`` ``demo``), signed up over the last `DAYS` days (a quarter
  of them before the year starts), all in the list "Demo — newsletter subscribers". Their ``created_at`` is
  their signup, so first-seen cohorts span the year.
- A weekly digest every Tuesday 09:00 workspace time for `DAYS` days (a quarter of its readers open it
  within hours, the rest through its week: the weekly pattern), each to the subscribers signed up by then
  and still receivable (an unsubscribe or a hard bounce suppresses the contact, as the send path does),
  and one "Demo — Flash sale" on a Thursday `SPIKE_DAYS_AGO` days ago to everyone receivable, whose
  opens come within hours: the visible spike the trends page flags. Campaigns are created through
  publishing's services; deliveries and engagement events are bulk-written in the shape the send and
  tracking paths record (sent, delivered, machine opens for a share of recipients (privacy proxies), human
  opens hours to days later, clicks on the tracked links, replies, unsubscribes, hard bounces and
  conversions with an order id and a value).
- Orders outside email (source ``import``) following the BG/NBD story (Fader, Hardie & Lee 2005,
  "Counting Your Customers the Easy Way", Marketing Science 24(2)): a customer buys at a Poisson rate
  λ ~ Gamma(0.9, 0.11/week) while alive and drops out after each purchase with probability p ~ Beta(1.2, 4);
  spend per order ~ Gamma with a per-customer mean ~ Gamma(4, 20) (the Gamma-Gamma story), all in the
  default currency (`analytics.orders.default_currency`). Conversion events become ``conversion`` orders
  through the rollup step, as in production.
- Then what production runs: the rollup step (`rollup_workspace`: every day with events, and conversion
  orders), a full engagement score recompute (a Job, run here) and a lifetime fit as of yesterday (a Job,
  run here). Both jobs are queued for the worker too; a worker finding them finished does nothing.

Media: when approved raster assets exist (media's demo), the digest shows the first and the flash sale the
second, embedded as ``asset:<id>`` images, so the asset performance page has campaign figures."""

from __future__ import annotations

import logging
import math
import random
import secrets
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from crm.demo import FIRST, LAST, _ascii
from crm.models import Contact, ContactList, ListMembership, Suppression
from media.models import AssetStatus, MediaAsset
from publishing.models import (
    Campaign,
    CampaignStatus,
    Content,
    Delivery,
    DeliveryStatus,
    EngagementEvent,
    EngagementKind,
    Sender,
    TrackedLink,
)
from publishing.services import campaigns as campaign_services
from publishing.services import content as content_services

from .lifetime import clean_fit_options, lifetime_fit_run, lifetime_fit_start
from .models import Order, OrderSource
from .orders import default_currency
from .rollups import rollup_workspace, workspace_zone
from .scoring import scores_job_run, scores_recompute_start

logger = logging.getLogger(__name__)

CUSTOMERS = 1000
DAYS = 365
SPIKE_DAYS_AGO = 40
DIGEST = "Demo — Weekly digest"
FLASH = "Demo — Flash sale"
SUBSCRIBERS = "Demo — newsletter subscribers"
LINKS = ("https://shop.example/new-in", "https://shop.example/sale", "https://shop.example/bestsellers")
HTML = (
    "<h1>{title}, {{{{ contact.first_name | default('there') }}}}</h1>{image}"
    '<p><a href="https://shop.example/new-in">New in</a> · <a href="https://shop.example/sale">Sale</a> · '
    '<a href="https://shop.example/bestsellers">Bestsellers</a></p>'
    '<p><a href="{{{{ unsubscribe_url }}}}">Unsubscribe</a></p>'
)


def _at(day: date, hour: int, zone) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=zone)


def _customers(workspace, rnd: random.Random, now: datetime) -> list[Contact]:
    """Bulk-create the customers, then set ``created_at`` to each signup (auto_now_add sets it on insert)."""
    rows = []
    for i in range(CUSTOMERS):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        rows.append(
            Contact(
                workspace=workspace,
                email=f"{_ascii(first)}.{_ascii(last)}.c{i}@customers.example",
                first_name=first,
                last_name=last,
                source="demo",
            )
        )
    Contact.objects.bulk_create(rows, batch_size=1000)
    rows = list(Contact.objects.filter(workspace=workspace, source="demo").order_by("pk"))
    for c in rows:
        days_before = DAYS + rnd.uniform(0, 180) if rnd.random() < 0.25 else rnd.uniform(0, DAYS)
        c.created_at = now - timedelta(days=days_before)
    Contact.objects.bulk_update(rows, ["created_at"], batch_size=500)
    return rows


def _content(workspace, admin, sender, name: str, title: str, asset: MediaAsset | None) -> Content:
    content = content_services.content_create(workspace=workspace, name=name, by=admin)
    content_services.email_version_save(
        content=content,
        by=admin,
        subject=f"{title}, {{{{ contact.first_name | default('friend') }}}}",
        preheader="Demo data",
        sender=sender,
        html=HTML.format(title=title, image=content_services.image_markup(asset) if asset else ""),
    )
    return content


class _Sends:
    """Deliveries and events of every demo campaign, collected for bulk inserts."""

    def __init__(self, rnd: random.Random, now: datetime, currency: str):
        self.rnd, self.now, self.currency = rnd, now, currency
        self.deliveries: list[Delivery] = []
        self.events: list[tuple[int, EngagementEvent]] = []  # (index of the delivery, event)
        self.suppressed: dict[int, str] = {}  # contact id → reason
        self.orders = 0

    def send(self, campaign: Campaign, contacts: list[Contact], taste: dict, sent: datetime, *, flash: bool):
        for i, c in enumerate(contacts):
            at = sent + timedelta(seconds=i // 20)
            token = secrets.token_urlsafe(16)
            index = len(self.deliveries)
            self.deliveries.append(
                Delivery(
                    workspace_id=campaign.workspace_id,
                    campaign=campaign,
                    contact=c,
                    email=c.email,
                    token=token,
                    status=DeliveryStatus.SENT,
                    sent_at=at,
                    attempts=1,
                    provider="demo",
                    message_id=f"<demo-{token}@demo.aicmo.local>",
                )
            )
            self._events(index, campaign, c, taste[c.pk], at, flash)

    def _add(self, index, campaign, contact, kind, at, **extra) -> None:
        if at <= self.now:
            event = EngagementEvent(
                workspace_id=campaign.workspace_id,
                kind=kind,
                campaign=campaign,
                contact=contact,
                occurred_at=at,
                **extra,
            )
            self.events.append((index, event))

    def _events(self, index, campaign, c, taste, at, flash) -> None:
        rnd, add = self.rnd, self._add
        add(index, campaign, c, EngagementKind.SENT, at)
        if rnd.random() < 0.008:
            add(index, campaign, c, EngagementKind.BOUNCE_HARD, at + timedelta(minutes=1))
            self.suppressed[c.pk] = "bounced"
            return
        add(index, campaign, c, EngagementKind.DELIVERED, at + timedelta(seconds=4))
        if taste["proxy"]:  # a privacy proxy fetches every message's images at delivery
            add(index, campaign, c, EngagementKind.OPEN, at + timedelta(seconds=rnd.randint(5, 90)),
                machine=True, metadata={"ua": "Mozilla/5.0"})  # fmt: skip
        p_open = min(0.95, taste["open"] * (1.5 if flash else 1.0))
        if rnd.random() >= p_open:
            return
        if flash:  # a 48-hour offer: read within hours
            delay = min(rnd.expovariate(1 / 2.5), 12.0)
        elif rnd.random() < 0.25:  # a quarter read the digest within hours of the send …
            delay = min(rnd.expovariate(1 / 6), 48.0)
        else:  # … the rest come back to it through its week
            delay = rnd.uniform(0, 168.0)
        opened = at + timedelta(hours=delay)
        add(index, campaign, c, EngagementKind.OPEN, opened, metadata={"ua": "Mozilla/5.0"})
        if rnd.random() < 0.3:
            add(index, campaign, c, EngagementKind.OPEN, opened + timedelta(hours=rnd.uniform(1, 30)))
        if rnd.random() < taste["click"] * (1.4 if flash else 1.0):
            clicked = opened + timedelta(minutes=rnd.randint(1, 20))
            add(index, campaign, c, EngagementKind.CLICK, clicked, metadata={"url": rnd.choice(LINKS)})
            if rnd.random() < 0.12:
                self.orders += 1
                amount = Decimal(f"{rnd.gammavariate(8, taste['spend'] / 8):.2f}")
                add(index, campaign, c, EngagementKind.CONVERSION, clicked + timedelta(minutes=rnd.randint(3, 90)),
                    value=amount, metadata={"order_id": f"demo-web-{self.orders:05d}", "currency": self.currency})  # fmt: skip
        if rnd.random() < 0.006:
            add(index, campaign, c, EngagementKind.REPLY, opened + timedelta(hours=2))
        if rnd.random() < 0.004:
            add(index, campaign, c, EngagementKind.UNSUBSCRIBE, opened + timedelta(minutes=3))
            self.suppressed[c.pk] = "unsubscribed"

    def write(self) -> None:
        Delivery.objects.bulk_create(self.deliveries, batch_size=2000)
        events = []
        for index, event in self.events:
            d = self.deliveries[index]
            event.delivery_id, event.contact_id = d.pk, d.contact_id
            events.append(event)
        events.sort(key=lambda e: e.occurred_at)  # ids in time order, as recorded
        EngagementEvent.objects.bulk_create(events, batch_size=2000)


def _orders(
    workspace, customers: list[Contact], taste: dict, rnd: random.Random, now, currency
) -> list[Order]:
    """BG/NBD-style purchase histories (see the module docstring) from each customer's signup to now."""
    orders = []
    for c in customers:
        if rnd.random() >= 0.6:
            continue
        rate = rnd.gammavariate(0.9, 0.11) / 7  # purchases per day while alive
        drop = rnd.betavariate(1.2, 4)
        t = c.created_at + timedelta(days=rnd.expovariate(1 / 20))
        while t <= now:
            orders.append(
                Order(
                    workspace=workspace,
                    contact=c,
                    external_id=f"demo-shop-{len(orders) + 1:06d}",
                    ordered_at=t,
                    amount=Decimal(f"{rnd.gammavariate(8, taste[c.pk]['spend'] / 8):.2f}"),
                    currency=currency,
                    source=OrderSource.IMPORT,
                )
            )
            if rnd.random() < drop or rate <= 0:
                break
            t += timedelta(days=rnd.expovariate(rate))
    return orders


def _run_jobs(workspace, admin) -> None:
    """The score recompute and the lifetime fit as production starts them, run here so the demo is
    complete when seed_demo ends. A broker that is not up yet (``make run`` starts Redis after seeding)
    only loses the worker's copy of jobs that have already run."""
    try:
        with transaction.atomic():
            rollup_workspace(workspace_id=workspace.pk)
            scores = scores_recompute_start(workspace=workspace, by=admin)
            scores_job_run(job_id=scores.pk)
            options = clean_fit_options(workspace=workspace, currency=default_currency())
            fit = lifetime_fit_start(workspace=workspace, options=options, by=admin)
            lifetime_fit_run(job_id=fit.pk)
    except OperationalError as exc:
        logger.warning("analytics demo: jobs ran here; the worker's copies were not queued (%s)", exc)


def seed(workspace, *, users: dict) -> None:
    if Content.objects.for_workspace(workspace).filter(name=DIGEST).exists():
        return
    admin = users.get("admin")
    rnd = random.Random(f"analytics-demo-{workspace.slug}")
    zone = workspace_zone(workspace.pk)
    now = timezone.now()
    today = timezone.localtime(now, zone).date()
    currency = default_currency()
    with transaction.atomic():
        customers = _customers(workspace, rnd, now)
        audience = ContactList.objects.create(workspace=workspace, name=SUBSCRIBERS)
        ListMembership.objects.bulk_create(
            [ListMembership(workspace=workspace, contact_list=audience, contact=c) for c in customers]
        )
        taste = {
            c.pk: {
                "open": rnd.betavariate(2, 3),
                "click": rnd.betavariate(1.5, 8),
                "proxy": rnd.random() < 0.2,
                "spend": rnd.gammavariate(4, 20),
            }
            for c in customers
        }
        sender, _ = Sender.objects.get_or_create(
            workspace=workspace,
            email="news@demo.aicmo.local",
            defaults={"name": "Demo News", "verified_at": now},
        )
        assets = list(
            MediaAsset.objects.for_workspace(workspace)
            .filter(status__in=[AssetStatus.APPROVED, AssetStatus.PUBLISHED])
            .order_by("pk")
        )
        assets = [a for a in assets if a.is_raster][:2]
        digest = _content(workspace, admin, sender, DIGEST, "This week at the shop", (assets or [None])[0])
        flash = _content(workspace, admin, sender, FLASH, "48 hours only", (assets[1:] or [None])[0])
        sends = _Sends(rnd, now, currency)
        first = today - timedelta(days=DAYS - 1)
        tuesday = first + timedelta(days=(1 - first.weekday()) % 7)
        spike = today - timedelta(days=SPIKE_DAYS_AGO)
        spike += timedelta(days=(3 - spike.weekday()) % 7)  # the Thursday on or after
        plan = [(tuesday + timedelta(weeks=w), False) for w in range(math.ceil(DAYS / 7))]
        plan = sorted([p for p in plan if p[0] <= today] + [(spike, True)])
        issue = 0
        for day, is_flash in plan:
            sent = _at(day, 11 if is_flash else 9, zone)
            if sent > now:
                continue
            issue += 0 if is_flash else 1
            name = f"{FLASH} ({day:%d %b %Y})" if is_flash else f"{DIGEST} #{issue} ({day:%d %b %Y})"
            campaign = campaign_services.campaign_create(
                workspace=workspace,
                name=name,
                content=flash if is_flash else digest,
                audience={"lists": [audience.pk]},
                utm={"utm_source": "aicmo", "utm_medium": "email", "utm_campaign": "flash" if is_flash else "digest"},
                by=admin,
            )  # fmt: skip
            TrackedLink.objects.bulk_create(
                [TrackedLink(workspace=workspace, campaign=campaign, url=u, key=secrets.token_urlsafe(16)) for u in LINKS]
            )  # fmt: skip
            recipients = [c for c in customers if c.created_at <= sent and c.pk not in sends.suppressed]
            sends.send(campaign, recipients, taste, sent, flash=is_flash)
            campaign.status = CampaignStatus.SENT
            campaign.started_at = sent
            campaign.finished_at = sent + timedelta(seconds=len(recipients) // 20 + 1)
            campaign.save(update_fields=["status", "started_at", "finished_at", "updated_at"])
        sends.write()
        Suppression.objects.bulk_create(
            [
                Suppression(workspace=workspace, contact_id=pk, channel="email", reason=reason, source="demo")
                for pk, reason in sends.suppressed.items()
            ],
            ignore_conflicts=True,
        )
        Order.objects.bulk_create(_orders(workspace, customers, taste, rnd, now, currency), batch_size=2000)
    _run_jobs(workspace, admin)
