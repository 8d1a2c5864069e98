"""The admin in the hostile-string crawl: as a superuser in Chromium, every registered model's changelist and
the change page of its rows that hold the hostile string (or its first row) must render the string as text.
It fails when a script ran (``window.__pwned``), an ``<img data-pwned>`` became markup, a dialog opened, the
page logged an error, or the page answered with an error. The rows are the dashboard crawl's seed
(``seed_demo`` plus the hostile string in every text a person or a provider sets)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.db import models
from django.urls import reverse

from tests.core.test_browser_crawl import HOSTILE, _seed, watch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROWS_PER_MODEL = 2


def _text_fields(model) -> list[str]:
    return [
        f.name
        for f in model._meta.get_fields()
        if isinstance(f, models.CharField | models.TextField) and not f.is_relation and f.concrete
    ]


def _rows(model, model_admin, request) -> list:
    """Up to ROWS_PER_MODEL primary keys: rows with the hostile marker in a text or JSON field first."""
    qs = model_admin.get_queryset(request)
    hostile = models.Q()
    for name in _text_fields(model):
        hostile |= models.Q(**{f"{name}__contains": "data-pwned"})
    pks = list(qs.filter(hostile).values_list("pk", flat=True)[:ROWS_PER_MODEL]) if hostile else []
    if not pks:
        pks = list(qs.values_list("pk", flat=True)[:1])
    return pks


def test_every_admin_changelist_and_hostile_row_renders_escaped(
    chromium_browser, browser_login, live_server, settings, tmp_path, redis_client, rf
):
    from aicmo.audit import audit_record

    settings.MEDIA_ROOT = tmp_path
    workspace = _seed()
    superuser = get_user_model().objects.create_superuser(
        "root", "root@ex.com", "x", first_name=HOSTILE[:150]
    )
    audit_record(workspace=workspace, actor=superuser, verb="crm.tag.created", changes={"name": HOSTILE})
    request = rf.get("/admin/")
    request.user = superuser

    context = chromium_browser.new_context(viewport={"width": 1366, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    events = watch(page)
    page.on("response", lambda r: events.append(f"{r.status} for {r.url}") if r.status >= 400 else None)
    browser_login(page, live_server, superuser, workspace)
    failures, visited = [], 0
    try:
        for model, model_admin in admin.site._registry.items():
            info = (model._meta.app_label, model._meta.model_name)
            urls = [reverse("admin:{}_{}_changelist".format(*info))]
            urls += [
                reverse("admin:{}_{}_change".format(*info), args=[pk])
                for pk in _rows(model, model_admin, request)
            ]
            for url in urls:
                events.clear()
                response = page.goto(live_server.url + url)
                page.wait_for_load_state("load")
                visited += 1
                status = response.status if response else 0
                if status != 200:
                    failures.append(f"{url}: answered {status}")
                if page.evaluate("() => window.__pwned === 1") or page.locator("img[data-pwned]").count():
                    failures.append(f"{url}: a hostile string ran or became markup")
                failures.extend(f"{url}: {e}" for e in events)
    finally:
        context.close()
    assert not failures, f"{len(failures)} problems in {visited} admin pages:\n" + "\n".join(failures)
    assert visited >= len(admin.site._registry) + 20, f"only {visited} pages: the seed lost its rows"
