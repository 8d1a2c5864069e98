"""Email content: templates refused when saved (with the line), sandboxed personalization with defaults,
CSS inlining, generated text part and the pre-send checks."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from crm.models import Company
from publishing.models import ContentVersion
from publishing.personalization import (
    COMPANY_FIELDS,
    CONTACT_FIELDS,
    recipient_context,
    template_check,
)
from publishing.services import content as content_services
from publishing.services.content import GMAIL_CLIP_BYTES, email_render, email_version_check, url_is_web
from tests.crm.factories import ContactFactory, CustomFieldFactory

from .conftest import make_content, make_sender

pytestmark = pytest.mark.django_db

KEYS = frozenset({"plan"})


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("Hi {{ contact.first_name }}", None),
        ('Hi {{ contact.first_name | default("there") }}', None),
        ("{{ company.name }} {{ custom.plan }} {{ custom['plan'] }}", None),
        ("{% set x = contact.email %}{{ x }}{% for i in [1] %}{{ i }}{% endfor %}", None),
        ("<a href='{{ unsubscribe_url }}'>u</a>", None),
        ("line1\n{{ contact.password }}", (2, "unknown field contact.password")),
        ("{{ company.revenue }}", (1, "unknown field company.revenue")),
        ("{{ custom.unknown_key }}", (1, "unknown field custom.unknown_key")),
        ("{{ contact.__class__ }}", (1, "unknown field contact.__class__")),
        ("{{ contact }}", (1, "use a field of contact")),
        ("a\nb\n{{ settings.SECRET_KEY }}", (3, "unknown name 'settings'")),
        ("{{ contact.first_name ", (1, "")),
        ("line1\n{% if %}", (2, "")),
        ("{{ custom[key] }}", (1, "needs a quoted field name")),
        ("{{ custom.plan.__class__ }}", (1, "only contact.…, company.… and custom.… fields")),
        ("{% set x = contact.first_name %}{{ x.upper() }}", (1, "use filters")),
        ("{{ contact.first_name | upper }}", None),
    ],
)
def test_template_check_matrix(source, problem):
    problems = template_check(source, custom_keys=KEYS)
    if problem is None:
        assert problems == []
    else:
        line, words = problem
        assert problems and problems[0].line == line and words in problems[0].message


@pytest.mark.parametrize("field", CONTACT_FIELDS)
def test_every_allowed_contact_field_passes(field):
    assert template_check("{{ contact.%s }}" % field, custom_keys=frozenset()) == []  # noqa: UP031


@pytest.mark.parametrize("field", COMPANY_FIELDS)
def test_every_allowed_company_field_passes(field):
    assert template_check("{{ company.%s }}" % field, custom_keys=frozenset()) == []  # noqa: UP031


@given(st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True))
def test_any_other_contact_attribute_is_refused(name):
    problems = template_check("{{ contact.%s }}" % name, custom_keys=frozenset())  # noqa: UP031
    assert (problems == []) == (name in CONTACT_FIELDS)


def test_save_refuses_unknown_field_naming_field_and_line(workspace):
    content = content_services.content_create(workspace=workspace, name="C")
    with pytest.raises(ValidationError) as err:
        content_services.email_version_save(
            content=content,
            subject="Hi",
            sender=make_sender(workspace),
            html="<p>ok</p>\n<p>{{ contact.ssn }}</p>",
        )
    assert err.value.message_dict == {"html": ["line 2: unknown field contact.ssn"]}
    assert not ContentVersion.objects.exists()  # nothing half-written


def test_save_refuses_unverified_or_foreign_sender(workspace, other_workspace):
    content = content_services.content_create(workspace=workspace, name="C")
    for sender, message in (
        (make_sender(workspace, "new@acme.example", verified=False), "not verified"),
        (make_sender(other_workspace), "Unknown sender"),
    ):
        with pytest.raises(ValidationError) as err:
            content_services.email_version_save(content=content, subject="Hi", sender=sender, html="<p>x</p>")
        assert message in err.value.message_dict["sender"][0]


def test_custom_field_allowed_once_defined(workspace):
    content = content_services.content_create(workspace=workspace, name="C")
    with pytest.raises(ValidationError):
        content_services.email_version_save(content=content, subject="{{ custom.plan }}", html="<p>x</p>")
    CustomFieldFactory(workspace=workspace, key="plan", label="Plan")
    version = content_services.email_version_save(
        content=content, subject="{{ custom.plan }}", html="<p>x</p>"
    )
    assert version.subject == "{{ custom.plan }}"


def test_render_personalizes_with_defaults_escapes_and_inlines(workspace):
    CustomFieldFactory(workspace=workspace, key="plan", label="Plan")
    content = make_content(
        workspace,
        subject='Hello {{ contact.first_name | default("there") }}',
        html=(
            "<html><head><style>.x{color:red}</style><link rel='stylesheet' href='http://10.0.0.1/a.css'>"
            "</head><body><p class='x'>{{ contact.first_name | default('there') }} at {{ company.name }}"
            " on {{ custom.plan | default('free') }}</p></body></html>"
        ),
    )
    version = content.versions.get()
    company = Company.objects.create(workspace=workspace, domain="acme.example", name="<b>Acme</b>")
    named = ContactFactory(workspace=workspace, first_name="Ann", company=company, custom={"plan": "pro"})
    blank = ContactFactory(workspace=workspace, first_name="")
    keys = frozenset({"plan"})
    a = email_render(
        version, recipient_context(named, custom_keys=keys), unsubscribe_url="https://u.example/x"
    )
    b = email_render(
        version, recipient_context(blank, custom_keys=keys), unsubscribe_url="https://u.example/x"
    )
    assert a.subject == "Hello Ann" and b.subject == "Hello there"
    assert '<p class="x" style="color: red;">Ann at &lt;b&gt;Acme&lt;/b&gt; on pro</p>' in a.html
    assert "there at  on free" in b.html
    assert "Ann at <b>Acme</b> on pro" in a.text or "Ann at **Acme** on pro" in a.text


def test_text_part_generated_when_empty_and_kept_when_given(workspace):
    content = make_content(
        workspace, html="<h1>Title</h1><p>Body <a href='https://acme.example/'>link</a></p>"
    )
    version = content.versions.get()
    assert version.text_generated and "# Title" in version.text and "https://acme.example/" in version.text
    version = content_services.email_version_save(content=content, text="Plain {{ contact.first_name }}")
    assert not version.text_generated and version.text == "Plain {{ contact.first_name }}"


def test_layout_wraps_body_and_must_place_it(workspace):
    with pytest.raises(ValidationError) as err:
        content_services.layout_save(workspace=workspace, name="Base", html="<html><body></body></html>")
    assert "{{ body }}" in err.value.message_dict["html"][0]
    layout = content_services.layout_save(
        workspace=workspace,
        name="Base",
        html="<html><body><div class='wrap'>{{ body }}</div><footer>{{ preheader }}</footer></body></html>",
        css=".wrap { padding: 8px }",
    )
    content = make_content(workspace, html="<p>Hi</p>", layout=layout, preheader="Sneak peek")
    rendered = email_render(content.versions.get(), {}, unsubscribe_url="https://u.example/")
    assert (
        '<div class="wrap" style="padding: 8px;"><p>Hi</p></div><footer>Sneak peek</footer>' in rendered.html
    )


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://acme.example/a?b=c#d", True),
        ("http://acme.example", True),
        ("https://acme.example:8443/x", True),
        ("ftp://acme.example/", False),
        ("javascript:alert(1)", False),
        ("https://", False),
        ("https://localhost/", False),
        ("https://acme.example:99999/", False),
        ("https://acme .example/", False),
        ("/relative", False),
        ("", False),
        ("{{ contact.email }}", False),
    ],
)
def test_url_is_web(url, ok):
    assert url_is_web(url) is ok


@given(st.text(max_size=60))
def test_url_is_web_never_raises(text):
    assert url_is_web(text) in (True, False)


def test_checks_report_bad_links_missing_unsubscribe_empty_subject_and_size(workspace):
    content = make_content(
        workspace,
        subject="Hi",
        html="<p><a href='https://acme.example/'>ok</a>\n<a href='htp:/broken'>bad</a> <a href='mailto:a@b.c'>m</a></p>",
    )
    version = content.versions.get()
    report = email_version_check(version)
    assert report.errors == ["Line 2: link 'htp:/broken' is not a well-formed http(s) URL."]
    assert any("unsubscribe" in w for w in report.warnings)
    version.subject = "   "
    version.html = "<p>" + "x" * (GMAIL_CLIP_BYTES + 10) + "</p><a href='{{ unsubscribe_url }}'>u</a>"
    report = email_version_check(version)
    assert "The subject is empty." in report.errors
    assert report.warnings == [
        f"The HTML is {report.html_bytes // 1024} KB; Gmail clips messages past 102 KB."
    ]
    assert report.html_bytes > GMAIL_CLIP_BYTES
