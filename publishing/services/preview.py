"""Preview an email as any contact of the workspace, and send test copies through the real gateway chain.

Test copies are marked as tests everywhere: subject prefixed ``[TEST] ``, header ``X-AICMO-Test: true``,
``Feedback-ID`` ``test:<workspace>:email:aicmo``, links not tracked (no Delivery, no TrackedLink, no
EngagementEvent is written), no List-Unsubscribe header, and the send is audited
(``publishing.content.test_sent``) with the addresses.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from aicmo.audit import audit_record
from crm.models import Contact
from gateway import services as gateway_services
from gateway.capabilities import OutgoingEmail
from gateway.errors import ProviderError, ProvidersUnavailable

from ..models import Channel, Content, ContentVersion
from ..personalization import custom_field_keys, recipient_context, sample_context
from . import dkim
from .content import RenderedEmail, email_render

MAX_TEST_RECIPIENTS = 10
TEST_PREFIX = "[TEST] "
PREVIEW_UNSUBSCRIBE = "#unsubscribe-link-in-the-real-message"


def _version(content: Content) -> ContentVersion:
    version = (
        ContentVersion.objects.select_related("sender", "layout")
        .filter(content=content, channel=Channel.EMAIL, workspace_id=content.workspace_id)
        .first()
    )
    if version is None:
        raise ValidationError({"content": ["This content has no email version yet."]})
    return version


def content_preview(*, content: Content, contact: Contact | None = None) -> RenderedEmail:
    """The email as ``contact`` (of the content's workspace) would get it, or with sample values when no
    contact is given. ValidationError for another workspace's contact or a content without email."""
    version = _version(content)
    keys = custom_field_keys(content.workspace_id)
    if contact is None:
        context = sample_context(keys)
    elif contact.workspace_id != content.workspace_id:
        raise ValidationError({"contact": ["Unknown contact."]})
    else:
        context = recipient_context(contact, custom_keys=keys)
    return email_render(version, context, unsubscribe_url=PREVIEW_UNSUBSCRIBE)


def addresses_clean(raw: str | list[str]) -> list[str]:
    """1..MAX_TEST_RECIPIENTS valid addresses (comma/space/newline separated text or a list), de-duplicated
    case-insensitively in order. ValidationError ``{"addresses": [...]}`` naming the bad ones."""
    items = raw if isinstance(raw, list) else re.split(r"[\s,;]+", raw or "")
    seen, out, bad = set(), [], []
    for item in (str(i).strip() for i in items):
        if not item:
            continue
        try:
            validate_email(item)
        except ValidationError:
            bad.append(item)
            continue
        if item.lower() not in seen:
            seen.add(item.lower())
            out.append(item)
    if bad:
        raise ValidationError({"addresses": [f"Not an email address: {', '.join(bad[:5])}."]})
    if not out:
        raise ValidationError({"addresses": ["Give at least one address."]})
    if len(out) > MAX_TEST_RECIPIENTS:
        raise ValidationError({"addresses": [f"At most {MAX_TEST_RECIPIENTS} addresses per test send."]})
    return out


def content_send_test(
    *, content: Content, addresses: str | list[str], contact: Contact | None = None, by=None
) -> dict[str, str]:
    """Send one test copy to each address through the workspace's email chain, personalised as
    ``contact`` (or sample values). Returns ``{address: "sent" | error text}``; nothing is retried."""
    recipients = addresses_clean(addresses)
    rendered = content_preview(content=content, contact=contact)
    version = _version(content)
    sender = version.sender
    if sender is None or not sender.is_verified:
        raise ValidationError({"sender": ["Choose a verified sender before sending a test."]})
    signing_key = dkim.signing_key(content.workspace_id, sender.email)
    results: dict[str, str] = {}
    for address in recipients:
        message = OutgoingEmail(
            to=address,
            subject=TEST_PREFIX + rendered.subject,
            html=rendered.html,
            text=rendered.text,
            from_email=sender.email,
            from_name=version.from_name or sender.name,
            reply_to=version.reply_to,
            headers={"X-AICMO-Test": "true", "Feedback-ID": f"test:{content.workspace_id}:email:aicmo"},
            dkim=signing_key,
        )
        try:
            gateway_services.send_email(workspace=content.workspace, message=message)
            results[address] = "sent"
        except (ProviderError, ProvidersUnavailable) as exc:
            results[address] = str(exc)[:300]
    audit_record(
        workspace=content.workspace,
        actor=by,
        verb="publishing.content.test_sent",
        target=content,
        changes={"addresses": recipients, "as_contact": contact.pk if contact else None, "results": results},
    )
    return results
