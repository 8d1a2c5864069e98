"""Dashboard forms for CRM pages. They collect and shape what a person typed; every rule (email syntax and
uniqueness, erased addresses, custom-field types) is decided by the services, whose ValidationError keys
(``email``, ``custom.<key>``, ...) `ContactForm.add_service_errors` maps back onto the fields."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from .models import Contact, CustomFieldDefinition, FieldType
from .normalize import domain_clean

PERSON_FIELDS = ("first_name", "last_name", "title", "phone")
BOOL_CHOICES = [("", "—"), ("yes", "Yes"), ("no", "No")]


def _custom_name(key: str) -> str:
    return f"custom_{key}"


def _custom_field(definition: CustomFieldDefinition) -> forms.Field:
    """The form field for one custom-field definition: an input of its type, always optional (blank clears)."""
    label, kind = definition.label or definition.key, definition.type
    if kind == FieldType.NUMBER:
        return forms.CharField(
            label=label, required=False, widget=forms.TextInput(attrs={"inputmode": "decimal"})
        )
    if kind == FieldType.DATE:
        return forms.CharField(label=label, required=False, widget=forms.DateInput(attrs={"type": "date"}))
    if kind == FieldType.BOOL:
        return forms.ChoiceField(label=label, required=False, choices=BOOL_CHOICES)
    if kind == FieldType.CHOICE:
        return forms.ChoiceField(
            label=label, required=False, choices=[("", "—"), *[(c, c) for c in definition.choices or []]]
        )
    return forms.CharField(label=label, required=False, widget=forms.TextInput())


def _initial_custom(value) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return "" if value is None else str(value)


class ContactForm(forms.Form):
    """Create/edit one contact: the typed person fields, a company by domain (picked from the workspace's
    companies or new), tags as comma-separated names, and one typed input per custom-field definition.

    `service_data()` -> the ``data`` dict `services.contact_create` / `contact_update` take."""

    email = forms.CharField(max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "off"}))
    first_name = forms.CharField(required=False, max_length=Contact._meta.get_field("first_name").max_length)
    last_name = forms.CharField(required=False, max_length=Contact._meta.get_field("last_name").max_length)
    title = forms.CharField(required=False, max_length=Contact._meta.get_field("title").max_length)
    phone = forms.CharField(required=False, max_length=Contact._meta.get_field("phone").max_length)
    company_domain = forms.CharField(
        label="Company domain",
        required=False,
        max_length=253,
        help_text="Pick an existing company or type a new domain such as acme.com; leave blank for none.",
        widget=forms.TextInput(attrs={"list": "company-options", "autocomplete": "off"}),
    )
    tags = forms.CharField(
        required=False, max_length=2000, help_text="Comma-separated; the contact gets exactly these tags."
    )

    def __init__(self, *args, workspace, contact: Contact | None = None, **kwargs):
        if contact is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "email": contact.email,
                **{name: getattr(contact, name) for name in PERSON_FIELDS},
                "company_domain": contact.company.domain if contact.company_id else "",
                "tags": ", ".join(t.name for t in contact.tags.all()),
                **{_custom_name(k): _initial_custom(v) for k, v in (contact.custom or {}).items()},
            }
        super().__init__(*args, **kwargs)
        self.definitions = list(CustomFieldDefinition.objects.for_workspace(workspace).order_by("key"))
        for definition in self.definitions:
            self.fields[_custom_name(definition.key)] = _custom_field(definition)

    def clean_company_domain(self):
        value = self.cleaned_data["company_domain"].strip()
        if not value:
            return ""
        try:
            return domain_clean(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    def custom_fields(self):
        return [self[_custom_name(d.key)] for d in self.definitions]

    def service_data(self) -> dict:
        d = self.cleaned_data
        return {
            "email": d["email"],
            **{name: d[name] for name in PERSON_FIELDS},
            "company_domain": d["company_domain"],
            "tags": [t.strip() for t in d["tags"].split(",") if t.strip()],
            "custom": {defn.key: d.get(_custom_name(defn.key)) or None for defn in self.definitions},
        }

    def add_service_errors(self, exc: ValidationError) -> None:
        """Put a service's ValidationError on the fields it names (``custom.<key>`` on that input)."""
        if not hasattr(exc, "error_dict"):
            self.add_error(None, exc.messages)
            return
        for key, errors in exc.message_dict.items():
            name = _custom_name(key.split(".", 1)[1]) if key.startswith("custom.") else key
            self.add_error(name if name in self.fields else None, errors)
