"""Outbound webhooks under /api/v1/publishing/: ``webhooks/`` (endpoints: CRUD, ``rotate-secret``, ``test``,
``deliveries``) and ``webhook-deliveries/`` (the delivery log of every endpoint, ``retry``).

Roles: admins manage (create, change, delete, rotate, test, retry); marketers and reviewers read the
endpoints and the log; viewers see neither (a receiver URL often carries a token of its own). The secret
is returned once, by create and rotate-secret, and never again."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from aicmo.api import WorkspaceGenericViewSet, WorkspaceViewSet
from aicmo.api.fields import FormattedCharField
from aicmo.api.schema import formatted, url_pattern
from aicmo.roles import MANAGE, WRITE
from gateway.ssrf import HTTP_SCHEMES

from ..models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint, WebhookEventType
from ..selectors import webhook_deliveries_for, webhook_endpoints_for
from ..services import webhooks as services


class WebhookEndpointSerializer(serializers.ModelSerializer):
    url = FormattedCharField(
        request_schema=formatted(
            "public-http-url",
            minLength=1,
            maxLength=2000,
            pattern=url_pattern(HTTP_SCHEMES),
            description="http(s) URL of the receiver. A name that does not resolve yet is accepted (the "
            "address is checked again at every delivery).",
        ),
        max_length=2000,
        help_text="http(s) URL of the receiver.",
    )
    event_types = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEventType.choices),
        allow_empty=False,
        min_length=1,  # states allow_empty=False in the schema (minItems)
        max_length=len(WebhookEventType.values),
        help_text="Event types to deliver (docs/PUBLISHING.md, Webhooks).",
    )
    description = serializers.CharField(max_length=200, required=False, allow_blank=True)

    class Meta:
        model = WebhookEndpoint
        fields = [
            "id",
            "url",
            "description",
            "event_types",
            "active",
            "secret_hint",
            "disabled_reason",
            "disabled_at",
            "consecutive_failures",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [
            "secret_hint",
            "disabled_reason",
            "disabled_at",
            "consecutive_failures",
            "created_at",
            "updated_at",
        ]


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = serializers.CharField(read_only=True, help_text="The signing secret; shown this once.")

    class Meta(WebhookEndpointSerializer.Meta):
        fields = [*WebhookEndpointSerializer.Meta.fields, "secret"]


class WebhookSecretSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    secret = serializers.CharField(read_only=True, help_text="The new signing secret; shown this once.")
    secret_hint = serializers.CharField(read_only=True)


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "endpoint",
            "event_id",
            "event_type",
            "payload",
            "occurred_at",
            "status",
            "attempts",
            "next_attempt_at",
            "last_attempt_at",
            "last_status_code",
            "last_error",
            "finished_at",
            "created_at",
        ]
        read_only_fields = fields


STATUS_PARAMETER = OpenApiParameter(
    "status", str, enum=list(WebhookDeliveryStatus.values), description="Only this status."
)


def _with_status(queryset, request):
    wanted = request.query_params.get("status")
    if wanted:
        if wanted not in WebhookDeliveryStatus.values:
            raise serializers.ValidationError(
                {"status": f"One of {', '.join(WebhookDeliveryStatus.values)}."}
            )
        queryset = queryset.filter(status=wanted)
    return queryset


class WebhookEndpointViewSet(WorkspaceViewSet):
    queryset = WebhookEndpoint.objects.all()
    serializer_class = WebhookEndpointSerializer
    filterset_fields = ["active"]
    required_permission = WRITE
    action_permissions = {
        "list": WRITE,
        "retrieve": WRITE,
        "deliveries": WRITE,
        "create": MANAGE,
        "update": MANAGE,
        "partial_update": MANAGE,
        "destroy": MANAGE,
        "rotate_secret": MANAGE,
        "test": MANAGE,
    }
    paginated_actions = ("deliveries",)
    query_parameters = {"deliveries": [STATUS_PARAMETER]}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WebhookEndpoint.objects.none()
        return webhook_endpoints_for(self.request.workspace)

    @extend_schema(responses={201: WebhookEndpointCreatedSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint, secret = services.endpoint_create(
            workspace=request.workspace, by=request.user, **serializer.validated_data
        )
        data = WebhookEndpointSerializer(endpoint).data | {"secret": secret}
        return Response(data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        serializer.instance = services.endpoint_update(
            endpoint=serializer.instance, by=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.endpoint_delete(endpoint=instance, by=self.request.user)

    @extend_schema(request=None, responses=WebhookSecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        """A new signing secret, returned once; the old one stops signing at once."""
        endpoint = self.get_object()
        secret = services.endpoint_rotate_secret(endpoint=endpoint, by=request.user)
        endpoint.refresh_from_db()
        return Response({"id": endpoint.pk, "secret": secret, "secret_hint": endpoint.secret_hint})

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Queue a ``webhook.test`` event for this endpoint; follow it in the delivery log."""
        delivery = services.endpoint_send_test(endpoint=self.get_object(), by=request.user)
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses=WebhookDeliverySerializer(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        endpoint = self.get_object()
        queryset = _with_status(webhook_deliveries_for(request.workspace).filter(endpoint=endpoint), request)
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)


class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceGenericViewSet):
    queryset = WebhookDelivery.objects.all()
    serializer_class = WebhookDeliverySerializer
    filterset_fields = ["endpoint", "event_type", "status"]
    required_permission = WRITE
    action_permissions = {"list": WRITE, "retrieve": WRITE, "retry": MANAGE}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return WebhookDelivery.objects.none()
        return webhook_deliveries_for(self.request.workspace)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Deliver again now with the same ``webhook-id``; 400 while it is still being attempted."""
        delivery = services.delivery_retry(delivery=self.get_object(), by=request.user)
        delivery.refresh_from_db()
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
