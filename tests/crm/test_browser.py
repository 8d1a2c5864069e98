"""Segment builder in a real Chromium: typing rules refreshes the count through HTMX."""

from __future__ import annotations

import json

import pytest

from tests.crm.factories import ContactFactory


@pytest.mark.browser
def test_segment_builder_live_count(browser_page, browser_login, live_server, member_factory, workspace):
    user = member_factory(workspace, "marketer")
    ContactFactory.create_batch(3, workspace=workspace, engagement_score=80)
    ContactFactory.create_batch(2, workspace=workspace, engagement_score=10)
    browser_login(browser_page, live_server, user, workspace)
    page = browser_page
    page.goto(live_server.url + "/crm/segments/new/")
    page.click("button:text('Edit as JSON')")  # the visual builder is tested in test_segment_builder_browser
    rules = {"op": "and", "rules": [{"field": "score", "operator": "gte", "value": 50}]}
    page.fill("#rules", json.dumps(rules))
    page.press("#rules", "End")
    page.wait_for_selector("strong.segment-count:text('3')", timeout=10_000)
    rules["rules"][0]["value"] = "lots"
    page.fill("#rules", json.dumps(rules))
    page.press("#rules", "End")
    page.wait_for_selector("text=rules[0].value", timeout=10_000)
    rules["rules"][0]["value"] = 5
    page.fill("#rules", json.dumps(rules))
    page.press("#rules", "End")
    page.wait_for_selector("strong.segment-count:text('5')", timeout=10_000)


@pytest.mark.browser
def test_tick_contacts_add_to_list_and_start_a_run(
    browser_page, browser_login, live_server, member_factory, workspace, monkeypatch
):
    """The checkboxes live outside the selection form (form="selection") and the buttons post to other views
    through formaction: this checks that wiring in a real browser."""
    from aicmo.models import Job
    from crm import tasks
    from tests.crm.factories import ContactListFactory

    monkeypatch.setattr(tasks.contact_run_lane_task, "delay", lambda *a: None)
    user = member_factory(workspace, "marketer")
    a, b, c = (ContactFactory(workspace=workspace, email=f"{n}@ex.com") for n in ("ann", "bob", "cy"))
    fair = ContactListFactory(workspace=workspace, name="Fair")
    browser_login(browser_page, live_server, user, workspace)
    page = browser_page
    page.goto(live_server.url + "/crm/")
    page.check("input[aria-label='Select ann@ex.com']")
    page.check("input[aria-label='Select cy@ex.com']")
    page.click("button:text('Add to list')")
    page.wait_for_selector("text=Added 2 to Fair", timeout=10_000)
    assert set(fair.memberships.values_list("contact_id", flat=True)) == {a.pk, c.pk}
    page.goto(live_server.url + f"/crm/?list={fair.pk}")
    page.click("button:text('Verify emails in the whole list')")
    page.wait_for_selector(".job-progress", timeout=10_000)
    job = Job.objects.get(workspace=workspace)
    assert job.kind == "crm.verification" and sorted(job.params["contact_ids"]) == sorted([a.pk, c.pk])
    assert b.pk not in job.params["contact_ids"]


@pytest.mark.browser
def test_import_result_page_updates_itself_when_the_job_finishes(
    browser_page, browser_login, live_server, member_factory, workspace
):
    """The page is open while the import waits for a worker; the job then runs (here, in the test's thread)
    and the counts, error table and report link appear without a reload."""
    import io

    from crm import importing

    user = member_factory(workspace, "marketer")
    content = b"Email,First Name\nann@ex.com,Ann\nnot-an-address,Bad\nbo@ex.com,Bo\n"
    run = importing.import_create(
        workspace=workspace, fh=io.BytesIO(content), name="people.csv", enqueue=False
    )
    browser_login(browser_page, live_server, user, workspace)
    page = browser_page
    page.goto(live_server.url + f"/crm/imports/{run.pk}/")
    page.wait_for_selector("#import-result[data-finished='false']")
    assert page.inner_text("[data-count='created']") == "0"
    page.evaluate("window.__loaded_once = true")  # a reload would drop this
    importing.import_execute(run_id=run.pk)
    page.wait_for_selector("#import-result[data-finished='true']", timeout=15_000)
    assert page.evaluate("window.__loaded_once") is True
    assert (
        page.inner_text("[data-count='created']") == "2" and page.inner_text("[data-count='failed']") == "1"
    )
    assert "not-an-address" in page.inner_text("table.import-errors")
    assert (
        page.get_attribute("a:text('Download error report (CSV)')", "href")
        == f"/crm/imports/{run.pk}/errors.csv"
    )
