"""Ids in request bodies that name no row of the caller's workspace are a 404 naming them, never skipped.

Every bulk and nested endpoint resolves body ids through `aicmo.tenancy.resolve_ids` (via the API's
`WorkspaceIdsField`); these tests hold each such endpoint and the helper itself to that.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aicmo.models import Job
from aicmo.tenancy import MISSING_SHOWN, resolve_ids
from crm.models import Contact, ListMembership
from tests.crm.factories import ContactFactory, ContactListFactory

pytestmark = pytest.mark.django_db
BASE = "/api/v1/crm"


@pytest.fixture
def mixed(api_client_for, other_workspace):
    client = api_client_for("marketer")
    mine = ContactFactory.create_batch(2, workspace=client.workspace)
    theirs = ContactFactory(workspace=other_workspace)
    return client, [c.pk for c in mine], theirs.pk


@pytest.mark.parametrize("action", ["add", "remove"])
def test_list_members_with_a_foreign_id_is_404_and_changes_nothing(mixed, action):
    client, mine, foreign = mixed
    lst = ContactListFactory(workspace=client.workspace)
    resp = client.post(f"{BASE}/lists/{lst.pk}/{action}/", {"contact_ids": [*mine, foreign]}, format="json")
    assert resp.status_code == 404
    assert resp.json()["error"]["code"] == "not_found"
    assert resp.json()["error"]["fields"] == {"contact_ids": [f"Not found in this workspace: {foreign}."]}
    assert ListMembership.objects.filter(contact_list=lst).count() == 0


@pytest.mark.parametrize("route", ["enrichment-runs", "verification-runs"])
def test_runs_with_a_foreign_or_missing_id_are_404_and_start_no_job(mixed, route):
    client, mine, foreign = mixed
    missing = Contact.objects.order_by("-pk").first().pk + 1000
    resp = client.post(f"{BASE}/{route}/", {"contact_ids": [*mine, foreign, missing]}, format="json")
    assert resp.status_code == 404
    message = resp.json()["error"]["fields"]["contact_ids"][0]
    assert message == f"Not found in this workspace: {foreign}, {missing}."
    assert Job.objects.count() == 0


def test_own_ids_still_work(mixed):
    client, mine, _ = mixed
    lst = ContactListFactory(workspace=client.workspace)
    resp = client.post(f"{BASE}/lists/{lst.pk}/add/", {"contact_ids": [*mine, mine[0]]}, format="json")
    assert resp.status_code == 200 and resp.json() == {"added": 2}
    run = client.post(f"{BASE}/enrichment-runs/", {"contact_ids": mine}, format="json")
    assert run.status_code == 202 and run.json()["total"] == 2


def test_merge_with_a_foreign_duplicate_is_404_naming_it(mixed):
    client, mine, foreign = mixed
    resp = client.post(f"{BASE}/contacts/{mine[0]}/merge/", {"duplicate": foreign}, format="json")
    assert resp.status_code == 404
    assert str(foreign) in resp.json()["error"]["fields"]["duplicate"][0]
    assert Contact.objects.filter(pk=foreign).exists()


def test_resolve_ids_names_at_most_the_first_missing(workspace):
    with pytest.raises(ValidationError) as info:
        resolve_ids(Contact, range(1_000_000, 1_000_000 + MISSING_SHOWN + 5), workspace)
    assert info.value.messages[0].endswith("1000019 (and 5 more).")


@pytest.fixture
def pools(workspace, other_workspace):
    return {
        "mine": [c.pk for c in ContactFactory.create_batch(3, workspace=workspace)],
        "theirs": [c.pk for c in ContactFactory.create_batch(3, workspace=other_workspace)],
        "none": [10**12, 10**12 + 1, 10**12 + 2],
    }


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(picks=st.lists(st.tuples(st.sampled_from(["mine", "theirs", "none"]), st.integers(0, 2)), max_size=8))
def test_resolve_ids_accepts_exactly_the_own_workspace_ids(picks, pools, workspace):
    """Property: resolve_ids returns the input deduplicated iff every id is the workspace's own."""
    ids = [pools[kind][i] for kind, i in picks]
    own = set(pools["mine"])
    if all(i in own for i in ids):
        assert resolve_ids(Contact.objects.all(), ids, workspace) == list(dict.fromkeys(ids))
    else:
        with pytest.raises(ValidationError) as info:
            resolve_ids(Contact.objects.all(), ids, workspace)
        named = info.value.messages[0]
        assert all(str(i) in named for i in ids if i not in own)


@pytest.mark.parametrize("bad", [0, -5, 2**63, 2**100])
def test_resolve_ids_reports_ids_no_row_can_have_without_querying(workspace, bad, django_assert_num_queries):
    from django.core.exceptions import ValidationError

    from aicmo.tenancy import resolve_ids
    from crm.models import Contact

    with django_assert_num_queries(0), pytest.raises(ValidationError, match=str(bad)):
        resolve_ids(Contact, [bad], workspace)
