"""Demo CRM data: a few thousand realistic contacts, deterministic (seeded random) and bulk-inserted."""

from __future__ import annotations

import datetime as dt
import random

from django.db import transaction
from django.utils import timezone

from .models import (
    Company,
    Contact,
    ContactList,
    CustomFieldDefinition,
    Lifecycle,
    LifecycleTransition,
    ListMembership,
    Segment,
    Suppression,
    Tag,
    Tier,
    Verdict,
)
from .services import tier_for_score

CONTACTS = 3000
FIRST = [
    "Emma",
    "Liam",
    "Olivia",
    "Noah",
    "Ava",
    "Lucas",
    "Mia",
    "Hugo",
    "Léa",
    "Jonas",
    "Sofia",
    "Mateo",
    "Chloé",
    "Elias",
    "Hannah",
    "Arjun",
    "Priya",
    "Kenji",
    "Yuki",
    "Amara",
    "Omar",
    "Fatima",
    "Ines",
    "Tomás",
    "Zoë",
]
LAST = [
    "Martin",
    "Bernard",
    "Müller",
    "Schmidt",
    "Rossi",
    "García",
    "Smith",
    "Johnson",
    "Brown",
    "Dubois",
    "Nakamura",
    "Patel",
    "Kowalski",
    "Nielsen",
    "Silva",
    "O'Brien",
    "Dupont",
    "Jansen",
    "Novak",
    "Larsen",
]
TITLES = [
    "Head of Marketing",
    "CMO",
    "Growth Lead",
    "Marketing Manager",
    "Demand Gen Manager",
    "VP Sales",
    "Founder",
    "CEO",
    "Content Strategist",
    "Product Marketing Manager",
    "SEO Specialist",
    "Brand Manager",
    "",
]
SECTORS = [
    "Analytics",
    "Cloud",
    "Retail",
    "Health",
    "Finance",
    "Logistics",
    "Media",
    "Energy",
    "Foods",
    "Robotics",
]
SUFFIX = ["Labs", "Group", "Systems", "Co", "Partners", "Works", "Digital", "Studio"]
TAGS = ["customer", "prospect", "newsletter", "webinar-2026", "partner", "trial", "vip", "event-lead"]
SOURCES = ["import", "webform", "api", "event", "manual"]


def _ascii(value: str) -> str:
    return value.lower().translate(str.maketrans("éèëüöäóáíñç'", "eeeuoaoainc ")).replace(" ", "")


@transaction.atomic
def seed(workspace, *, users: dict | None = None) -> None:
    if Contact.objects.for_workspace(workspace).filter(source__in=SOURCES).exists():
        return
    rnd = random.Random(f"crm-demo-{workspace.slug}")
    now = timezone.now()
    CustomFieldDefinition.objects.bulk_create(
        [
            CustomFieldDefinition(
                workspace=workspace,
                key="plan",
                label="Plan",
                type="choice",
                choices=["free", "starter", "pro", "enterprise"],
            ),
            CustomFieldDefinition(workspace=workspace, key="seats", label="Seats", type="number"),
            CustomFieldDefinition(workspace=workspace, key="renewal_date", label="Renewal date", type="date"),
            CustomFieldDefinition(
                workspace=workspace, key="newsletter_opt_in", label="Newsletter opt-in", type="bool"
            ),
        ],
        ignore_conflicts=True,
    )
    companies = []
    for i in range(150):
        name = f"{rnd.choice(SECTORS)} {rnd.choice(SUFFIX)} {i}"
        companies.append(Company(workspace=workspace, name=name, domain=f"{_ascii(name)}.example"))
    Company.objects.bulk_create(companies, ignore_conflicts=True)
    companies = list(Company.objects.for_workspace(workspace))
    Tag.objects.bulk_create([Tag(workspace=workspace, name=n) for n in TAGS], ignore_conflicts=True)
    tags = list(Tag.objects.for_workspace(workspace).filter(name__in=TAGS))
    stages = (
        [Lifecycle.NEW] * 40
        + [Lifecycle.ENRICHED] * 25
        + [Lifecycle.VERIFIED] * 18
        + [Lifecycle.ENGAGED] * 12
        + [Lifecycle.CONVERTED] * 5
    )
    contacts, seen = [], set()
    for i in range(CONTACTS):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        company = rnd.choice(companies) if rnd.random() < 0.85 else None
        domain = (
            company.domain if company else rnd.choice(["gmail.example", "outlook.example", "proton.example"])
        )
        email = f"{_ascii(first)}.{_ascii(last)}{i}@{domain}"
        if email in seen:
            continue
        seen.add(email)
        stage = rnd.choice(stages)
        engaged = stage in (Lifecycle.ENGAGED, Lifecycle.CONVERTED)
        score = rnd.randint(35, 100) if engaged else rnd.choice([0, 0, rnd.randint(1, 40)])
        custom = {"plan": rnd.choice(["free", "starter", "pro", "enterprise"]), "seats": rnd.randint(1, 500)}
        if rnd.random() < 0.5:
            custom["renewal_date"] = (now + dt.timedelta(days=rnd.randint(-30, 365))).date().isoformat()
        custom["newsletter_opt_in"] = rnd.random() < 0.6
        contacts.append(
            Contact(
                workspace=workspace,
                email=email,
                first_name=first,
                last_name=last,
                title=rnd.choice(TITLES),
                phone=f"+1 555 {rnd.randint(100, 999)} {rnd.randint(1000, 9999)}"
                if rnd.random() < 0.5
                else "",
                company=company,
                source=rnd.choice(SOURCES),
                custom=custom,
                lifecycle=stage,
                verification=Verdict.VALID
                if stage != Lifecycle.NEW and stage != Lifecycle.ENRICHED
                else rnd.choice(["", "", Verdict.UNKNOWN, Verdict.CATCH_ALL, Verdict.INVALID]),
                engagement_score=score,
                engagement_tier=tier_for_score(score) if score or engaged else Tier.INACTIVE,
                last_engaged_at=now - dt.timedelta(days=rnd.randint(0, 60)) if engaged else None,
                provenance={"first_name": {"source": "import", "at": now.isoformat()}},
            )
        )
    Contact.objects.bulk_create(contacts, batch_size=1000)
    contacts = list(Contact.objects.for_workspace(workspace).only("pk", "lifecycle", "created_at"))
    through = Contact.tags.through
    links = []
    for c in contacts:
        for tag in rnd.sample(tags, rnd.randint(0, 3)):
            links.append(through(contact_id=c.pk, tag_id=tag.pk))
    through.objects.bulk_create(links, batch_size=2000, ignore_conflicts=True)
    order = [Lifecycle.NEW, Lifecycle.ENRICHED, Lifecycle.VERIFIED, Lifecycle.ENGAGED, Lifecycle.CONVERTED]
    LifecycleTransition.objects.bulk_create(
        [
            LifecycleTransition(
                workspace=workspace,
                contact_id=c.pk,
                from_stage=order[i],
                to_stage=order[i + 1],
                reason="demo history",
            )
            for c in contacts
            for i in range(order.index(c.lifecycle))
        ],
        batch_size=2000,
    )
    suppressed = rnd.sample(contacts, 60)
    Suppression.objects.bulk_create(
        [
            Suppression(
                workspace=workspace,
                contact_id=c.pk,
                channel="email",
                reason=rnd.choice(["unsubscribed", "unsubscribed", "bounced", "complained"]),
                source="demo",
            )
            for c in suppressed
        ],
        ignore_conflicts=True,
    )
    vip, _ = ContactList.objects.get_or_create(workspace=workspace, name="Conference leads 2026")
    ListMembership.objects.bulk_create(
        [
            ListMembership(workspace=workspace, contact_list=vip, contact_id=c.pk)
            for c in rnd.sample(contacts, 250)
        ],
        ignore_conflicts=True,
    )
    Segment.objects.get_or_create(
        workspace=workspace,
        name="Hot enterprise leads",
        defaults={
            "rules": {
                "op": "and",
                "rules": [
                    {"field": "custom.plan", "operator": "in", "value": ["pro", "enterprise"]},
                    {
                        "op": "or",
                        "rules": [
                            {"field": "score", "operator": "gte", "value": 60},
                            {"field": "tags", "operator": "has_tag", "value": "vip"},
                        ],
                    },
                    {"field": "suppression", "operator": "not_suppressed", "value": "email"},
                ],
            }
        },
    )
    Segment.objects.get_or_create(
        workspace=workspace,
        name="Stale prospects",
        defaults={
            "rules": {
                "op": "and",
                "rules": [
                    {"field": "tags", "operator": "has_tag", "value": "prospect"},
                    {"field": "lifecycle", "operator": "lifecycle_in", "value": ["new", "enriched"]},
                ],
            }
        },
    )
