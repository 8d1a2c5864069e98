"""Every dashboard URL under /crm/, /media/, /gateway/ and /jobs/ survives junk query strings and junk form
posts: a 4xx, a redirect or the page, never a 500. Ids are filled with a missing id, one too large for
the database, and an id of another workspace's object (which must answer 404)."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from aicmo.models import Role
from crm.models import ImportRun
from media.models import Suggestion
from tests.crm.factories import ContactFactory, SegmentFactory
from tests.factories import JobFactory
from tests.gateway.factories import ProviderAccountFactory
from tests.media.factories import MediaAssetFactory

PREFIXES = ("crm/", "media/", "gateway/", "jobs/", "audit/", "workspace/", "settings/")
MISSING_ID = "987654321"
HUGE_ID = "99999999999999999999999"  # matches <int:pk>, beyond any database integer
SLUGS = {"action": ["approve", "update", "dismiss", "junk"], "spec": ["thumb", "junk"]}

JUNK_QUERIES = [
    {"page": "abc", "segment": "²", "limit": "-1", "q": "\x00", "library": "²", "list": "abc",
     "min_score": "1e999", "created_after": "not-a-date", "kind": "x", "status": "x", "tag": "\x00",
     "verification": "x", "lifecycle": "x", "company": "\x00", "ordering": "-nope", "page_size": "-5",
     "days": "x", "window": "-1"},
    {"page": HUGE_ID, "segment": HUGE_ID, "library": HUGE_ID, "list": HUGE_ID, "min_score": HUGE_ID,
     "created_before": "9999-99-99", "q": "%" * 300, "tag": "'; drop table x; --"},
    {"segment": "9" * 5000, "library": "9" * 5000, "list": "9" * 5000, "page": "9" * 5000},
]  # fmt: skip
JUNK_POSTS = [
    {"name": "", "rules": "{not json", "description": "\x00", "channel": "x", "action": "x", "note": "\x00",
     "focal_x": "nan", "focal_y": "1e999", "library": "²", "tags": ",,,", "policy": "x", "workspace": "²",
     "next": "//evil.example/", "map_0": "x", "title": "\x00" * 3},
    {"name": "x" * 5000, "rules": '{"op": "and", "rules": [{"field": "nope", "operator": "eq"}]}',
     "library": HUGE_ID, "focal_x": "-5", "focal_y": "inf", "channel": "", "workspace": HUGE_ID,
     "policy": "", "title": "x" * 5000, "category": "x" * 5000},
    {"rules": "[]", "name": "ok", "library": "0", "focal_x": "0.5", "focal_y": "abc"},
]  # fmt: skip


def dashboard_routes() -> list[str]:
    def walk(patterns, prefix=""):
        for entry in patterns:
            route = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, route)
            elif isinstance(entry, URLPattern):
                yield route

    return sorted({r for r in walk(get_resolver().url_patterns) if r.startswith(PREFIXES)})


def fill(route: str, pk: str) -> list[str]:
    """Concrete paths for a route: ints get `pk`, slugs each of their candidate values."""
    paths = ["/" + re.sub(r"<int:\w+>", pk, route)]
    for name, values in SLUGS.items():
        paths = [p.replace(f"<slug:{name}>", v) for p in paths for v in values]
    return [re.sub(r"<\w+:\w+>", "junk", p) for p in paths]


@pytest.fixture
def foreign_ids(other_workspace, settings, tmp_path) -> dict[str, str]:
    """Objects of another workspace, keyed by the route prefix that addresses them."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    asset = MediaAssetFactory(workspace=other_workspace)
    suggestion = Suggestion.objects.create(
        workspace=other_workspace, asset=asset, code=Suggestion._meta.get_field("code").choices[0][0],
        message="m", computed_at=timezone.now(),
    )  # fmt: skip
    run = ImportRun.objects.create(workspace=other_workspace, file=SimpleUploadedFile("a.csv", b"email\n"))
    return {
        "crm/contacts/": str(ContactFactory(workspace=other_workspace).pk),
        "crm/segments/": str(SegmentFactory(workspace=other_workspace).pk),
        "crm/imports/": str(run.pk),
        "media/assets/": str(asset.pk),
        "media/suggestions/": str(suggestion.pk),
        "gateway/accounts/": str(
            ProviderAccountFactory(workspace=other_workspace, adapter="demo_verification").pk
        ),
        "jobs/": str(JobFactory(workspace=other_workspace).pk),
    }


def junk_file() -> SimpleUploadedFile:
    return SimpleUploadedFile("junk.csv", b"\x00\xff\xfe not,a\ncsv\x00", content_type="text/csv")


@pytest.mark.parametrize("route", dashboard_routes())
def test_dashboard_survives_junk_input(route, client_for, foreign_ids, redis_client):
    client = client_for(role=Role.ADMIN)
    client.raise_request_exception = False
    foreign = next((pk for prefix, pk in foreign_ids.items() if route.startswith(prefix)), None)
    has_id = "<int:" in route
    failures = []

    for pk in [MISSING_ID, HUGE_ID, *([foreign] if foreign else [])] if has_id else [MISSING_ID]:
        for path in fill(route, pk):
            for query in JUNK_QUERIES:
                resp = client.get(path, query)
                failures += [f"GET {path} {query} -> {resp.status_code}"] if resp.status_code >= 500 else []
                if has_id and pk == foreign and resp.status_code not in (404, 405):
                    failures.append(f"GET {path} (another workspace's id) -> {resp.status_code}, not 404")
            for body in JUNK_POSTS:
                resp = client.post(path, {**body, "file": junk_file()})
                failures += [f"POST {path} {body} -> {resp.status_code}"] if resp.status_code >= 500 else []
                if has_id and pk == foreign and resp.status_code not in (404, 405):
                    failures.append(f"POST {path} (another workspace's id) -> {resp.status_code}, not 404")

    assert not failures, "\n".join(dict.fromkeys(failures))


def test_every_area_is_swept():
    routes = dashboard_routes()
    for prefix in PREFIXES:
        assert any(r.startswith(prefix) for r in routes), prefix
