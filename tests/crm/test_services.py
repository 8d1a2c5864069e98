"""Lifecycle rules, suppression/consent, merge, GDPR, enrichment merge policy and provenance, export."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from aicmo.models import AuditEvent
from crm import exporting, services
from crm.models import (
    ConsentEvent,
    Contact,
    EnrichmentConflict,
    EnrichmentRecord,
    Lifecycle,
    LifecycleTransition,
    Suppression,
    Verdict,
)
from crm.selectors import contact_can_receive, contacts_receivable
from tests.crm.factories import ContactFactory, ContactListFactory, CustomFieldFactory


def test_create_normalises_email_and_rejects_duplicates(workspace):
    c = services.contact_create(
        workspace=workspace, data={"email": "  Ann@Example.COM ", "first_name": "Ann"}
    )
    assert c.email == "ann@example.com" and c.typed_fields == ["first_name"]
    assert c.provenance["first_name"]["source"] == "typed"
    with pytest.raises(ValidationError) as exc:
        services.contact_create(workspace=workspace, data={"email": "ANN@example.com"})
    assert "email" in exc.value.message_dict
    with pytest.raises(ValidationError):
        services.contact_create(workspace=workspace, data={"email": "nope"})


def test_same_email_allowed_in_another_workspace(workspace, other_workspace):
    services.contact_create(workspace=workspace, data={"email": "a@ex.com"})
    services.contact_create(workspace=other_workspace, data={"email": "a@ex.com"})
    assert Contact.objects.filter(email="a@ex.com").count() == 2


def test_custom_fields_validated_per_type(workspace):
    CustomFieldFactory(workspace=workspace, key="size", type="number")
    CustomFieldFactory(workspace=workspace, key="plan", type="choice", choices=["free", "pro"])
    CustomFieldFactory(workspace=workspace, key="since", type="date")
    CustomFieldFactory(workspace=workspace, key="vip", type="bool")
    with pytest.raises(ValidationError) as exc:
        services.contact_create(
            workspace=workspace,
            data={
                "email": "a@ex.com",
                "custom": {"size": "big", "plan": "gold", "since": "yesterday", "vip": "maybe", "other": 1},
            },
        )
    assert set(exc.value.message_dict) == {
        "custom.size",
        "custom.plan",
        "custom.since",
        "custom.vip",
        "custom.other",
    }
    c = services.contact_create(
        workspace=workspace,
        data={
            "email": "a@ex.com",
            "custom": {"size": "12", "plan": "pro", "since": "2026-01-02", "vip": "yes"},
        },
    )
    assert c.custom == {"size": 12, "plan": "pro", "since": "2026-01-02", "vip": True}


def test_lifecycle_transitions_enforced_with_history(workspace):
    c = ContactFactory(workspace=workspace)
    with pytest.raises(services.LifecycleError, match="provider returned data"):
        services.contact_transition(contact=c, to=Lifecycle.ENRICHED)
    with pytest.raises(services.LifecycleError, match="verified as valid"):
        services.contact_transition(contact=c, to=Lifecycle.VERIFIED)
    with pytest.raises(services.LifecycleError, match="cannot move"):
        services.contact_transition(contact=c, to=Lifecycle.CONVERTED)
    services.contact_set_verification(contact=c, verdict="accept_all", provider="hunter")
    c.refresh_from_db()
    assert c.verification == Verdict.CATCH_ALL and c.lifecycle == Lifecycle.NEW
    services.contact_set_verification(contact=c, verdict="deliverable", provider="hunter")
    c.refresh_from_db()
    assert c.lifecycle == Lifecycle.VERIFIED
    c = services.contact_record_engagement(contact_id=c.pk, score=75, converted=True)
    assert c.lifecycle == Lifecycle.CONVERTED and c.engagement_tier == "high"
    with pytest.raises(services.LifecycleError):
        services.contact_transition(contact=c, to=Lifecycle.NEW)
    history = list(LifecycleTransition.objects.filter(contact=c).values_list("from_stage", "to_stage"))
    assert history == [("new", "verified"), ("verified", "engaged"), ("engaged", "converted")]


def test_suppression_blocks_channel_and_logs_consent(workspace):
    c = ContactFactory(workspace=workspace)
    assert contact_can_receive(c, "email")
    services.contact_unsubscribe(contact=c, channel="email", source="link", ip="10.0.0.1")
    services.contact_unsubscribe(contact=c, channel="email", source="link")  # idempotent
    assert not contact_can_receive(c, "email") and contact_can_receive(c, "sms")
    assert contacts_receivable(Contact.objects.for_workspace(workspace), "email").count() == 0
    services.contact_suppress(contact=c, channel="email", reason="complained", source="webhook")
    assert Suppression.objects.get(contact=c).reason == "complained"
    assert services.contact_resubscribe(contact=c, channel="email", source="form", ip="10.0.0.2")
    assert contact_can_receive(c, "email")
    events = list(ConsentEvent.objects.filter(contact=c).order_by("id").values_list("kind", "granted", "ip"))
    assert events == [  # the complaint that replaced the unsubscribe is the person's word too: logged
        ("email:unsubscribed", False, "10.0.0.1"),
        ("email:complained", False, None),
        ("email:resubscribed", True, "10.0.0.2"),
    ]
    services.contact_suppress(contact=c, channel="email", reason="bounced", source="smtp")
    with pytest.raises(services.SuppressionError):
        services.contact_resubscribe(contact=c, channel="email")


def test_invalid_email_cannot_receive(workspace):
    c = ContactFactory(workspace=workspace, verification=Verdict.INVALID)
    assert not contact_can_receive(c, "email") and contact_can_receive(c, "social")


def test_enrichment_never_overwrites_typed_values_and_records_conflicts(workspace):
    c = services.contact_create(workspace=workspace, data={"email": "a@ex.com", "title": "Founder"})
    record = services.enrichment_apply(
        contact=c,
        provider="apollo",
        fields={"title": "CEO", "first_name": "Ada", "company": "Acme", "domain": "acme.io", "city": "Paris"},
        credits_used=1,
    )
    c.refresh_from_db()
    assert c.title == "Founder" and c.first_name == "Ada" and c.company.domain == "acme.io"
    assert c.provenance["first_name"] == {
        "source": "enrichment",
        "provider": "apollo",
        "record_id": record.pk,
        "at": record.fetched_at.isoformat(),
        "verified": False,
        "demo": False,
    }
    assert c.provenance["title"]["source"] == "typed"
    conflict = EnrichmentConflict.objects.get(contact=c)
    assert (conflict.field, conflict.current_value, conflict.offered_value, conflict.resolution) == (
        "title",
        "Founder",
        "CEO",
        "kept_typed",
    )
    assert c.lifecycle == Lifecycle.ENRICHED


def test_newer_verified_data_wins_older_is_kept_as_conflict(workspace):
    c = ContactFactory(workspace=workspace, first_name="", title="")
    t0 = timezone.now() - dt.timedelta(days=3)
    services.enrichment_apply(contact=c, provider="hunter", fields={"title": "Engineer"}, fetched_at=t0)
    services.enrichment_apply(
        contact=c,
        provider="apollo",
        fields={"title": "Staff Engineer", "email_status": "verified"},
        fetched_at=t0 + dt.timedelta(days=1),
    )
    c.refresh_from_db()
    assert c.title == "Staff Engineer" and c.provenance["title"]["provider"] == "apollo"
    # older unverified data arriving later does not beat newer verified data
    services.enrichment_apply(
        contact=c, provider="dropcontact", fields={"title": "Intern"}, fetched_at=t0 + dt.timedelta(days=2)
    )
    c.refresh_from_db()
    assert c.title == "Staff Engineer"
    resolutions = sorted(
        EnrichmentConflict.objects.filter(contact=c).values_list("offered_value", "resolution")
    )
    assert resolutions == [("Intern", "kept_existing"), ("Staff Engineer", "replaced_older")]


def test_no_match_does_not_mark_enriched(workspace):
    c = ContactFactory(workspace=workspace)
    record = services.enrichment_apply(contact=c, provider="apollo", fields={}, matched=True)
    c.refresh_from_db()
    assert not record.matched and c.lifecycle == Lifecycle.NEW


def test_ttl_skips_fresh_records(workspace, settings):
    settings.CRM_ENRICHMENT_TTL_DAYS = 10
    fresh, stale, never = (ContactFactory(workspace=workspace) for _ in range(3))
    services.enrichment_apply(
        contact=fresh, provider="p", fields={"title": "x"}, fetched_at=timezone.now() - dt.timedelta(days=2)
    )
    services.enrichment_apply(
        contact=stale, provider="p", fields={"title": "x"}, fetched_at=timezone.now() - dt.timedelta(days=20)
    )
    assert services.contacts_needing_enrichment([fresh.pk, stale.pk, never.pk]) == [stale.pk, never.pk]


def test_merge_moves_tags_lists_enrichment_history(workspace):
    primary = ContactFactory(workspace=workspace, email="a@ex.com", title="", engagement_score=10)
    dup = ContactFactory(workspace=workspace, email="a.alt@ex.com", title="CTO", engagement_score=60)
    services.contacts_tag(workspace=workspace, contact_ids=[dup.pk], names=["vip"])
    lst = ContactListFactory(workspace=workspace)
    services.list_add_contacts(contact_list=lst, contact_ids=[dup.pk])
    services.enrichment_apply(contact=dup, provider="apollo", fields={"first_name": "Al"})
    services.contact_unsubscribe(contact=dup, channel="sms", source="t")
    merged = services.contact_merge(primary=primary, duplicate=dup)
    assert not Contact.objects.filter(pk=dup.pk).exists()
    assert merged.title == "CTO" and merged.engagement_score == 60 and merged.lifecycle == Lifecycle.ENRICHED
    assert list(merged.tags.values_list("name", flat=True)) == ["vip"]
    assert list(merged.lists.all()) == [lst]
    assert EnrichmentRecord.objects.get().contact_id == merged.pk
    assert not contact_can_receive(merged, "sms")
    assert LifecycleTransition.objects.filter(contact=merged).exists()
    assert AuditEvent.objects.filter(verb="crm.contact.merged").exists()


def test_merge_rejects_other_workspace(workspace, other_workspace):
    with pytest.raises(ValidationError):
        services.contact_merge(
            primary=ContactFactory(workspace=workspace), duplicate=ContactFactory(workspace=other_workspace)
        )


def test_gdpr_export_and_erase_keeps_aggregates(workspace):
    c = services.contact_create(
        workspace=workspace, data={"email": "g@ex.com", "first_name": "Gus", "tags": ["x"]}
    )
    services.contact_unsubscribe(contact=c, channel="email", source="link", ip="1.2.3.4")
    services.enrichment_apply(contact=c, provider="apollo", fields={"title": "CFO"})
    data = services.contact_export_data(contact=c)
    assert data["email"] == "g@ex.com" and data["tags"] == ["x"] and data["consent"][0]["ip"] == "1.2.3.4"
    assert data["enrichment"][0]["fields"] == {"title": "CFO"}
    erased = services.contact_erase(contact=c)
    assert erased.email == f"erased-{c.pk}@erased.invalid" and erased.first_name == "" and erased.title == ""
    assert erased.lifecycle == Lifecycle.ENRICHED  # aggregates (counts per stage) still add up
    assert not EnrichmentRecord.objects.filter(contact=c).exists()
    assert not ConsentEvent.objects.filter(contact=c).exists()
    assert not contact_can_receive(erased, "email") and not contact_can_receive(erased, "sms")
    assert Contact.objects.for_workspace(workspace).count() == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+cmd", "'+cmd"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=x", "'\t=x"),
        ("\r=x", "'\r=x"),
        ("  =HYPERLINK()", "'  =HYPERLINK()"),
        ("\x00=x", "'\x00=x"),
        ("\u00a0+1", "'\u00a0+1"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (42, "42"),
    ],
)
def test_formula_injection_neutralised(value, expected):
    assert exporting.neutralize_cell(value) == expected


def test_export_streams_contacts(workspace):
    ContactFactory(workspace=workspace, email="x@ex.com", first_name="=cmd|' /C calc'!A0")
    body = "".join(exporting.csv_lines(exporting.contact_rows(Contact.objects.for_workspace(workspace))))
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][:2] == ["email", "first_name"] and rows[1][1].startswith("'=")


def test_bulk_engagement_moves_time_forward_only_and_stages_once(workspace, django_assert_max_num_queries):
    """`contacts_record_engagement`: one UPDATE for the times, transitions only for contacts before engaged."""
    from crm.models import Lifecycle, LifecycleTransition

    now = timezone.now()
    fresh = ContactFactory(workspace=workspace)
    engaged = ContactFactory(workspace=workspace, lifecycle=Lifecycle.ENGAGED, last_engaged_at=now)
    erased = ContactFactory(workspace=workspace, erased_at=now)
    earlier = now - dt.timedelta(hours=1)
    with django_assert_max_num_queries(8):
        moved = services.contacts_record_engagement(
            engaged={fresh.pk: earlier, engaged.pk: earlier, erased.pk: now}
        )
    assert moved == 1
    fresh.refresh_from_db()
    engaged.refresh_from_db()
    erased.refresh_from_db()
    assert (fresh.lifecycle, fresh.last_engaged_at) == (Lifecycle.ENGAGED, earlier)
    assert engaged.last_engaged_at == now  # never moved back
    assert erased.last_engaged_at is None and erased.lifecycle == Lifecycle.NEW
    assert LifecycleTransition.objects.filter(contact=fresh, to_stage=Lifecycle.ENGAGED).count() == 1
    assert services.contacts_record_engagement(engaged={fresh.pk: now}) == 0  # already engaged
