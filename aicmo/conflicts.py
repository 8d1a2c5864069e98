"""Refusals that depend on the current state rather than on the request's shape.

A name already used in the workspace, or a transition the object's state does not allow now: the same
request could succeed against another state, so it is not malformed. Services raise `Conflict` (a Django
``ValidationError``, so forms, admin and dashboards show it like any other); the API answers it — and any
validation failure made only of uniqueness errors — with **409** and the shared error body
(``aicmo.api.errors``).

An id in a request body that names no row of the workspace (a related field's or ``resolve_ids``'
``does_not_exist``) is the same kind of refusal: the request is well-formed and would succeed once that row
exists. The API answers it with **404** ``not_found`` and the fields naming the ids (as Stripe answers a
body reference to a missing object, ``resource_missing``), or 409 when a conflict comes with it.
Everything else a request gets wrong stays a 400.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

CONFLICT = "conflict"
# Ours, plus the codes Django (Model.validate_unique, UniqueConstraint) and DRF (UniqueValidator,
# UniqueTogetherValidator) give a value already taken.
CONFLICT_CODES = frozenset({CONFLICT, "unique", "unique_together"})
# DRF's related fields and aicmo.tenancy.resolve_ids: an id that names no row of the workspace.
MISSING = "does_not_exist"
MISSING_CODES = frozenset({MISSING})


def _coded(value, code: str) -> ValidationError:
    if isinstance(value, ValidationError):
        return value
    if isinstance(value, list | tuple):
        return ValidationError([_coded(item, code) for item in value])
    return ValidationError(value, code=code)


class Conflict(ValidationError):
    """``Conflict("Cannot pause a campaign that is draft.")`` or ``Conflict({"name": "Already used."})``:
    every message carries the code ``conflict`` (Django drops a code given beside a dict or list)."""

    def __init__(self, message, code: str = CONFLICT, params=None):
        if isinstance(message, dict):
            message = {field: _coded(value, code) for field, value in message.items()}
        elif isinstance(message, list | tuple):
            message = [_coded(item, code) for item in message]
        super().__init__(message, code, params)


def taken(message: str) -> ValidationError:
    """One field's "already used" message, for an errors dict that may also hold plain 400 messages:
    ``errors["name"] = taken("A segment with this name already exists.")``."""
    return ValidationError(message, code=CONFLICT)
