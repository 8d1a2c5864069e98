import json
from datetime import date
from decimal import Decimal

import pytest

from gateway.adapters.meta_ads import MetaAdsAdapter
from gateway.capabilities import AdCampaignSpec, AdStatus
from gateway.errors import ErrorKind, ProviderError

V = "/v21.0"


def meta(url):
    return MetaAdsAdapter(
        base_url=url,
        credentials={"access_token": "m-tok"},
        options={"ad_account_id": "act_1234", "api_version": "v21.0"},
    )


def test_create_campaign_sends_budget_in_cents(httpserver):
    httpserver.expect_request(f"{V}/act_1234/campaigns", method="POST").respond_with_json(
        {"id": "120210000000001"}
    )
    result = meta(httpserver.url_for("")).run_ads(
        AdCampaignSpec(name="Spring", daily_budget=Decimal("25.50"), status=AdStatus.PAUSED)
    )
    form = httpserver.log[0][0].form
    assert form["daily_budget"] == "2550" and form["status"] == "PAUSED" and form["name"] == "Spring"
    assert form["objective"] == "OUTCOME_TRAFFIC" and json.loads(form["special_ad_categories"]) == []
    assert form["access_token"] == "m-tok"
    assert result.external_id == "120210000000001" and result.status == "PAUSED"


def test_pause_and_resume(httpserver):
    httpserver.expect_request(f"{V}/120210000000001", method="POST").respond_with_json({"success": True})
    adapter = meta(httpserver.url_for(""))
    assert adapter.pause_ad("120210000000001").status == "PAUSED"
    assert adapter.resume_ad("120210000000001").status == "ACTIVE"
    assert [r.form["status"] for r, _ in httpserver.log] == ["PAUSED", "ACTIVE"]


def test_insights_daily_rows_with_paging_and_conversions(httpserver):
    page1 = {
        "data": [
            {
                "date_start": "2026-11-01",
                "date_stop": "2026-11-01",
                "spend": "12.34",
                "impressions": "1000",
                "clicks": "25",
                "actions": [
                    {"action_type": "link_click", "value": "25"},
                    {"action_type": "offsite_conversion.fb_pixel_purchase", "value": "3"},
                    {"action_type": "omni_purchase", "value": "3"},
                ],
                "action_values": [{"action_type": "offsite_conversion.fb_pixel_purchase", "value": "149.70"}],
            }
        ],
        "paging": {"cursors": {"before": "b", "after": "AFTER1"}, "next": "https://graph.facebook.com/next"},
    }
    page2 = {
        "data": [
            {
                "date_start": "2026-11-02",
                "date_stop": "2026-11-02",
                "spend": "8",
                "impressions": "700",
                "clicks": "9",
            }
        ],
        "paging": {"cursors": {"before": "b2", "after": "AFTER2"}},
    }
    httpserver.expect_oneshot_request(f"{V}/120210000000001/insights").respond_with_json(page1)
    httpserver.expect_oneshot_request(f"{V}/120210000000001/insights").respond_with_json(page2)
    rows = meta(httpserver.url_for("")).fetch_ad_insights(
        "120210000000001", date(2026, 11, 1), date(2026, 11, 2)
    )
    first = httpserver.log[0][0].args
    assert (
        first["time_increment"] == "1" and first["fields"] == "spend,impressions,clicks,actions,action_values"
    )
    assert json.loads(first["time_range"]) == {"since": "2026-11-01", "until": "2026-11-02"}
    assert httpserver.log[1][0].args["after"] == "AFTER1"
    assert (
        rows[0].date == date(2026, 11, 1)
        and rows[0].spend == Decimal("12.34")
        and rows[0].impressions == 1000
    )
    assert rows[0].conversions == 3 and rows[0].revenue == Decimal(
        "149.70"
    )  # overlapping types not double-counted
    assert rows[1].conversions == 0 and rows[1].revenue == Decimal("0") and len(rows) == 2


@pytest.mark.parametrize(
    ("status", "error", "kind"),
    [
        (
            400,
            {"message": "Invalid OAuth access token.", "type": "OAuthException", "code": 190},
            ErrorKind.REAUTH,
        ),
        (
            400,
            {"message": "User request limit reached", "type": "OAuthException", "code": 17},
            ErrorKind.THROTTLED,
        ),
        (
            400,
            {"message": "Ad account has too many API calls", "type": "OAuthException", "code": 80004},
            ErrorKind.THROTTLED,
        ),
        (
            400,
            {"message": "Invalid parameter", "type": "OAuthException", "code": 100, "error_subcode": 1885183},
            ErrorKind.BAD_INPUT,
        ),
        (403, {"message": "Permissions error", "type": "OAuthException", "code": 200}, ErrorKind.REAUTH),
        (
            500,
            {"message": "An unknown error occurred", "type": "OAuthException", "code": 1},
            ErrorKind.TRANSIENT,
        ),
    ],
)
def test_graph_error_forms(httpserver, status, error, kind):
    httpserver.expect_request(f"{V}/act_1234/campaigns").respond_with_json({"error": error}, status=status)
    with pytest.raises(ProviderError) as info:
        meta(httpserver.url_for("")).run_ads(AdCampaignSpec(name="x", daily_budget=Decimal("5")))
    assert info.value.kind is kind and error["message"] in info.value.message
    if kind is ErrorKind.THROTTLED:
        assert info.value.retry_after > 0


def test_bad_specs_never_reach_meta(httpserver):
    adapter = meta(httpserver.url_for(""))
    for spec in (
        AdCampaignSpec(name="x", daily_budget=Decimal("0")),
        AdCampaignSpec(name="x", daily_budget=Decimal("5"), status="RUNNING"),
    ):
        with pytest.raises(ProviderError) as info:
            adapter.run_ads(spec)
        assert info.value.kind is ErrorKind.BAD_INPUT
    with pytest.raises(ProviderError):
        adapter.fetch_ad_insights("1", date(2026, 11, 2), date(2026, 11, 1))
    assert httpserver.log == []


def test_health_checks_account_status(httpserver):
    httpserver.expect_oneshot_request(f"{V}/act_1234").respond_with_json(
        {"account_status": 1, "id": "act_1234"}
    )
    httpserver.expect_oneshot_request(f"{V}/act_1234").respond_with_json(
        {"account_status": 2, "id": "act_1234"}
    )
    adapter = meta(httpserver.url_for(""))
    adapter.health_check()
    with pytest.raises(ProviderError) as info:
        adapter.health_check()
    assert info.value.kind is ErrorKind.REAUTH
