"""Gateway API: provider accounts (credentials write-only; managing needs MANAGE), live health,
recommendations and self-checks. Mounted at /api/v1/gateway/."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from aicmo.api import WorkspaceGenericViewSet, WorkspaceViewSet
from aicmo.api.schema import formatted, url_pattern
from aicmo.jobs import QueueUnavailable, task_send
from aicmo.roles import MANAGE

from . import selectors, services
from .health import selfcheck_account
from .models import HealthCheck, ProviderAccount


class ProviderAccountSerializer(serializers.ModelSerializer):
    credentials = serializers.DictField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False),
        write_only=True,
        required=False,
        help_text="Write-only. Replaces the stored credentials; never returned.",
    )
    has_credentials = serializers.BooleanField(read_only=True)
    credentials_hint = serializers.CharField(read_only=True)
    adapter_label = serializers.CharField(read_only=True)
    is_demo = serializers.BooleanField(read_only=True)

    class Meta:
        model = ProviderAccount
        fields = [
            "id",
            *services.EDITABLE_FIELDS,
            "adapter_label",
            "is_demo",
            "credentials",
            "has_credentials",
            "credentials_hint",
            "credentials_changed_at",
            "state",
            "state_cause",
            "state_changed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "credentials_changed_at",
            "state",
            "state_cause",
            "state_changed_at",
            "created_at",
            "updated_at",
        ]
        validators = []  # uniqueness is checked by the service with the workspace in view

    def validate(self, attrs):
        adapter_key = attrs.get("adapter", getattr(self.instance, "adapter", None))
        credentials = attrs.get("credentials")
        if credentials:
            from .adapters import adapter_for

            try:
                allowed = set(getattr(adapter_for(adapter_key), "credential_fields", ()) or ())
            except KeyError:
                allowed = set()
            unknown = sorted(set(credentials) - allowed) if allowed else []
            if unknown:
                raise serializers.ValidationError(
                    {"credentials": [f"Unknown credential fields for {adapter_key}: {', '.join(unknown)}."]}
                )
        return attrs


# The custom format of a base URL, by scheme (aicmo.api.schema.FORMATS)
URL_FORMATS = {
    **dict.fromkeys(("http", "https"), "public-http-url"),
    **dict.fromkeys(("smtp", "smtps", "smtp+plain"), "public-smtp-url"),
    **dict.fromkeys(("imap", "imaps", "imap+plain"), "public-imap-url"),
}


def base_url_schema(adapter, text: dict) -> dict:
    """The base URL an adapter takes: its schemes (``url_schemes``), a public host that resolves now
    (``ProviderAccount.clean_base_url``); blank (the adapter's default) unless ``base_url_required``."""
    schemes = adapter.url_schemes
    (name,) = {URL_FORMATS[scheme] for scheme in schemes}  # an adapter's schemes are of one family
    required = adapter.base_url_required
    note = f"Required: {adapter.base_url_help}" if required else "Blank: the adapter's default endpoint."
    return formatted(
        name,
        maxLength=text.get("maxLength", 500),
        **({"minLength": 1} if required else {}),
        pattern=url_pattern(schemes, blank=not required),
        description=f"{note} The host must resolve now (to public addresses only).",
    )


def account_variant(adapter, capability: str, base: dict, *, partial: bool) -> dict:
    """The body of an account of ``adapter`` for ``capability``: only the options the adapter declares
    (any JSON value each), only its credential fields when it declares any, its base URL schemes."""
    properties = dict(base["properties"])
    credential = properties["credentials"]["additionalProperties"]
    # single-value enums inside allOf: drf-spectacular's enum hoisting would give each a hashed name
    properties["capability"] = {"type": "string", "allOf": [{"enum": [capability]}]}
    properties["adapter"] = {
        "type": "string",
        "allOf": [{"enum": [adapter.key]}],
        "description": adapter.label,
    }
    specs = adapter.field_specs
    properties["options"] = {
        "type": "object",
        "properties": {
            name: {"description": f"{specs[name].label}. {specs[name].help}".strip()}
            for name in adapter.option_fields
        },
        "additionalProperties": False,
        "description": f"Options of {adapter.label} (non-secret; only these).",
    }
    if adapter.credential_fields:
        properties["credentials"] = {
            **properties["credentials"],
            "properties": {name: credential for name in adapter.credential_fields},
            "additionalProperties": False,
        }
    properties["base_url"] = base_url_schema(adapter, properties["base_url"])
    required = ["capability", "adapter"] if partial else ["capability", "adapter", "name"]
    if adapter.base_url_required:
        required.append("base_url")
    return {
        "type": "object",
        "title": f"{adapter.key} {capability}",
        "properties": properties,
        "required": required,
    }


def _camel(text: str) -> str:
    return "".join(part.capitalize() for part in text.replace("-", "_").split("_"))


def account_request_schema(base: dict, *, partial: bool, registry) -> dict:
    """One variant per (capability, adapter) pair of the registry (`gateway.adapters.ADAPTERS`), each a
    component of ``registry``, so a new adapter appears by itself. A PATCH may also leave out capability
    and adapter: then the stored account's adapter decides which options, credentials and base URL fit
    (the last variant, which says nothing about them)."""
    from .adapters import ADAPTERS

    variants = []
    for key, adapter in sorted(ADAPTERS.items()):
        for capability in sorted(adapter.capabilities):
            variant = account_variant(adapter, str(capability), base, partial=partial)
            # a named component each (a client generates one type per variant)
            name = f"{'Patched' if partial else ''}ProviderAccount{_camel(key)}{_camel(capability)}Request"
            component = ResolvedComponent(
                name=name, type=ResolvedComponent.SCHEMA, schema=variant, object=name
            )
            registry.register_on_missing(component)
            variants.append(component.ref)
    if not partial:
        # ``required`` beside ``oneOf``: true of every variant, and what makes the body itself required
        return {"oneOf": variants, "required": ["capability", "adapter", "name"]}
    stored = {
        **base,
        "title": "the stored adapter's",
        "description": "Without capability and adapter: options, credentials and base_url are checked "
        "against the stored account's adapter (send both to change them safely).",
    }
    return {"anyOf": [*variants, stored]}


class ProviderAccountSchema(OpenApiSerializerExtension):
    """A request body's adapter-dependent fields as one variant per (capability, adapter) pair
    (`account_request_schema`); ``ca_pem`` as PEM certificates. Answers: the plain serializer."""

    target_class = ProviderAccountSerializer

    def map_serializer(self, auto_schema, direction):
        base = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        if direction != "request":
            return base
        base["properties"]["ca_pem"] = formatted(
            "pem-certificate",
            description="PEM text of the private CA certificate(s) to trust for this provider, in addition "
            "to the system store. Blank: system store only.",
        )
        partial = bool(getattr(self.target, "partial", False))
        return account_request_schema(base, partial=partial, registry=auto_schema.registry)


class HealthCheckSerializer(serializers.ModelSerializer):
    class Meta:
        model = HealthCheck
        fields = ["id", "account", "at", "ok", "latency_ms", "error_kind", "message"]
        read_only_fields = fields


class ProviderAccountViewSet(WorkspaceViewSet):
    """Accounts are readable by every role; creating, changing, deleting and self-checks need MANAGE
    (they hold provider credentials)."""

    queryset = ProviderAccount.objects.all()
    serializer_class = ProviderAccountSerializer
    filterset_fields = ["capability", "adapter", "enabled", "state"]
    paginated_actions = ("checks",)
    ordering_fields = ["priority", "name", "capability"]
    ordering = ["capability", "priority", "id"]
    action_permissions = {
        "create": MANAGE,
        "update": MANAGE,
        "partial_update": MANAGE,
        "destroy": MANAGE,
        "selfcheck": MANAGE,
        "selfcheck_all": MANAGE,
        "reset_breaker": MANAGE,
    }

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        credentials = data.pop("credentials", None)
        serializer.instance = services.account_create(
            workspace=self.request.workspace, by=self.request.user, credentials=credentials, **data
        )

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        credentials = data.pop("credentials", None)
        serializer.instance = services.account_update(
            account=serializer.instance, by=self.request.user, credentials=credentials, **data
        )

    def perform_destroy(self, instance):
        services.account_delete(account=instance, by=self.request.user)

    @extend_schema(request=None, responses=HealthCheckSerializer)
    @action(detail=True, methods=["post"])
    def selfcheck(self, request, pk=None):
        """Run this account's self-check now and return the stored result."""
        check = selfcheck_account(account=self.get_object())
        return Response(HealthCheckSerializer(check).data)

    @extend_schema(request=None, responses={202: dict}, operation_id="gateway_accounts_selfcheck_all")
    @action(detail=False, methods=["post"], url_path="selfcheck")
    def selfcheck_all(self, request):
        """Queue a self-check of every enabled account of this workspace (503 when the task queue is
        unreachable: nothing was queued; beat's 5-minute self-check runs once it is back)."""
        from .tasks import selfcheck_workspace_task

        # sent at once: the request writes nothing, so there is no commit to wait for
        if not task_send(selfcheck_workspace_task, request.workspace.pk):
            raise QueueUnavailable
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=ProviderAccountSerializer)
    @action(detail=True, methods=["post"], url_path="reset-breaker")
    def reset_breaker(self, request, pk=None):
        account = self.get_object()
        services.account_reset_breaker(account=account, by=request.user)
        return Response(self.get_serializer(account).data)

    @extend_schema(responses=HealthCheckSerializer(many=True))
    @action(detail=True, methods=["get"])
    def checks(self, request, pk=None):
        """Self-check history of this account, newest first."""
        account = self.get_object()
        page = self.paginate_queryset(selectors.health_checks_for(request.workspace, account))
        return self.get_paginated_response(HealthCheckSerializer(page, many=True).data)


def _health_row(row: selectors.AccountHealth, failures: list | None) -> dict:
    a = row.account
    return {
        "account": a.pk,
        "name": a.name,
        "capability": a.capability,
        "adapter": a.adapter,
        "is_demo": a.is_demo,
        "enabled": a.enabled,
        "priority": a.priority,
        "state": row.state,
        "cause": row.cause,
        "breaker": {
            "state": row.breaker.state,
            "open_until": row.breaker.open_until,
            "consecutive_failures": row.breaker.consecutive_failures,
            "window_calls": row.breaker.window_calls,
            "window_failures": row.breaker.window_failures,
        },
        "last_15m": row.last_15m.as_dict(),
        "last_24h": row.last_24h.as_dict(),
        "last_check": HealthCheckSerializer(row.last_check).data if row.last_check else None,
        # newest first, at most FAILURES_KEPT; null when the failure store (Redis) is unreachable
        "recent_failures": None if failures is None else [f.as_dict() for f in failures],
    }


class HealthViewSet(WorkspaceGenericViewSet):
    """Live health per account: state and cause, breaker, rolling success rate and latency, and its
    recent failed calls."""

    queryset = ProviderAccount.objects.all()
    pagination_class = None
    filter_backends: list = []

    @extend_schema(responses={200: dict})
    def list(self, request):
        rows = selectors.account_health(
            request.workspace, list(self.get_queryset().order_by("capability", "priority", "id"))
        )
        failures = selectors.failures_by_account([r.account for r in rows])
        return Response(
            {
                "results": [
                    _health_row(r, None if failures is None else failures.get(r.account.pk, [])) for r in rows
                ]
            }
        )


class RecommendationViewSet(WorkspaceGenericViewSet):
    queryset = ProviderAccount.objects.all()
    pagination_class = None
    filter_backends: list = []

    @extend_schema(responses={200: dict})
    def list(self, request):
        rows = selectors.account_health(request.workspace, list(self.get_queryset()))
        return Response(
            {"results": [r.as_dict() for r in selectors.recommendations(request.workspace, rows)]}
        )


router = DefaultRouter()
router.register("accounts", ProviderAccountViewSet, basename="gateway-account")
router.register("health", HealthViewSet, basename="gateway-health")
router.register("recommendations", RecommendationViewSet, basename="gateway-recommendation")

urlpatterns = router.urls
