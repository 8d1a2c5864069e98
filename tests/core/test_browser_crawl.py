"""A Chromium crawl of every dashboard page, as every role, over the `seed_demo` data plus a hostile contact.

The URLs come from the URL configuration (so a new page cannot be missed): every pattern outside admin/ and
api/ whose view answers GET, with real ids from the seeded workspace. A pattern with a parameter this file
does not know how to fill fails the test. For each role and page it fails on:

- a 4xx/5xx answer where the role may see the page (MANAGE pages answer 403 to the other roles),
- a console error or an uncaught page error,
- horizontal overflow at 390 px wide (the document scrolls sideways), a table wider than its container, or a
  data table whose cells do not show their column names (tables become cards on phones: TABLE_PROBLEMS),
- an axe-core violation of impact serious or critical (axe-playwright-python ships axe-core; no network),
- a hostile string that ran or became markup (a script setting ``window.__pwned`` or an ``<img data-pwned>``).
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.urls import URLPattern, URLResolver, get_resolver

from aicmo.models import Job, Membership, Role, Workspace

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOSTILE = '"><img src=x data-pwned onerror="window.__pwned=1"><script>window.__pwned=1</script>'
SKIPPED_PREFIXES = ("admin/", "api/")
# Pages that are not pages: files and HTMX fragments answer, but are not crawled for layout and axe.
FRAGMENTS = {
    "job-progress",
    "crm:import-result",
    "publishing:campaign-counts",
    "publishing:audience-estimate",
}
FILES = {"crm:export", "crm:import-errors", "job-download", "media:asset-file", "media:rendition-file"}
# Public or one-off pages with their own tests.
NOT_CRAWLED = {
    "login": "the login form, tested in test_browser_shell",
    "logout": "POST only in practice",
    "healthz": "not HTML",
    "invitation-accept": "needs a live invitation token; tests/core/test_invitations.py",
    "job-download": "a job's result file; tests/core/test_audit_export.py",
    "media:rendition-file": "a rendition's bytes; tests/media",
    "media:asset-file": "an asset's bytes; tests/media",
    "password_reset_confirm": "needs a live reset token; tests/security/test_password_reset.py",
    "publishing:content-preview": "an email's own HTML inside a sandboxed iframe; tests/publishing/test_preview.py",
    "publishing:demo-outbox": "staff-only demo page, dev profile; tests/publishing/test_demo.py",
    "publishing:demo-outbox-message": "staff-only demo page, dev profile; tests/publishing/test_demo.py",
    "publishing:track-open": "a 1x1 GIF behind a signed token; tests/publishing/test_tracking.py",
    "publishing:track-click": "a redirect behind a signed token; tests/publishing/test_tracking.py",
    "publishing:image": "an image behind a signed token; tests/publishing/test_images.py",
    "publishing:unsubscribe": "public page behind a signed token; tests/publishing/test_tracking.py",
    "publishing:conversion": "a conversion pixel behind a signed token; tests/publishing/test_conversions.py",
    "publishing:inbound-webhook": "provider webhooks (POST); tests/publishing/test_inbound.py",
}
MANAGE_ONLY = {
    "audit-log",
    "workspace-settings",
    "gateway:account-add",
    "gateway:account-edit",
    "gateway:account-delete",
    "publishing:webhook-new",
    "publishing:webhook-delete",
}
# Readable by the roles that write (receiver URLs may carry a token): 403 for viewers.
WRITE_ONLY = {"publishing:webhooks", "publishing:webhook"}
STAFF_ONLY = {"ops"}  # operators only: 404 for everyone else


def _dashboard_patterns():
    def walk(patterns, prefix="", ns=None):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from walk(p.url_patterns, prefix + str(p.pattern), p.namespace or ns)
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern), (f"{ns}:" if ns else "") + (p.name or ""), p.callback

    for route, name, callback in walk(get_resolver().url_patterns):
        view_class = getattr(callback, "view_class", None)
        if route.startswith(SKIPPED_PREFIXES) or name in NOT_CRAWLED:
            continue
        if view_class is not None and not hasattr(view_class, "get"):
            continue  # POST-only actions
        yield route, name


def _ids(workspace, strict: bool = True) -> dict[str, int | None]:
    """One real id per parameterised page, from the seeded workspace (the hostile rows this test adds where
    there are some; tests/browser/screenshots.py uses it on a plain ``seed_demo`` workspace)."""
    from crm.models import Company, Contact, ContactList, CustomFieldDefinition, ImportRun, Segment, Tag
    from gateway.models import ProviderAccount
    from media.models import MediaAsset, MediaLibrary
    from publishing.models import Campaign, Content, WebhookEndpoint

    def first(qs):
        pk = qs.values_list("pk", flat=True).first()
        assert pk is not None or not strict, f"seed_demo made no {qs.model.__name__}"
        return pk

    def prefer(qs, **hostile_lookup):  # the hostile row the crawl seeded; any row for the screenshots
        return first(qs.filter(**hostile_lookup)) if qs.filter(**hostile_lookup).exists() else first(qs)

    hostile = Contact.objects.get(pk=prefer(Contact.objects.filter(workspace=workspace), first_name=HOSTILE))
    run = Job.objects.filter(workspace=workspace, kind__in=("crm.enrichment", "crm.verification")).first()
    if run is None and strict:
        run = Job.objects.create(workspace=workspace, kind="crm.enrichment", label=HOSTILE, total=1)
    return {
        "job-detail": first(Job.objects.filter(workspace=workspace)),
        "job-progress": first(Job.objects.filter(workspace=workspace)),
        "crm:contact": hostile.pk,
        "crm:contact-edit": hostile.pk,
        "crm:contact-delete": hostile.pk,
        "crm:contact-merge": hostile.pk,
        "crm:company": prefer(Company.objects.filter(workspace=workspace), name=HOSTILE),
        "crm:tag": prefer(Tag.objects.filter(workspace=workspace), name=HOSTILE[:80]),
        "crm:segment": first(Segment.objects.filter(workspace=workspace)),
        "crm:segment-manage": first(Segment.objects.filter(workspace=workspace)),
        "crm:list": first(ContactList.objects.filter(workspace=workspace)),
        "crm:run": run.pk if run else None,
        "crm:import": first(ImportRun.objects.filter(workspace=workspace)),
        "crm:import-result": first(ImportRun.objects.filter(workspace=workspace, job__isnull=False)),
        "crm:import-errors": first(ImportRun.objects.filter(workspace=workspace)),
        "crm:field": first(CustomFieldDefinition.objects.filter(workspace=workspace)),
        "media:asset": first(MediaAsset.objects.filter(workspace=workspace)),
        "media:asset-delete": first(MediaAsset.objects.filter(workspace=workspace)),
        "media:library": first(MediaLibrary.objects.filter(workspace=workspace)),
        "media:library-archive": first(MediaLibrary.objects.filter(workspace=workspace)),
        "gateway:account-edit": first(ProviderAccount.objects.filter(workspace=workspace)),
        "gateway:account-delete": first(ProviderAccount.objects.filter(workspace=workspace)),
        "publishing:campaign": first(Campaign.objects.filter(workspace=workspace)),
        "publishing:campaign-edit": first(Campaign.objects.filter(workspace=workspace, status="draft")),
        "publishing:campaign-counts": first(Campaign.objects.filter(workspace=workspace)),
        "publishing:campaign-report": first(Campaign.objects.filter(workspace=workspace)),
        "publishing:content": first(Content.objects.filter(workspace=workspace)),
        "publishing:content-edit": first(Content.objects.filter(workspace=workspace)),
        "analytics:campaign": first(Campaign.objects.filter(workspace=workspace)),
        "analytics:contact-scores": hostile.pk,
        "publishing:webhook": first(WebhookEndpoint.objects.filter(workspace=workspace)),
        "publishing:webhook-delete": first(WebhookEndpoint.objects.filter(workspace=workspace)),
        "analytics:contact": hostile.pk,
    }


def _urls(workspace, strict: bool = True) -> list[tuple[str, str]]:
    """(name, path) of every crawled page. Not strict: a page whose row the workspace lacks is left out."""
    ids = _ids(workspace, strict)
    urls = []
    for route, name in _dashboard_patterns():
        if "<" in route:
            assert name in ids, f"{name} ({route}) has a parameter this crawl cannot fill: add it to _ids"
            if ids[name] is None:
                continue
            path = route.split("<", 1)[0] + str(ids[name]) + route.split(">", 1)[1]
            assert "<" not in path, f"{route}: more than one parameter"
        else:
            path = route
        urls.append((name, "/" + path))
    return urls


def _seed():
    from crm import importing, services
    from crm.models import ImportRun

    call_command("seed_demo", verbosity=0)
    workspace = Workspace.objects.get(slug="demo")
    company = services.company_create(workspace=workspace, domain="hostile.example", name=HOSTILE)
    services.contact_create(
        workspace=workspace,
        data={
            "email": "hostile@hostile.example",
            "first_name": HOSTILE,
            "title": HOSTILE,
            "company": company,
        },
    )
    services.tag_create(workspace=workspace, name=HOSTILE[:80])
    csv = f"email,first_name\nhostile2@hostile.example,{HOSTILE.replace(',', ' ')}\n".encode()
    importing.import_stage(workspace=workspace, fh=io.BytesIO(csv), name="hostile.csv", policy="update")
    job = Job.objects.create(
        workspace=workspace, kind="crm.import", label=HOSTILE, total=1, status="succeeded"
    )
    ImportRun.objects.create(workspace=workspace, job=job, file="crm/imports/done.csv", original_name=HOSTILE)
    from crm.models import Segment
    from publishing.models import Content
    from publishing.services.campaigns import campaign_create

    campaign_create(  # a draft, so the builder and the schedule form are crawled too
        workspace=workspace,
        name=HOSTILE,
        content=Content.objects.filter(workspace=workspace).first(),
        audience={"segments": [Segment.objects.filter(workspace=workspace).first().pk]},
    )
    _hostile_everywhere(workspace)
    return workspace


def _hostile_everywhere(workspace) -> None:
    """The hostile string in every other text a person or a provider sets, on rows the crawled pages show
    (each page's first row is the one its detail page crawls)."""
    from crm.models import Segment
    from crm.services import custom_field_create, list_create, segment_save
    from gateway.models import ProviderAccount
    from media import services as media_services
    from media.models import MediaAsset
    from publishing.models import (
        Campaign,
        Content,
        Delivery,
        EngagementEvent,
        Sender,
        WebhookDelivery,
        WebhookEndpoint,
    )

    short = HOSTILE[:60]
    segment_save(
        workspace=workspace,
        name=HOSTILE[:120],
        rules={"op": "and", "rules": [{"field": "email", "operator": "contains", "value": "@"}]},
    )
    list_create(workspace=workspace, name=HOSTILE[:120], description=HOSTILE)
    custom_field_create(workspace=workspace, key="hostile_field", label=HOSTILE[:100])
    media_services.library_create(workspace=workspace, name=HOSTILE[:100], description=HOSTILE)
    asset = MediaAsset.objects.filter(workspace=workspace).order_by("pk").first()
    media_services.asset_update(asset=asset, title=HOSTILE[:200], description=HOSTILE, alt_text=short)
    # a provider's own words (an error message it returned) and the account's name
    ProviderAccount.objects.filter(workspace=workspace).update(name=short, state_cause=HOSTILE)
    Sender.objects.filter(workspace=workspace).update(name=short)
    content = Content.objects.filter(workspace=workspace).order_by("pk").first()
    Content.objects.filter(pk=content.pk).update(name=HOSTILE[:200])
    content.versions.update(subject=HOSTILE, preheader=HOSTILE)
    # a bounce reason and a user agent as providers and mail clients send them
    campaign = Campaign.objects.filter(workspace=workspace).order_by("pk").first()
    delivery = Delivery.objects.filter(campaign=campaign).first()
    if delivery is not None:
        Delivery.objects.filter(pk=delivery.pk).update(error=HOSTILE)
        EngagementEvent.objects.create(
            workspace=workspace, kind="bounce_hard", campaign=campaign, delivery=delivery,
            contact_id=delivery.contact_id, occurred_at=campaign.created_at,
            metadata={"reason": HOSTILE, "user_agent": HOSTILE},
        )  # fmt: skip
    # a webhook endpoint's description and URL, and a receiver's answer in the delivery log
    endpoint = WebhookEndpoint.objects.create(
        workspace=workspace,
        url="https://hooks.example.com/" + HOSTILE.replace(" ", "%20"),
        description=HOSTILE[:200],
        event_types=["email.opened"],
        active=False,
        disabled_reason=HOSTILE,
    )
    WebhookDelivery.objects.create(
        workspace=workspace, endpoint=endpoint, event_id="evt_hostile", event_type="email.opened",
        occurred_at=endpoint.created_at, status="failed", attempts=1, last_status_code=500,
        last_error=HOSTILE,
    )  # fmt: skip
    assert Segment.objects.filter(workspace=workspace, name=HOSTILE[:120]).exists()


# At phone width every table fits its container, and a data table (a header of four columns or more) is cards
# whose cells show their column's name (app.js labels the cells, app.css draws the label).
TABLE_PROBLEMS = """() => {
  const problems = [];
  document.querySelectorAll("table").forEach((table, i) => {
    if (!table.offsetParent) return;
    const box = table.parentElement.getBoundingClientRect();
    const own = table.getBoundingClientRect();
    if (own.width > box.width + 1) problems.push(`table ${i + 1} is ${own.width}px in a ${box.width}px box`);
    if (table.classList.contains("table") && table.tHead && table.tHead.rows[0].cells.length >= 4) {
      if (!table.hasAttribute("data-cards")) { problems.push(`table ${i + 1} is not laid out as cards`); return; }
      table.querySelectorAll("tbody td[data-label]").forEach((td) => {
        if (!td.dataset.label || !td.offsetParent) return;
        const label = getComputedStyle(td, "::before");
        if (label.content === "none" || label.display === "none" || label.visibility === "hidden")
          problems.push(`table ${i + 1}: the label "${td.dataset.label}" is not shown`);
      });
    }
  });
  return [...new Set(problems)].slice(0, 5);
}"""


def watch(page) -> list[str]:
    """A list that collects, as they happen on ``page``: console errors (with the resource's URL), uncaught
    page errors and dialogs (dismissed: a hostile string that called ``alert`` shows up here). Clear it before
    each navigation."""
    seen: list[str] = []
    page.on(
        "console",
        lambda msg: (
            seen.append(f"console {msg.type}: {msg.text} ({msg.location.get('url', '')})")
            if msg.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda exc: seen.append(f"page error: {exc}"))
    page.on(
        "dialog", lambda dialog: (seen.append(f"dialog {dialog.type}: {dialog.message}"), dialog.dismiss())
    )
    return seen


def table_problems(page) -> list[str]:
    """TABLE_PROBLEMS on the page as it is now (call at 390 px wide)."""
    return page.evaluate(TABLE_PROBLEMS)


def _check_page(page, url) -> list[str]:
    problems = []
    if page.evaluate("() => window.__pwned === 1") or page.locator("img[data-pwned]").count():
        problems.append("a hostile string ran or became markup")
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    if overflow > 1:
        problems.append(f"horizontal overflow of {overflow}px at 390px wide")
    problems.extend(table_problems(page))
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    for violation in results.response["violations"]:
        if violation["impact"] in ("serious", "critical"):
            targets = [", ".join(n["target"]) for n in violation["nodes"][:3]]
            problems.append(f"axe {violation['impact']} {violation['id']}: {violation['help']} at {targets}")
    return problems


@pytest.mark.parametrize("role", [Role.ADMIN, Role.MARKETER, Role.REVIEWER, Role.VIEWER])
def test_every_dashboard_page_as_every_role(
    role, chromium_browser, browser_login, live_server, settings, tmp_path, redis_client
):
    settings.MEDIA_ROOT = tmp_path
    settings.PUBLIC_BASE_URL = live_server.url  # email images and links are absolute on the public URL
    workspace = _seed()
    user = Membership.objects.get(workspace=workspace, role=role).user
    context = chromium_browser.new_context(viewport={"width": 390, "height": 844})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors = watch(page)
    browser_login(page, live_server, user, workspace)
    failures = []
    try:
        for name, url in _urls(workspace):
            errors.clear()
            if name in FILES or name in FRAGMENTS:  # not a page: ask with the page's cookies, do not navigate
                status = page.request.get(live_server.url + url).status
            else:
                response = page.goto(live_server.url + url)
                status = response.status if response else 0
            if name in STAFF_ONLY and not user.is_staff:
                if status != 404:
                    failures.append(f"{url}: {status}, expected 404 for a non-staff {role}")
                continue
            if name in MANAGE_ONLY and role != Role.ADMIN or name in WRITE_ONLY and role == Role.VIEWER:
                if status != 403:
                    failures.append(f"{url}: {status}, expected 403 for {role}")
                continue
            if not 200 <= status < 400:
                failures.append(f"{url}: answered {status}")
                continue
            if name in FILES or name in FRAGMENTS:
                continue
            page.wait_for_load_state("load")
            failures.extend(f"{url}: {p}" for p in [*errors, *_check_page(page, url)])
            if name == "crm:contact" and HOSTILE not in page.inner_text("main"):
                failures.append(f"{url}: the hostile name is not shown as text")  # the check above saw it
    finally:
        context.close()
    assert not failures, f"{len(failures)} problems as {role}:\n" + "\n".join(failures)
