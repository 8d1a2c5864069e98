"""Normalisation and validation of contact values (emails, domains, custom fields); no writes."""

from __future__ import annotations

import datetime as dt
import re

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, validate_email
from django.utils.dateparse import parse_date

from aicmo.models import Workspace

from .models import (
    CustomFieldDefinition,
    FieldType,
)


def normalize_email(value: str) -> str:
    return (value or "").strip().lower()


# Django's own dot-atom local part and domain patterns in one compiled regex: a match is exactly what
# `validate_email` accepts for an ordinary address; anything else (quoted local part, IP literal,
# localhost, too long) falls through to the validator itself, so the verdict never differs.
_FAST_EMAIL = re.compile(
    r"[-!#$%&'*+/=?^_`{}|~0-9A-Z]+(?:\.[-!#$%&'*+/=?^_`{}|~0-9A-Z]+)*@"
    + EmailValidator.hostname_re
    + EmailValidator.domain_re
    + EmailValidator.tld_no_fqdn_re
    + r"\Z",
    re.IGNORECASE,
)


def email_is_valid(value: str) -> bool:
    if len(value) <= 320 and _FAST_EMAIL.match(value):
        return True
    try:
        validate_email(value)
    except ValidationError:
        return False
    return True


def normalize_domain(value: str) -> str:
    value = (value or "").strip().lower()
    for prefix in ("https://", "http://"):
        if value.startswith(prefix):
            value = value[len(prefix) :]
    value = value.split("/", 1)[0]
    return value.removeprefix("www.")


def custom_fields_clean(workspace: Workspace | int, custom: dict | None) -> dict:
    """Validate `custom` against the workspace's definitions; errors are keyed ``custom.<key>``."""
    if not custom:
        return {}
    if not isinstance(custom, dict):
        raise ValidationError({"custom": "Expected an object."})
    defs = {d.key: d for d in CustomFieldDefinition.objects.for_workspace(workspace)}
    cleaned, errors = {}, {}
    for key, value in custom.items():
        d = defs.get(key)
        if d is None:
            errors[f"custom.{key}"] = "Unknown custom field."
            continue
        if value is None or value == "":
            cleaned[key] = None
            continue
        try:
            cleaned[key] = _coerce_custom(d, value)
        except ValueError as exc:
            errors[f"custom.{key}"] = str(exc)
    if errors:
        raise ValidationError(errors)
    return cleaned


def _coerce_custom(d: CustomFieldDefinition, value):
    if d.type == FieldType.NUMBER:
        if isinstance(value, bool):
            raise ValueError("Expected a number.")
        try:
            number = float(str(value).strip())
        except ValueError:
            raise ValueError("Expected a number.") from None
        return int(number) if number.is_integer() else number
    if d.type == FieldType.DATE:
        parsed = value if isinstance(value, dt.date) else parse_date(str(value).strip())
        if parsed is None:
            raise ValueError("Expected a date (YYYY-MM-DD).")
        return parsed.isoformat()
    if d.type == FieldType.BOOL:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in {"true", "yes", "1", "y"}:
            return True
        if text in {"false", "no", "0", "n"}:
            return False
        raise ValueError("Expected yes or no.")
    if d.type == FieldType.CHOICE:
        if str(value) not in (d.choices or []):
            raise ValueError(f"Expected one of: {', '.join(map(str, d.choices or []))}.")
        return str(value)
    return str(value)[:1000]
