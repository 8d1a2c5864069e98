"""CRM API: contacts (+bulk upsert, export, GDPR, consent), companies, tags, lists, segments, imports,
enrichment runs and custom fields. Serializers validate; services act."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from aicmo.api import (
    WorkspaceGenericViewSet,
    WorkspaceIdsField,
    WorkspaceReadOnlyViewSet,
    WorkspaceRelatedField,
    WorkspaceViewSet,
    id_parameter,
)
from aicmo.api.core import JobSerializer
from aicmo.api.fields import (
    SPREADSHEET_RULE,
    ColumnMappingField,
    EmailAddressField,
    FormattedTextField,
    spreadsheet_upload,
)
from aicmo.api.idempotency import idempotent
from aicmo.api.schema import NO_NUL, NOT_BLANK
from aicmo.conflicts import CONFLICT
from aicmo.roles import MANAGE, READ
from aicmo.tenancy import resolve_ids

from . import exporting, importing, services
from .filters import MAX_ID, ContactFilter
from .models import (
    Channel,
    Company,
    ConsentEvent,
    Contact,
    ContactList,
    CustomFieldDefinition,
    ErasedAddress,
    FieldType,
    ImportRun,
    Segment,
    Tag,
)
from .normalize import DOMAIN_MAX_LENGTH, InvalidEmail, email_lookup_key, normalize_email
from .segments import (
    FIELDS,
    MAX_CONDITIONS,
    MAX_DAYS,
    MAX_DEPTH,
    OPERATORS_BY_KIND,
    FieldSpec,
    SegmentRuleError,
    compile_rules,
    field_catalog,
    saved_segment_q,
    segment_error_messages,
)
from .segments import OPERATORS as SEGMENT_OPERATORS
from .selectors import attach_tag_names, contacts_for, lists_for
from .services.fields import KEY_PATTERN

BULK_LIMIT = 1000
PREVIEW_LIMIT = 50
SEGMENT_PARAM = id_parameter("segment", "Only contacts matching this segment's rules.")


def _ensure_unique(serializer, model, message: str, **lookup) -> None:
    """Per-workspace uniqueness as a field error (the DB constraint stays the final guard)."""
    qs = model.objects.for_workspace(serializer.context["workspace"]).filter(**lookup)
    if serializer.instance is not None:
        qs = qs.exclude(pk=serializer.instance.pk)
    if qs.exists():
        raise serializers.ValidationError(message, code=CONFLICT)


def segment_error_400(exc: SegmentRuleError, key: str | None = None) -> serializers.ValidationError:
    """A 400 with the rule errors keyed by path (``rules``, ``rules.rules[0].field``), or all of them under
    `key` when the segment was a parameter (``?segment=``, a run's ``segment``); same wording as the
    dashboard's message."""
    messages = segment_error_messages(exc)
    if key:
        return serializers.ValidationError({key: [f"{k}: {v}" for k, v in messages.items()]})
    return serializers.ValidationError(messages)


def segment_q_or_400(segment: Segment | None = None, *, rules=None, workspace=None, key: str | None = None):
    """A saved segment's (or unsaved rules') ``Q``; rules that do not compile are `segment_error_400`."""
    try:
        return saved_segment_q(segment) if segment is not None else compile_rules(rules, workspace)
    except SegmentRuleError as exc:
        raise segment_error_400(exc, key) from exc


def _iso(value) -> str | None:
    """DRF's datetime format (ISO 8601 in the current time zone, UTC as "Z") without its per-call overhead."""
    if value is None:
        return None
    text = value.astimezone(timezone.get_current_timezone()).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class CompanyMiniSerializer(serializers.ModelSerializer):
    class Meta:
        model = Company
        fields = ["id", "name", "domain"]


@extend_schema_field(
    {
        "type": "object",
        "description": "Custom field key → value, for the workspace's custom-field definitions "
        "(`/crm/custom-fields/`); a key with no definition is a 404, a value that does not fit the field's "
        'type a 400 keyed `custom.<key>`; null or "" clears a value.',
    }
)
class CustomValuesField(serializers.JSONField):
    """A contact's custom values; `normalize.custom_fields_clean` checks them against the definitions."""


DOMAIN_RULE = (
    "An IDNA host name (ASCII or Unicode labels, e.g. example.com or bäckerei.example), or a URL or host whose "
    "scheme (http/https), leading www., port, path, query and fragment the server drops; stored lower-case in "
    "Unicode form, at most 253 characters (crm.normalize.domain_clean). Anything else is a 400 on `domain`."
)


class ContactSerializer(serializers.ModelSerializer):
    custom = CustomValuesField(required=False)
    company = CompanyMiniSerializer(read_only=True, allow_null=True)
    company_name = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=Company._meta.get_field("name").max_length,
    )
    company_domain = FormattedTextField(
        published_format="hostname-or-url",
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=DOMAIN_MAX_LENGTH,
        help_text=DOMAIN_RULE,
    )
    tags = serializers.ListField(child=serializers.CharField(max_length=80), required=False, write_only=True)
    email = EmailAddressField(max_length=1000, trim_whitespace=False)

    class Meta:
        model = Contact
        fields = [
            "id",
            "email",
            "first_name",
            "last_name",
            "title",
            "phone",
            "company",
            "company_name",
            "company_domain",
            "source",
            "custom",
            "tags",
            "lifecycle",
            "verification",
            "verified_at",
            "last_engaged_at",
            "engagement_score",
            "engagement_tier",
            "typed_fields",
            "provenance",
            "enriched_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "lifecycle",
            "verification",
            "verified_at",
            "last_engaged_at",
            "engagement_score",
            "engagement_tier",
            "typed_fields",
            "provenance",
            "enriched_at",
            "created_at",
            "updated_at",
        ]

    def to_representation(self, instance):
        """Hand-built read shape (same keys and formats as the declared fields): the list endpoint's cost is
        dominated by per-field serializer machinery otherwise."""
        dt = _iso
        company = instance.company
        return {
            "id": instance.pk,
            "email": instance.email,
            "first_name": instance.first_name,
            "last_name": instance.last_name,
            "title": instance.title,
            "phone": instance.phone,
            "company": {"id": company.pk, "name": company.name, "domain": company.domain}
            if company
            else None,
            "source": instance.source,
            "custom": instance.custom,
            "lifecycle": instance.lifecycle,
            "verification": instance.verification,
            "verified_at": dt(instance.verified_at),
            "last_engaged_at": dt(instance.last_engaged_at),
            "engagement_score": instance.engagement_score,
            "engagement_tier": instance.engagement_tier,
            "typed_fields": instance.typed_fields,
            "provenance": instance.provenance,
            "enriched_at": dt(instance.enriched_at),
            "created_at": dt(instance.created_at),
            "updated_at": dt(instance.updated_at),
            "tags": instance.tag_names
            if hasattr(instance, "tag_names")
            else [t.name for t in instance.tags.all()],
        }

    def validate_email(self, value):
        try:
            return normalize_email(value)
        except InvalidEmail as exc:
            raise serializers.ValidationError(str(exc)) from None

    def service_data(self) -> dict:
        data = dict(self.validated_data)
        if "company_name" in data:
            data["company"] = data.pop("company_name")
        return data


class CompanySerializer(serializers.ModelSerializer):
    """Shape only: `services.company_create/update` normalize the domain and check uniqueness."""

    domain = FormattedTextField(
        published_format="hostname-or-url", max_length=DOMAIN_MAX_LENGTH, help_text=DOMAIN_RULE
    )

    class Meta:
        model = Company
        fields = ["id", "name", "domain", "created_at"]


class CompanyMergeSerializer(serializers.Serializer):
    duplicate = WorkspaceRelatedField(
        queryset=Company.objects.all(),
        help_text="Another company of the workspace than the one in the path (merged into it, then deleted); "
        "the path's own id is a 400.",
    )


class TagSerializer(serializers.ModelSerializer):
    """Shape only: `services.tag_create/tag_rename` check the name."""

    class Meta:
        model = Tag
        fields = ["id", "name"]


class ContactListSerializer(serializers.ModelSerializer):
    size = serializers.IntegerField(read_only=True)

    class Meta:
        model = ContactList
        fields = ["id", "name", "description", "size", "created_at"]

    def validate_name(self, value):
        _ensure_unique(self, ContactList, "A list with this name already exists.", name=value)
        return value


class MembersSerializer(serializers.Serializer):
    contact_ids = WorkspaceIdsField(queryset=Contact.objects.all(), max_length=10_000)


# How deep and wide the published rule grammar goes: RULES_LEVELS nested groups of at most RULES_WIDTH rules
# (RULES_WIDTH ** RULES_LEVELS conditions at most, within segments.MAX_DEPTH and MAX_CONDITIONS).
RULES_LEVELS, RULES_WIDTH, RULES_LIST_MAX = 3, 5, 50


def _rule_scalar(spec: FieldSpec) -> dict:
    """One value compared with a field of `spec`'s kind (`segments._Compiler.coerce`)."""
    if spec.kind == "choice":
        return {"type": "string", "enum": list(spec.choices)}
    if spec.kind == "number":
        return {"type": "number", "minimum": -1e15, "maximum": 1e15}
    if spec.kind == "date":
        return {"type": "string", "format": "date"}
    if spec.kind == "bool":
        return {"type": "boolean"}
    return {"type": "string", "pattern": NO_NUL, "maxLength": 200}


def _rule_value(spec: FieldSpec, shape: str) -> dict | None:
    """The ``value`` an operator of input `shape` (`segments.OPERATORS`) takes for `spec`; None: no value."""
    tag = {"type": "string", "pattern": NOT_BLANK, "maxLength": 80}
    return {
        "none": None,
        "text": _rule_scalar(spec),
        "list": {"type": "array", "items": _rule_scalar(spec), "minItems": 1, "maxItems": RULES_LIST_MAX},
        "range": {"type": "array", "items": _rule_scalar(spec), "minItems": 2, "maxItems": 2},
        "days": {"type": "integer", "minimum": 0, "maximum": MAX_DAYS},
        "tags": {"anyOf": [tag, {"type": "array", "items": tag, "minItems": 1, "maxItems": RULES_LIST_MAX}]},
        "channel": {"type": "string", "enum": list(spec.choices), "nullable": True},
    }[shape]


def rule_condition_schemas() -> list[dict]:
    """One JSON schema per (built-in field kind and choices, operator input shape), from the segment field
    registry (`segments.FIELDS`, `OPERATORS_BY_KIND`, `OPERATORS`): the conditions the compiler accepts for
    every workspace. A workspace's ``custom.<key>`` fields are accepted too but not listed (they differ per
    workspace)."""
    by_spec: dict[tuple, list[str]] = {}
    for name, spec in FIELDS.items():
        by_spec.setdefault((spec.kind, spec.choices), []).append(name)
    schemas = []
    for (kind, _), names in by_spec.items():
        spec = FIELDS[names[0]]
        by_shape: dict[str, list[str]] = {}
        for operator in sorted(OPERATORS_BY_KIND[kind]):
            by_shape.setdefault(SEGMENT_OPERATORS[operator][1], []).append(operator)
        for shape, operators in by_shape.items():
            properties = {
                "field": {"type": "string", "enum": names},
                "operator": {"type": "string", "enum": operators},
            }
            value = _rule_value(spec, shape)
            if value is not None:
                properties["value"] = value
            required = ["field", "operator"] + (["value"] if value is not None and shape != "channel" else [])
            schemas.append(
                {
                    "type": "object",
                    "properties": properties,
                    "required": required,
                    "additionalProperties": False,
                }
            )
    return schemas


def rules_schema(level: int = 0) -> dict:
    """A rule node at nesting `level`: a condition, or (above the last level) a group of nodes."""
    conditions = rule_condition_schemas()
    if level >= RULES_LEVELS:
        return {"anyOf": conditions}
    group = {
        "type": "object",
        "properties": {
            "op": {"type": "string", "enum": ["and", "or"], "default": "and"},
            "rules": {
                "type": "array",
                "items": rules_schema(level + 1),
                "minItems": 1,
                "maxItems": RULES_WIDTH,
            },
        },
        "required": ["rules"],
        "additionalProperties": False,
    }
    return {"anyOf": [group, *conditions]}


RULES_DESCRIPTION = (
    'A group {"op": "and"|"or", "rules": [group or condition, …]} or a condition {"field", "operator", '
    '"value"} (docs/CRM.md, Segments); no other keys.'
)
GROUP_KEYS, CONDITION_KEYS = frozenset({"op", "rules"}), frozenset({"field", "operator", "value"})


def unknown_rule_keys(node, path: str = "") -> dict[str, str]:
    """``{path.key: message}`` for every key of a group or condition that is not part of the grammar."""
    if not isinstance(node, dict):
        return {}
    group = "rules" in node or "op" in node
    prefix = f"{path}." if path else ""
    errors = {
        f"{prefix}{key}": f"Not a key of a {'group' if group else 'condition'}."
        for key in node
        if key not in (GROUP_KEYS if group else CONDITION_KEYS)
    }
    for index, child in enumerate(node.get("rules") if group and isinstance(node.get("rules"), list) else []):
        errors.update(unknown_rule_keys(child, f"{prefix}rules[{index}]"))
    return errors


@extend_schema_field({"type": "object", "description": RULES_DESCRIPTION})
class RulesField(serializers.JSONField):
    """Segment rules: a JSON object (the grammar is `crm.segments.validate_rules`). A request's rules may not
    carry keys outside the grammar (a misspelt ``"vaule"`` would otherwise be ignored). Request schema:
    `rules_schema`; answers carry the stored rules as they are (`custom.<key>` fields, deeper trees)."""

    request_schema = {
        **rules_schema(),
        "type": "object",
        "description": f"{RULES_DESCRIPTION} The schema lists the built-in fields, {RULES_LEVELS} levels of "
        f"groups of at most {RULES_WIDTH} rules; the server also takes a workspace's `custom.<key>` fields, "
        f"deeper trees (up to {MAX_DEPTH} levels, {MAX_CONDITIONS} conditions) and `op` in any case. Errors "
        "are a 400 keyed by path, e.g. `rules.rules[0].field`.",
    }

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError("Expected an object (a group or a condition).")
        unknown = unknown_rule_keys(data)
        if unknown:
            raise serializers.ValidationError({key: [message] for key, message in unknown.items()})
        return super().to_internal_value(data)


class SegmentSerializer(serializers.ModelSerializer):
    """Shape only: names and rules are checked by `services.segment_save`, as for the dashboard and admin."""

    rules = RulesField()

    class Meta:
        model = Segment
        fields = ["id", "name", "description", "rules", "broken_reason", "created_at", "updated_at"]
        read_only_fields = ["broken_reason"]


class RulesSerializer(serializers.Serializer):
    rules = RulesField()


class CustomFieldSerializer(serializers.ModelSerializer):
    """Shape only: `services.custom_field_create/update` validate keys, types and existing values.
    ``convert`` (write-only) lets a retype clear the stored values that do not fit the new type."""

    key = serializers.RegexField(
        KEY_PATTERN, max_length=60,
        error_messages={"invalid": "Use lowercase letters, digits, '-' or '_' (at most 60)."},
    )  # fmt: skip
    convert = serializers.BooleanField(write_only=True, required=False, default=False)
    # The model keeps any JSON; segments and forms read a list of option strings.
    choices = serializers.ListField(
        child=serializers.CharField(max_length=200),
        required=False,
        help_text="the options of a choice field (at least one; POST and PUT: required with type choice, "
        "PATCH: when the field is or becomes a choice field, it must have one afterwards); other types "
        "keep none",
    )
    # `services.fields._clean_definition`'s "A choice field needs choices" for POST and PUT, as the schema's
    # anyOf (aicmo.api.schema): the type is not choice, or there is at least one choice. (The enum sits
    # under `not`, where drf-spectacular's enum components leave it as written.)
    request_variants = (
        {"not": {"properties": {"type": {"enum": [FieldType.CHOICE.value]}}, "required": ["type"]}},
        {"properties": {"choices": {"minItems": 1}}, "required": ["choices"]},
    )

    class Meta:
        model = CustomFieldDefinition
        fields = ["id", "key", "label", "type", "choices", "convert"]


class ConsentSerializer(serializers.ModelSerializer):
    class Meta:
        model = ConsentEvent
        fields = ["id", "kind", "granted", "source", "ip", "at"]
        read_only_fields = ["at"]


class ChannelSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices, default=Channel.EMAIL)
    source = serializers.CharField(max_length=100, required=False, default="api")


class MergeSerializer(serializers.Serializer):
    duplicate = WorkspaceRelatedField(
        queryset=Contact.objects.all(),
        help_text="Another contact of the workspace than the one in the path (merged into it, then deleted); "
        "the path's own id is a 400.",
    )


class SelectionSerializer(serializers.Serializer):
    required_any = ("contact_ids", "list", "segment")  # documented as anyOf (aicmo.api.schema)

    contact_ids = WorkspaceIdsField(queryset=Contact.objects.all(), required=False, max_length=100_000)
    list = WorkspaceRelatedField(queryset=ContactList.objects.all(), required=False)
    segment = WorkspaceRelatedField(queryset=Segment.objects.all(), required=False)

    def validate(self, attrs):
        if not any(k in attrs for k in self.required_any):
            raise serializers.ValidationError("Give contact_ids, a list or a segment.")
        return attrs

    def start(self, starter, request):
        """Start `starter` (a crm run service) on this selection; bad segments and oversize runs are 400s."""
        d = self.validated_data
        try:
            return starter(
                workspace=request.workspace,
                contact_ids=d.get("contact_ids"),
                list_id=d["list"].pk if d.get("list") else None,
                segment_id=d["segment"].pk if d.get("segment") else None,
                by=request.user,
            )
        except SegmentRuleError as exc:
            raise segment_error_400(exc, "segment") from exc
        except services.RunTooLarge as exc:
            raise serializers.ValidationError({"non_field_errors": [str(exc)]}) from exc


class ImportRunSerializer(serializers.ModelSerializer):
    job = JobSerializer(read_only=True, allow_null=True)

    class Meta:
        model = ImportRun
        fields = [
            "id",
            "original_name",
            "file_format",
            "mapping",
            "policy",
            "tags",
            "status",
            "checkpoint_line",
            "created",
            "updated",
            "skipped",
            "failed",
            "created_at",
            "finished_at",
            "job",
        ]


IMPORT_MAPPING_RULE = (
    'Column header → target field ("" leaves the column out), as JSON. Each key must be a header of the uploaded '
    "file, one column must map to email and no two to the same field; the server also takes custom.<key> of "
    "the workspace's custom fields. Without a mapping, headers are matched to fields by name. A 400 names "
    "each faulty header (`mapping.<header>`)."
)
# A tag list: comma-separated tags of at most 80 characters each (crm.importing.import_stage).
IMPORT_TAGS_PATTERN = r"^[^,\x00]{0,80}(?:,[^,\x00]{0,80})*$"


class ImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(help_text=SPREADSHEET_RULE)
    # a JSON object in its own part of the multipart body
    mapping = ColumnMappingField(
        shape='{"Column header": "field"}',
        required=False,
        help_text=IMPORT_MAPPING_RULE,
        request_schema={
            "type": "object",
            "additionalProperties": {"type": "string", "enum": [*importing.CORE_TARGETS, ""]},
            "description": IMPORT_MAPPING_RULE,
        },
    )
    policy = serializers.ChoiceField(choices=importing.POLICIES, default="update")
    tags = serializers.RegexField(
        IMPORT_TAGS_PATTERN,
        required=False,
        allow_blank=True,
        default="",
        help_text="Comma-separated tags for every imported contact, each at most 80 characters.",
        error_messages={"invalid": "Comma-separated tags of at most 80 characters each."},
    )


def _merge_pair(view, serializer_class) -> dict:
    """``{"primary": the URL's object, "duplicate": the body's}`` (both of the caller's workspace)."""
    primary = view.get_object()
    serializer = serializer_class(data=view.request.data, context=view.get_serializer_context())
    serializer.is_valid(raise_exception=True)
    return {"primary": primary, "duplicate": serializer.validated_data["duplicate"]}


class ContactViewSet(WorkspaceViewSet):
    queryset = Contact.objects.all()
    serializer_class = ContactSerializer
    filterset_class = ContactFilter
    query_parameters = {"list": [SEGMENT_PARAM], "export": [SEGMENT_PARAM]}
    filtered_actions = ("export",)

    def filter_queryset(self, queryset):
        """The filterset, then `?segment=<id>` on the list and the export: the segment's contacts. Like every id
        filter (aicmo.api.filters.IdFilter), an id that names no segment of this workspace matches nothing."""
        queryset = super().filter_queryset(queryset)
        raw = self.request.query_params.get("segment", "")
        if self.action not in ("list", "export") or raw == "":
            return queryset
        try:
            segment_id = serializers.IntegerField(min_value=1, max_value=MAX_ID).run_validation(raw)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"segment": exc.detail}) from None
        try:
            (segment_id,) = resolve_ids(Segment, [segment_id], self.request.workspace)
        except DjangoValidationError:
            return queryset.none()
        # a segment marked broken, or whose rules no longer compile, is the same 400 as on every surface
        return queryset.filter(segment_q_or_400(Segment.objects.get(pk=segment_id), key="segment"))

    def get_queryset(self):
        return contacts_for(self.request.workspace, with_tags=self.action != "list")

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        attach_tag_names(page)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def perform_create(self, serializer):
        serializer.instance = services.contact_create(
            workspace=self.request.workspace,
            data=serializer.service_data(),
            by=self.request.user,
            source="api",
        )

    def perform_update(self, serializer):
        serializer.instance = services.contact_update(
            contact=serializer.instance, data=serializer.service_data(), by=self.request.user
        )

    def perform_destroy(self, instance):
        services.contact_delete(contact=instance, by=self.request.user)

    @extend_schema(
        # Items are checked one by one (like POST /contacts/) and reported per index in `results`, so the
        # schema cannot refuse a bad item as a whole request: it describes them as objects.
        request=inline_serializer(
            "ContactBulkRequest",
            fields={
                "contacts": serializers.ListField(
                    child=serializers.DictField(), min_length=1, max_length=BULK_LIMIT
                )
            },
        ),
        responses=OpenApiTypes.OBJECT,
    )
    @action(detail=False, methods=["post"], url_path="bulk")
    def bulk_upsert(self, request):
        """Create or update up to 1,000 contacts by email; one result per item, good items land."""
        items = request.data.get("contacts") if isinstance(request.data, dict) else request.data
        if not isinstance(items, list) or not items:
            raise serializers.ValidationError({"contacts": "Send a non-empty list of contacts."})
        if len(items) > BULK_LIMIT:
            raise serializers.ValidationError({"contacts": f"At most {BULK_LIMIT} contacts per request."})
        results = []
        existing = {
            c.email: c
            for c in Contact.objects.for_workspace(request.workspace).filter(
                email__in=[email_lookup_key(i.get("email", "")) for i in items if isinstance(i, dict)]
            )
        }
        for index, item in enumerate(items):
            serializer = ContactSerializer(
                data=item if isinstance(item, dict) else {}, context={"workspace": request.workspace}
            )
            if not serializer.is_valid():
                results.append({"index": index, "status": "error", "errors": serializer.errors})
                continue
            data = serializer.service_data()
            email = data["email"]
            try:
                with transaction.atomic():
                    if email in existing:
                        contact = services.contact_update(contact=existing[email], data=data, by=request.user)
                        outcome = "updated"
                    else:
                        contact = services.contact_create(
                            workspace=request.workspace, data=data, by=request.user, source="api"
                        )
                        existing[email] = contact
                        outcome = "created"
            except DjangoValidationError as exc:
                results.append({"index": index, "status": "error", "errors": exc.message_dict})
                continue
            results.append({"index": index, "status": outcome, "id": contact.pk, "email": contact.email})
        summary = {k: sum(1 for r in results if r["status"] == k) for k in ("created", "updated", "error")}
        return Response({"summary": summary, "results": results}, status=status.HTTP_200_OK)

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=False, methods=["get"])
    def export(self, request):
        """The filtered contacts as CSV (formula-injection neutralized), streamed."""
        qs = self.filter_queryset(self.get_queryset())
        keys = list(
            CustomFieldDefinition.objects.for_workspace(request.workspace).values_list("key", flat=True)
        )
        return exporting.streaming_csv_response(exporting.contact_rows(qs, keys), "contacts.csv")

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"], url_path="gdpr-export")
    def gdpr_export(self, request, pk=None):
        return Response(services.contact_export_data(contact=self.get_object()))

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def erase(self, request, pk=None):
        contact = services.contact_erase(contact=self.get_object(), by=request.user)
        return Response(ContactSerializer(contact).data)

    @extend_schema(
        methods=["GET"], responses=ConsentSerializer(many=True), description="The newest 500 events."
    )
    @extend_schema(methods=["POST"], request=ConsentSerializer, responses={201: ConsentSerializer})
    @action(detail=True, methods=["get", "post"])
    def consent(self, request, pk=None):
        contact = self.get_object()
        if request.method == "POST":
            serializer = ConsentSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            d = serializer.validated_data
            event = services.consent_record(
                contact=contact,
                kind=d["kind"],
                granted=d["granted"],
                source=d.get("source", "api"),
                ip=d.get("ip"),
            )
            return Response(ConsentSerializer(event).data, status=status.HTTP_201_CREATED)
        return Response(ConsentSerializer(contact.consent_events.all()[:500], many=True).data)

    @extend_schema(request=ChannelSerializer, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["post"])
    def unsubscribe(self, request, pk=None):
        serializer = ChannelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.contact_unsubscribe(
            contact=self.get_object(),
            channel=serializer.validated_data["channel"],
            source=serializer.validated_data["source"],
            ip=request.META.get("REMOTE_ADDR"),
        )
        return Response({"suppressed": True})

    @extend_schema(request=ChannelSerializer, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["post"])
    def resubscribe(self, request, pk=None):
        serializer = ChannelSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            lifted = services.contact_resubscribe(
                contact=self.get_object(),
                channel=serializer.validated_data["channel"],
                source=serializer.validated_data["source"],
                ip=request.META.get("REMOTE_ADDR"),
            )
        except services.SuppressionError as exc:
            raise serializers.ValidationError({"channel": str(exc)}) from exc
        return Response({"resubscribed": lifted})

    @extend_schema(request=MergeSerializer)
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        contact = services.contact_merge(**_merge_pair(self, MergeSerializer), by=request.user)
        return Response(ContactSerializer(contact).data)


DELETED_SCHEMA = extend_schema(
    responses={
        200: OpenApiResponse(
            OpenApiTypes.OBJECT,
            description="`deleted: true` and what the delete touched (counts of dependents, segment names).",
        )
    }
)


def _deleted(report: dict) -> Response:
    """DELETE answers 200 with what the delete touched (dependents), not an empty 204."""
    return Response({"deleted": True, **report}, status=status.HTTP_200_OK)


class CompanyViewSet(WorkspaceViewSet):
    queryset = Company.objects.all()
    serializer_class = CompanySerializer
    search_fields = ["name", "domain"]

    def perform_create(self, serializer):
        d = serializer.validated_data
        serializer.instance = services.company_create(
            workspace=self.request.workspace, domain=d["domain"], name=d.get("name", ""), by=self.request.user
        )

    def perform_update(self, serializer):
        d = serializer.validated_data
        serializer.instance = services.company_update(
            company=serializer.instance, name=d.get("name"), domain=d.get("domain"), by=self.request.user
        )

    @DELETED_SCHEMA
    def destroy(self, request, *args, **kwargs):
        return _deleted(services.company_delete(company=self.get_object(), by=request.user))

    @extend_schema(responses=inline_serializer("CompanyDependents", {"contacts": serializers.IntegerField()}))
    @action(detail=True, methods=["get"])
    def dependents(self, request, pk=None):
        """What deleting this company touches: how many contacts lose it."""
        return Response(services.company_dependents(self.get_object()))

    @extend_schema(request=CompanyMergeSerializer)
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        pair = _merge_pair(self, CompanyMergeSerializer)
        report = services.company_merge(**pair, by=request.user)
        pair["primary"].refresh_from_db()
        return Response({**CompanySerializer(pair["primary"]).data, **report})


class TagViewSet(WorkspaceViewSet):
    queryset = Tag.objects.all()
    serializer_class = TagSerializer

    def perform_create(self, serializer):
        serializer.instance = services.tag_create(
            workspace=self.request.workspace, name=serializer.validated_data["name"], by=self.request.user
        )

    def perform_update(self, serializer):
        serializer.instance = services.tag_rename(
            tag=serializer.instance,
            name=serializer.validated_data.get("name", serializer.instance.name),
            by=self.request.user,
        )

    @DELETED_SCHEMA
    def destroy(self, request, *args, **kwargs):
        return _deleted(services.tag_delete(tag=self.get_object(), by=request.user))

    @extend_schema(
        responses=inline_serializer(
            "TagDependents",
            {
                "contacts": serializers.IntegerField(),
                "segments": serializers.ListField(child=serializers.CharField()),
            },
        )
    )
    @action(detail=True, methods=["get"])
    def dependents(self, request, pk=None):
        """What deleting this tag touches: contacts carrying it, names of the saved segments using it."""
        return Response(services.tag_dependents(self.get_object()))


class ContactListViewSet(WorkspaceViewSet):
    queryset = ContactList.objects.all()
    serializer_class = ContactListSerializer

    def get_queryset(self):
        return lists_for(self.request.workspace)

    def perform_create(self, serializer):
        d = serializer.validated_data
        contact_list = services.list_create(
            workspace=self.request.workspace,
            name=d["name"],
            description=d.get("description", ""),
            by=self.request.user,
        )
        contact_list.size = 0
        serializer.instance = contact_list

    @extend_schema(request=MembersSerializer, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["post"], url_path="add")
    def add_members(self, request, pk=None):
        contact_list = self.get_object()  # a foreign list is a 404 before its body is looked at
        serializer = MembersSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        added = services.list_add_contacts(
            contact_list=contact_list, contact_ids=serializer.validated_data["contact_ids"]
        )
        return Response({"added": added})

    @extend_schema(request=MembersSerializer, responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["post"], url_path="remove")
    def remove_members(self, request, pk=None):
        contact_list = self.get_object()  # a foreign list is a 404 before its body is looked at
        serializer = MembersSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        removed = services.list_remove_contacts(
            contact_list=contact_list, contact_ids=serializer.validated_data["contact_ids"]
        )
        return Response({"removed": removed})


class SegmentViewSet(WorkspaceViewSet):
    queryset = Segment.objects.all()
    serializer_class = SegmentSerializer
    action_permissions = {"evaluate": READ}  # a POST that only reads: viewers may count too

    def perform_create(self, serializer):
        serializer.instance = self._save(serializer, segment=None)

    def perform_update(self, serializer):
        serializer.instance = self._save(serializer, segment=serializer.instance)

    def _save(self, serializer, *, segment):
        d = serializer.validated_data
        return services.segment_save(
            workspace=self.request.workspace,
            name=d.get("name", getattr(segment, "name", "")),
            rules=d.get("rules", getattr(segment, "rules", None)),
            description=d.get("description", getattr(segment, "description", "")),
            segment=segment,
        )

    def _contacts(self, segment=None, rules=None):
        q = segment_q_or_400(segment, rules=rules, workspace=self.request.workspace)
        return contacts_for(self.request.workspace).filter(q)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def count(self, request, pk=None):
        return Response({"count": self._contacts(self.get_object()).count()})

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def preview(self, request, pk=None):
        qs = self._contacts(self.get_object())
        return Response(
            {"count": qs.count(), "results": ContactSerializer(qs[:PREVIEW_LIMIT], many=True).data}
        )

    @extend_schema(request=RulesSerializer, responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["post"])
    def evaluate(self, request):
        """Count + preview of unsaved rules (the segment builder's live count). Read-only."""
        serializer = RulesSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        qs = self._contacts(rules=serializer.validated_data["rules"])
        return Response(
            {"count": qs.count(), "results": ContactSerializer(qs[:PREVIEW_LIMIT], many=True).data}
        )

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["get"])
    def fields(self, request):
        return Response(field_catalog(request.workspace))


class CustomFieldViewSet(WorkspaceViewSet):
    """PATCH may rename (``key``) and retype (``type``/``choices``, ``convert``); the answer carries the
    change report (converted, cleared, examples, renamed, broken_segments)."""

    queryset = CustomFieldDefinition.objects.all()
    serializer_class = CustomFieldSerializer

    def perform_create(self, serializer):
        d = serializer.validated_data
        serializer.instance = services.custom_field_create(
            workspace=self.request.workspace,
            key=d["key"],
            label=d["label"],
            type=d.get("type", "text"),
            choices=d.get("choices", []),
            by=self.request.user,
        )

    def update(self, request, *args, **kwargs):
        serializer = self.get_serializer(self.get_object(), data=request.data, partial=kwargs.get("partial"))
        serializer.is_valid(raise_exception=True)
        d = serializer.validated_data
        change = services.custom_field_update(
            definition=serializer.instance,
            key=d.get("key"),
            label=d.get("label"),
            type=d.get("type"),
            choices=d.get("choices"),
            convert=d.get("convert", False),
            by=request.user,
        )
        return Response({**CustomFieldSerializer(change.field).data, "change": change.as_dict()})

    @DELETED_SCHEMA
    def destroy(self, request, *args, **kwargs):
        return _deleted(services.custom_field_delete(definition=self.get_object(), by=request.user))


class ImportViewSet(mixins.CreateModelMixin, WorkspaceReadOnlyViewSet):
    queryset = ImportRun.objects.select_related("job")
    serializer_class = ImportRunSerializer
    parser_classes = [MultiPartParser, FormParser]  # a file upload: JSON cannot carry it (415)

    @extend_schema(request=spreadsheet_upload(ImportUploadSerializer), responses={202: ImportRunSerializer})
    @idempotent
    def create(self, request, *args, **kwargs):
        upload = ImportUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        d = upload.validated_data
        run = importing.import_create(
            workspace=request.workspace,
            fh=d["file"],
            name=d["file"].name,
            mapping=d.get("mapping") or None,
            policy=d["policy"],
            tags=[t.strip() for t in d["tags"].split(",") if t.strip()],
            by=request.user,
            source="api-import",
        )
        run = ImportRun.objects.select_related("job").get(pk=run.pk)
        return Response(ImportRunSerializer(run).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"], url_path="errors.csv")
    def errors_csv(self, request, pk=None):
        run = self.get_object()
        return exporting.import_errors_response(run)


class ErasureOverrideSerializer(serializers.Serializer):
    email = serializers.CharField(max_length=254)
    consent_note = serializers.CharField(max_length=500)


class ErasureViewSet(WorkspaceGenericViewSet):
    """POST ``erasures/override/`` {email, consent_note}: an admin records fresh consent for an erased
    address so it may be added again (200 with when it had been erased; 400 if it is not listed)."""

    queryset = ErasedAddress.objects.all()
    serializer_class = ErasureOverrideSerializer
    required_permission = MANAGE

    @action(detail=False, methods=["post"])
    def override(self, request):
        serializer = ErasureOverrideSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        erased_at = services.erasure_override(
            workspace=request.workspace,
            email=serializer.validated_data["email"],
            consent_note=serializer.validated_data["consent_note"],
            by=request.user,
        )
        return Response({"lifted": True, "erased_at": _iso(erased_at)})


class EnrichmentRunViewSet(WorkspaceGenericViewSet):
    """POST a selection (contact_ids, list or segment) → 202 with the Job to poll."""

    queryset = Contact.objects.all()
    serializer_class = SelectionSerializer
    starter = staticmethod(services.enrichment_start)

    @extend_schema(request=SelectionSerializer, responses={202: JobSerializer})
    @idempotent
    def create(self, request):
        serializer = SelectionSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        job = serializer.start(self.starter, request)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class VerificationRunViewSet(EnrichmentRunViewSet):
    starter = staticmethod(services.verification_start)


router = DefaultRouter()
router.register("contacts", ContactViewSet, basename="crm-contact")
router.register("companies", CompanyViewSet, basename="crm-company")
router.register("tags", TagViewSet, basename="crm-tag")
router.register("lists", ContactListViewSet, basename="crm-list")
router.register("segments", SegmentViewSet, basename="crm-segment")
router.register("custom-fields", CustomFieldViewSet, basename="crm-custom-field")
router.register("imports", ImportViewSet, basename="crm-import")
router.register("erasures", ErasureViewSet, basename="crm-erasure")
router.register("enrichment-runs", EnrichmentRunViewSet, basename="crm-enrichment-run")
router.register("verification-runs", VerificationRunViewSet, basename="crm-verification-run")

urlpatterns = router.urls
