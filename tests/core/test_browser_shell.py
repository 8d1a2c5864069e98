"""The dashboard shell in a real Chromium: log in, navigate, and watch a job's progress bar move while a
real Celery worker (on a real Redis) processes it."""

import re

import pytest

from aicmo.models import AuditEvent, Job, Role

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_login_form_and_navigation(browser_page, live_server, member_factory, workspace):
    user = member_factory(workspace, Role.MARKETER, username="mia")
    user.set_password("a-long-pass-phrase-1")
    user.save()
    page = browser_page
    page.goto(f"{live_server.url}/")
    assert "/login/" in page.url
    page.fill("#id_username", "mia")
    page.fill("#id_password", "a-long-pass-phrase-1")
    page.click("button[type=submit]")
    page.wait_for_selector("h1:has-text('Acme')")
    nav = page.locator("nav.mainnav a").all_inner_texts()
    assert "Jobs" in nav
    page.click("nav.mainnav >> text=Jobs")
    page.wait_for_selector("h1:has-text('Jobs')")
    assert page.locator(".empty").is_visible()


def test_job_progress_bar_follows_a_real_worker(
    browser_page,
    browser_login,
    live_server,
    live_celery_worker,
    member_factory,
    workspace,
    settings,
    tmp_path,
):
    settings.MEDIA_ROOT = tmp_path
    admin = member_factory(workspace, Role.ADMIN)
    AuditEvent.objects.bulk_create(
        [AuditEvent(workspace=workspace, actor_label="seed", verb=f"seed.{i % 7}") for i in range(30_000)]
    )
    page = browser_page
    browser_login(page, live_server, admin)
    page.goto(f"{live_server.url}/audit/")
    page.click("button:has-text('Export CSV')")
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    job_id = int(page.url.rstrip("/").rsplit("/", 1)[-1])
    # Mark the element as first rendered; HTMX swaps in fresh copies (without the mark) as it polls.
    page.eval_on_selector(f"#job-{job_id}-progress", "el => { el.dataset.first = '1'; }")
    # The page is not reloaded: HTMX polls the partial until the worker has finished the job.
    page.wait_for_selector(f"#job-{job_id}-progress[data-status=succeeded]", timeout=30_000)
    assert page.locator(f"#job-{job_id}-progress[data-first]").count() == 0
    bar = page.locator(f"#job-{job_id}-progress .progress")
    assert bar.get_attribute("aria-valuenow") == "100"
    job = Job.objects.get(pk=job_id)
    assert job.status == "succeeded"
    assert job.done == job.total == 30_001  # the seeded events plus "export started"
    assert "30001 of 30001 processed" in page.locator(f"#job-{job_id}-progress").inner_text()
    page.goto(f"{live_server.url}/jobs/{job_id}/")
    assert page.locator("a:has-text('Download result')").is_visible()
