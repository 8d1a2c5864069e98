"""An audience counted right after a bulk load, before PostgreSQL's autovacuum has analyzed the new rows.

`ANALYZE` of the empty tables records "0 rows"; the planner then believes every scan returns one row and
picks nested loops everywhere. The audience's list part used to be `pk IN (contacts joined to memberships)`,
which that plan turned into a triple nested loop: a campaign started minutes after a 2,000-contact import
sat in one `COUNT(*)` for minutes (seen in a test run, cancelled after 5 minutes). The statement timeout
below is two orders of magnitude above the time the query needs with any plan of the current form.
"""

from __future__ import annotations

from contextlib import contextmanager

import pytest
from django.db import connection

from crm.models import Contact, ListMembership
from publishing.services import campaigns
from publishing.services.audience import audience_estimate
from tests.crm.factories import ContactListFactory

from .conftest import make_content

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
MEMBERS = 2000


# The plan a planner believing "one row per scan" makes: nested loops over sequential scans, nothing
# hashed, no index (what stale statistics led to in that run, forced here so the test does not depend on
# when autovacuum runs).
WORST_PLAN = ("enable_hashjoin", "enable_mergejoin", "enable_hashagg", "enable_indexscan",
              "enable_bitmapscan", "enable_indexonlyscan", "enable_material", "enable_memoize")  # fmt: skip


@contextmanager
def worst_plan(timeout="20s"):
    with connection.cursor() as cursor:
        for name in WORST_PLAN:
            cursor.execute(f"SET {name} = off")
        cursor.execute(f"SET statement_timeout = '{timeout}'")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            for name in (*WORST_PLAN, "statement_timeout"):
                cursor.execute(f"RESET {name}")


def test_an_audience_counted_before_the_new_rows_are_analyzed_is_counted_at_once(workspace):
    # (the `postgres` mark keeps it to the PostgreSQL phase: planner settings are PostgreSQL's)
    # Given 2,000 contacts loaded into a list after the tables were analyzed empty
    members = ContactListFactory(workspace=workspace)
    other = ContactListFactory(workspace=workspace)
    Contact.objects.bulk_create(
        [Contact(workspace=workspace, email=f"m{i}@example.com") for i in range(MEMBERS + 10)]
    )
    contacts = list(Contact.objects.for_workspace(workspace).order_by("pk"))
    ListMembership.objects.bulk_create(
        [ListMembership(workspace=workspace, contact_list=members, contact=c) for c in contacts[:MEMBERS]]
        + [ListMembership(workspace=workspace, contact_list=other, contact=c) for c in contacts[-20:]]
    )
    campaign = campaigns.campaign_create(
        workspace=workspace,
        name="right after the import",
        content=make_content(workspace),
        audience={"lists": [members.pk, other.pk], "exclude_lists": [other.pk]},
    )

    # When it is estimated under the worst plan (the old `pk IN (contacts joined to memberships)` form ran
    # for minutes under it: a triple nested loop)
    with worst_plan():
        report = audience_estimate(campaign)

    # Then each of the 2,010 listed contacts is counted once, the 20 on the excluded list left out
    assert (report.targeted, report.expected, report.left_out) == (
        MEMBERS - 10,
        MEMBERS - 10,
        {"excluded": 20},
    )
