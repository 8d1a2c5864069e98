"""A/B tests: ``/api/v1/publishing/abtests/`` — create on a draft campaign, read the numbers (leader,
p-value, "significant" or "not yet"), ``POST {id}/evaluate/`` to refresh them, ``POST {id}/winner/``
(``{"label": "B"}``) to send that variant to the held rest."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from aicmo.api import WorkspaceGenericViewSet, WorkspaceRelatedField
from aicmo.conflicts import MISSING

from ..models import ABMetric, ABTest, Campaign, Content
from ..services import abtests as services


class VariantInSerializer(serializers.Serializer):
    label = serializers.CharField(max_length=20)
    subject = serializers.CharField(max_length=300, required=False, allow_blank=True)
    content = WorkspaceRelatedField(queryset=Content.objects.all(), required=False, allow_null=True)


class ABTestSerializer(serializers.ModelSerializer):
    campaign = WorkspaceRelatedField(queryset=Campaign.objects.all())
    variants = serializers.SerializerMethodField()
    winner = serializers.SlugRelatedField(slug_field="label", read_only=True, allow_null=True)
    verdict = serializers.CharField(read_only=True)

    class Meta:
        model = ABTest
        fields = [
            "id",
            "campaign",
            "test_share",
            "metric",
            "wait_minutes",
            "auto_winner",
            "phase",
            "variants",
            "winner",
            "result",
            "verdict",
            "decided_at",
        ]
        read_only_fields = ["phase", "result", "decided_at"]

    def get_variants(self, obj) -> list[dict]:
        return [{"label": v.label, "subject": v.subject, "content": v.content_id} for v in obj.variants.all()]


class ABTestCreateSerializer(serializers.Serializer):
    campaign = WorkspaceRelatedField(queryset=Campaign.objects.all())
    variants = VariantInSerializer(many=True)
    test_share = serializers.IntegerField(min_value=1, max_value=90, default=20)
    metric = serializers.ChoiceField(choices=ABMetric.choices, default=ABMetric.OPENS)
    wait_minutes = serializers.IntegerField(min_value=1, max_value=60 * 24 * 14, default=240)
    auto_winner = serializers.BooleanField(default=True)


class WinnerSerializer(serializers.Serializer):
    label = serializers.CharField(max_length=20)


class ABTestViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceGenericViewSet):
    queryset = ABTest.objects.all()
    serializer_class = ABTestSerializer

    def get_queryset(self):
        return (
            super()
            .get_queryset()
            .select_related("campaign", "winner")
            .prefetch_related("variants")
            .order_by("-id")
        )

    @extend_schema(request=ABTestCreateSerializer, responses={201: ABTestSerializer})
    def create(self, request):
        data = ABTestCreateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        abtest = services.abtest_create(**data.validated_data)
        return Response(self.get_serializer(self.get_queryset().get(pk=abtest.pk)).data, status=201)

    @extend_schema(request=None, responses=ABTestSerializer)
    @action(detail=True, methods=["post"])
    def evaluate(self, request, pk=None):
        abtest = self.get_object()
        services.abtest_evaluate(abtest)
        return Response(self.get_serializer(self.get_queryset().get(pk=abtest.pk)).data)

    @extend_schema(request=WinnerSerializer, responses=ABTestSerializer)
    @action(detail=True, methods=["post"])
    def winner(self, request, pk=None):
        abtest = self.get_object()
        data = WinnerSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        variant = abtest.variants.filter(label=data.validated_data["label"]).first()
        if variant is None:
            raise serializers.ValidationError({"label": "No variant with this label."}, code=MISSING)
        services.abtest_choose_winner(abtest=abtest, variant=variant)
        return Response(
            self.get_serializer(self.get_queryset().get(pk=abtest.pk)).data, status=status.HTTP_200_OK
        )
