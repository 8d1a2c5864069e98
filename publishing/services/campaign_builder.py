"""One save of everything the campaign builder edits, all or nothing.

The builder's form holds what several services own: name, content, audience and time zone
(`campaigns.campaign_create` / `campaign_update`), UTM defaults (`tracking.utm_clean`), speed limits
(`campaigns.limit_clean`) and an optional A/B test (`abtests.abtest_create`). `campaign_save` checks the
parts up front so one ValidationError names every field at fault, then writes them in one transaction: an
A/B test the abtests service refuses leaves no campaign behind.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from aicmo.models import Workspace
from aicmo.timezones import zone_clean

from ..models import Campaign, CampaignStatus, Content
from . import abtests, campaigns, tracking
from .audience import audience_clean


def _errors_of(exc: ValidationError) -> dict:
    return exc.message_dict if hasattr(exc, "error_dict") else {"campaign": exc.messages}


def campaign_save(
    *,
    workspace: Workspace,
    campaign: Campaign | None = None,
    name: str,
    content: Content | None,
    audience: dict | None,
    time_zone: str = "",
    utm: dict | None = None,
    max_per_second=None,
    max_per_hour=None,
    abtest: dict | None = None,
    by=None,
) -> Campaign:
    """Create a draft campaign (``campaign`` None) or edit a draft, with its UTM defaults and limits, and
    when ``abtest`` is given (the keyword arguments of `abtests.abtest_create` but ``campaign``) its A/B
    test. ValidationError keyed by field (``name``, ``content``, ``audience.<key>``, ``time_zone``,
    ``utm``, ``max_per_second``, ``max_per_hour``, ``campaign``, and abtest_create's keys); nothing is
    written then."""
    errors: dict = {}
    if campaign is not None and campaign.status != CampaignStatus.DRAFT:
        raise campaigns.CampaignStateError("Only a draft can be edited; unschedule it first.")
    if campaign is not None and abtest is not None and hasattr(campaign, "abtest"):
        errors["campaign"] = ["This campaign already has an A/B test."]
    if not (name or "").strip():
        errors["name"] = ["This field may not be blank."]
    if content is None or content.workspace_id != workspace.pk:
        errors["content"] = ["Choose a content of this workspace."]
    checks = [
        ("audience", lambda: audience_clean(workspace, audience)),
        ("time_zone", lambda: zone_clean(time_zone or workspace.time_zone)),
        ("utm", lambda: tracking.utm_clean(utm)),
        ("max_per_second", lambda: campaigns.limit_clean("max_per_second", max_per_second)),
        ("max_per_hour", lambda: campaigns.limit_clean("max_per_hour", max_per_hour)),
    ]
    for _part, check in checks:
        try:
            check()
        except ValidationError as exc:
            for key, messages in _errors_of(exc).items():
                errors.setdefault(key, []).extend(messages)
    if errors:
        raise ValidationError(errors)
    tz = time_zone or workspace.time_zone
    with transaction.atomic():
        if campaign is None:
            campaign = campaigns.campaign_create(
                workspace=workspace, name=name, content=content, audience=audience, time_zone=tz, by=by
            )
            fields = {}
        else:
            fields = {"name": name.strip()[:200], "content": content, "audience": audience, "time_zone": tz}
        campaign = campaigns.campaign_update(
            campaign=campaign,
            by=by,
            **fields,
            utm=utm or {},
            max_per_second=max_per_second,
            max_per_hour=max_per_hour,
        )
        if abtest is not None:
            abtests.abtest_create(campaign=campaign, **abtest)
    return campaign
