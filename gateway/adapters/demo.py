"""Demo adapters: offline, deterministic sample data derived from the input, every result ``demo=True``.

They exist so a fresh install works without vendor accounts; they are only used when a workspace
explicitly configures a demo provider account, never in place of a real one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import make_msgid, parseaddr

from gateway.adapters.base import Adapter
from gateway.capabilities import (
    AdCampaignResult,
    AdCampaignSpec,
    AdInsight,
    AdStatus,
    Capability,
    CrmRecord,
    CrmSyncResult,
    EnrichmentResult,
    InboundKind,
    InboundMessage,
    OutgoingEmail,
    PersonQuery,
    SendResult,
    SocialMetrics,
    SocialPost,
    SocialPostResult,
    Verdict,
    VerificationResult,
    WebhookEvent,
    WebhookResult,
)
from gateway.errors import ErrorKind

DEMO_LABEL = "Demo (offline sample data)"
_TITLES = ("Head of Marketing", "Growth Lead", "CMO", "Demand Generation Manager", "VP Sales", "Founder")
_INDUSTRIES = ("Software", "Retail", "Financial Services", "Healthcare", "Manufacturing")
_CITIES = (
    ("Paris", "France"),
    ("Berlin", "Germany"),
    ("Austin", "United States"),
    ("London", "United Kingdom"),
)


def _seed(*parts: str) -> int:
    return int.from_bytes(hashlib.sha256("|".join(parts).lower().encode()).digest()[:8], "big")


class _DemoBase(Adapter):
    is_demo = True
    label = DEMO_LABEL
    credential_fields = ()

    def health_check(self) -> None:
        """Always reachable: it never leaves the process."""


class DemoEnrichmentAdapter(_DemoBase):
    key = "demo_enrichment"
    capabilities = frozenset({Capability.ENRICH_PERSON})

    def enrich_person(self, query: PersonQuery) -> EnrichmentResult:
        if query.is_empty():
            raise self.fail(ErrorKind.BAD_INPUT, "Need an email, LinkedIn URL or name + domain")
        email = query.email.lower()
        domain = query.domain or (email.rsplit("@", 1)[1] if "@" in email else "")
        local = email.split("@", 1)[0] if email else f"{query.first_name}.{query.last_name}".lower()
        seed = _seed(email or query.linkedin_url or local, domain)
        if seed % 7 == 0:  # some people are not found, like with a real vendor
            return EnrichmentResult(provider=self.key, matched=False, demo=True, query=query)
        names = [p for p in local.replace("_", ".").replace("-", ".").split(".") if p.isalpha()]
        first = query.first_name or (names[0].title() if names else "Alex")
        last = query.last_name or (names[1].title() if len(names) > 1 else "Martin")
        city, country = _CITIES[seed % len(_CITIES)]
        fields = {
            "first_name": first,
            "last_name": last,
            "email": email or (f"{first}.{last}@{domain}".lower() if domain else ""),
            "title": _TITLES[seed % len(_TITLES)],
            "company": (domain.split(".")[0].title() if domain else query.company) or "Example Co",
            "domain": domain,
            "industry": _INDUSTRIES[seed % len(_INDUSTRIES)],
            "headcount": 10 * (1 + seed % 200),
            "city": city,
            "country": country,
            "linkedin_url": query.linkedin_url or f"https://www.linkedin.com/in/{first}-{last}-demo".lower(),
        }
        return EnrichmentResult(
            provider=self.key,
            matched=True,
            fields={k: v for k, v in fields.items() if v},
            credits_used=0,
            demo=True,
            raw_id=f"demo-{seed % 10**8}",
            query=query,
        )


class DemoVerificationAdapter(_DemoBase):
    key = "demo_verification"
    capabilities = frozenset({Capability.VERIFY_EMAIL})

    def verify_email(self, email: str) -> VerificationResult:
        address = parseaddr(email)[1].lower()
        if "@" not in address or "." not in address.rsplit("@", 1)[1]:
            return VerificationResult(
                email=email,
                verdict=Verdict.INVALID,
                provider=self.key,
                score=0,
                raw_status="syntax",
                demo=True,
            )
        local, domain = address.split("@", 1)
        if local in {"info", "contact", "sales", "support", "admin"}:
            verdict, score = Verdict.RISKY, 40
        else:
            seed = _seed(address)
            verdict, score = [
                (Verdict.VALID, 95),
                (Verdict.VALID, 90),
                (Verdict.VALID, 88),
                (Verdict.CATCH_ALL, 60),
                (Verdict.INVALID, 5),
                (Verdict.UNKNOWN, 50),
            ][seed % 6]
        return VerificationResult(
            email=email,
            verdict=verdict,
            provider=self.key,
            score=score,
            raw_status=f"demo:{verdict}",
            demo=True,
        )


class DemoEmailAdapter(_DemoBase):
    """Accepts mail and sends nothing; the Message-ID is real so reply tracking code paths still work."""

    key = "demo_email"
    capabilities = frozenset({Capability.SEND_EMAIL, Capability.FETCH_REPLIES})

    def send_email(self, msg: OutgoingEmail) -> SendResult:
        if "@" not in parseaddr(msg.to)[1]:
            raise self.fail(ErrorKind.BAD_INPUT, f"Invalid recipient {msg.to!r}")
        return SendResult(
            message_id=msg.message_id or make_msgid(domain="demo.aicmo.invalid"),
            provider=self.key,
            demo=True,
            to=msg.to,
        )

    def fetch_replies(self, since: datetime | date, known_message_ids: Iterable[str]) -> list[InboundMessage]:
        """One deterministic sample reply for roughly every fifth known message."""
        when = (
            since if isinstance(since, datetime) else datetime(since.year, since.month, since.day, tzinfo=UTC)
        )
        out = []
        for mid in sorted(known_message_ids):
            norm = mid.strip().strip("<>").lower()
            if _seed(norm) % 5 == 0:
                out.append(
                    InboundMessage(
                        message_id=f"<reply-{_seed(norm) % 10**8}@demo.aicmo.invalid>",
                        in_reply_to=norm,
                        references=(norm,),
                        from_email="prospect@demo.aicmo.invalid",
                        subject="Re: (demo reply)",
                        kind=InboundKind.REPLY,
                        received_at=when + timedelta(hours=1),
                        matched_message_id=norm,
                        body_text="Sounds interesting, tell me more. (demo data)",
                        demo=True,
                    )
                )
        return out


class DemoCrmAdapter(_DemoBase):
    key = "demo_crm"
    capabilities = frozenset({Capability.SYNC_CRM})

    def sync_crm(self, records: Sequence[CrmRecord]) -> CrmSyncResult:
        ids = {}
        created = updated = 0
        for rec in records:
            if "@" not in rec.email:
                raise self.fail(ErrorKind.BAD_INPUT, f"CRM record without a valid email: {rec.email!r}")
            ids[rec.email.lower()] = rec.external_id or f"demo{_seed(rec.email) % 10**10:010d}"
            if rec.external_id:
                updated += 1
            else:
                created += 1
        return CrmSyncResult(created=created, updated=updated, ids=ids, provider=self.key, demo=True)


class DemoSocialAdapter(_DemoBase):
    key = "demo_social"
    capabilities = frozenset({Capability.POST_SOCIAL})

    def post_social(self, post: SocialPost) -> SocialPostResult:
        if not post.text.strip() and not post.media_urls:
            raise self.fail(ErrorKind.BAD_INPUT, "Post is empty")
        external_id = f"demo-{post.network}-{_seed(post.network, post.text, *post.media_urls) % 10**12}"
        return SocialPostResult(
            network=post.network,
            external_id=external_id,
            url=f"https://demo.aicmo.invalid/{post.network}/{external_id}",
            provider=self.key,
            demo=True,
        )

    def social_metrics(self, external_id: str) -> SocialMetrics:
        seed = _seed(external_id)
        impressions = 200 + seed % 5000
        return SocialMetrics(
            impressions=impressions,
            clicks=impressions // 40,
            likes=impressions // 25,
            shares=impressions // 200,
            comments=impressions // 300,
            external_id=external_id,
            demo=True,
        )


class DemoAdsAdapter(_DemoBase):
    key = "demo_ads"
    capabilities = frozenset({Capability.RUN_ADS, Capability.FETCH_AD_INSIGHTS})

    def run_ads(self, spec: AdCampaignSpec) -> AdCampaignResult:
        if Decimal(spec.daily_budget) <= 0:
            raise self.fail(ErrorKind.BAD_INPUT, "Daily budget must be positive")
        return AdCampaignResult(
            external_id=f"demo-{_seed(spec.name) % 10**12}", status=spec.status, provider=self.key, demo=True
        )

    def pause_ad(self, external_id: str) -> AdCampaignResult:
        return AdCampaignResult(external_id=external_id, status=AdStatus.PAUSED, provider=self.key, demo=True)

    def resume_ad(self, external_id: str) -> AdCampaignResult:
        return AdCampaignResult(external_id=external_id, status=AdStatus.ACTIVE, provider=self.key, demo=True)

    def fetch_ad_insights(self, external_id: str, since: date, until: date) -> list[AdInsight]:
        if until < since:
            raise self.fail(ErrorKind.BAD_INPUT, "Insights range ends before it starts")
        out = []
        day = since
        while day <= until:
            seed = _seed(external_id, day.isoformat())
            impressions = 1000 + seed % 4000
            clicks = impressions // (30 + seed % 20)
            conversions = clicks // (10 + seed % 10)
            out.append(
                AdInsight(
                    date=day,
                    spend=Decimal(20 + seed % 30).quantize(Decimal("0.01")),
                    impressions=impressions,
                    clicks=clicks,
                    conversions=conversions,
                    revenue=Decimal(conversions * 45).quantize(Decimal("0.01")),
                    external_id=external_id,
                    demo=True,
                )
            )
            day += timedelta(days=1)
        return out


class DemoWebhookAdapter(_DemoBase):
    """Records nothing and calls nothing: says 200 for any syntactically valid URL."""

    key = "demo_webhook"
    capabilities = frozenset({Capability.DISPATCH_WEBHOOK})

    def dispatch_webhook(self, url: str, secret: str, event: WebhookEvent) -> WebhookResult:
        if not url.startswith(("http://", "https://")):
            raise self.fail(ErrorKind.BAD_INPUT, f"Not an http(s) URL: {url!r}")
        return WebhookResult(
            status_code=200, event_id=event.event_id or f"msg_demo{_seed(url) % 10**10}", demo=True
        )


DEMO_ADAPTERS: tuple[type[Adapter], ...] = (
    DemoEnrichmentAdapter,
    DemoVerificationAdapter,
    DemoEmailAdapter,
    DemoCrmAdapter,
    DemoSocialAdapter,
    DemoAdsAdapter,
    DemoWebhookAdapter,
)
