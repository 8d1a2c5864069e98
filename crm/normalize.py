"""Normalisation and validation of contact values (emails, domains, custom fields); no writes."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
import unicodedata

import idna
from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.text import slugify
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from aicmo.conflicts import MISSING
from aicmo.models import Workspace

from .models import (
    Company,
    Contact,
    CustomFieldDefinition,
    FieldType,
)

EMAIL_MAX_LENGTH = Contact._meta.get_field("email").max_length

# Characters that are invisible or whitespace: Unicode separators (Zs: SPACE, NO-BREAK SPACE …; Zl; Zp),
# controls (Cc: TAB, CR …) and format characters (Cf: ZERO WIDTH SPACE, BOM, SOFT HYPHEN, WORD JOINER …).
_INVISIBLE_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf"})


class InvalidEmail(ValueError):
    """The value is not an email address we store; `str(exc)` is a sentence for the person who typed it."""


def _is_invisible(char: str) -> bool:
    return unicodedata.category(char) in _INVISIBLE_CATEGORIES


def strip_invisible(value: str) -> str:
    """`value` without invisible characters (categories Zs, Zl, Zp, Cc, Cf) at either end."""
    start, end = 0, len(value)
    while start < end and _is_invisible(value[start]):
        start += 1
    while end > start and _is_invisible(value[end - 1]):
        end -= 1
    return value[start:end]


# A plain ASCII dot-atom address that email-validator accepts unchanged except for case: local part of at
# most 64 characters, LDH domain labels, an alphabetic TLD. Only used to skip the full validator on the bulk
# import path; anything it does not match takes the full path, so the result never differs (property-tested).
_FAST_EMAIL = re.compile(
    r"(?=[^@]{1,64}@)[-!#$%&'*+/=?^_`{}|~0-9a-z]+(?:\.[-!#$%&'*+/=?^_`{}|~0-9a-z]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\Z"
)
_ASCII_INVISIBLE = "".join(map(chr, [*range(33), 127]))  # the ASCII members of the categories above
_SPECIAL_SUFFIXES = tuple(f".{name}" for name in SPECIAL_USE_DOMAIN_NAMES)


def normalize_email(value: str) -> str:
    """The one stored form of an email address, or `InvalidEmail`.

    Steps: invisible characters (see `strip_invisible`) are dropped at the ends and refused inside; the
    address is checked by email-validator (RFC 5321/5322 syntax, RFC 6531/6532 internationalized local
    parts, IDNA 2008 domains, local part at most 64 characters per RFC 5321 4.5.3.1.1, no DNS lookups,
    special-use domains such as ``.test``/``.local`` refused); the result is NFC and lowercased with
    `str.lower` (the long-standing rule; ß stays ß so ``straße`` and ``strasse`` stay two mailboxes, ẞ
    becomes ß, İ becomes i + U+0307). The domain is stored in its Unicode form (IDNA 2008 decoded), so
    ``info@bäckerei.example`` written as NFC, NFD or ``xn--bckerei-5wa`` is one value: an address with a
    non-ASCII local part is not ASCII anyway, the Unicode form is what people read and search for, and it is
    the shorter one in the 254-character column; a sender needing ASCII converts the domain with IDNA.
    At most `EMAIL_MAX_LENGTH` (254) characters."""
    if not isinstance(value, str):
        raise InvalidEmail("Enter an email address.")
    if value.isascii():
        text = value.strip(_ASCII_INVISIBLE).lower()
        if len(text) <= EMAIL_MAX_LENGTH and _FAST_EMAIL.match(text) and not _special_use(text):
            return text
    return _normalize_email_full(value)


def _special_use(address: str) -> bool:
    """Special-use domain (refused), or a label with "--" (``xn--`` punycode: the full path decodes it)."""
    domain = address.rpartition("@")[2]
    return "--" in domain or domain in SPECIAL_USE_DOMAIN_NAMES or domain.endswith(_SPECIAL_SUFFIXES)


def _normalize_email_full(value: str) -> str:
    text = strip_invisible(value)
    if not text:
        raise InvalidEmail("Enter an email address.")
    if any(_is_invisible(c) for c in text):
        raise InvalidEmail("The address contains a space or an invisible character.")
    text = unicodedata.normalize("NFC", text)
    try:
        checked = validate_email(text, check_deliverability=False, allow_smtputf8=True, strict=True)
    except EmailNotValidError as exc:
        raise InvalidEmail(f"Not a valid email address: {exc}") from None
    email = unicodedata.normalize("NFC", checked.normalized.lower())
    if len(email) > EMAIL_MAX_LENGTH:
        raise InvalidEmail(f"An email address has at most {EMAIL_MAX_LENGTH} characters.")
    return email


def email_lookup_key(value: str) -> str:
    """`normalize_email(value)` for lookups (dedupe, merge, suppression, unsubscribe), or "" when the value
    is not an address: an invalid address matches no contact."""
    try:
        return normalize_email(value)
    except InvalidEmail:
        return ""


def email_is_valid(value: str) -> bool:
    return bool(email_lookup_key(value))


def normalize_domain(value: str) -> str:
    """A company domain as stored: scheme, path, query, port and ``www.`` dropped, lowercased, and in Unicode
    form (IDNA 2008 with UTS #46 mapping) when it is a valid host name, so ``xn--bckerei-5wa.example`` and
    ``Bäckerei.example`` are one company, as for email domains. A value that is not a host name comes back
    lowercased as it was; `domain_clean` refuses it instead."""
    value = strip_invisible(value or "").lower()
    for prefix in ("https://", "http://"):
        if value.startswith(prefix):
            value = value[len(prefix) :]
    value = re.split(r"[/?#]", value, maxsplit=1)[0]
    value = value.removeprefix("www.")
    host = value.rsplit(":", 1)[0] if value.rsplit(":", 1)[-1].isdigit() else value
    try:
        return idna.decode(idna.encode(host.rstrip("."), uts46=True))
    except (idna.IDNAError, UnicodeError):
        return value


def json_finite(value):
    """`value` (decoded JSON: dicts, lists, scalars) with every NaN/±inf float replaced by None.

    JSON has no non-finite numbers (RFC 8259 section 6) and PostgreSQL's jsonb refuses them, but Python's json
    module reads and writes ``NaN``/``Infinity``: an outside answer carrying one must not fail the write."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_finite(v) for v in value]
    return value


DOMAIN_MAX_LENGTH = Company._meta.get_field("domain").max_length


def domain_clean(value: str) -> str:
    """`normalize_domain(value)` when it is a host name (IDNA 2008 with UTS #46 mapping, labels of at most 63
    characters, at most 253 characters); `ValueError` with a sentence otherwise."""
    domain = normalize_domain(value)
    if len(domain) > DOMAIN_MAX_LENGTH:
        raise ValueError(f"A domain has at most {DOMAIN_MAX_LENGTH} characters.")
    try:
        idna.encode(domain, uts46=True)
    except (idna.IDNAError, UnicodeError):
        raise ValueError("Expected a domain such as example.com.") from None
    return domain


PLACEHOLDER_SUFFIX = ".unknown"


def placeholder_domain(name: str) -> str:
    """The stand-in domain of a company known only by its name, one key for every way a name arrives (the
    API, forms, imports, enrichment): ``slugify(name, allow_unicode=True)`` + ``.unknown`` (``Acme Corp`` →
    ``acme-corp.unknown``, ``Bäckerei Müller`` → ``bäckerei-müller.unknown``). A name with no letter or digit
    is keyed by a 12-hex SHA-256 of it; a key longer than the column keeps its start and that digest, so two
    long names stay two companies. Only word characters and hyphens before the suffix: nothing `normalize_domain` would cut."""
    name = strip_invisible(name or "").strip()
    key = slugify(name, allow_unicode=True).strip("-_")
    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    room = DOMAIN_MAX_LENGTH - len(PLACEHOLDER_SUFFIX)
    if not key:
        key = f"company-{digest}"
    elif len(key) > room:
        key = f"{key[: room - len(digest) - 1]}-{digest}"
    return key + PLACEHOLDER_SUFFIX


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
        if d is None:  # names no definition of the workspace: a missing row (the API's 404), not a bad shape
            errors[f"custom.{key}"] = ValidationError("Unknown custom field.", code=MISSING)
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


CUSTOM_TEXT_MAX = 1000
# Excel's 1900 date system: serial day 1 is 1900-01-01, counted from 1899-12-30 because Excel keeps the
# non-existent 1900-02-29 (ECMA-376 Part 1, 18.17.4.1); 2958465 is 9999-12-31, the largest serial.
_EXCEL_EPOCH = dt.date(1899, 12, 30)
_EXCEL_MAX_SERIAL = 2958465


def _coerce_custom(d: CustomFieldDefinition, value):
    """One custom value in its stored JSON form, or `ValueError` with a sentence for the user.

    number: finite int or float (``NaN``/``inf``/``1e400`` refused); date: ISO ``YYYY-MM-DD`` from a date, a
    date-time (its date part, as written: no time-zone shift), ISO text with or without a time, or an Excel
    serial day number; bool: yes/no words; choice: one of the choices; text: at most 1,000 characters."""
    if d.type == FieldType.NUMBER:
        if isinstance(value, bool):
            raise ValueError("Expected a number.")
        try:
            number = float(str(value).strip())
        except ValueError:
            raise ValueError("Expected a number.") from None
        if not math.isfinite(number):
            raise ValueError("Expected a finite number.")
        return int(number) if number.is_integer() else number
    if d.type == FieldType.DATE:
        return _coerce_date(value).isoformat()
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
    text = str(value)
    if "\x00" in text:
        raise ValueError("Text cannot contain a NUL character.")
    if len(text) > CUSTOM_TEXT_MAX:
        raise ValueError(f"Longer than {CUSTOM_TEXT_MAX} characters.")
    return text


def _coerce_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if text.isdigit() and 0 < int(text) <= _EXCEL_MAX_SERIAL and len(text) <= 7:
        return _EXCEL_EPOCH + dt.timedelta(days=int(text))
    try:
        parsed = parse_date(text) or parse_datetime(text)
    except ValueError:
        parsed = None
    if parsed is None:
        raise ValueError("Expected a date (YYYY-MM-DD).")
    return parsed.date() if isinstance(parsed, dt.datetime) else parsed
