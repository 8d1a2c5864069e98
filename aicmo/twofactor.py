"""Optional TOTP two-factor authentication (django-otp) for the dashboard and the admin.

A user enrols at ``/two-factor/`` (a QR code as inline SVG, and the ``otpauth://`` URI to copy) and confirms
with a first code. From then on every dashboard or admin page asks for a code after the password login
(``/two-factor/verify/``) until the session is verified (``django_otp.login``). A workspace can require it
of its admins (``Workspace.admins_require_two_factor``): a user who is admin in any such workspace and has no
device is sent to enrol before any other page. Session calls to the API (``/api/``) owing a code answer 403
``two_factor_required`` instead of a redirect; API keys are not affected (they are their own credential,
and DRF authenticates them after this middleware, which sees no user).

The check costs one query per request of a signed-in, not yet verified user (none once verified).
"""

from __future__ import annotations

import io
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.http import HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from .audit import audit_record
from .models import Membership, Role, Workspace

EXEMPT_PREFIXES = ("/two-factor/", "/logout/", "/login/", "/password/reset/", "/static/", "/healthz")


def two_factor_needed(user) -> str | None:
    """ "verify" (has a device, session not verified), "enrol" (must have one, has none) or None."""
    if not user.is_authenticated or user.is_verified():
        return None
    row = (
        get_user_model()
        .objects.filter(pk=user.pk)
        .annotate(
            has_device=Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)),
            must=Exists(
                Membership.objects.filter(
                    user=OuterRef("pk"), role=Role.ADMIN, workspace__admins_require_two_factor=True
                )
            ),
        )
        .values_list("has_device", "must")
        .first()
    )
    if row is None:
        return None
    has_device, must = row
    if has_device:
        return "verify"
    return "enrol" if must else None


class TwoFactorMiddleware:
    """After django-otp's OTPMiddleware: sends a signed-in user who still owes a code (or a device) to the
    verify (or enrol) page, keeping where they were going in ``next``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and not request.path.startswith(EXEMPT_PREFIXES):
            needed = two_factor_needed(user)
            if needed and request.path.startswith("/api/"):
                from .api.errors import error_body

                message = "Complete two-factor authentication on the dashboard first."
                return JsonResponse(error_body("two_factor_required", message), status=403)
            if needed:
                target = reverse("two-factor-verify" if needed == "verify" else "two-factor")
                return HttpResponseRedirect(f"{target}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)


def device_start(*, user) -> TOTPDevice:
    """An unconfirmed TOTP device for ``user`` (replacing an earlier unconfirmed one), to be confirmed with
    a first code by :func:`device_confirm`."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


def device_confirm(*, device: TOTPDevice, token: str) -> bool:
    """Confirm the pending ``device`` if ``token`` is its current code (RFC 6238, 30-second steps, one
    step of drift either way: django-otp's defaults). Other devices of the user are removed."""
    if device.confirmed or not device.verify_token(token):
        return False
    with transaction.atomic():
        TOTPDevice.objects.filter(user=device.user).exclude(pk=device.pk).delete()
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    return True


def two_factor_required_for(user) -> bool:
    """Whether a workspace where ``user`` is admin requires two-factor authentication."""
    return Membership.objects.filter(
        user=user, role=Role.ADMIN, workspace__admins_require_two_factor=True
    ).exists()


def device_remove(*, user) -> int:
    """Remove the user's devices (turning two-factor off for them); returns how many. Raises ValidationError
    when a workspace where the user is admin requires two-factor."""
    if two_factor_required_for(user):
        raise ValidationError("A workspace where you are an admin requires two-factor authentication.")
    return TOTPDevice.objects.filter(user=user).delete()[0]


@transaction.atomic
def workspace_set_two_factor(*, workspace: Workspace, required: bool, by) -> Workspace:
    """Require (or stop requiring) two-factor authentication of this workspace's admins; audited."""
    workspace = Workspace.objects.select_for_update().get(pk=workspace.pk)
    if workspace.admins_require_two_factor != required:
        workspace.admins_require_two_factor = required
        workspace.save(update_fields=["admins_require_two_factor"])
        audit_record(
            workspace=workspace,
            actor=by,
            verb="workspace.two_factor_changed",
            target=workspace,
            changes={"admins_require_two_factor": required},
        )
    return workspace


def qr_svg(uri: str) -> str:
    """The ``otpauth://`` URI as an inline SVG QR code (no image request, nothing for the CSP to allow)."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    out = io.BytesIO()
    image.save(out)
    svg = out.getvalue().decode()
    return svg[svg.index("<svg") :]
