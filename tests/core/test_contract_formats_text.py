"""The contract test's generators for custom formats and uploads (tests/core/contract_hooks_text.py) draw values the server's
own checks accept, and their violations are values those checks refuse: otherwise a "valid" request would be
refused for the generator's fault, or a "negative" one accepted."""

from __future__ import annotations

import io
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics import importing as order_importing
from crm import importing as crm_importing
from crm.importing import SAMPLE_BYTES, RowSource, content_mismatch, file_format_for
from crm.normalize import domain_clean
from publishing.personalization import LAYOUT_NAMES, template_check
from publishing.services.content import LAYOUT_BODY, mjml_compile
from tests.core import contract_hooks_text as hooks

pytestmark = pytest.mark.filterwarnings("ignore")
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NO_KEYS = frozenset()


def template_ok(value: str) -> bool:
    return not template_check(value, custom_keys=NO_KEYS) and "<img" not in value


def layout_ok(value: str) -> bool:
    return not template_check(value, custom_keys=NO_KEYS, extra_names=LAYOUT_NAMES) and bool(
        re.search(LAYOUT_BODY, value)
    )


def mjml_ok(value: str) -> bool:
    try:
        return template_ok(mjml_compile(value))
    except ValueError:
        return False


def domain_ok(value: str) -> bool:
    try:
        domain_clean(value)
    except ValueError:
        return False
    return True


CHECKS = {
    "jinja-template": template_ok,
    "jinja-layout": layout_ok,
    "mjml-template": mjml_ok,
    "hostname-or-url": domain_ok,
}


def test_every_format_has_a_check():
    assert set(CHECKS) == set(hooks.FORMATS) == set(hooks.VIOLATIONS)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_generated_values_pass_the_servers_check_and_violations_fail_it(name):
    @SETTINGS
    @given(hooks.FORMATS[name])
    def generated(value):
        assert CHECKS[name](value), value
        assert not CHECKS[name](hooks.VIOLATIONS[name](value)), value

    generated()


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_violations_of_arbitrary_text_fail_the_check(name):
    """A format-negated value is any string: its violation must fail whatever it was."""

    @SETTINGS
    @given(st.text(max_size=40))
    def arbitrary(value):
        assert not CHECKS[name](hooks.VIOLATIONS[name](value)), value

    arbitrary()


def test_generated_subjects_fit_the_column():
    @SETTINGS
    @given(hooks.jinja_templates())
    def short(value):
        assert len(value) <= 255

    short()


# ------------------------------------------------------------------------------------------------ uploads


def file_headers(body: bytes) -> list[str]:
    assert content_mismatch(body[:SAMPLE_BYTES], file_format_for("file")) == ""
    return RowSource(io.BytesIO(body), "csv").headers


def contact_mappings_pass(workspace, columns, headers, mapping):
    assert headers == list(columns.values())
    for candidate in (mapping, crm_importing.auto_mapping(headers, workspace)):
        assert crm_importing.validate_mapping(candidate, headers, workspace) == {}


def order_mappings_pass(workspace, columns, headers, mapping):
    assert sorted(headers) == sorted(columns.values())
    for candidate in (mapping, order_importing.auto_mapping(headers)):
        assert order_importing.validate_mapping(candidate, headers, has_default_currency=False) == {}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("operation", "check"),
    [
        ("POST /api/v1/crm/imports/", contact_mappings_pass),
        ("POST /api/v1/analytics/orders/import/", order_mappings_pass),
    ],
)
def test_uploads_and_their_mapping_pass_the_import_checks(workspace, operation, check):
    """The drawn CSV is text with the headers drawn, and both the mapping the hook sends and the one the
    server guesses without it name those headers and every field the import needs."""
    files, mapping_for = hooks.UPLOADS[operation]

    @SETTINGS
    @given(files)
    def drawn(upload):
        body, columns = upload
        check(workspace, columns, file_headers(body), mapping_for(columns))

    drawn()
