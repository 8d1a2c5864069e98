"""Acceptance in Chromium: a marketer creates a library, uploads an image into it by drag-and-drop upload,
and finds the asset in that library."""

from __future__ import annotations

import pytest

from aicmo.models import Role
from media.models import MediaAsset, MediaLibrary
from tests.media.conftest import make_image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_create_library_and_upload_into_it(
    browser_page, browser_login, live_server, member_factory, workspace, redis_client, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    user = member_factory(workspace, Role.MARKETER)
    page = browser_login(browser_page, live_server, user, workspace)
    page.goto(f"{live_server.url}/media/")
    page.click("a.btn:has-text('Libraries')")
    page.fill("#lib-name", "Spring launch")
    page.fill("#lib-desc", "Visuals for the Q2 launch")
    page.click("button:has-text('Create library')")
    page.wait_for_selector("h1:has-text('Media: Spring launch')")
    library = MediaLibrary.objects.get(workspace=workspace, name="Spring launch")
    assert page.input_value("#upload-library") == str(library.pk)

    page.set_input_files(
        "#upload-input", [{"name": "hero.jpg", "mimeType": "image/jpeg", "buffer": make_image(seed=4)}]
    )
    page.wait_for_selector("#upload-list li.upload-ok")
    asset = MediaAsset.objects.get(workspace=workspace)
    assert asset.library == library
    page.reload()
    page.wait_for_selector(f"a.tile[href='/media/assets/{asset.pk}/']")
    page.goto(f"{live_server.url}/media/libraries/")
    row = page.locator(f"tr[data-library='{library.pk}']")
    assert "Spring launch" in row.inner_text() and "\t1\t" in row.inner_text()
