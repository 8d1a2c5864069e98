"""Filter backends and the query-parameter contract of API views.

The schema (``aicmo.api.schema.AutoSchema``) and the request check (``WorkspaceScopedMixin``) both read
``query_param_names(view)``, so a list documents exactly the parameters it accepts and answers 400 for any
other (a typo must not silently return every row). ``query_value_errors(request)`` then holds every value of
a choice or boolean parameter to the published schema (an empty ``?kind=`` is not "no filter").

Filters by a related row's id are ``IdFilter``s (``FilterSet``, ``DjangoFilterBackend``): an id with no row
in the workspace answers an empty list.
"""

from __future__ import annotations

import datetime as dt
import re

import django_filters
from django import forms
from django.db import models
from django_filters.fields import IsoDateTimeField
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from django_filters.rest_framework import DjangoFilterBackend as BaseDjangoFilterBackend
from drf_spectacular.utils import extend_schema_field
from rest_framework import filters, serializers

# DRF's own switches, valid on every view and deliberately not part of the documented contract.
ALWAYS_ALLOWED = frozenset({"format"})

# Ids are BigAutoField: a larger number names no row, and SQLite cannot even bind it (OverflowError).
MAX_ID = 2**63 - 1
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}


@extend_schema_field(ID_SCHEMA)
class IdFilter(django_filters.NumberFilter):
    """A filter by the id of a related row: an integer 1 … MAX_ID (anything else is a 400 naming the
    parameter). An id that names no row of the caller's workspace matches nothing, so the list is empty:
    the queryset being filtered is already workspace-scoped, and a filter is a condition on rows, not a
    lookup. (django-filter's default for a foreign key, ModelChoiceFilter, answered 400 "Select a valid
    choice" for an id with no row and checked it against every workspace's rows.)"""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class UtcIsoDateTimeField(IsoDateTimeField):
    """ISO 8601 allows offsets up to ±23:59, PostgreSQL only ±15:59 (a DataError, i.e. a 500): the value is
    compared in UTC instead. A value that falls outside years 1–9999 in UTC is a 400."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00+23:00 falls before year 1 in UTC
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class UtcIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    """The date-time filter of every API list (``FilterSet`` maps model DateTimeFields to it)."""

    field_class = UtcIsoDateTimeField


class FilterSet(django_filters.FilterSet):
    """The API's FilterSet base: foreign keys (``filterset_fields = ["contact"]`` or a Meta field) are
    ``IdFilter``s. Every FilterSet of an API module derives from it; ``DjangoFilterBackend`` builds the
    ``filterset_fields`` ones from it."""

    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        models.ForeignKey: {"filter_class": IdFilter},
        models.OneToOneField: {"filter_class": IdFilter},
        models.DateTimeField: {"filter_class": UtcIsoDateTimeFilter},
    }


class DjangoFilterBackend(BaseDjangoFilterBackend):
    """django-filter's backend (``DEFAULT_FILTER_BACKENDS``), building ``filterset_fields`` FilterSets from
    ``FilterSet``; documented by ``aicmo.api.schema.FilterBoundsExtension``."""

    filterset_base = FilterSet


class SearchFilter(filters.SearchFilter):
    """DRF's search, offered (and documented) only by views that declare ``search_fields``."""

    def get_schema_operation_parameters(self, view):
        return super().get_schema_operation_parameters(view) if getattr(view, "search_fields", None) else []


def filters_apply(view) -> bool:
    """The view's filter backends and paginator act on this action: lists and ``filtered_actions``."""
    action = getattr(view, "action", None)
    return action == "list" or action in getattr(view, "filtered_actions", ())


def paginates(view) -> bool:
    action = getattr(view, "action", None)
    return getattr(view, "pagination_class", None) is not None and (
        action == "list" or action in getattr(view, "paginated_actions", ())
    )


def query_param_names(view) -> frozenset[str]:
    """Names of the query parameters ``view`` accepts for its current action (filters, search, ordering,
    pagination, and the view's ``query_parameters[action]`` extras: OpenApiParameters or query Serializer
    classes)."""
    names: set[str] = set()
    if filters_apply(view):
        for backend_class in view.filter_backends:
            backend = backend_class()
            if isinstance(backend, BaseDjangoFilterBackend):
                filterset = backend.get_filterset_class(view, view.get_queryset())
                names.update(filterset.base_filters if filterset else ())
            else:
                names.update(p["name"] for p in backend.get_schema_operation_parameters(view))
    if paginates(view):
        names.update(p["name"] for p in view.paginator.get_schema_operation_parameters(view))
    for extra in getattr(view, "query_parameters", {}).get(view.action, ()):
        # an OpenApiParameter, or a Serializer class whose fields are the parameters (as in extend_schema)
        if isinstance(extra, type) and issubclass(extra, serializers.Serializer):
            names.update(extra().fields)
        else:
            names.add(extra.name)
    return frozenset(names | ALWAYS_ALLOWED)


def _choice_words(values) -> list[str]:
    return ["true" if v is True else "false" if v is False else str(v) for v in values]


WHOLE_NUMBER = re.compile(r"-?[0-9]+")
EMPTY = "Must not be empty."
NOT_WHOLE = "Must be a whole number."
NUL = "Null characters are not allowed."


def _shape_error(schema: dict, values: list[str]) -> str | None:
    """An empty value where the schema needs one (a number, a date or date-time, a string of ``minLength``
    1 or more), a value of an integer parameter that is not a whole number (``?min_score=0.5``), or a
    value holding NUL."""
    kind = schema.get("type")
    needs_value = (
        kind in ("integer", "number")
        or schema.get("format") in ("date", "date-time")
        or schema.get("minLength", 0) >= 1
    )
    if needs_value and "" in values:
        return EMPTY
    if kind == "integer" and not all(WHOLE_NUMBER.fullmatch(value) for value in values):
        return NOT_WHOLE
    if any("\x00" in value for value in values):  # no text column, filter or search holds NUL
        return NUL
    return None


def query_value_errors(request) -> dict[str, list[str]]:
    """Query parameter name → messages, for every value the operation's published schema refuses by
    choice, type or emptiness: an enum parameter's value outside its enum (``?kind=imgae``, and ``?kind=``:
    empty is a value like any other, not "absent", unless the enum lists ""), a boolean's anything but
    ``true`` or ``false`` (``?enabled=null``), an empty number, date or required-text value
    (``?date_to=``), an integer's value that is not a whole number, and a parameter that is not an array
    given twice, and NUL in any other value (the schema's pattern says so). Ranges, lengths and the
    formats of non-empty values stay with the filters and query serializers, which report them by name.

    (DRF and django-filter read an empty value, and ``null``/``unknown`` for a boolean, as "no filter":
    the schema says otherwise, so a client's mistake would silently answer every row.)"""
    from .bodies import operation_for, resolve

    operation = operation_for(request.method, request.path)
    if operation is None:
        return {}
    errors: dict[str, list[str]] = {}
    for parameter in operation.get("parameters", ()):
        name = parameter.get("name")
        if parameter.get("in") != "query" or name not in request.query_params:
            continue
        schema = resolve(parameter.get("schema", {}))
        values = request.query_params.getlist(name)
        if schema.get("type") == "array":
            schema = resolve(schema.get("items", {}))
            if parameter.get("explode") is False:
                values = [part for value in values for part in value.split(",")]
        elif len(values) > 1:
            errors[name] = ["Give this parameter once."]
            continue
        if "enum" in schema:
            allowed = _choice_words(schema["enum"])
            wrong = [value for value in values if value not in allowed]
        elif schema.get("type") == "boolean":
            allowed, wrong = ["true", "false"], [value for value in values if value not in ("true", "false")]
        else:
            message = _shape_error(schema, values)
            if message:
                errors[name] = [message]
            continue
        if wrong:
            errors[name] = [
                f'"{value}" is not one of: {", ".join(allowed)}.'
                if value
                else f"Give one of: {', '.join(allowed)}."
                for value in dict.fromkeys(wrong)
            ]
    return errors
