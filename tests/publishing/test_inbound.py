"""Provider tracking webhooks per workspace: the vendors' payload shapes, valid and invalid signatures,
replay, matching to a really sent delivery, suppression rules and tenant isolation."""

from __future__ import annotations

import base64
import json
import socket
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import PeriodicTask
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from aicmo.models import AuditEvent
from aicmo.roles import Role
from crm.models import Contact, Suppression
from gateway.crypto import decrypt_credentials
from gateway.errors import ProvidersUnavailable
from publishing.models import Delivery, EngagementEvent, InboundHook
from publishing.services import campaigns, inbound, sending
from publishing.tasks import replies_fetch_task
from tests.gateway.test_adapters_mail import _append, _dsn, _reply

from .conftest import MAILGUN_KEY, imap_account, mailgun_body, make_campaign, send_to_one, smtp_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivery(workspace, smtp_sink, fast_gateway):
    """One message really sent through the SMTP sink; its stored Message-ID is what providers report."""
    d, _ = send_to_one(workspace, smtp_sink)
    assert d.status == "sent" and d.message_id
    return d


def url(hook) -> str:
    return reverse("publishing:inbound-webhook", args=[hook.provider, hook.key])


def post_mailgun(hook, body):
    return Client().post(url(hook), data=body, content_type="application/json")


def test_mailgun_hard_bounce_is_recorded_once_and_suppresses(workspace, delivery):
    hook = inbound.hook_create(workspace=workspace, provider="mailgun", secret=MAILGUN_KEY)
    body = mailgun_body(delivery.message_id)
    first = post_mailgun(hook, body)
    replay = post_mailgun(hook, body)
    assert first.status_code == 200 and first.json()["recorded"] == 1
    assert replay.status_code == 200 and replay.json() == {
        "recorded": 0,
        "duplicates": 1,
        "unmatched": 0,
        "ignored": 0,
    }
    event = EngagementEvent.objects.get(kind="bounce_hard")
    assert (event.delivery_id, event.contact_id, event.campaign_id) == (
        delivery.pk,
        delivery.contact_id,
        delivery.campaign_id,
    )
    assert event.metadata["provider"] == "mailgun" and "<script>" in event.metadata["mta_response"]
    assert Suppression.objects.get(contact_id=delivery.contact_id).reason == "bounced"


def test_mailgun_bad_signature_is_400_and_writes_nothing(workspace, delivery):
    hook = inbound.hook_create(workspace=workspace, provider="mailgun", secret=MAILGUN_KEY)
    forged = post_mailgun(hook, mailgun_body(delivery.message_id, key="someone-elses-key"))
    garbage = Client().post(url(hook), data="not json", content_type="application/json")
    assert forged.status_code == 400 and garbage.status_code == 400
    assert not EngagementEvent.objects.exclude(kind="sent").exists()
    assert not Suppression.objects.exists()


def test_a_hook_verifies_with_its_own_workspace_secret_and_matches_only_its_deliveries(
    workspace, other_workspace, delivery
):
    """Another workspace's hook, even with a valid signature of its own key, never reaches this delivery."""
    other = inbound.hook_create(workspace=other_workspace, provider="mailgun", secret="other-key")
    signed_for_us = post_mailgun(other, mailgun_body(delivery.message_id))
    signed_for_them = post_mailgun(other, mailgun_body(delivery.message_id, key="other-key"))
    assert signed_for_us.status_code == 400
    assert signed_for_them.status_code == 200 and signed_for_them.json()["unmatched"] == 1
    assert not EngagementEvent.objects.exclude(kind="sent").exists()
    unknown = Client().post(
        reverse("publishing:inbound-webhook", args=["mailgun", "nope"]),
        data=mailgun_body(delivery.message_id),
        content_type="application/json",
    )
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("event", "severity", "kind", "suppressed"),
    [
        ("delivered", "", "delivered", False),
        ("failed", "permanent", "bounce_hard", True),
        ("failed", "temporary", "bounce_soft", False),
        ("complained", "", "complaint", True),
        ("unsubscribed", "", "unsubscribe", True),
        ("opened", "", None, False),
    ],
)
def test_mailgun_event_kinds(workspace, delivery, event, severity, kind, suppressed):
    hook = inbound.hook_create(workspace=workspace, provider="mailgun", secret=MAILGUN_KEY)
    response = post_mailgun(hook, mailgun_body(delivery.message_id, event=event, severity=severity))
    assert response.status_code == 200
    kinds = list(EngagementEvent.objects.exclude(kind="sent").values_list("kind", flat=True))
    assert kinds == ([kind] if kind else [])
    assert Suppression.objects.filter(contact_id=delivery.contact_id).exists() is suppressed


def test_soft_bounces_suppress_at_the_configured_count(workspace, delivery, settings):
    settings.PUBLISHING_SOFT_BOUNCE_LIMIT = 2
    hook = inbound.hook_create(workspace=workspace, provider="mailgun", secret=MAILGUN_KEY)
    post_mailgun(hook, mailgun_body(delivery.message_id, severity="temporary", token="a"))
    post_mailgun(hook, mailgun_body(delivery.message_id, severity="temporary", token="a"))  # replay
    assert not Suppression.objects.exists()
    post_mailgun(hook, mailgun_body(delivery.message_id, severity="temporary", token="b"))
    assert EngagementEvent.objects.filter(kind="bounce_soft").count() == 2
    assert Suppression.objects.get(contact_id=delivery.contact_id).reason == "bounced"


def postmark_bounce(message_id: str, *, type_="HardBounce", bounce_id=42):
    """Postmark's bounce webhook shape."""
    return json.dumps(
        {
            "RecordType": "Bounce",
            "ID": bounce_id,
            "Type": type_,
            "TypeCode": 1 if type_ == "HardBounce" else 4096,
            "MessageID": message_id,
            "Description": "The server was unable to deliver your message",
            "Details": "smtp;550 5.1.1 user unknown",
            "Email": "someone@example.org",
            "From": "news@acme.example",
            "BouncedAt": "2026-11-30T10:00:00Z",
            "Inactive": True,
            "CanActivate": True,
            "Subject": "Hi",
            "Tag": "",
            "Metadata": {},
            "MessageStream": "outbound",
        }
    )


def post_postmark(hook, body, auth: str):
    return Client().post(
        url(hook),
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(auth.encode()).decode(),
    )


def test_postmark_basic_auth_per_workspace_and_soft_bounce_type(workspace, delivery, settings):
    settings.PUBLISHING_SOFT_BOUNCE_LIMIT = 5
    hook = inbound.hook_create(workspace=workspace, provider="postmark", secret="hooks:s3cret")
    assert post_postmark(hook, postmark_bounce(delivery.message_id), "hooks:wrong").status_code == 400
    soft = post_postmark(
        hook, postmark_bounce(delivery.message_id, type_="SoftBounce", bounce_id=7), "hooks:s3cret"
    )
    assert soft.status_code == 200 and soft.json()["recorded"] == 1
    assert EngagementEvent.objects.get(kind="bounce_soft").metadata["event_id"] == "7"
    assert not Suppression.objects.exists()
    hard = post_postmark(hook, postmark_bounce(delivery.message_id), "hooks:s3cret")
    assert hard.json()["recorded"] == 1
    assert Suppression.objects.get(contact_id=delivery.contact_id).reason == "bounced"


def test_postmark_delivery_without_event_id_is_still_recorded_once(workspace, delivery):
    hook = inbound.hook_create(workspace=workspace, provider="postmark", secret="hooks:s3cret")
    body = json.dumps(
        {
            "RecordType": "Delivery",
            "MessageID": delivery.message_id,
            "Recipient": "someone@example.org",
            "DeliveredAt": "2026-11-30T10:00:00Z",
            "Details": "Test delivery webhook details",
            "Tag": "",
            "ServerID": 23,
            "Metadata": {},
            "MessageStream": "outbound",
        }
    )
    assert post_postmark(hook, body, "hooks:s3cret").json()["recorded"] == 1
    assert post_postmark(hook, body, "hooks:s3cret").json()["duplicates"] == 1
    assert EngagementEvent.objects.filter(kind="delivered").count() == 1


@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")
def test_sendgrid_signed_event_webhook(workspace, delivery):
    """SendGrid's signed event webhook: ECDSA P-256 over timestamp + body, public key per workspace."""
    private = ec.generate_private_key(ec.SECP256R1())
    public = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hook = inbound.hook_create(
        workspace=workspace, provider="sendgrid", secret=base64.b64encode(public).decode()
    )
    body = json.dumps(
        [
            {
                "email": "someone@example.org",
                "timestamp": 1700000000,
                "smtp-id": delivery.message_id,
                "event": "spamreport",
                "sg_event_id": "sg-1",
                "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
            }
        ]
    ).encode()
    timestamp = "1700000000"
    signature = base64.b64encode(private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()

    def post(sig):
        return Client().post(
            url(hook),
            data=body,
            content_type="application/json",
            HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE=sig,
            HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP=timestamp,
        )

    assert post(base64.b64encode(b"x" * 64).decode()).status_code == 400
    assert post(signature).json()["recorded"] == 1
    assert Suppression.objects.get(contact_id=delivery.contact_id).reason == "complained"


def test_stored_provider_strings_are_escaped_in_admin(workspace, delivery, staff_for):
    hook = inbound.hook_create(workspace=workspace, provider="mailgun", secret=MAILGUN_KEY)
    post_mailgun(hook, mailgun_body(delivery.message_id))
    event = EngagementEvent.objects.get(kind="bounce_hard")
    page = staff_for(Role.ADMIN).get(reverse("admin:publishing_engagementevent_change", args=[event.pk]))
    assert page.status_code == 200
    assert b"<script>alert(1)</script>" not in page.content
    assert b"&lt;script&gt;" in page.content


# ---------------------------------------------------------------- IMAP replies and DSNs (real dovecot)


def test_imap_replies_and_dsn_bounces_become_events_once(
    workspace, other_workspace, smtp_sink, fast_gateway, dovecot
):
    smtp_account(workspace, smtp_sink.host, smtp_sink.port)
    campaign = make_campaign(workspace, 2)
    campaigns.campaign_send_now(campaign=campaign)
    sending.campaign_send_batch(campaign_id=campaign.pk)
    smtp_sink.wait_for(2)
    replied, bounced = Delivery.objects.filter(campaign=campaign, status="sent").order_by("id")
    imap_account(workspace, dovecot)
    imap_account(other_workspace, dovecot)  # the same mailbox seen by another workspace: none of its mail
    _append(dovecot, _reply(in_reply_to=replied.message_id, references=replied.message_id))
    _append(dovecot, _dsn(original_id=bounced.message_id, recipient=bounced.email))
    _append(dovecot, _reply(in_reply_to="<unrelated@x>", references=""))

    assert sorted(inbound.workspaces_fetching_replies()) == sorted([workspace.pk, other_workspace.pk])
    assert PeriodicTask.objects.get(task="publishing.tasks.replies_fetch_all_task").enabled
    first = inbound.replies_fetch(workspace=workspace)
    again = inbound.replies_fetch(workspace=workspace)
    replies_fetch_task(other_workspace.pk)

    assert (first.replies, first.bounces, first.duplicates) == (1, 1, 0)
    assert (again.replies, again.bounces, again.duplicates) == (0, 0, 2)
    reply = EngagementEvent.objects.get(kind="reply")
    assert (reply.delivery_id, reply.contact_id, reply.metadata["from"]) == (
        replied.pk,
        replied.contact_id,
        "p@example.test",
    )
    assert Contact.objects.get(pk=replied.contact_id).lifecycle == "engaged"
    bounce = EngagementEvent.objects.get(kind="bounce_hard")
    assert bounce.delivery_id == bounced.pk and bounce.metadata["bounced_recipient"] == bounced.email
    assert Suppression.objects.get(contact_id=bounced.contact_id).reason == "bounced"
    assert not Suppression.objects.filter(contact_id=replied.contact_id).exists()
    assert not EngagementEvent.objects.filter(workspace=other_workspace).exists()


def test_imap_mailbox_down_leaves_nothing_half_written(workspace, smtp_sink, fast_gateway, loopback_allow):
    delivery, _ = send_to_one(workspace, smtp_sink)
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    loopback_allow("127.0.0.1", port)
    imap_account(workspace, port)
    with pytest.raises(ProvidersUnavailable):
        inbound.replies_fetch(workspace=workspace)
    replies_fetch_task(workspace.pk)  # the beat's task swallows it and tries again next time
    assert not EngagementEvent.objects.exclude(kind="sent").exists() and delivery.pk


def test_admin_creates_a_hook_through_the_service_and_hides_other_workspaces(
    workspace, other_workspace, staff_for, settings
):
    client = staff_for(Role.ADMIN)
    resp = client.post(
        "/admin/publishing/inboundhook/add/",
        {"workspace": workspace.pk, "provider": "mailgun", "secret": MAILGUN_KEY},
    )
    assert resp.status_code == 302, resp.content.decode()[:2000]
    hook = InboundHook.objects.get(workspace=workspace)
    assert MAILGUN_KEY not in hook.secret_encrypted and len(hook.key) >= 20
    assert decrypt_credentials(hook.secret_encrypted) == {"secret": MAILGUN_KEY}
    page = client.get(f"/admin/publishing/inboundhook/{hook.pk}/change/").content.decode()
    assert inbound.hook_url(hook) in page and MAILGUN_KEY not in page
    theirs = inbound.hook_create(workspace=other_workspace, provider="postmark", secret="a:b")
    assert client.get(f"/admin/publishing/inboundhook/{theirs.pk}/change/").status_code == 404
    marketer = staff_for(Role.MARKETER)
    add = marketer.post(
        "/admin/publishing/inboundhook/add/",
        {"workspace": workspace.pk, "provider": "postmark", "secret": "x:y"},
    )
    assert add.status_code == 403 and InboundHook.objects.filter(workspace=workspace).count() == 1


# ---------------------------------------------------------------- Amazon SES through SNS, Brevo

SES_AUTH = "sns-hooks:ses-s3cret"
TOPIC = "arn:aws:sns:us-west-2:123456789012:ses-feedback"
SNS_TOKEN = (
    "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ce"
    "ece29417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd087cc3b7849e05798d2d2785c03b0879594eeac82c"
    "01f235d0e717736"
)

SES_EVENTS = {
    # the "object" of each SES notification type, from the Amazon SES developer guide's notification examples
    "bounce-permanent": {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": "jane@example.com",
                    "status": "5.1.1",
                    "action": "failed",
                    "diagnosticCode": "smtp; 550 5.1.1 <script>alert(1)</script>... User unknown",
                }
            ],
            "timestamp": "2016-01-27T14:59:38.237Z",
            "feedbackId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000",
            "reportingMTA": "dns; email.example.com",
            "remoteMtaIp": "127.0.2.0",
        },
    },
    "bounce-transient": {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": "Transient",
            "bounceSubType": "MailboxFull",
            "bouncedRecipients": [
                {
                    "emailAddress": "jane@example.com",
                    "status": "4.2.2",
                    "action": "failed",
                    "diagnosticCode": "smtp; 452 4.2.2 Mailbox full",
                }
            ],
            "timestamp": "2016-01-27T14:59:38.237Z",
            "feedbackId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068b-000000",
        },
    },
    "complaint": {
        "notificationType": "Complaint",
        "complaint": {
            "userAgent": "AnyCompany Feedback Loop (V0.01)",
            "complainedRecipients": [{"emailAddress": "jane@example.com"}],
            "complaintFeedbackType": "abuse",
            "arrivalDate": "2016-01-27T14:59:38.237Z",
            "timestamp": "2016-01-27T14:59:38.237Z",
            "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000",
        },
    },
    "delivery": {
        "notificationType": "Delivery",
        "delivery": {
            "timestamp": "2016-01-27T14:59:38.237Z",
            "recipients": ["jane@example.com"],
            "processingTimeMillis": 546,
            "reportingMTA": "a8-70.smtp-out.amazonses.com",
            "smtpResponse": "250 ok:  Message 64111812 accepted",
            "remoteMtaIp": "127.0.2.0",
        },
    },
}


def ses_notification(
    message_id: str, kind: str, *, sns_id: str = "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"
) -> dict:
    """An SNS Notification carrying an SES notification (shapes of the AWS SNS and SES developer guides).
    ``mail.messageId`` is SES's own id; our Message-ID header comes back in ``mail.commonHeaders``."""
    ses = {
        **SES_EVENTS[kind],
        "mail": {
            "timestamp": "2016-01-27T14:59:38.237Z",
            "source": "news@acme.example",
            "sourceArn": "arn:aws:ses:us-west-2:888888888888:identity/acme.example",
            "sendingAccountId": "123456789012",
            "messageId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
            "destination": ["jane@example.com"],
            "headersTruncated": False,
            "headers": [{"name": "Message-ID", "value": message_id}],
            "commonHeaders": {
                "from": ["News <news@acme.example>"],
                "to": ["jane@example.com"],
                "messageId": message_id,
                "subject": "Hello",
            },
        },
    }
    return {
        "Type": "Notification",
        "MessageId": sns_id,
        "TopicArn": TOPIC,
        "Message": json.dumps(ses),
        "Timestamp": "2016-01-27T14:59:38.237Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEw6JRN…",
        "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7.pem",
        "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=" + TOPIC,
    }


def subscription_confirmation(**overrides) -> dict:
    return {
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": SNS_TOKEN,
        "TopicArn": TOPIC,
        "Message": f"You have chosen to subscribe to the topic {TOPIC}.\nTo confirm the subscription, visit "
        "the SubscribeURL included in this message.",
        "SubscribeURL": "https://attacker.example/?Action=ConfirmSubscription",  # never used or fetched
        "Timestamp": "2012-04-26T20:45:04.751Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+…",
        "SigningCertURL": "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7.pem",
        **overrides,
    }


def post_sns(hook, message: dict, auth: str | None = SES_AUTH, *, header_id: str | None = None):
    headers = {
        "HTTP_X_AMZ_SNS_MESSAGE_TYPE": message["Type"],
        "HTTP_X_AMZ_SNS_MESSAGE_ID": header_id or message["MessageId"],
        "HTTP_X_AMZ_SNS_TOPIC_ARN": message["TopicArn"],
    }
    if auth is not None:
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(auth.encode()).decode()
    # SNS posts JSON as text/plain
    return Client().post(
        url(hook), data=json.dumps(message), content_type="text/plain; charset=UTF-8", **headers
    )


@pytest.mark.parametrize(
    ("kind", "recorded_kind", "suppression"),
    [
        ("bounce-permanent", "bounce_hard", "bounced"),
        ("bounce-transient", "bounce_soft", None),
        ("complaint", "complaint", "complained"),
        ("delivery", "delivered", None),
    ],
)
def test_ses_notifications_map_to_our_kinds_once(workspace, delivery, kind, recorded_kind, suppression):
    hook = inbound.hook_create(workspace=workspace, provider="amazon_ses", secret=SES_AUTH)
    message = ses_notification(delivery.message_id, kind)
    first = post_sns(hook, message)
    replay = post_sns(hook, message)
    assert first.status_code == 200 and first.json()["recorded"] == 1, first.content
    assert replay.json() == {"recorded": 0, "duplicates": 1, "unmatched": 0, "ignored": 0}
    event = EngagementEvent.objects.exclude(kind="sent").get()
    assert (event.kind, event.delivery_id, event.metadata["provider"]) == (
        recorded_kind,
        delivery.pk,
        "amazon_ses",
    )
    assert event.metadata["event_id"] == message["MessageId"]
    found = Suppression.objects.filter(contact_id=delivery.contact_id).values_list("reason", flat=True)
    assert list(found) == ([suppression] if suppression else [])


def test_ses_transient_bounces_suppress_at_the_configured_count(workspace, delivery, settings):
    settings.PUBLISHING_SOFT_BOUNCE_LIMIT = 2
    hook = inbound.hook_create(workspace=workspace, provider="amazon_ses", secret=SES_AUTH)
    post_sns(hook, ses_notification(delivery.message_id, "bounce-transient", sns_id="sns-1"))
    assert not Suppression.objects.exists()
    post_sns(hook, ses_notification(delivery.message_id, "bounce-transient", sns_id="sns-2"))
    assert Suppression.objects.get(contact_id=delivery.contact_id).reason == "bounced"


def test_ses_unauthenticated_or_forged_posts_are_refused_and_write_nothing(
    workspace, other_workspace, delivery
):
    hook = inbound.hook_create(workspace=workspace, provider="amazon_ses", secret=SES_AUTH)
    message = ses_notification(delivery.message_id, "bounce-permanent")
    challenge = post_sns(hook, message, auth=None)
    assert challenge.status_code == 401 and challenge["WWW-Authenticate"].startswith("Basic ")
    assert post_sns(hook, message, auth="sns-hooks:wrong").status_code == 400
    assert post_sns(hook, message, header_id="another-id").status_code == 400  # headers must match the body
    garbled = Client().post(
        url(hook),
        data="{not json",
        content_type="text/plain",
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(SES_AUTH.encode()).decode(),
        HTTP_X_AMZ_SNS_MESSAGE_TYPE="Notification",
    )
    assert garbled.status_code == 400
    theirs = inbound.hook_create(workspace=other_workspace, provider="amazon_ses", secret=SES_AUTH)
    assert post_sns(theirs, message).json()["unmatched"] == 1  # valid for them, but not their delivery
    assert not EngagementEvent.objects.exclude(kind="sent").exists()
    assert not Suppression.objects.exists()


def test_sns_subscription_is_confirmed_by_a_person_through_a_link_we_build(workspace, delivery, staff_for):
    hook = inbound.hook_create(workspace=workspace, provider="amazon_ses", secret=SES_AUTH)
    # without the hook's credentials nobody can make us show a link
    assert post_sns(hook, subscription_confirmation(), auth="x:y").status_code == 400
    hook.refresh_from_db()
    assert hook.confirm_url == ""

    response = post_sns(hook, subscription_confirmation())
    assert response.status_code == 200 and response.json()["recorded"] == 0
    hook.refresh_from_db()
    assert hook.confirm_url == (
        f"https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC.replace(':', '%3A')}"
        f"&Token={SNS_TOKEN}"
    )
    assert "attacker" not in hook.confirm_url and hook.confirm_requested_at is not None
    page = staff_for(Role.ADMIN).get(f"/admin/publishing/inboundhook/{hook.pk}/change/").content.decode()
    assert 'href="https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&amp;TopicArn=' in page
    assert "USER:PASSWORD@" in page and SES_AUTH not in page

    # SES's "topic validated" notification after confirming, then real notifications: the link is gone
    validated = ses_notification(delivery.message_id, "delivery", sns_id="sns-validated")
    validated["Message"] = "Successfully validated SNS topic for Amazon SES event publishing."
    assert post_sns(hook, validated).json() == {"recorded": 0, "duplicates": 0, "unmatched": 0, "ignored": 0}
    hook.refresh_from_db()
    assert hook.confirm_url == "" and hook.confirm_requested_at is None


@pytest.mark.parametrize(
    "overrides",
    [
        {"TopicArn": "arn:aws-cn:sns:cn-north-1:123456789012:ses-feedback"},  # another partition's endpoint
        {"TopicArn": "arn:aws:sns:us-west-2.attacker.example:123456789012:t"},
        {"TopicArn": "arn:aws:sns:us-west-2:123456789012:t/../x"},
        {"Token": "short"},
        {"Token": "abc&Action=Unsubscribe" + "0" * 20},
        {"Token": None},
    ],
)
def test_sns_confirmations_we_cannot_build_a_link_for_are_400(workspace, overrides):
    hook = inbound.hook_create(workspace=workspace, provider="amazon_ses", secret=SES_AUTH)
    assert post_sns(hook, subscription_confirmation(**overrides)).status_code == 400
    hook.refresh_from_db()
    assert hook.confirm_url == ""


def brevo_event(message_id: str, event: str = "hard_bounce", *, ts_epoch: int = 1604933654000) -> str:
    """Brevo's transactional webhook shape (developers.brevo.com, "Transactional webhooks")."""
    return json.dumps(
        {
            "event": event,
            "email": "example@domain.com",
            "id": 26224,
            "date": "2020-10-09 00:00:00",
            "ts": 1604933619,
            "message-id": message_id,
            "ts_event": 1604933654,
            "subject": "My first Transactional",
            "sending_ip": "185.41.28.109",
            "template_id": 22,
            "tags": ["transac_messages"],
            "reason": "<b>server is down</b>",
            "ts_epoch": ts_epoch,
        }
    )


@pytest.mark.parametrize(
    ("event", "kind", "suppression"),
    [
        ("delivered", "delivered", None),
        ("hard_bounce", "bounce_hard", "bounced"),
        ("invalid_email", "bounce_hard", "bounced"),
        ("soft_bounce", "bounce_soft", None),
        ("deferred", "bounce_soft", None),
        ("spam", "complaint", "complained"),
        ("complaint", "complaint", "complained"),
        ("unsubscribe", "unsubscribe", "unsubscribed"),
        ("unique_opened", None, None),
    ],
)
def test_brevo_events_map_to_our_kinds_once(workspace, delivery, event, kind, suppression):
    hook = inbound.hook_create(workspace=workspace, provider="brevo", secret="brevo:s3cret")
    body = brevo_event(delivery.message_id, event)
    first = post_postmark(hook, body, "brevo:s3cret")
    replay = post_postmark(hook, body, "brevo:s3cret")
    assert first.status_code == 200, first.content
    assert first.json()["recorded" if kind else "ignored"] == 1
    assert replay.json()["duplicates" if kind else "ignored"] == 1
    assert list(EngagementEvent.objects.exclude(kind="sent").values_list("kind", flat=True)) == (
        [kind] if kind else []
    )
    found = Suppression.objects.filter(contact_id=delivery.contact_id).values_list("reason", flat=True)
    assert list(found) == ([suppression] if suppression else [])


def test_brevo_needs_the_hooks_own_credentials(workspace, delivery):
    hook = inbound.hook_create(workspace=workspace, provider="brevo", secret="brevo:s3cret")
    body = brevo_event(delivery.message_id)
    missing = Client().post(url(hook), data=body, content_type="application/json")
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Basic ")
    assert post_postmark(hook, body, "brevo:wrong").status_code == 400
    assert post_postmark(hook, "[]", "brevo:s3cret").status_code == 400  # not an event object
    assert not EngagementEvent.objects.exclude(kind="sent").exists()
    # a second soft bounce at another time is another event (no Brevo event id: the raw event's hash)
    post_postmark(hook, brevo_event(delivery.message_id, "soft_bounce", ts_epoch=1), "brevo:s3cret")
    post_postmark(hook, brevo_event(delivery.message_id, "soft_bounce", ts_epoch=2), "brevo:s3cret")
    assert EngagementEvent.objects.filter(kind="bounce_soft").count() == 2


@pytest.mark.parametrize("provider", ["postmark", "amazon_ses", "brevo"])
@pytest.mark.parametrize("secret", ["", "nocolon", ":password", "user:", "user:pass word", " "])
def test_basic_auth_hooks_need_user_colon_password(workspace, provider, secret):
    with pytest.raises(ValidationError) as err:
        inbound.hook_create(workspace=workspace, provider=provider, secret=secret)
    assert "secret" in err.value.message_dict
    assert not InboundHook.objects.exists()


def test_setup_url_names_the_credentials_placeholder_only_for_basic_auth(workspace):
    brevo = inbound.hook_create(workspace=workspace, provider="brevo", secret="brevo:s3cret")
    mailgun = inbound.hook_create(workspace=workspace, provider="mailgun", secret=MAILGUN_KEY)
    assert inbound.hook_setup_url(brevo) == inbound.hook_url(brevo).replace("://", "://USER:PASSWORD@", 1)
    assert inbound.hook_setup_url(mailgun) == inbound.hook_url(mailgun)
    assert inbound.hook_setup_url(brevo) in inbound.hook_setup_text(brevo)


# ---------------------------------------------------------------- API: /api/v1/publishing/inbound-hooks/

HOOKS = "/api/v1/publishing/inbound-hooks/"


def test_api_creates_hooks_shows_setup_never_the_secret(api_client_for, delivery):
    admin = api_client_for(role=Role.ADMIN)
    resp = admin.post(HOOKS, {"provider": "amazon_ses", "secret": SES_AUTH}, format="json")
    assert resp.status_code == 201, resp.content
    hook = InboundHook.objects.get()
    body = resp.json()
    assert body["url"] == inbound.hook_url(hook) and body["setup_url"] == inbound.hook_setup_url(hook)
    assert "USER:PASSWORD@" in body["setup_url"] and body["confirm_url"] == ""
    # the hook works with the secret given through the API
    assert post_sns(hook, ses_notification(delivery.message_id, "complaint")).json()["recorded"] == 1
    post_sns(hook, subscription_confirmation())
    listed = admin.get(HOOKS)
    assert listed.json()["results"][0]["confirm_url"].startswith("https://sns.us-west-2.amazonaws.com/?")
    for answer in (resp, listed, admin.get(f"{HOOKS}{hook.pk}/")):
        assert SES_AUTH.encode() not in answer.content and b"secret" not in answer.content
    assert admin.delete(f"{HOOKS}{hook.pk}/").status_code == 204
    assert post_sns(hook, ses_notification(delivery.message_id, "delivery")).status_code == 404
    verbs = set(
        AuditEvent.objects.filter(verb__startswith="publishing.inbound_hook.").values_list("verb", flat=True)
    )
    assert verbs == {"publishing.inbound_hook.created", "publishing.inbound_hook.deleted"}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"provider": "ses", "secret": "a:b"}, {"provider"}),
        ({"provider": "brevo", "secret": "no-colon"}, {"secret"}),
        ({"provider": "postmark"}, {"secret"}),
        ({"provider": "mailgun", "secret": "   "}, {"secret"}),
    ],
)
def test_api_bad_hook_input_is_400_naming_the_field(api_client_for, body, fields):
    resp = api_client_for(role=Role.ADMIN).post(HOOKS, body, format="json")
    assert resp.status_code == 400 and set(resp.json()["error"]["fields"]) == fields
    assert not InboundHook.objects.exists()


def test_api_hooks_are_admin_only_and_workspace_scoped(api_client_for, workspace, other_workspace):
    theirs = inbound.hook_create(workspace=other_workspace, provider="brevo", secret="b:c")
    marketer = api_client_for(role=Role.MARKETER)
    assert marketer.get(HOOKS).status_code == 403
    assert marketer.post(HOOKS, {"provider": "brevo", "secret": "a:b"}, format="json").status_code == 403
    admin = api_client_for(role=Role.ADMIN)
    assert admin.get(HOOKS).json()["results"] == []
    assert admin.get(f"{HOOKS}{theirs.pk}/").status_code == 404
    assert admin.delete(f"{HOOKS}{theirs.pk}/").status_code == 404
    assert InboundHook.objects.filter(pk=theirs.pk).exists()
    assert list(InboundHook.objects.values_list("workspace_id", flat=True)) == [other_workspace.pk]


_ARN_PARTS = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)


@given(
    arn=st.one_of(
        _ARN_PARTS,
        st.builds(lambda region, rest: f"arn:aws:sns:{region}:123456789012:{rest}", _ARN_PARTS, _ARN_PARTS),
        st.sampled_from([TOPIC, "arn:aws:sns:ap-southeast-1:123456789012:t.fifo"]),
    ),
    token=st.one_of(_ARN_PARTS, st.just(SNS_TOKEN), st.text(alphabet="0123456789abcdef", min_size=16)),
)
@hypothesis_settings(max_examples=300, deadline=None)
def test_sns_confirm_url_only_ever_points_at_the_topics_sns_endpoint(arn, token):
    """Whatever a SubscriptionConfirmation carries, the link is SNS's own endpoint for the topic's region
    with exactly the three ConfirmSubscription parameters, or nothing at all."""
    try:
        link = inbound.sns_confirm_url({"TopicArn": arn, "Token": token})
    except ValueError:
        return
    parsed = urlsplit(link)
    region = arn.split(":")[3]
    assert (parsed.scheme, parsed.hostname, parsed.port, parsed.path) == (
        "https",
        f"sns.{region}.amazonaws.com",
        None,
        "/",
    )
    assert not parsed.username and not parsed.fragment
    assert parse_qs(parsed.query, strict_parsing=True) == {
        "Action": ["ConfirmSubscription"],
        "TopicArn": [arn],
        "Token": [token],
    }


def test_a_provider_unsubscribe_is_crms_opt_out_and_counted_once_with_our_own(workspace, delivery):
    """Mailgun's `unsubscribed` (its own link) was acknowledged and ignored: the person kept getting mail
    from us. Now it is crm's opt-out (the consent log says so) and, with our own link also used, one
    unsubscribe for the delivery."""
    from crm.models import ConsentEvent
    from publishing.services import tracking

    hook = inbound.hook_create(workspace=workspace, provider="mailgun", secret=MAILGUN_KEY)
    response = post_mailgun(hook, mailgun_body(delivery.message_id, event="unsubscribed", token="u1"))
    assert response.json()["recorded"] == 1
    assert Suppression.objects.get(contact_id=delivery.contact_id).reason == "unsubscribed"
    consent = ConsentEvent.objects.get(contact_id=delivery.contact_id)
    assert consent.granted is False and consent.source == f"campaign:{delivery.campaign_id}:mailgun"
    again = post_mailgun(hook, mailgun_body(delivery.message_id, event="unsubscribed", token="u2"))
    assert again.json()["duplicates"] == 1  # another provider event for the same opt-out
    tracking.unsubscribe(token=tracking.unsubscribe_token(delivery), source="one-click")
    assert EngagementEvent.objects.filter(kind="unsubscribe").count() == 1
