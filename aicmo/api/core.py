"""Core API: jobs (read + cancel), audit events (admins), API keys, members and invitations (admins), my
workspaces."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from aicmo import apikeys, invitations, jobs, workspaces
from aicmo.conflicts import CONFLICT
from aicmo.exports import audit_export_start
from aicmo.models import ApiKey, AuditEvent, Invitation, InvitationStatus, Job, JobError, Membership, Role
from aicmo.roles import MANAGE, WRITE

from .base import WorkspaceGenericViewSet, WorkspaceReadOnlyViewSet
from .fields import FormattedDateTimeField
from .filters import FilterSet
from .idempotency import idempotent
from .pagination import EventCursorPagination
from .schema import formatted


class JobErrorSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobError
        fields = ["item", "message", "details", "created_at"]


class JobSerializer(serializers.ModelSerializer):
    percent = serializers.IntegerField(read_only=True)
    started_by = serializers.CharField(
        source="started_by.username", default=None, read_only=True, allow_null=True
    )
    errors_url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "label",
            "status",
            "total",
            "done",
            "failed",
            "percent",
            "message",
            "result",
            "started_by",
            "created_at",
            "started_at",
            "finished_at",
            "errors_url",
        ]
        read_only_fields = fields

    def get_errors_url(self, obj) -> str:
        return f"/api/v1/jobs/{obj.pk}/errors/"


class JobFilter(FilterSet):
    class Meta:
        model = Job
        fields = ["kind", "status"]


class JobViewSet(WorkspaceReadOnlyViewSet):
    queryset = Job.objects.select_related("started_by")
    serializer_class = JobSerializer
    filterset_class = JobFilter
    ordering_fields = ["created_at", "finished_at"]
    action_permissions = {"cancel": WRITE}
    paginated_actions = ("errors",)

    @extend_schema(request=None, responses=JobSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        job = jobs.job_cancel(job=self.get_object(), by=request.user)
        return Response(JobSerializer(job).data)

    @extend_schema(responses=JobErrorSerializer(many=True))
    @action(detail=True, methods=["get"])
    def errors(self, request, pk=None):
        job = self.get_object()
        page = self.paginate_queryset(job.errors.all())
        return self.get_paginated_response(JobErrorSerializer(page, many=True).data)


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["id", "actor_label", "verb", "target_type", "target_id", "target_repr", "changes", "at"]
        read_only_fields = fields


class AuditEventViewSet(WorkspaceReadOnlyViewSet):
    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    pagination_class = EventCursorPagination
    required_permission = MANAGE
    filterset_fields = ["verb", "target_type", "target_id"]
    ordering_fields = None
    ordering = ["-id"]

    @extend_schema(request=None, responses={202: JobSerializer})
    @idempotent
    @action(detail=False, methods=["post"])
    def export(self, request):
        """Start a CSV export of the whole audit log; follow the returned job, then download its file."""
        job = audit_export_start(workspace=request.workspace, by=request.user)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ApiKeySerializer(serializers.ModelSerializer):
    expires_at = FormattedDateTimeField(
        request_schema=formatted(
            "future-date-time",
            nullable=True,
            description="When the key stops working; null or absent: never.",
        ),
        required=False,
        allow_null=True,
        help_text="When the key stops working; null: never.",
    )

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "role", "created_at", "last_used_at", "revoked_at", "expires_at"]
        read_only_fields = ["id", "prefix", "created_at", "last_used_at", "revoked_at"]


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The full key. Shown only in this response.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class ApiKeyViewSet(
    mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, WorkspaceGenericViewSet
):
    queryset = ApiKey.objects.all()
    serializer_class = ApiKeySerializer
    required_permission = MANAGE

    @extend_schema(responses={201: ApiKeyCreatedSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = apikeys.api_key_create(
            workspace=request.workspace, by=request.user, **serializer.validated_data
        )
        data = ApiKeySerializer(created.api_key).data | {"key": created.secret}
        return Response(data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=ApiKeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        key = apikeys.api_key_revoke(api_key=self.get_object(), by=request.user)
        return Response(ApiKeySerializer(key).data)


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    email = serializers.EmailField(source="user.email", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "username", "email", "role", "created_at"]
        read_only_fields = ["id", "created_at"]


class MembershipRoleSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


ROLE_BODY = {
    "type": "object",
    "properties": {"role": {"type": "string", "enum": list(Role.values)}},
    "required": ["role"],
}


class MembershipViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    WorkspaceGenericViewSet,
):
    """Members of the current workspace. Everyone may list; only admins change roles or remove. People join
    through /invitations/ (there is no create here: naming an existing account enrolled anyone)."""

    queryset = Membership.objects.select_related("user")
    serializer_class = MembershipSerializer
    http_method_names = ["get", "patch", "delete", "head", "options"]

    def get_permissions(self):
        self.required_permission = None if self.request.method in ("GET", "HEAD", "OPTIONS") else MANAGE
        return super().get_permissions()

    # PATCH too needs the role (drf-spectacular would document a PATCH body's fields as optional)
    @extend_schema(request={"application/json": ROLE_BODY}, responses=MembershipSerializer)
    def partial_update(self, request, *args, **kwargs):
        membership = self.get_object()
        form = MembershipRoleSerializer(data=request.data)  # a JSON list or scalar body is a 400 here too
        form.is_valid(raise_exception=True)
        try:
            membership = workspaces.membership_set(
                membership=membership, role=form.validated_data["role"], by=request.user
            )
        except workspaces.LastAdminError as exc:  # the workspace's state, not the request: a 409
            raise serializers.ValidationError({"role": [str(exc)]}, code=CONFLICT) from exc
        return Response(self.get_serializer(membership).data)

    @extend_schema(request=MembershipRoleSerializer, responses=MembershipSerializer)
    def update(self, request, *args, **kwargs):
        return self.partial_update(request, *args, **kwargs)

    def perform_destroy(self, instance):
        try:
            workspaces.membership_remove(membership=instance, by=self.request.user)
        except workspaces.LastAdminError as exc:
            raise serializers.ValidationError(str(exc), code=CONFLICT) from exc  # the state: a 409


class InvitationSerializer(serializers.ModelSerializer):
    status = serializers.CharField(read_only=True)
    invited_by = serializers.CharField(source="invited_by.username", default=None, read_only=True)
    accept_url = serializers.SerializerMethodField(
        help_text="The link to send the invitee (single-use; stops working on resend, revoke or expiry)."
    )

    class Meta:
        model = Invitation
        fields = [
            "id",
            "email",
            "role",
            "status",
            "invited_by",
            "created_at",
            "expires_at",
            "accepted_at",
            "revoked_at",
            "sent_at",
            "send_provider",
            "send_demo",
            "send_error",
            "accept_url",
        ]
        read_only_fields = [f for f in fields if f not in ("email", "role")]

    def get_accept_url(self, obj) -> str | None:
        return invitations.accept_url(obj) if obj.status == InvitationStatus.PENDING else None


class InvitationCreateSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=Role.choices)


class InvitationViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    WorkspaceGenericViewSet,
):
    """Invitations of the current workspace (admins only). Creating one never looks at user accounts, so the
    answer is the same whether the address has an account or not. DELETE revokes (the row stays, audited)."""

    queryset = Invitation.objects.select_related("invited_by")
    serializer_class = InvitationSerializer
    required_permission = MANAGE
    filterset_fields = ["email", "role"]
    ordering_fields = ["created_at", "expires_at"]

    @extend_schema(request=InvitationCreateSerializer, responses={201: InvitationSerializer})
    def create(self, request, *args, **kwargs):
        form = InvitationCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        invitation = invitations.invitation_create(
            workspace=request.workspace, by=request.user, **form.validated_data
        )
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=InvitationSerializer)
    @action(detail=True, methods=["post"])
    def resend(self, request, pk=None):
        """A fresh link and expiry, mailed again; the previous link stops working."""
        invitation = invitations.invitation_resend(invitation=self.get_object(), by=request.user)
        return Response(InvitationSerializer(invitation).data)

    @extend_schema(request=None, responses=InvitationSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        invitation = invitations.invitation_revoke(invitation=self.get_object(), by=request.user)
        return Response(InvitationSerializer(invitation).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, *args, **kwargs):
        invitations.invitation_revoke(invitation=self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MyWorkspacesView(APIView):
    """The workspaces the caller belongs to, with the role in each (use the id as X-Workspace)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: dict})
    def get(self, request):
        if isinstance(request.auth, ApiKey):
            key = request.auth
            rows = [
                {
                    "id": key.workspace_id,
                    "slug": key.workspace.slug,
                    "name": key.workspace.name,
                    "role": key.role,
                }
            ]
        else:
            rows = [
                {"id": m.workspace_id, "slug": m.workspace.slug, "name": m.workspace.name, "role": m.role}
                for m in Membership.objects.filter(user=request.user).select_related("workspace")
            ]
        return Response({"results": rows})
