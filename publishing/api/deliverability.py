"""Deliverability settings, workspace admins only (``MANAGE``):

- ``/api/v1/publishing/dkim-keys/``: DKIM keys per sending domain — list (``?domain=``, ``?active=``),
  create (``private_key`` empty: a new RSA 2048 key; otherwise an unencrypted RSA PEM), read, delete,
  ``POST {id}/activate/`` (rotation: sign the domain's mail with this key). Answers carry the DNS TXT record
  to publish, never the private key. A selector already used for the domain is a 409; deleting the active
  key of a domain that has other keys is a 409.
- ``/api/v1/publishing/inbound-hooks/``: provider tracking webhooks — list, create (``provider``,
  ``secret``), read, delete. Answers carry the URL to paste into the provider and, for Amazon SES, the
  pending SNS subscription-confirmation link; never the secret.
"""

from __future__ import annotations

from drf_spectacular.utils import (
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from aicmo.api import WorkspaceGenericViewSet
from aicmo.api.fields import FormattedCharField
from aicmo.api.schema import SPACE, formatted
from aicmo.roles import MANAGE

from ..models import DkimKey, InboundHook, InboundProvider
from ..services import dkim as dkim_services
from ..services import inbound as inbound_services


def _lowering_to(allowed: str) -> str:
    """A character class body of every character whose lower case is one of ``allowed`` (``K`` and the
    Kelvin sign for ``k``): the selector is lowered before its check."""
    chars = [chr(c) for c in range(0x10000) if c < 0xD800 or c > 0xDFFF]
    return "".join(f"\\u{ord(c):04x}" for c in chars if c.lower() in allowed and len(c.lower()) == 1)


def _selector_pattern() -> str:
    """The selectors the API accepts, as a schema pattern: ``publishing.services.dkim._SELECTOR`` in any
    letter case (its lower case is checked), white space around it trimmed (Python's ``str.strip`` set,
    `aicmo.api.schema.SPACE`). A superset of the check: a schema-invalid selector is refused."""
    edge = _lowering_to("abcdefghijklmnopqrstuvwxyz0123456789")
    inner = _lowering_to("abcdefghijklmnopqrstuvwxyz0123456789-")
    label = f"[{edge}](?:[{inner}]{{0,61}}[{edge}])?"
    return f"^[{SPACE}]*{label}(?:\\.{label})*[{SPACE}]*$"


SELECTOR_PATTERN = _selector_pattern()


DnsRecordSerializer = inline_serializer(
    "DkimDnsRecord",
    {
        "name": serializers.CharField(help_text="<selector>._domainkey.<domain>"),
        "value": serializers.CharField(help_text="v=DKIM1; k=rsa; p=<base64 SubjectPublicKeyInfo>"),
        "chunks": serializers.ListField(
            child=serializers.CharField(),
            help_text="The value as the ≤255-character strings of one TXT record (RFC 1035 §3.3.14).",
        ),
    },
)


class DkimKeySerializer(serializers.ModelSerializer):
    dns_record = serializers.SerializerMethodField()

    class Meta:
        model = DkimKey
        fields = ["id", "domain", "selector", "active", "created_at", "activated_at", "dns_record"]
        read_only_fields = fields

    @extend_schema_field(DnsRecordSerializer)
    def get_dns_record(self, obj) -> dict:
        record = dkim_services.dns_record(obj)
        return {"name": record.name, "value": record.value, "chunks": record.chunks}


class DkimKeyCreateSerializer(serializers.Serializer):
    """Shapes only; ``dkim_key_create`` checks the domain (IDNA), selector and key, per field."""

    domain = FormattedCharField(
        request_schema=formatted(
            "domain-name",
            minLength=1,
            maxLength=300,
            description="The From addresses' domain, e.g. mail.acme.example.",
        ),
        max_length=300,
        help_text="The From addresses' domain, e.g. mail.acme.example",
    )
    selector = FormattedCharField(
        request_schema={
            "type": "string",
            "minLength": 1,
            "maxLength": 63,
            "pattern": SELECTOR_PATTERN,
            "description": "DNS label(s) of letters, digits and inner hyphens, dot-separated, e.g. "
            "aicmo2026 (stored in lower case).",
        },
        max_length=63,
        help_text="DNS label(s), e.g. aicmo2026",
    )
    private_key = FormattedCharField(
        request_schema=formatted(
            "pem-rsa-private-key",
            maxLength=20000,
            writeOnly=True,
            description="Blank: a new RSA 2048 key is generated. Never returned.",
        ),
        required=False,
        allow_blank=True,
        max_length=20000,
        trim_whitespace=False,
        write_only=True,
        help_text="Empty: generate an RSA 2048 key. Otherwise an unencrypted RSA private key, PKCS#1 or "
        "PKCS#8 PEM, 1024–4096 bits. Never returned.",
    )


class DkimKeyViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, WorkspaceGenericViewSet
):
    """The workspace's DKIM keys (admins). Rotation: create a key with a new selector (the domain's first
    key is active at once, later ones are not), publish its ``dns_record``, then ``activate`` it."""

    queryset = DkimKey.objects.all()
    serializer_class = DkimKeySerializer
    required_permission = MANAGE
    filterset_fields = ["domain", "active"]

    @extend_schema(request=DkimKeyCreateSerializer, responses={201: DkimKeySerializer})
    def create(self, request):
        serializer = DkimKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        key = dkim_services.dkim_key_create(
            workspace=request.workspace,
            domain=data["domain"],
            selector=data["selector"],
            private_key_pem=data.get("private_key", ""),
            by=request.user,
        )
        return Response(DkimKeySerializer(key).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        dkim_services.dkim_key_delete(key=instance, by=self.request.user)

    @extend_schema(request=None, responses=DkimKeySerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        key = dkim_services.dkim_key_activate(key=self.get_object(), by=request.user)
        return Response(DkimKeySerializer(key).data)


class InboundHookSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField(help_text="The hook's URL.")
    setup_url = serializers.SerializerMethodField(
        help_text="The URL to paste into the provider: basic-auth providers (postmark, amazon_ses, brevo) "
        "with USER:PASSWORD@ to replace by the hook's credentials."
    )
    setup = serializers.SerializerMethodField(help_text="Where the URL goes and which events to send.")
    confirm_url = serializers.CharField(
        read_only=True,
        help_text="Amazon SES: the SNS subscription-confirmation link to open in a browser (empty when none "
        "is pending).",
    )

    class Meta:
        model = InboundHook
        fields = [
            "id",
            "provider",
            "url",
            "setup_url",
            "setup",
            "confirm_url",
            "confirm_requested_at",
            "created_at",
        ]
        read_only_fields = fields

    def get_url(self, obj) -> str:
        return inbound_services.hook_url(obj)

    def get_setup_url(self, obj) -> str:
        return inbound_services.hook_setup_url(obj)

    def get_setup(self, obj) -> str:
        return inbound_services.hook_setup_text(obj)


class InboundHookCreateSerializer(serializers.Serializer):
    provider = serializers.ChoiceField(choices=InboundProvider.choices)
    secret = serializers.CharField(
        max_length=4000,
        write_only=True,
        help_text="Mailgun: the webhook signing key. Postmark, Amazon SES, Brevo: basic auth user:password. "
        "SendGrid: the signed event webhook's verification key. Never returned.",
    )


def _hook_create_body(basic_auth: bool):
    """The create body for the providers whose secret is (or is not) basic auth: the schema of one branch
    of the request's ``oneOf``, from `inbound_services.uses_basic_auth` and its ``BASIC_AUTH_SHAPE``."""
    providers = [p for p in InboundProvider.values if inbound_services.uses_basic_auth(p) is basic_auth]
    secret = (
        serializers.RegexField(
            rf"^[{SPACE}]*[^{SPACE}:\x00]+:[^{SPACE}\x00]+[{SPACE}]*$",  # BASIC_AUTH_SHAPE, spaces spelled out
            max_length=4000,
            help_text="user:password (no white space; the password may contain ':').",
        )
        if basic_auth
        else serializers.CharField(max_length=4000, help_text="The provider's signing/verification key.")
    )
    body = inline_serializer(
        "BasicAuthInboundHookCreate" if basic_auth else "SigningKeyInboundHookCreate",
        {"provider": serializers.ChoiceField(choices=providers), "secret": secret},
    )
    return providers, body


INBOUND_HOOK_CREATE_BODY = PolymorphicProxySerializer(
    component_name="InboundHookCreate",
    serializers={
        provider: body
        for basic in (True, False)
        for providers, body in [_hook_create_body(basic)]
        for provider in providers
    },
    resource_type_field_name="provider",
)


class InboundHookViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, WorkspaceGenericViewSet
):
    """The workspace's provider tracking webhooks (admins)."""

    queryset = InboundHook.objects.all()
    serializer_class = InboundHookSerializer
    required_permission = MANAGE
    filterset_fields = ["provider"]

    @extend_schema(request=INBOUND_HOOK_CREATE_BODY, responses={201: InboundHookSerializer})
    def create(self, request):
        serializer = InboundHookCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        hook = inbound_services.hook_create(
            workspace=request.workspace, by=request.user, **serializer.validated_data
        )
        return Response(InboundHookSerializer(hook).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance):
        inbound_services.hook_delete(hook=instance, by=self.request.user)
