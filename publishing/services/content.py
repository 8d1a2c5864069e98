"""Content writes and rendering: email versions validated when saved, rendered per recipient when sent.

An email version is saved only when its subject, preheader, HTML, text and layout compile and name only
allowed fields (`publishing.personalization`). Rendering inlines CSS with css-inline (remote stylesheets
never loaded) and derives the plain-text part from the HTML with html2text when the author left it empty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
from urllib.parse import urlsplit

import css_inline
import html2text
import mjml
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from markupsafe import Markup

from aicmo.audit import audit_record
from aicmo.conflicts import Conflict, taken
from aicmo.models import Workspace
from crm.normalize import InvalidEmail, normalize_email
from media import services as media_services
from media.models import AssetStatus, MediaAsset

from ..models import Channel, Content, ContentVersion, Layout, Sender
from ..personalization import (
    LAYOUT_NAMES,
    custom_field_keys,
    html_template,
    sample_context,
    template_check,
    text_template,
)

GMAIL_CLIP_BYTES = 102 * 1024  # Gmail clips messages whose HTML exceeds ~102 KB


# ------------------------------------------------------------------------------------------- senders


def _sender_limits(max_per_second, max_per_hour) -> dict:
    errors = {
        name: "A whole number of messages, at least 1 (or empty for no cap)."
        for name, value in (("max_per_second", max_per_second), ("max_per_hour", max_per_hour))
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1)
    }
    if errors:
        raise ValidationError(errors)
    return {"max_per_second": max_per_second, "max_per_hour": max_per_hour}


@transaction.atomic
def sender_create(
    *,
    workspace: Workspace,
    email: str,
    name: str = "",
    max_per_second: int | None = None,
    max_per_hour: int | None = None,
    by=None,
) -> Sender:
    """A From address of the workspace, unverified until an admin verifies it. The address goes through
    crm's one email normalizer; ``ValidationError`` keyed by field."""
    try:
        email = normalize_email(email)
    except InvalidEmail as exc:
        raise ValidationError({"email": str(exc)}) from None
    if Sender.objects.for_workspace(workspace).filter(email=email).exists():
        raise Conflict({"email": "This sender already exists."})
    sender = Sender.objects.create(
        workspace=workspace,
        email=email,
        name=name.strip()[:120],
        **_sender_limits(max_per_second, max_per_hour),
    )
    audit_record(workspace=workspace, actor=by, verb="publishing.sender.created", target=sender)
    return sender


@transaction.atomic
def sender_update(
    *, sender: Sender, name: str, max_per_second: int | None, max_per_hour: int | None, by=None
) -> Sender:
    """Change a sender's display name and speed limits. The address itself never changes (verification
    vouches for it): add a new sender instead."""
    sender.name = (name or "").strip()[:120]
    for key, value in _sender_limits(max_per_second, max_per_hour).items():
        setattr(sender, key, value)
    sender.save(update_fields=["name", "max_per_second", "max_per_hour"])
    audit_record(
        workspace=sender.workspace,
        actor=by,
        verb="publishing.sender.updated",
        target=sender,
        changes={"name": sender.name, "max_per_second": max_per_second, "max_per_hour": max_per_hour},
    )
    return sender


@transaction.atomic
def sender_verify(*, sender: Sender, by=None) -> Sender:
    """Mark a sender verified (an admin confirms the domain is authenticated for the sending account)."""
    if sender.verified_at is None:
        sender.verified_at = timezone.now()
        sender.save(update_fields=["verified_at"])
        audit_record(workspace=sender.workspace, actor=by, verb="publishing.sender.verified", target=sender)
    return sender


# ------------------------------------------------------------------------------------------- layouts


def _check(errors: dict, name: str, source: str, custom_keys, extra=()) -> None:
    problems = template_check(source, custom_keys=custom_keys, extra_names=extra)
    if problems:
        errors[name] = [str(p) for p in problems]


# Where a layout places the email's content: ``{{ body }}``, optionally filtered (the API schema's pattern).
LAYOUT_BODY = r"\{\{\s*body\s*(\|[^}]*)?\}\}"


def layout_save(
    *, workspace: Workspace, name: str, html: str, css: str = "", layout: Layout | None = None, by=None
) -> Layout:
    """Create or update a base layout. Its HTML must place ``{{ body }}`` and compile."""
    errors: dict = {}
    _check(errors, "html", html, custom_field_keys(workspace), LAYOUT_NAMES)
    if "html" not in errors and not re.search(LAYOUT_BODY, html):
        errors["html"] = ["The layout must contain {{ body }} where the email's content goes."]
    image_problems, _ids = images_check(workspace, html)
    if image_problems:
        errors.setdefault("html", []).extend(image_problems)
    if not (name or "").strip():
        errors["name"] = ["This field may not be blank."]
    clash = Layout.objects.for_workspace(workspace).filter(name=(name or "").strip())
    if layout is not None:
        clash = clash.exclude(pk=layout.pk)
    if clash.exists():
        errors["name"] = [taken("A layout with this name already exists.")]
    if errors:
        raise ValidationError(errors)
    layout = layout or Layout(workspace=workspace)
    layout.name, layout.html, layout.css = name.strip(), html, css or ""
    layout.save()
    return layout


# ------------------------------------------------------------------------------------------- content


def content_create(*, workspace: Workspace, name: str, by=None) -> Content:
    if not (name or "").strip():
        raise ValidationError({"name": "This field may not be blank."})
    return Content.objects.create(workspace=workspace, name=name.strip()[:200])


EMAIL_FIELDS = ("subject", "preheader", "sender", "from_name", "reply_to", "layout", "html", "mjml", "text")


def mjml_compile(source: str) -> str:
    """Responsive email HTML from MJML (mjml-python, bindings of the mrml compiler). ``mj-include`` is
    refused (no loader: nothing is read from disk or the network) and no web-font link is added (fonts
    fetched from a third party at open time leak the reader). Jinja personalization inside text and
    attribute values passes through unchanged. Raises ``ValueError`` with the compiler's message."""
    return mjml.mjml2html(source, fonts={}, disable_comments=True)


def text_from_html(html: str) -> str:
    """The plain-text part for an HTML body (html2text: links kept as [text](url), no line wrapping)."""
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_images = True
    converter.ignore_emphasis = False
    return converter.handle(html).strip() + "\n"


@transaction.atomic
def email_version_save(*, content: Content, by=None, **data) -> ContentVersion:
    """Create or update the email version of ``content``.

    ``data`` keys: subject, preheader, sender (Sender, verified, same workspace), from_name, reply_to,
    layout (Layout), html, mjml, text. Raises ValidationError naming each field and template line at
    fault; nothing is written then. An empty ``text`` is generated from the HTML. A non-empty ``mjml`` is
    compiled into ``html`` (`mjml_compile`; its errors are ``mjml`` field errors); HTML given without
    MJML replaces an earlier MJML source.
    """
    unknown = set(data) - set(EMAIL_FIELDS)
    if unknown:
        raise ValidationError({k: "Unknown field." for k in sorted(unknown)})
    version = (
        ContentVersion.objects.select_for_update().filter(content=content, channel=Channel.EMAIL).first()
    ) or ContentVersion(workspace_id=content.workspace_id, content=content, channel=Channel.EMAIL)
    for name, value in data.items():
        setattr(
            version, name, value if value is not None else ("" if name not in ("sender", "layout") else None)
        )
    errors: dict = {}
    if "html" in data and "mjml" not in data:
        version.mjml = ""
    if (version.mjml or "").strip() and ("mjml" in data or "html" in data):
        try:
            version.html = mjml_compile(version.mjml)
        except ValueError as exc:
            errors["mjml"] = [f"MJML does not compile: {exc}."]
    keys = custom_field_keys(content.workspace_id)
    for name in ("subject", "preheader", "html"):
        _check(errors, name, getattr(version, name) or "", keys)
    if data.get("text"):
        _check(errors, "text", version.text, keys)
    if version.sender is not None:
        if version.sender.workspace_id != content.workspace_id:
            errors["sender"] = ["Unknown sender."]
        elif not version.sender.is_verified:
            errors["sender"] = ["This sender is not verified yet; choose a verified sender."]
    image_problems, asset_ids = images_check(content.workspace_id, version.html or "")
    if image_problems:
        errors.setdefault("html", []).extend(image_problems)
    if version.layout is not None and version.layout.workspace_id != content.workspace_id:
        errors["layout"] = ["Unknown layout."]
    if version.reply_to:
        try:
            version.reply_to = normalize_email(version.reply_to)
        except InvalidEmail as exc:
            errors["reply_to"] = [str(exc)]
    if errors:
        raise ValidationError(errors)
    if "text" in data or "html" in data or "mjml" in data:
        version.text_generated = not (version.text or "").strip()
    if version.text_generated:
        version.text = text_from_html(version.html) if version.html.strip() else ""
    version.asset_ids = asset_ids
    version.save()
    for asset in MediaAsset.objects.filter(pk__in=asset_ids):
        media_services.asset_attach(
            asset=asset, ref=f"publishing.content:{content.pk}", channel="email", by=by
        )
        # Built ahead by media's worker (when missing or stale); else the image URL builds it on first request.
        current = {r.spec: r for r in asset.renditions.filter(spec=EMAIL_IMAGE_SPEC)}
        if media_services.renditions_missing(asset, [EMAIL_IMAGE_SPEC], current):
            media_services.asset_request_renditions(asset=asset, by=by, specs=[EMAIL_IMAGE_SPEC])
    Content.objects.filter(pk=content.pk).update(updated_at=timezone.now())
    from .approval import approval_withdraw  # campaigns build on content; the review rule follows edits

    approval_withdraw(campaigns=content.campaigns.all(), by=by, reason="content edited")
    return version


# ------------------------------------------------------------------------------------------- images

SALT_IMAGE = "publishing.content.image"
EMAIL_IMAGE_SPEC = "email"  # media/renditions.py EMAIL
USABLE_ASSET_STATUSES = (AssetStatus.APPROVED, AssetStatus.PUBLISHED)
_ASSET_SRC = re.compile(r"^asset:(\d{1,18})$")
_IMG_ASSET = re.compile(r"""(<img\b[^>]*?\bsrc\s*=\s*)(["'])asset:(\d{1,18})\2""", re.IGNORECASE)


class _Attributes(HTMLParser):
    """(line, value) of one attribute on every ``tag`` (an empty value when the attribute is missing)."""

    def __init__(self, tag: str, attribute: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tag, self.attribute = tag, attribute
        self.found: list[tuple[int, str]] = []

    def handle_starttag(self, tag, attrs):
        if tag == self.tag:
            value = next((v for n, v in attrs if n == self.attribute), None)
            self.found.append((self.getpos()[0], value or ""))

    @classmethod
    def of(cls, html: str, tag: str, attribute: str) -> list[tuple[int, str]]:
        parser = cls(tag, attribute)
        parser.feed(html)
        parser.close()
        return parser.found


def images_check(workspace, html: str) -> tuple[list[str], list[int]]:
    """(problems, asset ids) of the <img> tags in ``html``. Images come only from approved (or published)
    raster media assets of the workspace, written ``<img src="asset:<id>">``."""
    problems: list[str] = []
    wanted: list[tuple[int, int]] = []
    for line, src in _Attributes.of(html, "img", "src"):
        match = _ASSET_SRC.match(src.strip())
        if match is None:
            problems.append(f'line {line}: images must be approved media assets, written src="asset:<id>"')
        else:
            wanted.append((line, int(match[1])))
    assets = MediaAsset.objects.for_workspace(workspace).in_bulk([pk for _line, pk in wanted])
    for line, pk in wanted:
        asset = assets.get(pk)
        if asset is None:
            problems.append(f"line {line}: unknown media asset {pk}")
        elif not asset.is_raster:
            problems.append(f"line {line}: media asset {pk} is not an image")
        elif asset.status not in USABLE_ASSET_STATUSES:
            problems.append(
                f"line {line}: media asset {pk} is {asset.get_status_display().lower()}, not approved"
            )
    return problems, sorted({pk for _line, pk in wanted})


def image_markup(asset: MediaAsset) -> str:
    """The ``<img>`` an author puts in an email's HTML for ``asset``: ``src="asset:<id>"`` (what
    `images_check` accepts and rendering resolves to a signed URL) with its alt text, HTML-escaped."""
    return f'<img src="asset:{asset.pk}" alt="{Markup.escape(asset.alt_text or asset.title or "")}">'


def image_url(asset_id: int) -> str:
    """Public, signed URL of an asset's image for mail clients (no login)."""
    from .tracking import public_url

    token = signing.Signer(salt=SALT_IMAGE).sign(str(asset_id))
    return public_url(reverse("publishing:image", args=[token]))


def image_asset_for_token(token: str) -> MediaAsset | None:
    """The still-usable image asset a signed token names, else None."""
    try:
        pk = signing.Signer(salt=SALT_IMAGE).unsign(token)
    except signing.BadSignature:
        return None
    return MediaAsset.objects.filter(pk=int(pk), status__in=USABLE_ASSET_STATUSES).first()


def image_rendition_for_token(token: str):
    """The email rendition (media spec ``email``: JPEG when opaque, PNG with transparency, GIF when
    animated; at most 1200 px wide) of the still-usable raster asset a signed token names — a
    ``media.models.Rendition``, built on first request under media's per-(asset, spec) lock if the worker
    has not built it yet. None for a bad token, an unusable or non-raster asset, or a file that cannot be
    decoded. Raises ``media.services.RenditionBusy`` while another builder holds the lock past
    ``MEDIA_RENDITION_WAIT_SECONDS``."""
    asset = image_asset_for_token(token)
    if asset is None or not asset.is_raster:
        return None
    try:
        return media_services.rendition_get_or_build(asset=asset, spec=EMAIL_IMAGE_SPEC)
    except (OSError, ValueError):
        return None


def _resolve_images(html: str) -> str:
    return _IMG_ASSET.sub(lambda m: f"{m[1]}{m[2]}{image_url(int(m[3]))}{m[2]}", html)


# ------------------------------------------------------------------------------------------- rendering


@dataclass
class RenderedEmail:
    subject: str
    html: str
    text: str


def _inliner(extra_css: str) -> css_inline.CSSInliner:
    return css_inline.CSSInliner(load_remote_stylesheets=False, extra_css=extra_css or None)


def email_render(
    version: ContentVersion,
    context: dict,
    *,
    unsubscribe_url: str,
    rewrite_html=None,
) -> RenderedEmail:
    """Subject, HTML (layout applied, CSS inlined) and text for one recipient's ``context``.

    ``rewrite_html`` (html → html) runs before CSS inlining; sending uses it for click tracking and the
    open pixel."""
    ctx = {
        "contact": {},
        "company": {},
        "custom": {},
        **context,
        "unsubscribe_url": unsubscribe_url,
        "preferences_url": unsubscribe_url,
    }
    subject = " ".join(text_template(version.subject).render(ctx).split())
    preheader = text_template(version.preheader).render(ctx).strip()
    body = html_template(version.html).render(ctx)
    layout = version.layout
    if layout is not None:
        html = html_template(layout.html).render(
            # the body was rendered by the autoescaping environment above: it is safe HTML already
            {**ctx, "body": Markup(body), "preheader": preheader, "subject": subject}  # noqa: S704
        )
    else:
        html = body
        if preheader:
            html = _hidden_preheader(preheader) + html
    text = text_from_html(html) if version.text_generated else text_template(version.text).render(ctx)
    html = _resolve_images(html)
    if rewrite_html is not None:
        html = rewrite_html(html)
    html = _inliner(layout.css if layout else "").inline(html)
    return RenderedEmail(subject=subject, html=html, text=text)


def _hidden_preheader(preheader: str) -> str:
    return (
        '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all">'
        + str(Markup.escape(preheader))
        + "</div>"
    )


# ------------------------------------------------------------------------------------------- checks


def links_in(html: str) -> list[tuple[int, str]]:
    """(line, href) of every <a href> in ``html``."""
    return [(line, href) for line, href in _Attributes.of(html, "a", "href") if href]


def url_is_web(url: str) -> bool:
    """A well-formed absolute http(s) URL with a host and no whitespace or control characters."""
    if not url or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and "." in parts.hostname.strip(".")


@dataclass
class CheckReport:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    html_bytes: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict:
        return {
            "ok": self.ok,
            "errors": self.errors,
            "warnings": self.warnings,
            "html_bytes": self.html_bytes,
        }


UNSUBSCRIBE_SAMPLE = "https://unsubscribe.invalid/u/sample"


def email_version_check(version: ContentVersion | None) -> CheckReport:
    """Pre-send checks on a sample render: subject present, sender chosen and verified, every link a
    well-formed http(s) URL (mailto:/tel: allowed), an unsubscribe link in the body (the List-Unsubscribe
    headers are always added), HTML size against Gmail's ~102 KB clipping threshold."""
    report = CheckReport()
    if version is None:
        report.errors.append("The content has no email version.")
        return report
    if not version.subject.strip():
        report.errors.append("The subject is empty.")
    if version.sender is None:
        report.errors.append("Choose a verified sender.")
    elif not version.sender.is_verified:
        report.errors.append(f"The sender {version.sender.email} is not verified.")
    if not version.html.strip():
        report.errors.append("The HTML body is empty.")
        return report
    image_problems, _ids = images_check(version.workspace_id, version.html)
    report.errors.extend(image_problems)
    rendered = email_render(
        version, sample_context(custom_field_keys(version.workspace_id)), unsubscribe_url=UNSUBSCRIBE_SAMPLE
    )
    if version.subject.strip() and not rendered.subject:
        report.errors.append("The subject renders empty.")
    for line, href in links_in(rendered.html):
        target = unescape(href).strip()
        if target.lower().startswith(("mailto:", "tel:")) or target == UNSUBSCRIBE_SAMPLE:
            continue
        if not url_is_web(target):
            report.errors.append(f"Line {line}: link {target[:200]!r} is not a well-formed http(s) URL.")
    if UNSUBSCRIBE_SAMPLE not in rendered.html:
        report.warnings.append(
            "No unsubscribe link in the body ({{ unsubscribe_url }}); only the List-Unsubscribe header offers one."
        )
    report.html_bytes = len(rendered.html.encode())
    if report.html_bytes > GMAIL_CLIP_BYTES:
        report.warnings.append(
            f"The HTML is {report.html_bytes // 1024} KB; Gmail clips messages past 102 KB."
        )
    return report
