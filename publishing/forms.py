"""Dashboard forms for publishing pages. They collect and shape what a person typed, with choices scoped
to the workspace; every rule (templates compiling and naming known fields, verified senders, approved
images, audience ids, limits, UTM, A/B settings) is decided by the services, whose ValidationError keys
`add_service_errors` maps back onto the fields."""

from __future__ import annotations

from datetime import datetime

from django import forms
from django.core.exceptions import ValidationError

from aicmo.timezones import zone_choices
from crm.models import ContactList, Segment

from . import selectors
from .models import ABMetric, Campaign, Content, ContentVersion, Layout, WebhookEventType
from .services.tracking import UTM_KEYS

VARIANT_LABELS = ("A", "B", "C")


class ServiceErrorsMixin:
    """Put a service's ValidationError on the fields it names; `field_for_key` renames service keys."""

    def field_for_key(self, key: str) -> str | None:
        return key

    def add_service_errors(self, exc: ValidationError) -> None:
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc.messages)
            return
        for key, errors in exc.message_dict.items():
            name = self.field_for_key(key)
            if name in self.fields:
                self.add_error(name, errors)
            else:
                self.add_error(None, [f"{key}: {e}" for e in errors] if name is None else errors)


class ContentCreateForm(ServiceErrorsMixin, forms.Form):
    name = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"autocomplete": "off"}))


class EmailVersionForm(ServiceErrorsMixin, forms.Form):
    """The email version of one content (`services.content.email_version_save`). An empty text part is
    generated from the HTML by the service, so a generated text is shown as empty here."""

    sender = forms.ModelChoiceField(
        queryset=None, required=False, empty_label="— choose a verified sender —", label="Sender"
    )
    from_name = forms.CharField(
        required=False, max_length=120, label="From name", help_text="Shown as the sender's name."
    )
    reply_to = forms.CharField(required=False, max_length=254, label="Reply-to address")
    subject = forms.CharField(required=False, max_length=255)
    preheader = forms.CharField(
        required=False, max_length=255, help_text="The preview line many mail clients show after the subject."
    )
    layout = forms.ModelChoiceField(queryset=None, required=False, empty_label="No layout", label="Layout")
    html = forms.CharField(
        required=False,
        label="HTML",
        widget=forms.Textarea(attrs={"rows": 16, "spellcheck": "false", "class": "code"}),
        help_text="Personalize with {{ contact.first_name }}, {{ company.name }}, {{ custom.key }}; images are "
        'approved media assets, <img src="asset:ID">.',
    )
    mjml = forms.CharField(
        required=False,
        label="MJML source (optional)",
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false", "class": "code"}),
        help_text="Responsive email markup (mjml.io). When filled, the HTML above is compiled from it on save.",
    )
    text = forms.CharField(
        required=False,
        label="Text part",
        widget=forms.Textarea(attrs={"rows": 6, "class": "code"}),
        help_text="Leave empty to have it generated from the HTML when saved.",
    )

    def __init__(self, *args, workspace, version: ContentVersion | None = None, **kwargs):
        if version is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "sender": version.sender_id,
                "from_name": version.from_name,
                "reply_to": version.reply_to,
                "subject": version.subject,
                "preheader": version.preheader,
                "layout": version.layout_id,
                "html": version.html,
                "mjml": version.mjml,
                "text": "" if version.text_generated else version.text,
            }
        super().__init__(*args, **kwargs)
        self.fields["sender"].queryset = selectors.senders_for(workspace, verified_only=True)
        self.fields["layout"].queryset = Layout.objects.for_workspace(workspace).order_by("name")
        if not self.fields["sender"].queryset.exists():
            self.fields["sender"].help_text = "No verified sender yet: an admin adds and verifies one."

    def service_data(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.fields}


class _IdsField(forms.ModelMultipleChoiceField):
    widget = forms.SelectMultiple(attrs={"size": 5})

    def __init__(self, **kwargs):
        super().__init__(queryset=None, required=False, **kwargs)


AUDIENCE_FIELDS = ("segments", "lists", "exclude_segments", "exclude_lists")


class AudienceForm(ServiceErrorsMixin, forms.Form):
    """Segments and lists to include and to leave out, choices limited to the workspace's own."""

    segments = _IdsField(label="Segments")
    lists = _IdsField(label="Lists")
    exclude_segments = _IdsField(label="Leave out segments")
    exclude_lists = _IdsField(label="Leave out lists")

    def __init__(self, *args, workspace, **kwargs):
        super().__init__(*args, **kwargs)
        for key in ("segments", "exclude_segments"):
            self.fields[key].queryset = Segment.objects.for_workspace(workspace).order_by("name")
        for key in ("lists", "exclude_lists"):
            self.fields[key].queryset = ContactList.objects.for_workspace(workspace).order_by("name")

    def audience(self) -> dict:
        return {key: [obj.pk for obj in self.cleaned_data[key]] for key in AUDIENCE_FIELDS}


class CampaignForm(AudienceForm):
    """The campaign builder (`services.campaign_builder.campaign_save`): content, audience with
    exclusions, time zone, speed limits, UTM defaults and an optional A/B test (new campaigns only)."""

    name = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    content = forms.ModelChoiceField(queryset=None, empty_label="— choose content —", required=False)
    time_zone = forms.ChoiceField(
        choices=zone_choices, label="Time zone", help_text="Schedules are given in this zone, stored in UTC."
    )
    max_per_second = forms.CharField(
        required=False, label="At most per second", widget=forms.TextInput(attrs={"inputmode": "numeric"})
    )
    max_per_hour = forms.CharField(
        required=False, label="At most per hour", widget=forms.TextInput(attrs={"inputmode": "numeric"})
    )
    ab_enabled = forms.BooleanField(required=False, label="Run an A/B test")
    test_share = forms.IntegerField(
        required=False,
        initial=20,
        label="Test share (%)",
        help_text="Of the audience; the rest gets the winner.",
    )
    metric = forms.ChoiceField(
        choices=ABMetric.choices, initial=ABMetric.OPENS, required=False, label="Winner by"
    )
    wait_minutes = forms.IntegerField(required=False, initial=240, min_value=1, label="Wait (minutes)")
    auto_winner = forms.BooleanField(
        required=False, initial=True, label="Send the winner automatically (else wait for a person)"
    )

    def __init__(self, *args, workspace, campaign: Campaign | None = None, **kwargs):
        if campaign is not None and "initial" not in kwargs:
            audience = campaign.audience or {}
            kwargs["initial"] = {
                "name": campaign.name,
                "content": campaign.content_id,
                **{key: audience.get(key, []) for key in AUDIENCE_FIELDS},
                "time_zone": campaign.time_zone,
                "max_per_second": campaign.max_per_second or "",
                "max_per_hour": campaign.max_per_hour or "",
                **{key: (campaign.utm or {}).get(key, "") for key in UTM_KEYS},
            }
        kwargs.setdefault("initial", {}).setdefault("time_zone", workspace.time_zone)
        super().__init__(*args, workspace=workspace, **kwargs)
        self.workspace, self.campaign = workspace, campaign
        contents = Content.objects.for_workspace(workspace).order_by("name", "pk")
        self.fields["content"].queryset = contents
        for key in UTM_KEYS:
            self.fields[key] = forms.CharField(required=False, max_length=200, label=key)
        self.with_abtest = campaign is None or not hasattr(campaign, "abtest")
        for label in VARIANT_LABELS:
            self.fields[f"variant_{label}_subject"] = forms.CharField(
                required=False, max_length=300, label=f"Variant {label} subject"
            )
            self.fields[f"variant_{label}_content"] = forms.ModelChoiceField(
                queryset=contents,
                required=False,
                empty_label="the campaign's content",
                label=f"Variant {label} content",
            )

    def utm_fields(self):
        return [self[key] for key in UTM_KEYS]

    def variant_rows(self):
        return [
            (label, self[f"variant_{label}_subject"], self[f"variant_{label}_content"])
            for label in VARIANT_LABELS
        ]

    def abtest(self) -> dict | None:
        d = self.cleaned_data
        if not (self.with_abtest and d.get("ab_enabled")):
            return None
        variants = [
            {
                "label": label,
                "subject": d[f"variant_{label}_subject"].strip(),
                "content": d[f"variant_{label}_content"],
            }
            for label in VARIANT_LABELS
            if d[f"variant_{label}_subject"].strip() or d[f"variant_{label}_content"] is not None
        ]
        return {
            "variants": variants,
            "test_share": d["test_share"] if d["test_share"] is not None else 20,
            "metric": d["metric"] or ABMetric.OPENS,
            "wait_minutes": d["wait_minutes"] or 240,
            "auto_winner": d["auto_winner"],
        }

    def service_data(self) -> dict:
        d = self.cleaned_data
        return {
            "name": d["name"],
            "content": d["content"],
            "audience": self.audience(),
            "time_zone": d["time_zone"],
            "utm": {key: d[key] for key in UTM_KEYS},
            "max_per_second": d["max_per_second"].strip(),
            "max_per_hour": d["max_per_hour"].strip(),
            "abtest": self.abtest(),
        }

    def field_for_key(self, key: str) -> str | None:
        if key.startswith("audience."):
            return key.split(".", 1)[1]
        if key.startswith("variants["):
            index, _, part = key[len("variants[") :].partition("]")
            variants = (self.abtest() or {}).get("variants", [])
            if not (index.isdigit() and int(index) < len(variants)):
                return None
            return f"variant_{variants[int(index)]['label']}_{part.lstrip('.') or 'subject'}"
        if key in ("variants", "campaign", "utm"):
            return None
        return key


class ScheduleForm(forms.Form):
    """A wall-clock time in the campaign's time zone, kept naive: `campaigns.schedule_to_utc` places it
    in that zone (refusing DST gaps), not Django's current time zone."""

    when = forms.CharField(
        label="Send at", widget=forms.DateTimeInput(attrs={"type": "datetime-local"}), max_length=32
    )

    def clean_when(self) -> datetime:
        raw = self.cleaned_data["when"].strip()
        try:
            when = datetime.fromisoformat(raw)
        except ValueError:
            raise ValidationError("Enter a date and time, for example 2026-05-01T09:30.") from None
        if when.tzinfo is not None:
            raise ValidationError("Give the time without a zone: it is read in the campaign's time zone.")
        return when


class WebhookEndpointForm(forms.Form):
    """Shapes only; ``services.webhooks`` validates the URL (SSRF guard) and the event types."""

    url = forms.CharField(
        label="Receiver URL", max_length=2000, help_text="http(s) URL that accepts a POST of each event."
    )
    description = forms.CharField(max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        label="Events", choices=WebhookEventType.choices, widget=forms.CheckboxSelectMultiple
    )
    active = forms.BooleanField(required=False, initial=True, help_text="Unticked: nothing is delivered.")

    def add_service_errors(self, exc: ValidationError) -> None:
        if hasattr(exc, "error_dict"):
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        else:
            self.add_error(None, exc.messages)
