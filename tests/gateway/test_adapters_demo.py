from datetime import date
from decimal import Decimal

import pytest

from gateway.adapters import ADAPTERS
from gateway.adapters.demo import (
    DEMO_LABEL,
    DemoAdsAdapter,
    DemoCrmAdapter,
    DemoEmailAdapter,
    DemoEnrichmentAdapter,
    DemoSocialAdapter,
    DemoVerificationAdapter,
    DemoWebhookAdapter,
)
from gateway.capabilities import (
    AdCampaignSpec,
    Capability,
    CrmRecord,
    OutgoingEmail,
    PersonQuery,
    SocialPost,
    Verdict,
    WebhookEvent,
)
from gateway.errors import ErrorKind, ProviderError


def test_every_capability_has_a_labelled_demo_adapter():
    demos = [cls for cls in ADAPTERS.values() if cls.is_demo]
    covered = set().union(*(cls.capabilities for cls in demos))
    assert covered == set(Capability)
    assert all(cls.label == DEMO_LABEL for cls in demos)
    assert not any(cls.is_demo for cls in ADAPTERS.values() if not cls.key.startswith("demo_"))


def test_demo_results_are_deterministic_and_marked():
    q = PersonQuery(email="jane.doe@acme.test")
    a, b = DemoEnrichmentAdapter().enrich_person(q), DemoEnrichmentAdapter().enrich_person(q)
    assert a == b and a.demo
    if a.matched:
        assert a.fields["first_name"] == "Jane" and a.fields["domain"] == "acme.test"
    results = DemoEnrichmentAdapter().enrich_people([PersonQuery(email=f"p{i}@acme.test") for i in range(40)])
    assert {r.matched for r in results} == {True, False}  # some no-match, like a real vendor
    v = DemoVerificationAdapter().verify_email("info@acme.test")
    assert v.demo and v.verdict == Verdict.RISKY
    assert DemoVerificationAdapter().verify_email("broken").verdict == Verdict.INVALID
    sent = DemoEmailAdapter().send_email(
        OutgoingEmail(to="x@acme.test", subject="s", text="t", message_id="<m@acme.test>")
    )
    assert sent.demo and sent.message_id == "<m@acme.test>"
    crm = DemoCrmAdapter().sync_crm(
        [CrmRecord(email="A@acme.test"), CrmRecord(email="b@acme.test", external_id="rec1")]
    )
    assert crm.demo and (crm.created, crm.updated) == (1, 1) and crm.ids["b@acme.test"] == "rec1"
    post = DemoSocialAdapter().post_social(SocialPost(network="x", text="hello"))
    assert post.demo and DemoSocialAdapter().social_metrics(post.external_id).demo
    campaign = DemoAdsAdapter().run_ads(AdCampaignSpec(name="c", daily_budget=Decimal("10")))
    rows = DemoAdsAdapter().fetch_ad_insights(campaign.external_id, date(2026, 11, 1), date(2026, 11, 7))
    assert campaign.demo and len(rows) == 7 and all(r.demo and r.spend > 0 for r in rows)
    assert (
        DemoWebhookAdapter()
        .dispatch_webhook("https://hooks.acme.test/", "whsec_x", WebhookEvent("e", {}))
        .demo
    )
    replies = DemoEmailAdapter().fetch_replies(date(2026, 11, 1), [f"<m{i}@acme.test>" for i in range(30)])
    assert replies and all(r.demo and r.matched_message_id for r in replies)


def test_demo_adapters_still_refuse_bad_input():
    with pytest.raises(ProviderError) as info:
        DemoEnrichmentAdapter().enrich_person(PersonQuery())
    assert info.value.kind is ErrorKind.BAD_INPUT
    with pytest.raises(ProviderError):
        DemoEmailAdapter().send_email(OutgoingEmail(to="nope", subject="s", text="t"))
