"""Conversions: ``POST /api/v1/publishing/conversions/`` records an order once per order id (201 the first
time, 200 with the same event for a repeat)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from aicmo.api import WorkspaceGenericViewSet

from ..models import EngagementEvent
from ..services import conversions
from .campaigns import EngagementEventSerializer


class ConversionSerializer(serializers.Serializer):
    """Shapes only; the service validates values (ISO 4217 currency, amount range) per field."""

    order_id = serializers.CharField(max_length=150)
    value = serializers.CharField(max_length=40)
    currency = serializers.CharField(max_length=3)
    click = serializers.CharField(max_length=300, required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    occurred_at = serializers.DateTimeField(required=False)


class ConversionViewSet(WorkspaceGenericViewSet):
    queryset = EngagementEvent.objects.none()
    serializer_class = ConversionSerializer

    @extend_schema(
        request=ConversionSerializer,
        responses={201: EngagementEventSerializer, 200: EngagementEventSerializer},
    )
    def create(self, request):
        serializer = ConversionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = conversions.conversion_record(
            workspace=request.workspace,
            order_id=data["order_id"],
            value=data["value"],
            currency=data["currency"],
            click_token=data.get("click") or None,
            email=data.get("email") or None,
            at=data.get("occurred_at"),
        )
        return Response(
            EngagementEventSerializer(result.event).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )
