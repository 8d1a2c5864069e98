"""Drag-and-drop upload script in a real Chromium: per-file progress, success, duplicate and error lines."""

from __future__ import annotations

import pytest

from aicmo.models import Role
from media.models import MediaAsset
from tests.media.conftest import make_image

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_multi_file_upload_reports_each_file(
    browser_page, browser_login, live_server, member_factory, workspace, redis_client, tmp_path
):
    user = member_factory(workspace, Role.MARKETER)
    browser_login(browser_page, live_server, user, workspace)
    good = make_image(640, 480, seed=11)
    files = [
        {"name": "good.jpg", "mimeType": "image/jpeg", "buffer": good},
        {"name": "same-again.jpg", "mimeType": "image/jpeg", "buffer": good},
        {"name": "broken.jpg", "mimeType": "image/jpeg", "buffer": good[:2000]},
    ]
    page = browser_page
    page.goto(f"{live_server.url}/media/")
    page.set_input_files("#upload-input", files[:1])
    page.wait_for_selector("#upload-list li.upload-ok")
    page.set_input_files("#upload-input", files[1:])
    page.wait_for_selector("#upload-list li.upload-dup")
    page.wait_for_selector("#upload-list li.upload-error")
    error_text = page.locator("#upload-list li.upload-error").inner_text()
    assert "broken.jpg" in error_text and "truncated or corrupt" in error_text
    assert "already in the library" in page.locator("#upload-list li.upload-dup").inner_text()
    assert page.locator("#upload-list li.upload-ok progress").get_attribute("value") == "100"
    assert MediaAsset.objects.count() == 1
    page.click("#upload-list li.upload-ok a")
    page.wait_for_selector("h1:has-text('good')")
