"""Engagement-score API: the workspace's rule (read by every role, changed by admins; a change answers with
the recompute Job) and a contact's score history (JSON or ``?format=csv``)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from aicmo.api import WorkspaceGenericViewSet
from aicmo.api.core import JobSerializer
from aicmo.api.fields import UnknownFieldsRefused
from aicmo.roles import MANAGE, READ
from crm.models import Contact

from . import scoring, selectors
from .downloads import CSVAwareMixin, csv_download
from .models import ScoreSettings


@extend_schema_field(
    {
        "type": "object",
        "properties": {
            kind: {"type": "number", "minimum": 0, "maximum": scoring.MAX_WEIGHT}
            for kind in scoring.EngagementKind.values
        },
        "additionalProperties": False,
        "description": "event kind → points (0–100); kinds left out weigh 0",
    }
)
class WeightsField(serializers.DictField):
    """Points per event kind: the kinds and range `scoring.clean_weights` accepts."""


class ScoreSettingsSerializer(UnknownFieldsRefused, serializers.ModelSerializer):
    weights = WeightsField(child=serializers.FloatField(min_value=0, max_value=scoring.MAX_WEIGHT))
    half_life_days = serializers.FloatField(min_value=0.1, max_value=3650)
    scale = serializers.FloatField(
        min_value=0.01, max_value=1_000_000, help_text="the raw sum that scores 63 (100 × (1 − 1/e))"
    )
    # scoring.check_thresholds: after a change (a threshold left out keeps its stored value),
    # 0 < low < medium < high ≤ 100, else a 400 on "thresholds"
    high_threshold = serializers.IntegerField(
        min_value=1, max_value=100, help_text="lowest score of tier high; above medium_threshold"
    )
    medium_threshold = serializers.IntegerField(
        min_value=1, max_value=100, help_text="lowest score of tier medium; above low_threshold"
    )
    low_threshold = serializers.IntegerField(
        min_value=1, max_value=100, help_text="lowest score of tier low; 0 < low < medium < high ≤ 100"
    )
    inactive_days = serializers.IntegerField(
        min_value=1, max_value=3650, help_text="no human event for this long: tier inactive"
    )
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True, help_text="null: never changed")

    class Meta:
        model = ScoreSettings
        fields = [*scoring.RULE_FIELDS, "updated_at"]
        read_only_fields = ["updated_at"]

    unknown_field_message = "Not a score setting."


class ScoreSettingsUpdatedSerializer(ScoreSettingsSerializer):
    job = JobSerializer(
        read_only=True, allow_null=True, help_text="the full recompute (null: nothing changed)"
    )

    class Meta(ScoreSettingsSerializer.Meta):
        fields = [*ScoreSettingsSerializer.Meta.fields, "job"]


class ScoreDaySerializer(serializers.Serializer):
    day = serializers.DateField(help_text="workspace-local day on which the score or tier changed")
    score = serializers.IntegerField()
    tier = serializers.CharField()


class ContactScoreHistorySerializer(serializers.Serializer):
    contact = serializers.IntegerField()
    score = serializers.IntegerField()
    tier = serializers.CharField()
    history = ScoreDaySerializer(many=True)


class ScoreSettingsViewSet(WorkspaceGenericViewSet):
    """The engagement-score rule of the caller's workspace (defaults until an admin changes it)."""

    queryset = ScoreSettings.objects.all()
    serializer_class = ScoreSettingsSerializer
    pagination_class = None
    filter_backends = []
    action_permissions = {"rule": READ, "rule_update": MANAGE}

    @extend_schema(responses=ScoreSettingsSerializer)
    @action(detail=False, methods=["get"], url_path="settings")
    def rule(self, request):
        return Response(ScoreSettingsSerializer(scoring.score_settings_for(self.workspace)).data)

    @extend_schema(
        request=ScoreSettingsSerializer(partial=True),
        responses={200: ScoreSettingsUpdatedSerializer},
        description="Change the rule (admins). A change starts a full recompute Job, returned as `job`.",
    )
    @rule.mapping.patch
    def rule_update(self, request):
        body = ScoreSettingsSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        row, job = scoring.score_settings_update(
            workspace=self.workspace, changes=dict(body.validated_data), by=request.user
        )
        data = dict(ScoreSettingsSerializer(row).data)
        data["job"] = JobSerializer(job).data if job is not None else None
        return Response(data)


class ContactScoreViewSet(CSVAwareMixin, WorkspaceGenericViewSet):
    """A contact's current score and tier and the days they changed on (for the contact timeline)."""

    queryset = Contact.objects.all()
    serializer_class = ContactScoreHistorySerializer
    pagination_class = None
    filter_backends = []
    action_permissions = {"history": READ}

    @extend_schema(
        responses={200: ContactScoreHistorySerializer, 404: OpenApiResponse(description="No such contact.")}
    )
    @action(detail=True, methods=["get"])
    def history(self, request, pk=None):
        contact = self.get_object()
        rows = selectors.score_history(self.workspace, contact.pk)
        if self.wants_csv():
            return csv_download(rows, f"contact-{contact.pk}-scores.csv", columns=["day", "score", "tier"])
        return Response(
            {
                "contact": contact.pk,
                "score": contact.engagement_score,
                "tier": contact.engagement_tier,
                "history": ScoreDaySerializer(rows, many=True).data,
            }
        )
