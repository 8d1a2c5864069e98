"""Audit verbs in words: the one place an audit event becomes a sentence a marketer reads.

``PHRASES`` maps every verb a service may write (``aicmo.audit.audit_record`` refuses any other) to a
sentence template. Placeholders:

- ``{actor}``: the person's full name, else their username, else "AICMO" for the system;
- ``{target}``: the object as it was named when the event was written (``AuditEvent.target_repr``);
- ``{target_id}``: its primary key;
- any key of the event's ``changes`` (``{email}``, ``{role}``, ``{count}``, ...); a role value reads as
  its label ("Marketer"). A placeholder the event lacks renders empty.

Every value is HTML-escaped (``format_html``); the sentence is the only markup. The technical verb and the
changes stay on the event for the audit log's details and the CSV export.
"""

from __future__ import annotations

import string

from django.utils.html import format_html
from django.utils.safestring import SafeString

from .models import AuditEvent, Role

PHRASES: dict[str, str] = {
    # core
    "workspace.created": "{actor} created the workspace “{target}”",
    "workspace.time_zone_changed": "{actor} changed the workspace time zone",
    "workspace.two_factor_changed": "{actor} changed the two-factor requirement for admins",
    "member.added": "{actor} added {user} to the workspace as {role}",
    "member.role_changed": "{actor} changed the role of {user} to {to}",
    "member.removed": "{actor} removed {user} from the workspace",
    "invitation.created": "{actor} invited {email} as {role}",
    "invitation.sent": "The invitation to {email} was sent",
    "invitation.resent": "{actor} sent the invitation to {email} again",
    "invitation.send_failed": "The invitation to {email} could not be sent",
    "invitation.revoked": "{actor} withdrew the invitation to {email}",
    "invitation.accepted": "{actor} accepted the invitation and joined the workspace",
    "user.signed_up": "{actor} signed up from an invitation",
    "api_key.created": "{actor} created the API key “{target}”",
    "api_key.revoked": "{actor} revoked the API key “{target}”",
    "audit.export_started": "{actor} started an export of the audit log",
    "job.cancelled": "{actor} cancelled job #{target_id}",
    "job.retried": "{actor} retried job #{target_id}",
    # crm
    "crm.contact.deleted": "{actor} deleted the contact “{target}”",
    "crm.contact.erased": "{actor} erased the personal data of contact “{target}”",
    "crm.contact.merged": "{actor} merged contacts into “{target}”",
    "crm.erasure.overridden": "{actor} overrode an erasure request for “{target}”",
    "crm.company.created": "{actor} added the company “{target}”",
    "crm.company.updated": "{actor} edited the company “{target}”",
    "crm.company.merged": "{actor} merged companies into “{target}”",
    "crm.company.deleted": "{actor} deleted the company “{target}”",
    "crm.tag.created": "{actor} created the tag “{target}”",
    "crm.tag.renamed": "{actor} renamed the tag “{from}” to “{to}”",
    "crm.tag.deleted": "{actor} deleted the tag “{target}”",
    "crm.list.created": "{actor} created the list “{target}”",
    "crm.list.renamed": "{actor} renamed the list “{from}” to “{to}”",
    "crm.list.duplicated": "{actor} duplicated a list as “{target}”",
    "crm.list.deleted": "{actor} deleted the list “{target}”",
    "crm.segment.renamed": "{actor} renamed the segment “{from}” to “{to}”",
    "crm.segment.duplicated": "{actor} duplicated a segment as “{target}”",
    "crm.segment.deleted": "{actor} deleted the segment “{target}”",
    "crm.custom_field.created": "{actor} added the contact field “{target}”",
    "crm.custom_field.updated": "{actor} edited the contact field “{target}”",
    "crm.custom_field.deleted": "{actor} deleted the contact field “{target}”",
    "crm.import.started": "{actor} started importing “{file}”",
    "crm.enrichment.started": "{actor} started enriching {count} contacts",
    "crm.verification.started": "{actor} started verifying the addresses of {count} contacts",
    # gateway
    "gateway.account_created": "{actor} added the provider account “{target}”",
    "gateway.account_updated": "{actor} edited the provider account “{target}”",
    "gateway.credentials_changed": "{actor} changed the credentials of the provider account “{target}”",
    "gateway.credentials_cleared": "{actor} moved the provider account “{target}” to another vendor or "
    "server, which cleared its credentials",
    "gateway.account_deleted": "{actor} deleted the provider account “{target}”",
    "gateway.breaker_reset": "{actor} put the provider account “{target}” back in service",
    # media
    "media.library.created": "{actor} created the library “{target}”",
    "media.library.updated": "{actor} edited the library “{target}”",
    "media.library.archived": "{actor} archived the library “{target}”",
    "media.library.unarchived": "{actor} restored the library “{target}”",
    "media.asset.uploaded": "{actor} uploaded the asset “{target}”",
    "media.asset.updated": "{actor} edited the asset “{target}”",
    "media.asset.deleted": "{actor} deleted the asset “{target}”",
    "media.asset.approved": "{actor} approved the asset “{target}”",
    "media.asset.rejected": "{actor} rejected the asset “{target}”",
    "media.asset.published": "The asset “{target}” was published",
    "media.asset.archived": "{actor} archived the asset “{target}”",
    "media.asset.attached": "{actor} used the asset “{target}” in content",
    "media.suggestion.dismissed": "{actor} dismissed a suggestion for “{target}”",
    "media.suggestion.acted": "{actor} acted on a suggestion for “{target}”",
    # publishing
    "publishing.campaign.created": "{actor} created the campaign “{target}”",
    "publishing.campaign.scheduled": "{actor} scheduled the campaign “{target}”",
    "publishing.campaign.send_started": "{actor} started sending the campaign “{target}”",
    "publishing.campaign.paused": "{actor} paused the campaign “{target}”",
    "publishing.campaign.resumed": "{actor} resumed the campaign “{target}”",
    "publishing.campaign.cancelled": "{actor} cancelled the campaign “{target}”",
    "publishing.campaign.resend_uncertain": "{actor} resent the uncertain messages of the campaign “{target}”",
    "publishing.campaign.approved": "{actor} approved the campaign “{target}”",
    "publishing.campaign.approval_withdrawn": "{actor} withdrew the approval of the campaign “{target}”",
    "publishing.content.test_sent": "{actor} sent a test of “{target}”",
    "publishing.sender.created": "{actor} added the sender “{target}”",
    "publishing.sender.updated": "{actor} edited the sender “{target}”",
    "publishing.sender.verified": "{actor} verified the sender “{target}”",
    "publishing.settings.updated": "{actor} changed the approval settings",
    "publishing.dkim.created": "{actor} created a DKIM key for “{target}”",
    "publishing.dkim.activated": "{actor} activated the DKIM key for “{target}”",
    "publishing.dkim.deleted": "{actor} deleted the DKIM key “{target}”",
    "publishing.inbound_hook.created": "{actor} added a {provider} event webhook",
    "publishing.inbound_hook.deleted": "{actor} removed the event webhook “{target}”",
    "publishing.webhook_created": "{actor} added the webhook endpoint “{target}”",
    "publishing.webhook_updated": "{actor} edited the webhook endpoint “{target}”",
    "publishing.webhook_secret_rotated": "{actor} replaced the signing secret of the webhook endpoint “{target}”",
    "publishing.webhook_deleted": "{actor} deleted the webhook endpoint “{target}”",
    "publishing.webhook_disabled": "{actor} turned off the webhook endpoint “{target}”: {reason}",
    "publishing.webhook_delivery_retried": "{actor} sent the webhook delivery “{target}” again",
    # analytics
    "analytics.order.created": "{actor} recorded the order “{target}”",
    "analytics.order.deleted": "{actor} deleted the order “{target}”",
    "analytics.order_import.started": "{actor} started importing orders",
    "analytics.scores.settings_changed": "{actor} changed the contact scoring rules",
}

_ROLE_LABELS = dict(Role.choices)
_FORMATTER = string.Formatter()


def is_known(verb: str) -> bool:
    return verb in PHRASES


def _actor_name(event: AuditEvent) -> str:
    user = event.actor if event.actor_id else None
    if user is not None:
        return user.get_full_name().strip() or user.get_username()
    label = event.actor_label
    return "AICMO" if not label or label == "system" else label


def _value(value) -> str:
    if isinstance(value, str):
        return _ROLE_LABELS.get(value, value)
    if isinstance(value, list | tuple) and value:  # a [before, after] pair reads as the new value
        return _value(value[-1])
    return "" if value is None else str(value)


def describe(event: AuditEvent) -> SafeString:
    """The event as an escaped sentence, e.g. ``Ana added the provider account “Mailgun EU”``. A verb without
    a phrase (an event written before its verb was renamed) reads as ``<actor> <verb in words> <target>``."""
    template = PHRASES.get(event.verb)
    if template is None:
        from .overview import verb_words

        template = "{actor} " + verb_words(event.verb).replace("{", "").replace("}", "") + " {target}"
    changes = event.changes if isinstance(event.changes, dict) else {}
    values = {}
    for _, field, _, _ in _FORMATTER.parse(template):
        if field is None or field in values:
            continue
        if field == "actor":
            values[field] = _actor_name(event)
        elif field == "target":
            values[field] = event.target_repr
        elif field == "target_id":
            values[field] = event.target_id
        else:
            values[field] = _value(changes.get(field))
    return format_html(template, **values)
