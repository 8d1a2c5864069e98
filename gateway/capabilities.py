"""Capabilities (what callers ask for) and the typed values that cross the gateway boundary.

Adapters return these dataclasses, never vendor dicts; every result a demo adapter can produce
carries ``demo`` so callers and UIs can label sample data.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import models


class Capability(models.TextChoices):
    ENRICH_PERSON = "enrich_person", "Enrich person"
    VERIFY_EMAIL = "verify_email", "Verify email"
    SEND_EMAIL = "send_email", "Send email"
    FETCH_REPLIES = "fetch_replies", "Fetch replies & bounces"
    SYNC_CRM = "sync_crm", "Sync CRM"
    POST_SOCIAL = "post_social", "Post to social network"
    RUN_ADS = "run_ads", "Run ad campaigns"
    FETCH_AD_INSIGHTS = "fetch_ad_insights", "Fetch ad insights"
    DISPATCH_WEBHOOK = "dispatch_webhook", "Dispatch webhook"


def capability_words(value: str) -> str:
    """A capability as people read it ("Send email"); an unknown value with its underscores as spaces."""
    return Capability(value).label if value in Capability.values else str(value).replace("_", " ")


class Verdict(models.TextChoices):
    VALID = "valid", "Valid"
    INVALID = "invalid", "Invalid"
    RISKY = "risky", "Risky"
    CATCH_ALL = "catch_all", "Catch-all"
    UNKNOWN = "unknown", "Unknown"


class InboundKind(enum.StrEnum):
    REPLY = "reply"
    BOUNCE = "bounce"
    UNSUBSCRIBE = "unsubscribe"  # a mail to a List-Unsubscribe mailto: address (subject "unsubscribe …")


class SocialNetwork(models.TextChoices):
    LINKEDIN = "linkedin", "LinkedIn"
    X = "x", "X"
    INSTAGRAM = "instagram", "Instagram"


class AdStatus(models.TextChoices):
    ACTIVE = "ACTIVE", "Active"
    PAUSED = "PAUSED", "Paused"


@dataclass(frozen=True)
class PersonQuery:
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    domain: str = ""
    linkedin_url: str = ""
    company: str = ""

    def is_empty(self) -> bool:
        return not (self.email or self.linkedin_url or (self.first_name and self.last_name and self.domain))


@dataclass(frozen=True)
class EnrichmentResult:
    """``fields`` uses our CRM vocabulary: first_name, last_name, title, company, domain, linkedin_url,
    phone, city, country, email, email_status, seniority, industry, headcount."""

    provider: str
    matched: bool
    fields: dict[str, Any] = field(default_factory=dict)
    credits_used: int = 0
    demo: bool = False
    raw_id: str = ""
    query: PersonQuery | None = None


@dataclass(frozen=True)
class VerificationResult:
    email: str
    verdict: Verdict
    provider: str
    score: int | None = None
    raw_status: str = ""
    demo: bool = False


@dataclass(frozen=True)
class DkimKey:
    """A DKIM signing key (RFC 6376) for one sending domain: the signature's ``d=`` and ``s=``, and the
    RSA private key as PKCS#1 PEM (``-----BEGIN RSA PRIVATE KEY-----``, the form dkimpy reads)."""

    domain: str
    selector: str
    private_key_pem: str

    def __repr__(self) -> str:  # never the key material in logs or tracebacks
        return f"DkimKey(domain={self.domain!r}, selector={self.selector!r})"


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    html: str = ""
    text: str = ""
    from_email: str = ""  # empty: the account's configured From; "Name <address>" is accepted too
    from_name: str = ""  # display name; empty: the name in from_email, else the account's configured one
    reply_to: str = ""  # empty: the account's configured Reply-To (if any)
    message_id: str = ""  # empty: the adapter mints one; callers that track replies pass their own
    headers: dict[str, str] = field(default_factory=dict)
    dkim: DkimKey | None = None  # sign the final MIME bytes with this key (adapters that build them)


@dataclass(frozen=True)
class SendResult:
    message_id: str
    provider: str
    demo: bool = False
    to: str = ""


@dataclass(frozen=True)
class InboundMessage:
    message_id: str
    in_reply_to: str
    references: tuple[str, ...]
    from_email: str
    subject: str
    kind: InboundKind
    bounced_recipient: str = ""
    received_at: datetime | None = None
    matched_message_id: str = ""  # which of our Message-IDs this answers/bounces ("" if none matched)
    body_text: str = ""
    demo: bool = False


@dataclass(frozen=True)
class CrmRecord:
    email: str
    fields: dict[str, Any] = field(default_factory=dict)
    external_id: str = ""


@dataclass(frozen=True)
class CrmSyncResult:
    created: int
    updated: int
    ids: dict[str, str] = field(default_factory=dict)  # email (lower-case) -> external record id
    provider: str = ""
    demo: bool = False


@dataclass(frozen=True)
class SocialPost:
    network: str
    text: str
    media_urls: tuple[str, ...] = ()
    link_url: str = ""


@dataclass(frozen=True)
class SocialPostResult:
    network: str
    external_id: str
    url: str = ""
    provider: str = ""
    demo: bool = False


@dataclass(frozen=True)
class SocialMetrics:
    impressions: int = 0
    clicks: int = 0
    likes: int = 0
    shares: int = 0
    comments: int = 0
    external_id: str = ""
    demo: bool = False


@dataclass(frozen=True)
class AdCampaignSpec:
    name: str
    daily_budget: Decimal  # in the ad account's currency (major units, e.g. 25.00)
    status: str = AdStatus.PAUSED
    objective: str = "OUTCOME_TRAFFIC"
    special_ad_categories: tuple[str, ...] = ()


@dataclass(frozen=True)
class AdCampaignResult:
    external_id: str
    status: str
    provider: str = ""
    demo: bool = False


@dataclass(frozen=True)
class AdInsight:
    date: date
    spend: Decimal
    impressions: int
    clicks: int
    conversions: int
    revenue: Decimal
    external_id: str = ""
    demo: bool = False


@dataclass(frozen=True)
class WebhookEvent:
    event_type: str
    payload: dict[str, Any]
    event_id: str = ""  # empty: the adapter mints "msg_<uuid>"; retries MUST reuse the same id
    timestamp: datetime | None = None


@dataclass(frozen=True)
class WebhookResult:
    status_code: int
    disabled: bool = False  # the receiver answered 410 Gone: stop sending to this endpoint
    event_id: str = ""
    demo: bool = False
