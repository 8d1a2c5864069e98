"""Media API: libraries, assets (multipart upload, CRUD, approve/reject/archive, renditions, duplicates,
usage, performance, download), statistics and suggestions. Views decide who; services decide what."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from aicmo.api import (
    WorkspaceGenericViewSet,
    WorkspaceRelatedField,
    WorkspaceViewSet,
    error_response,
    id_parameter,
)
from aicmo.api.core import JobSerializer
from aicmo.api.fields import file_upload
from aicmo.api.idempotency import idempotent
from aicmo.api.schema import NO_NUL
from aicmo.conflicts import CONFLICT
from aicmo.roles import APPROVE, READ

from . import selectors, services
from .downloads import asset_response, rendition_response
from .models import AssetKind, AssetStatus, AssetUsage, MediaAsset, MediaLibrary, Rendition, Suggestion
from .models import SuggestionStatus as SuggestionState
from .validation import ACCEPTED_MEDIA_TYPES, UploadRejected

# Ids are BigAutoField: a larger number names no row, and SQLite cannot even bind it (OverflowError).
MAX_ID = 2**63 - 1


def _id_param(params, name: str) -> int | None:
    """An optional id in the query string: absent or empty is None, anything but an id in range a 400."""
    raw = params.get(name, "")
    if raw == "":
        return None
    try:
        return serializers.IntegerField(min_value=1, max_value=MAX_ID).run_validation(raw)
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({name: exc.detail}) from None


def _text_param(params, name: str) -> str:
    """A free-text query parameter; a NUL character (which PostgreSQL cannot compare) is a 400."""
    try:
        return serializers.CharField(allow_blank=True, trim_whitespace=False).run_validation(
            params.get(name, "")
        )
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({name: exc.detail}) from None


def _choice_param(params, name: str, choices) -> str:
    """An optional choice in the query string: absent or empty is "", an unknown value a 400 (not "all")."""
    raw = params.get(name, "")
    if raw == "":
        return ""
    try:
        return serializers.ChoiceField(choices=choices).run_validation(raw)
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({name: exc.detail}) from None


ASSET_LIST_PARAMS = [
    id_parameter("library", "Library id."),
    OpenApiParameter("kind", str, enum=AssetKind.values),
    OpenApiParameter("status", str, enum=AssetStatus.values),
    OpenApiParameter("tag", str, description="Tag name."),
    OpenApiParameter("category", str),
    OpenApiParameter("q", str, description="Search in title, description, file name and alt text."),
]


class RenditionRequestSerializer(serializers.Serializer):
    force = serializers.BooleanField(default=False)


class MediaLibrarySerializer(serializers.ModelSerializer):
    asset_count = serializers.IntegerField(read_only=True, default=0)

    class Meta:
        model = MediaLibrary
        fields = ["id", "name", "description", "asset_count", "created_at"]
        read_only_fields = ["id", "asset_count", "created_at"]

    def validate_name(self, value: str) -> str:
        qs = MediaLibrary.objects.for_workspace(self.context["workspace"]).filter(name=value.strip())
        if self.instance is not None:
            qs = qs.exclude(pk=self.instance.pk)
        if qs.exists():
            raise serializers.ValidationError("A library with this name already exists.", code=CONFLICT)
        return value.strip()


class MediaLibraryViewSet(mixins.CreateModelMixin, mixins.UpdateModelMixin, mixins.ListModelMixin,
                          mixins.RetrieveModelMixin, WorkspaceGenericViewSet):  # fmt: skip
    serializer_class = MediaLibrarySerializer
    queryset = MediaLibrary.objects.none()

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return MediaLibrary.objects.none()
        return selectors.libraries_for(self.request.workspace)

    def perform_create(self, serializer):
        serializer.instance = services.library_create(
            workspace=self.request.workspace, by=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = services.library_update(
            library=serializer.instance, by=self.request.user, **serializer.validated_data
        )


class RenditionSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = Rendition
        fields = ["id", "spec", "width", "height", "format", "size_bytes", "created_at", "url"]

    def get_url(self, obj) -> str:
        return f"/api/v1/media/renditions/{obj.asset_id}/{obj.spec}/"


class MediaAssetSerializer(serializers.ModelSerializer):
    library = WorkspaceRelatedField(queryset=MediaLibrary.objects.all())
    tags = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = MediaAsset
        fields = [
            "id", "library", "kind", "status", "title", "description", "alt_text", "category", "tags",
            "original_filename", "filename", "mime_type", "sha256", "phash", "sanitized", "width", "height", "aspect_ratio",
            "format", "color_mode", "has_alpha", "size_bytes", "duration_seconds", "video_codec", "page_count", "frame_count",
            "exif_orientation_applied", "focal_x", "focal_y", "review_note", "reviewed_at", "published_at",
            "archived_at", "last_used_at", "created_at", "updated_at", "download_url",
        ]  # fmt: skip
        read_only_fields = fields

    def get_tags(self, obj) -> list[str]:
        return [t.name for t in obj.tags.all()]

    def get_download_url(self, obj) -> str:
        return f"/api/v1/media/assets/{obj.pk}/download/"


class TagListField(serializers.ListField):
    """Accepts a JSON list or a comma-separated string (multipart forms)."""

    child = serializers.CharField(max_length=60)

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = [data]
        if isinstance(data, list | tuple):
            data = [part.strip() for item in data for part in str(item).split(",") if part.strip()]
        return super().to_internal_value(data)


class AssetUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="An image (JPEG, PNG, WebP, GIF, AVIF, SVG), a PDF, a video, an audio file or plain text; the "
        "type is read from the bytes, never from the name (media.validation). Empty, unknown or oversized "
        "files are a 400, 415 or 413."
    )
    library = WorkspaceRelatedField(queryset=MediaLibrary.objects.all(), required=False)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    alt_text = serializers.CharField(max_length=500, required=False, allow_blank=True, default="")
    category = serializers.CharField(max_length=60, required=False, allow_blank=True, default="")
    tags = TagListField(required=False, default=list)


class AssetUpdateSerializer(serializers.Serializer):
    library = WorkspaceRelatedField(queryset=MediaLibrary.objects.all(), required=False)
    title = serializers.CharField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    alt_text = serializers.CharField(max_length=500, required=False, allow_blank=True)
    category = serializers.CharField(max_length=60, required=False, allow_blank=True)
    tags = TagListField(required=False)
    focal_x = serializers.FloatField(required=False, min_value=0, max_value=1)
    focal_y = serializers.FloatField(required=False, min_value=0, max_value=1)


class ReviewSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="")


class RejectSerializer(serializers.Serializer):
    note = serializers.CharField(
        max_length=2000, validators=[RegexValidator(r"\S", "Say why the asset is rejected.")],
        help_text="Why the asset is rejected (required, not blank).",
    )  # fmt: skip


class UsageSerializer(serializers.ModelSerializer):
    class Meta:
        model = AssetUsage
        fields = ["ref", "campaign", "channel", "used_at"]


class SuggestionSerializer(serializers.ModelSerializer):
    asset_title = serializers.CharField(source="asset.title", read_only=True)

    class Meta:
        model = Suggestion
        fields = ["id", "asset", "asset_title", "code", "message", "details", "saving_bytes", "status",
                  "actionable", "computed_at", "resolved_at"]  # fmt: skip
        read_only_fields = fields


class AssetPerformanceRowSerializer(serializers.Serializer):
    """One asset × channel row of `_perf_row` (rates are fractions 0–1, rounded to 6 places)."""

    asset_id = serializers.IntegerField()
    title = serializers.CharField()
    channel = serializers.CharField()
    impressions = serializers.IntegerField()
    clicks = serializers.IntegerField()
    engagements = serializers.IntegerField()
    conversions = serializers.IntegerField()
    ctr = serializers.FloatField()
    engagement_rate = serializers.FloatField()
    conversion_rate = serializers.FloatField()


ASSET_REF = inline_serializer(
    "AssetRef", fields={"id": serializers.IntegerField(), "title": serializers.CharField()}
)


def _perf_row(r: selectors.PerformanceRow) -> dict:
    return {
        "asset_id": r.asset_id, "title": r.title, "channel": r.channel, "impressions": r.impressions,
        "clicks": r.clicks, "engagements": r.engagements, "conversions": r.conversions, "ctr": round(r.ctr, 6),
        "engagement_rate": round(r.engagement_rate, 6), "conversion_rate": round(r.conversion_rate, 6),
    }  # fmt: skip


class MediaAssetViewSet(WorkspaceViewSet):
    serializer_class = MediaAssetSerializer
    action_permissions = {"approve": APPROVE, "reject": APPROVE}
    filter_backends: list = []
    queryset = MediaAsset.objects.none()
    query_parameters = {
        "list": ASSET_LIST_PARAMS,
        "stats": [id_parameter("library", "Library id; all libraries when absent.")],
        "performers": [
            OpenApiParameter(
                "channel",
                {"type": "string", "minLength": 1, "pattern": NO_NUL},
                required=True,
                description="The channel the assets were used on (e.g. email); required, not empty.",
            )
        ],
    }

    def get_parsers(self):
        """A file travels only in an upload (``create``: multipart/form-data); every other write is JSON,
        so a form body sent to an update or a review is a 415, not an empty change that succeeds. (DRF
        reads the parsers before it sets ``self.action``: the route's action map names it.)"""
        method = getattr(getattr(self, "request", None), "method", None)
        action = getattr(self, "action_map", {}).get((method or "").lower()) or getattr(self, "action", None)
        return [MultiPartParser()] if action == "create" else [JSONParser()]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return MediaAsset.objects.none()
        params = self.request.query_params
        return selectors.assets_for(
            self.request.workspace,
            library=_id_param(params, "library"),
            kind=_choice_param(params, "kind", AssetKind.choices),
            status=_choice_param(params, "status", AssetStatus.choices),
            tag=_text_param(params, "tag"),
            category=_text_param(params, "category"),
            q=_text_param(params, "q"),
        )

    @extend_schema(
        # a file travels only in multipart/form-data: a JSON or urlencoded body cannot carry one
        request=file_upload(AssetUploadSerializer, ", ".join(ACCEPTED_MEDIA_TYPES)),
        responses={201: MediaAssetSerializer, 200: MediaAssetSerializer},
    )
    @idempotent
    def create(self, request, *args, **kwargs):
        form = AssetUploadSerializer(data=request.data, context=self.get_serializer_context())
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        library = data.pop("library", None) or services.library_get_default(workspace=request.workspace)
        upload = data.pop("file")
        try:
            result = services.asset_upload(
                library=library, file=upload, by=request.user, filename=upload.name, **data
            )
        except UploadRejected as exc:
            return error_response(exc.code, exc.message, exc.http_status, {"file": [exc.message]})
        body = {**MediaAssetSerializer(result.asset, context=self.get_serializer_context()).data,
                "duplicate": result.duplicate}  # fmt: skip
        return Response(body, status=status.HTTP_200_OK if result.duplicate else status.HTTP_201_CREATED)

    @extend_schema(request=AssetUpdateSerializer)
    def update(self, request, *args, **kwargs):
        asset = self.get_object()
        form = AssetUpdateSerializer(data=request.data, partial=True, context=self.get_serializer_context())
        form.is_valid(raise_exception=True)
        data = dict(form.validated_data)
        asset = services.asset_update(asset=asset, by=request.user, **data)
        return Response(MediaAssetSerializer(asset, context=self.get_serializer_context()).data)

    def partial_update(self, request, *args, **kwargs):
        return self.update(request, *args, **kwargs)

    def perform_destroy(self, instance):
        services.asset_delete(asset=instance, by=self.request.user)

    def _review(self, request, fn, serializer=ReviewSerializer):
        form = serializer(data=request.data)
        form.is_valid(raise_exception=True)
        asset = fn(asset=self.get_object(), by=request.user, note=form.validated_data["note"],
                   role=request.tenant.role)  # fmt: skip
        return Response(MediaAssetSerializer(asset, context=self.get_serializer_context()).data)

    @extend_schema(request=ReviewSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        return self._review(request, services.asset_approve)

    @extend_schema(request=RejectSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        return self._review(request, services.asset_reject, RejectSerializer)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def archive(self, request, pk=None):
        asset = services.asset_archive(asset=self.get_object(), by=request.user)
        return Response(MediaAssetSerializer(asset, context=self.get_serializer_context()).data)

    @extend_schema(
        request=RenditionRequestSerializer,
        responses={200: RenditionSerializer(many=True), 202: JobSerializer},
    )
    @action(detail=True, methods=["get", "post"])
    def renditions(self, request, pk=None):
        asset = self.get_object()
        if request.method == "GET":
            return Response(RenditionSerializer(asset.renditions.order_by("spec"), many=True).data)
        if not services.rendition_specs(asset):
            return error_response(  # a property of this asset, not of the request: a state conflict
                "no_renditions", "Only raster images and videos have renditions.", status.HTTP_409_CONFLICT
            )
        form = RenditionRequestSerializer(data=request.data)  # a JSON list or scalar body is a 400 too
        form.is_valid(raise_exception=True)
        force = form.validated_data["force"]
        job = services.asset_request_renditions(asset=asset, by=request.user, force=force)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        responses=inline_serializer(
            "NearDuplicate",
            fields={"asset_id": serializers.IntegerField(), "title": serializers.CharField(),
                    "distance": serializers.IntegerField()},
            many=True,
        )
    )  # fmt: skip
    @action(detail=True, methods=["get"], url_path="near-duplicates")
    def near_duplicates(self, request, pk=None):
        matches = selectors.near_duplicates(asset=self.get_object())
        return Response(
            [{"asset_id": m.asset.pk, "title": m.asset.title, "distance": m.distance} for m in matches]
        )

    @extend_schema(responses=UsageSerializer(many=True))
    @action(detail=True, methods=["get"])
    def usage(self, request, pk=None):
        return Response(UsageSerializer(self.get_object().usages.order_by("-used_at")[:500], many=True).data)

    @extend_schema(responses=AssetPerformanceRowSerializer(many=True))
    @action(detail=True, methods=["get"])
    def performance(self, request, pk=None):
        rows = selectors.performance_rows(workspace=request.workspace, asset=self.get_object().pk)
        return Response([_perf_row(r) for r in rows])

    @extend_schema(responses={(200, "*/*"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        return asset_response(self.get_object())

    @extend_schema(
        responses=inline_serializer(
            "DuplicatePair",
            fields={"a": ASSET_REF, "b": ASSET_REF, "distance": serializers.IntegerField()},
            many=True,
        )
    )
    @action(detail=False, methods=["get"])
    def duplicates(self, request):
        pairs = selectors.duplicate_pairs(workspace=request.workspace)
        return Response([
            {"a": {"id": p.a.pk, "title": p.a.title}, "b": {"id": p.b.pk, "title": p.b.title}, "distance": p.distance}
            for p in pairs
        ])  # fmt: skip

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["get"])
    def stats(self, request):
        library = _id_param(request.query_params, "library")
        return Response(selectors.library_stats(workspace=request.workspace, library=library))

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=False, methods=["get"])
    def performers(self, request):
        channel = _text_param(request.query_params, "channel")
        if not channel:
            return error_response(
                "invalid", "Pass ?channel=.", status.HTTP_400_BAD_REQUEST, {"channel": ["Required."]}
            )
        ranking = selectors.performers(workspace=request.workspace, channel=channel)
        return Response({
            "channel": channel, "median_ctr": ranking.median_ctr, "min_impressions": selectors.MIN_IMPRESSIONS,
            "high": [_perf_row(r) for r in ranking.high], "low": [_perf_row(r) for r in ranking.low],
        })  # fmt: skip


class RenditionViewSet(WorkspaceGenericViewSet):
    """Read one rendition file; GET /renditions/{asset_id}/{spec}/ builds it on demand under the lock."""

    required_permission = READ
    queryset = MediaAsset.objects.all()
    serializer_class = RenditionSerializer

    @extend_schema(responses={(200, "image/*"): OpenApiTypes.BINARY, 503: None})
    @action(detail=True, methods=["get"], url_path=r"(?P<spec>[a-z_]+)")
    def spec(self, request, pk=None, spec=None):
        asset = self.get_object()
        if spec not in services.rendition_specs(asset):
            raise Http404
        try:
            return rendition_response(services.rendition_get_or_build(asset=asset, spec=spec))
        except services.RenditionBusy:
            response = error_response("busy", "The rendition is being built; try again shortly.", 503)
            response["Retry-After"] = "5"
            return response


class SuggestionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceGenericViewSet):
    serializer_class = SuggestionSerializer
    queryset = Suggestion.objects.none()
    filter_backends: list = []
    query_parameters = {
        "list": [
            OpenApiParameter(
                "status", str, enum=[*SuggestionState.values, "all"], description='Default "open".'
            ),
            id_parameter("asset", "Asset id."),
        ]
    }

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Suggestion.objects.none()
        qs = (
            Suggestion.objects.for_workspace(self.request.workspace)
            .select_related("asset")
            .order_by("asset_id", "code")
        )
        params = self.request.query_params
        status_ = _choice_param(params, "status", [*SuggestionState.values, "all"]) or "open"
        if self.action == "list" and status_ != "all":
            qs = qs.filter(status=status_)
        asset = _id_param(params, "asset")
        return qs if asset is None else qs.filter(asset_id=asset)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def dismiss(self, request, pk=None):
        suggestion = services.suggestion_dismiss(suggestion=self.get_object(), by=request.user)
        return Response(SuggestionSerializer(suggestion).data)

    @extend_schema(request=None, responses={202: JobSerializer})
    @action(detail=True, methods=["post"])
    def act(self, request, pk=None):
        job = services.suggestion_act(suggestion=self.get_object(), by=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={202: JobSerializer})
    @action(detail=False, methods=["post"])
    def refresh(self, request):
        job = services.suggestions_request_refresh(workspace=request.workspace, by=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


router = DefaultRouter()
router.register("libraries", MediaLibraryViewSet, basename="media-library")
router.register("assets", MediaAssetViewSet, basename="media-asset")
router.register("renditions", RenditionViewSet, basename="media-rendition")
router.register("suggestions", SuggestionViewSet, basename="media-suggestion")
urlpatterns = router.urls
