"""Meta (Facebook/Instagram) Ads through the Marketing API: campaigns with a daily budget, daily insights."""

from __future__ import annotations

import json
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, ClassVar

from gateway.adapters.base import FieldSpec
from gateway.adapters.graph import GraphAdapter
from gateway.capabilities import AdCampaignResult, AdCampaignSpec, AdInsight, AdStatus, Capability
from gateway.errors import ErrorKind

# Purchases are reported under several action types depending on how the pixel/app is wired.
CONVERSION_ACTIONS = (
    "offsite_conversion.fb_pixel_purchase",
    "omni_purchase",
    "purchase",
    "lead",
    "complete_registration",
)


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value or "0"))
    except InvalidOperation:
        return Decimal("0")


def _action_total(actions: list[dict[str, Any]] | None, wanted: tuple[str, ...]) -> Decimal:
    """The value of the first wanted action type present (types overlap, so never sum across them)."""
    by_type = {a.get("action_type"): _decimal(a.get("value")) for a in actions or [] if isinstance(a, dict)}
    for action_type in wanted:
        if action_type in by_type:
            return by_type[action_type]
    return Decimal("0")


class MetaAdsAdapter(GraphAdapter):
    key = "meta_ads"
    label = "Meta Ads"
    capabilities = frozenset({Capability.RUN_ADS, Capability.FETCH_AD_INSIGHTS})
    option_fields = ("ad_account_id", "api_version")
    docs_url = "https://developers.facebook.com/docs/marketing-api/get-started"
    field_specs = {
        **GraphAdapter.field_specs,
        "ad_account_id": FieldSpec("Ad account id", "The number after act_ in Ads Manager.", required=True),
    }
    PAGE_LIMIT: ClassVar[int] = 20

    @property
    def account(self) -> str:
        account = str(self.options.get("ad_account_id") or "").removeprefix("act_")
        if not account.isdigit():
            raise self.fail(
                ErrorKind.BAD_INPUT, "Meta ad_account_id is not configured (digits, optionally act_…)"
            )
        return f"act_{account}"

    def run_ads(self, spec: AdCampaignSpec) -> AdCampaignResult:
        budget = Decimal(spec.daily_budget)
        if budget <= 0:
            raise self.fail(ErrorKind.BAD_INPUT, "Daily budget must be positive")
        if spec.status not in AdStatus.values:
            raise self.fail(ErrorKind.BAD_INPUT, f"Unknown campaign status {spec.status!r}")
        cents = int((budget * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))
        body = self._call(
            "POST",
            f"{self.account}/campaigns",
            name=spec.name,
            objective=spec.objective,
            status=spec.status,
            daily_budget=str(cents),
            bid_strategy="LOWEST_COST_WITHOUT_CAP",
            special_ad_categories=json.dumps(list(spec.special_ad_categories)),
        )
        campaign_id = str(body.get("id") or "")
        if not campaign_id:
            raise self.fail(ErrorKind.TRANSIENT, f"Meta answered without a campaign id: {body!r}"[:300])
        return AdCampaignResult(external_id=campaign_id, status=spec.status, provider=self.key)

    def _set_status(self, external_id: str, status: str) -> AdCampaignResult:
        if not external_id.isdigit():
            raise self.fail(ErrorKind.BAD_INPUT, f"Not a Meta campaign id: {external_id!r}")
        body = self._call("POST", external_id, status=status)
        if body.get("success") is not True:
            raise self.fail(ErrorKind.TRANSIENT, f"Meta did not confirm the status change: {body!r}"[:300])
        return AdCampaignResult(external_id=external_id, status=status, provider=self.key)

    def pause_ad(self, external_id: str) -> AdCampaignResult:
        return self._set_status(external_id, AdStatus.PAUSED)

    def resume_ad(self, external_id: str) -> AdCampaignResult:
        return self._set_status(external_id, AdStatus.ACTIVE)

    def fetch_ad_insights(self, external_id: str, since: date, until: date) -> list[AdInsight]:
        if until < since:
            raise self.fail(ErrorKind.BAD_INPUT, "Insights range ends before it starts")
        params = {
            "time_range": json.dumps({"since": since.isoformat(), "until": until.isoformat()}),
            "time_increment": "1",
            "fields": "spend,impressions,clicks,actions,action_values",
            "limit": str(self.PAGE_LIMIT),
        }
        out: list[AdInsight] = []
        body = self._call("GET", f"{external_id}/insights", **params)
        for _page in range(1000):
            for row in body.get("data") or []:
                out.append(
                    AdInsight(
                        date=date.fromisoformat(str(row["date_start"])),
                        spend=_decimal(row.get("spend")),
                        impressions=int(_decimal(row.get("impressions"))),
                        clicks=int(_decimal(row.get("clicks"))),
                        conversions=int(_action_total(row.get("actions"), CONVERSION_ACTIONS)),
                        revenue=_action_total(row.get("action_values"), CONVERSION_ACTIONS),
                        external_id=external_id,
                    )
                )
            after = ((body.get("paging") or {}).get("cursors") or {}).get("after")
            if not (body.get("paging") or {}).get("next") or not after:
                break
            body = self._call("GET", f"{external_id}/insights", **params, after=after)
        return out

    def health_check(self) -> None:
        body = self._call("GET", self.account, fields="account_status")
        # 1 = ACTIVE; 2 = DISABLED, 3 = UNSETTLED, 101 = CLOSED ... need an operator.
        if body.get("account_status") not in (1, None):
            raise self.fail(ErrorKind.REAUTH, f"Meta ad account status is {body.get('account_status')}")
