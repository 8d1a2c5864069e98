"""Segment rule trees: validation with path-addressed errors and compilation to ONE Django ``Q``.

A tree is a group ``{"op": "and"|"or", "rules": [...]}`` whose rules are groups or conditions
``{"field": ..., "operator": ..., "value": ...}``. Nothing is evaluated per contact in Python: the
compiled ``Q`` (with subqueries for tags and suppression) is handed to the database as one query.
Text comparisons are case-insensitive; negative operators (``neq``, ``not_contains``, ``not_in``,
``lacks_tag``) are the exact complement of their positive twin, so missing values match them.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.db.models import F, FloatField, Func, Q, QuerySet, TextField
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from aicmo.models import Workspace

from .models import (
    Channel,
    Contact,
    CustomFieldDefinition,
    FieldType,
    Lifecycle,
    Segment,
    Suppression,
    Tier,
    Verdict,
)

MAX_DEPTH = 12
MAX_CONDITIONS = 200
MAX_DAYS = 100_000  # relative-date operators; larger would overflow a datetime

TEXT_OPS = {
    "eq",
    "neq",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "in",
    "not_in",
    "empty",
    "not_empty",
}
NUMBER_OPS = {"eq", "neq", "gt", "gte", "lt", "lte", "between", "in", "not_in", "empty", "not_empty"}
DATE_OPS = {
    "eq",
    "neq",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "within_last_days",
    "more_than_days_ago",
    "empty",
    "not_empty",
}
CHOICE_OPS = {"eq", "neq", "in", "not_in", "empty", "not_empty"}
BOOL_OPS = {"eq", "neq", "empty", "not_empty"}
NO_VALUE_OPS = {"empty", "not_empty"}


@dataclass(frozen=True)
class FieldSpec:
    kind: str  # text | number | date | choice | bool | tags | suppression
    path: str = ""  # ORM path
    nullable: bool = False
    choices: tuple[str, ...] = ()
    json_key: str = ""  # set for custom fields
    label: str = ""  # what the builder shows; custom fields: the definition's label


FIELDS: dict[str, FieldSpec] = {
    "email": FieldSpec("text", "email"),
    "first_name": FieldSpec("text", "first_name"),
    "last_name": FieldSpec("text", "last_name"),
    "title": FieldSpec("text", "title"),
    "phone": FieldSpec("text", "phone"),
    "source": FieldSpec("text", "source"),
    "company": FieldSpec("text", "company__name", nullable=True),
    "company_domain": FieldSpec("text", "company__domain", nullable=True),
    "lifecycle": FieldSpec("choice", "lifecycle", choices=tuple(Lifecycle.values)),
    "verification": FieldSpec("choice", "verification", choices=(*Verdict.values, "")),
    "engagement_tier": FieldSpec("choice", "engagement_tier", choices=(*Tier.values, "")),
    "tier": FieldSpec("choice", "engagement_tier", choices=(*Tier.values, "")),
    "engagement_score": FieldSpec("number", "engagement_score"),
    "score": FieldSpec("number", "engagement_score"),
    "created_at": FieldSpec("date", "created_at"),
    "updated_at": FieldSpec("date", "updated_at"),
    "last_engaged_at": FieldSpec("date", "last_engaged_at", nullable=True),
    "enriched_at": FieldSpec("date", "enriched_at", nullable=True),
    "verified_at": FieldSpec("date", "verified_at", nullable=True),
    "tags": FieldSpec("tags"),
    "suppression": FieldSpec("suppression", choices=("any", *Channel.values)),
}
# What the visual builder shows for each built-in field (the rule JSON keeps the key).
FIELD_LABELS = {
    "email": "Email",
    "first_name": "First name",
    "last_name": "Last name",
    "title": "Job title",
    "phone": "Phone",
    "source": "Source",
    "company": "Company name",
    "company_domain": "Company domain",
    "lifecycle": "Lifecycle stage",
    "verification": "Email verification",
    "engagement_tier": "Engagement tier",
    "tier": "Engagement tier",
    "engagement_score": "Engagement score",
    "score": "Engagement score",
    "created_at": "Created",
    "updated_at": "Last changed",
    "last_engaged_at": "Last engaged",
    "enriched_at": "Enriched",
    "verified_at": "Verified",
    "tags": "Tags",
    "suppression": "Suppressed on",
}
OPERATORS_BY_KIND = {
    "text": TEXT_OPS,
    "number": NUMBER_OPS,
    "date": DATE_OPS,
    "choice": CHOICE_OPS | {"lifecycle_in"},
    "bool": BOOL_OPS,
    "tags": {"has_tag", "lacks_tag"},
    "suppression": {"suppressed", "not_suppressed"},
}
CUSTOM_KIND = {
    FieldType.TEXT: "text",
    FieldType.NUMBER: "number",
    FieldType.DATE: "date",
    FieldType.BOOL: "bool",
    FieldType.CHOICE: "choice",
}


# How a builder asks for each operator's value: "text" (one value typed for the field's kind), "range"
# ([low, high]), "list" (non-empty list), "none" (no value), "days" (whole number of days), "tags" (a tag
# name or a list of names), "channel" (any or a suppression channel).
OPERATORS: dict[str, tuple[str, str]] = {
    "eq": ("equals", "text"),
    "neq": ("does not equal", "text"),
    "contains": ("contains", "text"),
    "not_contains": ("does not contain", "text"),
    "starts_with": ("starts with", "text"),
    "ends_with": ("ends with", "text"),
    "in": ("is one of", "list"),
    "not_in": ("is none of", "list"),
    "lifecycle_in": ("stage is one of", "list"),
    "empty": ("is empty", "none"),
    "not_empty": ("is not empty", "none"),
    "gt": ("greater than / after", "text"),
    "gte": ("at least / on or after", "text"),
    "lt": ("less than / before", "text"),
    "lte": ("at most / on or before", "text"),
    "between": ("between", "range"),
    "within_last_days": ("within the last N days", "days"),
    "more_than_days_ago": ("more than N days ago", "days"),
    "has_tag": ("has tag", "tags"),
    "lacks_tag": ("lacks tag", "tags"),
    "suppressed": ("is suppressed on", "channel"),
    "not_suppressed": ("is not suppressed on", "channel"),
}


class SegmentRuleError(ValueError):
    """Invalid rules, or a saved segment that no longer compiles; ``errors`` maps a path such as
    ``rules[1].rules[0].value`` to a message. Every surface (API 400, dashboard/admin message) shows it
    through `segment_error_messages`."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k or 'rules'}: {v}" for k, v in errors.items()))
        self.errors = errors


def segment_error_messages(exc: SegmentRuleError) -> dict[str, str]:
    """The one wording of a rule error, keyed ``rules`` / ``rules.<path>`` (API field errors, form messages)."""
    return {f"rules.{k}" if k and k != "rules" else "rules": v for k, v in exc.errors.items()}


class JSONNumber(Func):
    """``custom -> key`` as a double where the stored JSON value is a number, else NULL.

    A plain CAST of the text value fails on PostgreSQL for non-numeric text ("abc"::double precision is an
    error) and silently reads "12abc" as 12 on SQLite; checking the JSON type first (``jsonb_typeof`` on
    PostgreSQL, ``json_type`` on SQLite, both documented JSON functions) inside a CASE means only real
    numbers are cast, on both databases, and text under a numeric comparison simply does not match."""

    output_field = FloatField()

    def __init__(self, key: str, column: str = "custom"):
        super().__init__(F(column))
        self.key = key

    def as_sql(self, compiler, connection, **extra_context):
        col_sql, col_params = compiler.compile(self.source_expressions[0])
        if connection.vendor == "postgresql":
            sql = (
                f"CASE WHEN jsonb_typeof({col_sql} -> %s) = 'number' "
                f"THEN ({col_sql} ->> %s)::double precision END"
            )
            return sql, (*col_params, self.key, *col_params, self.key)
        path = '$."' + self.key + '"'
        sql = (
            f"CASE WHEN json_type({col_sql}, %s) IN ('integer', 'real') "
            f"THEN CAST(json_extract({col_sql}, %s) AS REAL) END"
        )
        return sql, (*col_params, path, *col_params, path)


def custom_field_specs(workspace: Workspace | int) -> dict[str, FieldSpec]:
    specs = {}
    for d in CustomFieldDefinition.objects.for_workspace(workspace).only("key", "type", "choices", "label"):
        specs[f"custom.{d.key}"] = FieldSpec(
            CUSTOM_KIND[d.type],
            f"custom__{d.key}",
            nullable=True,
            choices=tuple(d.choices or ()),
            json_key=d.key,
            label=d.label,
        )
    return specs


def field_catalog(workspace: Workspace | int) -> dict[str, dict]:
    """Fields and operators a segment builder may offer (built-ins plus this workspace's custom fields)."""
    specs = {**FIELDS, **custom_field_specs(workspace)}
    return {
        name: {
            "label": spec.label or FIELD_LABELS.get(name, name),
            "kind": spec.kind,
            "operators": sorted(OPERATORS_BY_KIND[spec.kind]),
            "choices": list(spec.choices),
        }
        for name, spec in specs.items()
        if name != "tier"
    }


def operator_catalog() -> dict[str, dict]:
    """Label and value shape of every operator, for the visual builder (the JS has no operator list)."""
    return {name: {"label": label, "input": shape} for name, (label, shape) in OPERATORS.items()}


class _Compiler:
    def __init__(self, workspace: Workspace | int, now: dt.datetime | None = None):
        self.workspace = workspace
        self.now = now or timezone.now()
        self.errors: dict[str, str] = {}
        self.conditions = 0
        self._custom: dict[str, FieldSpec] | None = None

    def spec_for(self, name: str) -> FieldSpec | None:
        if name.startswith("custom."):
            if self._custom is None:
                self._custom = custom_field_specs(self.workspace)
            return self._custom.get(name)
        return FIELDS.get(name)

    def err(self, path: str, message: str) -> None:
        self.errors.setdefault(path, message)

    def node(self, node, path: str, depth: int) -> Q | None:
        if not isinstance(node, dict):
            self.err(path or "rules", "Expected an object (a group or a condition).")
            return None
        if "rules" in node or "op" in node:
            return self.group(node, path, depth)
        return self.condition(node, path)

    def group(self, node: dict, path: str, depth: int) -> Q | None:
        prefix = f"{path}." if path else ""
        if depth > MAX_DEPTH:
            self.err(path or "rules", f"Groups may be nested at most {MAX_DEPTH} levels deep.")
            return None
        op = str(node.get("op", "and")).lower()
        if op not in {"and", "or"}:
            self.err(f"{prefix}op", 'Must be "and" or "or".')
        rules = node.get("rules")
        if not isinstance(rules, list) or not rules:
            self.err(f"{prefix}rules", "A group needs a non-empty list of rules.")
            return None
        parts = [self.node(child, f"{prefix}rules[{i}]", depth + 1) for i, child in enumerate(rules)]
        if any(p is None for p in parts):
            return None
        combined = parts[0]
        for part in parts[1:]:
            combined = (combined | part) if op == "or" else (combined & part)
        return combined

    def condition(self, node: dict, path: str) -> Q | None:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            self.err(path, f"A segment may have at most {MAX_CONDITIONS} conditions.")
            return None
        name = node.get("field")
        operator = node.get("operator")
        spec = self.spec_for(name) if isinstance(name, str) else None
        if spec is None:
            self.err(f"{path}.field", f"Unknown field {name!r}.")
            return None
        allowed = OPERATORS_BY_KIND[spec.kind]
        if not isinstance(operator, str) or operator not in allowed:
            self.err(
                f"{path}.operator",
                f"Operator {operator!r} is not available for {name}; use one of "
                f"{', '.join(sorted(allowed))}.",
            )
            return None
        value = node.get("value")
        vpath = f"{path}.value"
        if spec.kind == "tags":
            return self.tags(operator, value, vpath)
        if spec.kind == "suppression":
            return self.suppression(operator, value, vpath)
        if operator in NO_VALUE_OPS:
            return self.emptiness(spec, operator == "empty")
        return self.compare(spec, operator, value, vpath)

    def tags(self, operator: str, value, vpath: str) -> Q | None:
        names = value if isinstance(value, list) else [value]
        if not names or not all(
            isinstance(v, str | int) and not isinstance(v, bool) and str(v).strip() and "\x00" not in str(v)
            for v in names
        ):
            self.err(vpath, "Give a tag name (or a list of names).")
            return None
        links = Contact.tags.through.objects.filter(
            tag__workspace=self.workspace, tag__name__in=[str(n) for n in names]
        )
        q = Q(pk__in=links.values("contact_id"))
        return q if operator == "has_tag" else ~q

    def suppression(self, operator: str, value, vpath: str) -> Q | None:
        channel = value or "any"
        if channel != "any" and channel not in Channel.values:
            self.err(vpath, f"Channel must be one of any, {', '.join(Channel.values)}.")
            return None
        sup = Suppression.objects.filter(workspace=self.workspace)
        if channel != "any":
            sup = sup.filter(channel=channel)
        q = Q(pk__in=sup.values("contact_id"))
        return q if operator == "suppressed" else ~q

    def emptiness(self, spec: FieldSpec, empty: bool) -> Q:
        if spec.json_key:
            q = Q(**{f"{spec.path}__isnull": True}) | Q(**{f"{spec.path}": None})
            if spec.kind in {"text", "choice"}:
                q |= Q(**{f"custom__{spec.json_key}": ""})
            q = Q(pk__in=Contact.objects.filter(workspace=self.workspace).filter(q).values("pk"))
        elif spec.kind in {"text", "choice"}:
            q = Q(**{spec.path: ""})
            if spec.nullable:
                q |= Q(**{f"{spec.path}__isnull": True})
        else:
            q = Q(**{f"{spec.path}__isnull": True})
        return q if empty else ~q

    def _lhs(self, spec: FieldSpec) -> tuple[str, dict]:
        """The ORM path to compare and annotations it needs (custom fields are cast per type)."""
        if not spec.json_key:
            return (f"{spec.path}__date" if spec.kind == "date" else spec.path), {}
        alias = f"_c_{spec.json_key}"
        if spec.kind == "number":
            return alias, {alias: JSONNumber(spec.json_key)}
        if spec.kind == "bool":
            return f"custom__{spec.json_key}", {}
        return alias, {alias: Cast(KT(f"custom__{spec.json_key}"), TextField())}

    def coerce(self, spec: FieldSpec, value, vpath: str):
        if spec.kind == "number":
            if isinstance(value, bool):
                raise ValueError("Expected a number.")
            try:
                number = float(Decimal(str(value)))
            except (InvalidOperation, ValueError):
                raise ValueError("Expected a number.") from None
            if not math.isfinite(number):
                raise ValueError("Expected a finite number.")
            return number
        if spec.kind == "date":
            if isinstance(value, dt.date):
                return value
            parsed = parse_date(str(value)) if value is not None else None
            if parsed is None and value is not None:
                parsed_dt = parse_datetime(str(value))
                parsed = parsed_dt.date() if parsed_dt else None
            if parsed is None:
                raise ValueError("Expected a date (YYYY-MM-DD).")
            return parsed.isoformat() if spec.json_key else parsed
        if spec.kind == "bool":
            if isinstance(value, bool):
                return value
            if str(value).lower() in {"true", "1", "yes"}:
                return True
            if str(value).lower() in {"false", "0", "no"}:
                return False
            raise ValueError("Expected true or false.")
        if spec.kind == "choice":
            if not isinstance(value, str) or (spec.choices and value not in spec.choices):
                raise ValueError(f"Expected one of: {', '.join(c or '(blank)' for c in spec.choices)}.")
            return value
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise ValueError("Expected text.")
        if "\x00" in str(value):
            raise ValueError("Text must not contain NUL characters.")
        return str(value)

    def compare(self, spec: FieldSpec, operator: str, value, vpath: str) -> Q | None:
        lhs, annotations = self._lhs(spec)
        try:
            if operator in {"within_last_days", "more_than_days_ago"}:
                if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
                    raise ValueError("Expected a whole number of days.")
                if int(value) > MAX_DAYS:
                    raise ValueError(f"At most {MAX_DAYS} days.")
                cutoff = self.now - dt.timedelta(days=int(value))
                if spec.json_key:
                    cut = cutoff.date().isoformat()
                    positive = (
                        Q(**{f"{lhs}__gte": cut})
                        if operator == "within_last_days"
                        else Q(**{f"{lhs}__lt": cut})
                    )
                    return self._wrap(positive, annotations, spec, negate=False)
                path = spec.path
                positive = (
                    Q(**{f"{path}__gte": cutoff})
                    if operator == "within_last_days"
                    else Q(**{f"{path}__lt": cutoff})
                )
                return positive
            if operator == "between":
                if not isinstance(value, list | tuple) or len(value) != 2:
                    raise ValueError("Expected [low, high].")
                # [high, low] means the same range: ordered here rather than refused
                low, high = sorted(self.coerce(spec, v, vpath) for v in value)
                return self._wrap(
                    Q(**{f"{lhs}__gte": low}) & Q(**{f"{lhs}__lte": high}), annotations, spec, False
                )
            if operator in {"in", "not_in", "lifecycle_in"}:
                if not isinstance(value, list) or not value:
                    raise ValueError("Expected a non-empty list.")
                items = [self.coerce(spec, v, vpath) for v in value]
                if spec.kind == "text":
                    positive = Q()
                    for item in items:
                        positive |= Q(**{f"{lhs}__iexact": item})
                else:
                    positive = Q(**{f"{lhs}__in": items})
                return self._wrap(positive, annotations, spec, operator == "not_in")
            coerced = self.coerce(spec, value, vpath)
        except ValueError as exc:
            self.err(vpath, str(exc))
            return None
        if spec.kind == "text":
            lookup = {
                "eq": "iexact",
                "neq": "iexact",
                "contains": "icontains",
                "not_contains": "icontains",
                "starts_with": "istartswith",
                "ends_with": "iendswith",
            }[operator]
            negate = operator in {"neq", "not_contains"}
            return self._wrap(Q(**{f"{lhs}__{lookup}": coerced}), annotations, spec, negate)
        if operator in {"eq", "neq"}:
            return self._wrap(Q(**{lhs: coerced}), annotations, spec, operator == "neq")
        return self._wrap(Q(**{f"{lhs}__{operator}": coerced}), annotations, spec, False)

    def _wrap(self, positive: Q, annotations: dict, spec: FieldSpec, negate: bool) -> Q:
        """Annotations become subqueries on the same table so the result stays a plain ``Q``."""
        if spec.json_key:
            ids = Contact.objects.filter(workspace=self.workspace).annotate(**annotations).filter(positive)
            positive = Q(pk__in=ids.values("pk"))
        elif spec.nullable and negate:
            # NULL never equals anything, so the complement must include NULLs explicitly.
            return ~positive | Q(**{f"{spec.path}__isnull": True})
        return ~positive if negate else positive


def validate_rules(rules, workspace: Workspace | int) -> dict[str, str]:
    compiler = _Compiler(workspace)
    compiler.node(rules, "", 0)
    return compiler.errors


def compile_rules(rules, workspace: Workspace | int, *, now: dt.datetime | None = None) -> Q:
    compiler = _Compiler(workspace, now)
    q = compiler.node(rules, "", 0)
    if compiler.errors or q is None:
        raise SegmentRuleError(compiler.errors or {"rules": "Invalid rules."})
    return q


def segment_queryset(
    rules, workspace: Workspace | int, *, now: dt.datetime | None = None
) -> QuerySet[Contact]:
    return Contact.objects.for_workspace(workspace).filter(compile_rules(rules, workspace, now=now))


def saved_segment_q(segment: Segment, *, now: dt.datetime | None = None) -> Q:
    """The ``Q`` of a saved segment, the one door every surface uses (list, exports, counts, runs).

    Raises `SegmentRuleError` when the segment is marked broken (a field or tag it used was deleted or
    retyped) or its rules no longer compile."""
    if segment.broken_reason:
        raise SegmentRuleError({"rules": f"Segment {segment.name!r} is broken: {segment.broken_reason}"})
    return compile_rules(segment.rules, segment.workspace_id, now=now)


def rule_conditions(node):
    """Every condition dict of a rule tree (depth-first), tolerating malformed trees."""
    if isinstance(node, dict):
        if isinstance(node.get("rules"), list):
            for child in node["rules"]:
                yield from rule_conditions(child)
        elif "field" in node:
            yield node


def segments_using_field(workspace: Workspace | int, name: str) -> list[Segment]:
    """Saved segments with a condition on field `name` (e.g. ``custom.budget``)."""
    return [
        s
        for s in Segment.objects.for_workspace(workspace)
        if any(c.get("field") == name for c in rule_conditions(s.rules))
    ]


def _condition_tags(condition: dict) -> list[str]:
    value = condition.get("value")
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def segments_using_tag(workspace: Workspace | int, tag_name: str) -> list[Segment]:
    """Saved segments with a has_tag/lacks_tag condition naming `tag_name`."""
    return [
        s
        for s in Segment.objects.for_workspace(workspace)
        if any(c.get("field") == "tags" and tag_name in _condition_tags(c) for c in rule_conditions(s.rules))
    ]


__all__ = [
    "FIELDS",
    "SegmentRuleError",
    "compile_rules",
    "custom_field_specs",
    "rule_conditions",
    "saved_segment_q",
    "segment_error_messages",
    "segments_using_field",
    "segments_using_tag",
    "field_catalog",
    "operator_catalog",
    "segment_queryset",
    "validate_rules",
]
