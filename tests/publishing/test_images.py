"""Email images come only from approved media assets, attached by id and served by a signed public URL."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from aicmo.models import Role
from media import services as media_services
from media.models import AssetUsage
from publishing.services import content as content_services
from publishing.services.content import email_render, email_version_check
from tests.media.conftest import make_image, upload

from .conftest import make_content, make_sender

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path, redis_client):
    """Files in a temp dir; real Redis for media's rendition lock (the image URL builds the email rendition)."""
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture
def image(workspace, member_factory):
    library = media_services.library_get_default(workspace=workspace)
    return media_services.asset_upload(
        library=library,
        file=upload(make_image(), "hero.jpg"),
        request_renditions=False,
        compute_suggestions=False,
    ).asset


def approve(asset, member_factory):
    reviewer = member_factory(asset.workspace, Role.REVIEWER)
    return media_services.asset_approve(asset=asset, by=reviewer)


def test_only_approved_workspace_images_are_accepted(workspace, other_workspace, image, member_factory):
    content = content_services.content_create(workspace=workspace, name="C")
    sender = make_sender(workspace)
    cases = [
        (
            '<img src="https://cdn.example/x.png">',
            'line 1: images must be approved media assets, written src="asset:<id>"',
        ),
        (f'<p>x</p>\n<img src="asset:{image.pk}">', f"line 2: media asset {image.pk} is draft, not approved"),
        ('<img src="asset:987654321">', "line 1: unknown media asset 987654321"),
    ]
    for html, message in cases:
        with pytest.raises(ValidationError) as err:
            content_services.email_version_save(content=content, subject="s", sender=sender, html=html)
        assert err.value.message_dict["html"] == [message]
    approve(image, member_factory)
    version = content_services.email_version_save(
        content=content, subject="s", sender=sender, html=f'<img src="asset:{image.pk}" alt="Hero">'
    )
    assert version.asset_ids == [image.pk]
    assert AssetUsage.objects.get(asset=image).ref == f"publishing.content:{content.pk}"
    foreign = make_content(other_workspace)
    with pytest.raises(ValidationError, match="unknown media asset"):
        content_services.email_version_save(content=foreign, html=f'<img src="asset:{image.pk}">')


def test_rendered_image_is_served_by_a_signed_url_while_the_asset_is_approved(
    workspace, image, member_factory, settings
):
    approve(image, member_factory)
    content = make_content(workspace, html=f'<p>Hi</p><img src="asset:{image.pk}" alt="Hero">')
    version = content.versions.get()
    html = email_render(version, {}, unsubscribe_url="https://u.example/").html
    url = unescape(re.search(r'<img src="([^"]+)"', html).group(1))
    assert url.startswith(settings.PUBLIC_BASE_URL + "/publishing/i/") and "asset:" not in html
    path = url[len(settings.PUBLIC_BASE_URL) :]
    response = Client().get(path)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert b"".join(response.streaming_content)[:2] == b"\xff\xd8"
    assert Client().get(path.replace("/i/", "/i/x")).status_code == 404
    media_services.asset_archive(asset=image)
    assert Client().get(path).status_code == 404
    assert f"line 1: media asset {image.pk} is archived, not approved" in email_version_check(version).errors
