"""Conversions: ``POST /api/v1/publishing/conversions/`` records an order once per order id (201 the first
time, 200 with the same event for a repeat)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response

from aicmo.api import WorkspaceGenericViewSet
from aicmo.api.fields import CurrencyCodeField, FormattedCharField
from aicmo.api.schema import decimal_pattern, formatted

from ..models import EngagementEvent
from ..services import conversions
from .campaigns import EngagementEventSerializer

# The amounts `conversions.clean_order` takes (0 to MAX_VALUE, rounded to cents); the published pattern is this
# field's, a subset of them (no sign, exponent or third decimal), as for every decimal of the API.
AMOUNT = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0)


@extend_schema_field(
    {
        "type": "string",
        "pattern": decimal_pattern(AMOUNT),
        "maxLength": 40,
        "description": "Order value, a decimal 0–999999999999.99 (more decimals are rounded to cents).",
    }
)
class AmountTextField(serializers.CharField):
    """Order value as text; `conversions.clean_order` parses and bounds it."""


class ConversionSerializer(serializers.Serializer):
    """Shapes and the currency code; the service validates the amount range per field."""

    order_id = serializers.CharField(max_length=150)
    value = AmountTextField(max_length=40)
    currency = CurrencyCodeField()
    click = FormattedCharField(
        request_schema=formatted(
            "click-token",
            maxLength=300,
            description="The click to attribute the order to; blank or absent: the contact of `email`, if any.",
        ),
        max_length=300,
        required=False,
        allow_blank=True,
    )
    email = serializers.EmailField(required=False, allow_blank=True)
    occurred_at = serializers.DateTimeField(required=False)


class ConversionViewSet(WorkspaceGenericViewSet):
    queryset = EngagementEvent.objects.none()
    serializer_class = ConversionSerializer

    # 200: the same order id again — the stored conversion, nothing recorded twice
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
