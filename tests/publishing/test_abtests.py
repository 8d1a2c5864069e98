"""A/B decision statistics: the two-proportion z-test against the textbook formula, the leader and
significance rules, and the seeded test sample."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from aicmo.roles import Role
from publishing.models import ABTest, Campaign, Delivery
from publishing.services import abtests, campaigns, sending, tracking
from publishing.services.abtests import sample_pick, variants_compare

from .conftest import make_campaign, make_content, smtp_account


def pooled_z_p(h1: int, n1: int, h2: int, n2: int) -> float:
    """Two-sided p of the pooled two-proportion z-test, written out independently of statsmodels."""
    p = (h1 + h2) / (n1 + n2)
    z = (h1 / n1 - h2 / n2) / math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2))
    return math.erfc(abs(z) / math.sqrt(2))


def test_known_values():
    result = variants_compare({"A": (1000, 200), "B": (1000, 250)})
    assert result.leader == "B" and result.significant
    assert result.p_value == pytest.approx(0.00743, abs=5e-5)
    assert result.p_value == pytest.approx(pooled_z_p(200, 1000, 250, 1000))
    close = variants_compare({"A": (100, 20), "B": (100, 25)})
    assert close.leader == "B" and not close.significant and close.p_value > 0.05


@pytest.mark.parametrize(
    ("counts", "leader", "p_none"),
    [
        ({"A": (0, 0), "B": (10, 3)}, "B", True),  # a variant without recipients: no test
        ({"A": (10, 0), "B": (10, 0)}, None, True),  # nobody did anything: no variance, no leader
        ({"A": (10, 10), "B": (10, 10)}, None, True),
        ({"A": (50, 5), "B": (50, 5)}, None, False),  # a tie is no leader
    ],
)
def test_degenerate_counts_are_never_significant(counts, leader, p_none):
    result = variants_compare(counts)
    assert result.leader == leader and (result.p_value is None) is p_none and not result.significant


@pytest.mark.parametrize(
    "counts", [{"A": (10, 1)}, {"A": (10, 11), "B": (10, 1)}, {"A": (-1, 0), "B": (1, 0)}]
)
def test_impossible_input_is_refused(counts):
    with pytest.raises(ValueError, match=r"two variants|Hits must"):
        variants_compare(counts)


counts = st.integers(1, 5000).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n)))


@given(a=counts, b=counts, c=counts)
def test_comparison_properties(a, b, c):
    result = variants_compare({"A": a, "B": b, "C": c})
    rates = {v.label: v.rate for v in result.variants}
    if result.leader is not None:
        assert rates[result.leader] == max(rates.values())
        assert sorted(rates.values())[-2] < rates[result.leader]
    if result.p_value is not None:
        assert 0.0 <= result.p_value <= 1.0
    assert result.significant == (
        result.leader is not None and result.p_value is not None and result.p_value < 0.05
    )
    swapped = variants_compare({"A": b, "B": a})
    assert swapped.p_value == variants_compare({"A": a, "B": b}).p_value


@given(
    ids=st.lists(st.integers(1, 10**6), unique=True, max_size=300),
    share=st.integers(1, 100),
    seed=st.integers(0, 2**32),
)
def test_sample_is_seeded_sized_and_drawn_from_the_audience(ids, share, seed):
    sample = sample_pick(ids, share_percent=share, seed=seed)
    assert sample == sample_pick(list(reversed(ids)), share_percent=share, seed=seed)
    assert set(sample) <= set(ids) and len(set(sample)) == len(sample)
    assert len(sample) == math.floor(len(ids) * share / 100 + 0.5)


# ------------------------------------------------------------ the A/B flow through the real send path


def _send_all(campaign_id: int) -> None:
    while sending.campaign_send_batch(campaign_id=campaign_id).more:
        pass


def _test_phase(workspace, smtp_sink, *, auto: bool, n: int = 10):
    smtp_account(workspace, smtp_sink.host, smtp_sink.port)
    campaign = make_campaign(workspace, n)
    abtest = abtests.abtest_create(
        campaign=campaign,
        variants=[
            {"label": "A", "subject": "Subject A"},
            {"label": "B", "subject": "Subject B {{ contact.first_name }}"},
        ],
        test_share=40,
        metric="clicks",
        wait_minutes=60,
        auto_winner=auto,
    )
    campaigns.campaign_send_now(campaign=campaign)
    _send_all(campaign.pk)
    return campaign, abtest


@pytest.mark.django_db
def test_variants_go_to_the_seeded_sample_and_the_winner_to_the_rest_exactly_once(
    workspace, smtp_sink, fast_gateway, django_capture_on_commit_callbacks
):
    campaign, abtest = _test_phase(workspace, smtp_sink, auto=True)
    test_messages = smtp_sink.wait_for(4)
    assert len(test_messages) == 4
    assert sorted(m["Subject"].split(" ")[1] for m in test_messages) == ["A", "A", "B", "B"]
    assert Delivery.objects.filter(campaign=campaign, status="held").count() == 6
    assert Campaign.objects.get(pk=campaign.pk).status == "sending"  # held rows keep it open
    assert abtests.abtests_tick() == 0  # the wait is not over
    # Human clicks on both B recipients, none on A.
    for delivery in Delivery.objects.filter(campaign=campaign, variant__label="B"):
        tracking.event_record(delivery=delivery, kind="click")
        tracking.event_record(delivery=delivery, kind="click", machine=True)
    Campaign.objects.filter(pk=campaign.pk).update(started_at=timezone.now() - timedelta(minutes=61))
    with django_capture_on_commit_callbacks(execute=False):
        assert abtests.abtests_tick() == 1
    abtest.refresh_from_db()
    assert abtest.phase == "decided" and abtest.winner.label == "B"
    assert abtest.result["variants"] == [
        {"label": "A", "recipients": 2, "hits": 0, "rate": 0.0},
        {"label": "B", "recipients": 2, "hits": 2, "rate": 1.0},
    ]
    # 2/2 vs 0/2: pooled p = 0.5, z = 2, two-sided p = 0.0455 (< 0.05 although the samples are tiny)
    assert abtest.result["leader"] == "B" and abtest.result["significant"] is True
    assert abtest.result["p_value"] == pytest.approx(math.erfc(2 / math.sqrt(2)))
    _send_all(campaign.pk)
    messages = smtp_sink.wait_for(10)
    assert len(messages) == 10
    assert len({m["To"] for m in messages}) == 10  # nobody twice
    assert sum(m["Subject"].startswith("Subject B") for m in messages) == 8
    campaign.refresh_from_db()
    assert campaign.status == "sent" and campaign.job.total == 10
    assert abtests.abtests_tick() == 0


@pytest.mark.django_db
def test_manual_choice_waits_for_a_person(
    workspace, smtp_sink, fast_gateway, django_capture_on_commit_callbacks
):
    campaign, abtest = _test_phase(workspace, smtp_sink, auto=False)
    smtp_sink.wait_for(4)
    Campaign.objects.filter(pk=campaign.pk).update(started_at=timezone.now() - timedelta(minutes=61))
    assert abtests.abtests_tick() == 0
    abtest.refresh_from_db()
    assert abtest.phase == "awaiting_choice" and abtest.result["leader"] is None
    assert Delivery.objects.filter(campaign=campaign, status="held").count() == 6
    with django_capture_on_commit_callbacks(execute=False):
        released = abtests.abtest_choose_winner(abtest=abtest, variant=abtest.variants.get(label="A"))
    assert released == 6
    with pytest.raises(ValidationError, match="already sent"):
        abtests.abtest_choose_winner(abtest=abtest, variant=abtest.variants.get(label="B"))
    _send_all(campaign.pk)
    messages = smtp_sink.wait_for(10)
    assert sum(m["Subject"] == "Subject A" for m in messages) == 8


@pytest.mark.django_db
def test_cancel_skips_the_held_rows_and_bad_definitions_are_field_errors(
    workspace, other_workspace, smtp_sink, fast_gateway
):
    campaign, _ = _test_phase(workspace, smtp_sink, auto=True)
    campaigns.campaign_cancel(campaign=campaign)
    assert not Delivery.objects.filter(campaign=campaign, status="held").exists()
    draft = campaigns.campaign_create(
        workspace=workspace, name="D", content=campaign.content, audience=campaign.audience
    )
    foreign = make_content(other_workspace)
    with pytest.raises(ValidationError) as err:
        abtests.abtest_create(
            campaign=draft,
            variants=[{"label": "A", "subject": "{{ contact.ssn }}"}, {"label": "A", "content": foreign}],
            test_share=95,
            metric="likes",
        )
    assert {"test_share", "metric", "variants", "variants[0].subject", "variants[1].content"} <= set(
        err.value.message_dict
    )
    assert not ABTest.objects.filter(campaign=draft).exists()


@pytest.mark.django_db
def test_api_creates_reads_and_chooses_with_tenant_isolation_and_roles(
    workspace,
    other_workspace,
    api_client_for,
    staff_for,
    smtp_sink,
    fast_gateway,
    django_capture_on_commit_callbacks,
):
    smtp_account(workspace, smtp_sink.host, smtp_sink.port)
    campaign = make_campaign(workspace, 10)
    api = api_client_for(Role.MARKETER)
    body = {
        "campaign": campaign.pk,
        "variants": [{"label": "A", "subject": "Subject A"}, {"label": "B", "subject": "Subject B"}],
        "test_share": 40,
        "metric": "opens",
        "auto_winner": False,
    }
    created = api.post("/api/v1/publishing/abtests/", body, format="json")
    assert created.status_code == 201, created.json()
    abtest_id = created.json()["id"]
    assert created.json()["verdict"] == "not evaluated" and created.json()["phase"] == "testing"
    again = api.post("/api/v1/publishing/abtests/", body, format="json")
    assert again.status_code == 400 and "campaign" in again.json()["error"]["fields"]
    theirs = api_client_for(Role.MARKETER, workspace_=other_workspace)
    assert theirs.get(f"/api/v1/publishing/abtests/{abtest_id}/").status_code == 404
    assert (
        theirs.post("/api/v1/publishing/abtests/", body, format="json").status_code == 404
    )  # foreign campaign: names no row of that workspace
    assert theirs.get("/api/v1/publishing/abtests/").json()["results"] == []
    viewer = api_client_for(Role.VIEWER)
    assert viewer.post(f"/api/v1/publishing/abtests/{abtest_id}/winner/", {"label": "A"}).status_code == 403

    campaigns.campaign_send_now(campaign=campaign)
    _send_all(campaign.pk)
    smtp_sink.wait_for(4)
    evaluated = api.post(f"/api/v1/publishing/abtests/{abtest_id}/evaluate/")
    assert evaluated.json()["verdict"] == "not yet"
    # no such variant: the test's state, not the request's shape
    assert api.post(f"/api/v1/publishing/abtests/{abtest_id}/winner/", {"label": "Z"}).status_code == 404
    with django_capture_on_commit_callbacks(execute=False):
        chosen = api.post(f"/api/v1/publishing/abtests/{abtest_id}/winner/", {"label": "B"})
    assert (
        chosen.status_code == 200 and chosen.json()["winner"] == "B" and chosen.json()["phase"] == "decided"
    )
    assert Delivery.objects.filter(campaign=campaign, status="queued", variant__label="B").count() == 6
    repeat = api.post(f"/api/v1/publishing/abtests/{abtest_id}/winner/", {"label": "A"})
    assert repeat.status_code == 400
    page = staff_for(Role.MARKETER).get("/admin/publishing/abtest/")
    assert page.status_code == 200 and b"not yet" in page.content
    assert (
        staff_for(Role.MARKETER, other_workspace)
        .get(f"/admin/publishing/abtest/{abtest_id}/change/")
        .status_code
        == 404
    )


@pytest.mark.django_db
def test_abtest_list_query_count_is_flat(workspace, api_client_for, django_assert_max_num_queries):
    api = api_client_for(Role.VIEWER)
    content = make_content(workspace)
    for i in range(15):
        campaign = campaigns.campaign_create(workspace=workspace, name=f"C{i}", content=content, audience={})
        abtests.abtest_create(
            campaign=campaign, variants=[{"label": "A", "subject": "a"}, {"label": "B", "subject": "b"}]
        )
    with django_assert_max_num_queries(8):
        response = api.get("/api/v1/publishing/abtests/?page_size=50")
    assert response.status_code == 200 and len(response.json()["results"]) == 15
