"""Senders, layouts and contents with their email version. Serializers check shapes; services decide."""

from __future__ import annotations

from django.core.validators import RegexValidator
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from aicmo.api import WorkspaceGenericViewSet, WorkspaceRelatedField
from aicmo.api.fields import FormattedTextField
from aicmo.roles import MANAGE, READ

from ..models import Channel, Content, ContentVersion, Layout, Sender
from ..personalization import COMPANY_FIELDS, CONTACT_FIELDS, LAYOUT_NAMES, LINK_NAMES
from ..selectors import contents_for
from ..services import content as services


class SenderSerializer(serializers.ModelSerializer):
    class Meta:
        model = Sender
        fields = ["id", "email", "name", "is_verified", "verified_at", "created_at"]
        read_only_fields = ["is_verified", "verified_at", "created_at"]
        extra_kwargs = {"email": {"validators": []}}


class SenderViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, WorkspaceGenericViewSet
):
    """The workspace's From addresses; only verified ones can be used on an email (admins verify)."""

    queryset = Sender.objects.all()
    serializer_class = SenderSerializer
    action_permissions = {"verify": MANAGE}

    def get_queryset(self):
        return super().get_queryset().order_by("email")

    def perform_create(self, serializer):
        data = serializer.validated_data
        serializer.instance = services.sender_create(
            workspace=self.request.workspace,
            email=data["email"],
            name=data.get("name", ""),
            by=self.request.user,
        )

    @extend_schema(request=None, responses=SenderSerializer)
    @action(detail=True, methods=["post"])
    def verify(self, request, pk=None):
        sender = services.sender_verify(sender=self.get_object(), by=request.user)
        return Response(SenderSerializer(sender).data)


# The rules `services.content` checks when a template is saved (publishing.personalization.template_check).
TEMPLATE_RULE = (
    "A personalization template: it compiles in the Jinja sandbox and reads only contact.<field> ("
    + ", ".join(CONTACT_FIELDS)
    + "), company.<field> ("
    + ", ".join(COMPANY_FIELDS)
    + "), custom.<key> of the workspace's custom fields, "
    + ", ".join(LINK_NAMES)
    + " and names the template sets itself; a 400 names the field and line at fault."
)
IMAGES_RULE = ' Images only as <img src="asset:<id>"> of an approved raster media asset of the workspace.'
LAYOUT_RULE = (
    TEMPLATE_RULE
    + " A layout may also read "
    + ", ".join(LAYOUT_NAMES)
    + " and must place {{ body }} (optionally filtered) where the email's content goes."
    + IMAGES_RULE
)
MJML_RULE = (
    "MJML (mjml.io) that compiles (mj-include is refused); its HTML, which replaces `html`, follows the rule of "
    "`html`. " + TEMPLATE_RULE + IMAGES_RULE
)


class LayoutSerializer(serializers.ModelSerializer):
    html = FormattedTextField(
        published_format="jinja-layout",
        help_text=LAYOUT_RULE,
        # also stated as a pattern
        validators=[
            RegexValidator(
                services.LAYOUT_BODY, "The layout must contain {{ body }} where the email's content goes."
            )
        ],
    )

    class Meta:
        model = Layout
        fields = ["id", "name", "html", "css", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]
        extra_kwargs = {
            "name": {"validators": []},
        }


class LayoutViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    WorkspaceGenericViewSet,
):
    """Base layouts: HTML with ``{{ body }}`` and CSS inlined into every email that uses them."""

    queryset = Layout.objects.all()
    serializer_class = LayoutSerializer

    def get_queryset(self):
        return super().get_queryset().order_by("name")

    def _save(self, serializer, layout=None):
        data = {
            **({"name": layout.name, "html": layout.html, "css": layout.css} if layout else {}),
            **serializer.validated_data,
        }
        serializer.instance = services.layout_save(
            workspace=self.request.workspace,
            layout=layout,
            by=self.request.user,
            name=data.get("name", ""),
            html=data.get("html", ""),
            css=data.get("css", ""),
        )

    def perform_create(self, serializer):
        self._save(serializer)

    def perform_update(self, serializer):
        self._save(serializer, serializer.instance)


def _template(rule: str = TEMPLATE_RULE, *, max_length: int | None = None, name: str = "jinja-template"):
    return FormattedTextField(
        published_format=name, help_text=rule, required=False, allow_blank=True, max_length=max_length
    )


class EmailVersionSerializer(serializers.ModelSerializer):
    sender = WorkspaceRelatedField(queryset=Sender.objects.all(), allow_null=True, required=False)
    layout = WorkspaceRelatedField(queryset=Layout.objects.all(), allow_null=True, required=False)
    subject = _template(max_length=ContentVersion._meta.get_field("subject").max_length)
    preheader = _template(max_length=ContentVersion._meta.get_field("preheader").max_length)
    html = _template(TEMPLATE_RULE + IMAGES_RULE)
    mjml = _template(MJML_RULE, name="mjml-template")
    text = _template(TEMPLATE_RULE + " Empty: generated from the HTML.")

    class Meta:
        model = ContentVersion
        fields = [
            "subject",
            "preheader",
            "sender",
            "from_name",
            "reply_to",
            "layout",
            "html",
            "mjml",
            "text",
            "text_generated",
            "updated_at",
        ]
        read_only_fields = ["text_generated", "updated_at"]


class ContentSerializer(serializers.ModelSerializer):
    email = serializers.SerializerMethodField()
    channels = serializers.SerializerMethodField()

    class Meta:
        model = Content
        fields = ["id", "name", "channels", "email", "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def _versions(self, obj) -> list:
        return list(obj.versions.all())

    def get_channels(self, obj) -> list[str]:
        return [v.channel for v in self._versions(obj)]

    @extend_schema_field(EmailVersionSerializer(allow_null=True))
    def get_email(self, obj):
        version = next((v for v in self._versions(obj) if v.channel == Channel.EMAIL), None)
        return EmailVersionSerializer(version).data if version else None


class CheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    errors = serializers.ListField(child=serializers.CharField())
    warnings = serializers.ListField(child=serializers.CharField())
    html_bytes = serializers.IntegerField()


class ContentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    WorkspaceGenericViewSet,
):
    """Contents and their per-channel versions. PUT/PATCH ``{id}/email/`` writes the email version; a
    template that does not compile or names an unknown field is a 400 naming the field and line."""

    queryset = Content.objects.all()
    serializer_class = ContentSerializer
    action_permissions = {"check": READ}

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Content.objects.none()
        return contents_for(self.request.workspace)

    def perform_create(self, serializer):
        serializer.instance = services.content_create(
            workspace=self.request.workspace, name=serializer.validated_data["name"], by=self.request.user
        )

    @extend_schema(request=EmailVersionSerializer, responses=EmailVersionSerializer)
    @action(detail=True, methods=["put", "patch"])
    def email(self, request, pk=None):
        content = self.get_object()
        serializer = EmailVersionSerializer(
            data=request.data, partial=request.method == "PATCH", context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        version = services.email_version_save(content=content, by=request.user, **serializer.validated_data)
        return Response(EmailVersionSerializer(version).data, status=status.HTTP_200_OK)

    @extend_schema(
        request=None, responses={200: CheckSerializer, 404: OpenApiResponse(description="Not found")}
    )
    @action(detail=True, methods=["get"])
    def check(self, request, pk=None):
        content = self.get_object()
        version = content.versions.select_related("sender", "layout").filter(channel=Channel.EMAIL).first()
        return Response(services.email_version_check(version).as_dict())
