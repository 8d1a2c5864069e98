"""MJML as an authoring option: compiled to responsive HTML when saved (mjml-python), personalization
kept, compile errors as field errors with nothing written, no includes read from disk or the network."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from publishing.models import ContentVersion
from publishing.personalization import recipient_context
from publishing.services import content as content_services
from publishing.services.content import email_render
from tests.crm.factories import ContactFactory

from .conftest import make_sender

pytestmark = pytest.mark.django_db

MJML = """<mjml><mj-body><mj-section><mj-column>
<mj-text>Hello {{ contact.first_name | default("there") }}</mj-text>
<mj-button href="https://shop.example/sale">Shop the sale</mj-button>
</mj-column></mj-section></mj-body></mjml>"""


def _content(workspace, **data):
    content = content_services.content_create(workspace=workspace, name="Sale")
    version = content_services.email_version_save(
        content=content, subject="Sale", sender=make_sender(workspace), **data
    )
    return content, version


def test_mjml_is_compiled_to_html_that_personalizes_per_recipient(workspace):
    _content_, version = _content(workspace, mjml=MJML)
    assert version.mjml == MJML
    assert "<table" in version.html and 'href="https://shop.example/sale"' in version.html
    assert "fonts.googleapis.com" not in version.html  # no third-party font fetched at open time
    ann = ContactFactory(workspace=workspace, first_name="Ann")
    rendered = email_render(
        version, recipient_context(ann, custom_keys=frozenset()), unsubscribe_url="https://u/"
    )
    assert "Hello Ann" in rendered.html and "Hello Ann" in rendered.text
    assert "https://shop.example/sale" in [url for _line, url in content_services.links_in(version.html)]


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("<mjml><mj-body><mj-section>", "does not compile"),
        ('<mjml><mj-body><mj-include path="/etc/passwd" /></mj-body></mjml>', "does not compile"),
        (
            '<mjml><mj-body><mj-include path="https://evil.example/x.mjml" /></mj-body></mjml>',
            "does not compile",
        ),
        ("<mjml><mj-body><mj-text>{{ contact.salary }}</mj-text></mj-body></mjml>", "unknown field"),
    ],
)
def test_a_source_that_does_not_compile_or_names_an_unknown_field_is_refused(workspace, source, words):
    content = content_services.content_create(workspace=workspace, name="Bad")
    with pytest.raises(ValidationError) as exc:
        content_services.email_version_save(
            content=content, subject="S", sender=make_sender(workspace), mjml=source
        )
    assert words in " ".join(m for ms in exc.value.message_dict.values() for m in ms)
    assert not ContentVersion.objects.filter(content=content).exists()


def test_html_without_mjml_replaces_the_mjml_source(workspace):
    content, version = _content(workspace, mjml=MJML)
    version = content_services.email_version_save(content=content, html="<p>Hand written</p>")
    assert version.mjml == "" and version.html == "<p>Hand written</p>"


def test_the_api_and_the_editor_take_mjml(api_client_for):
    client = api_client_for("marketer")
    sender = make_sender(client.workspace)
    content = client.post("/api/v1/publishing/contents/", {"name": "N"}, format="json").json()
    url = f"/api/v1/publishing/contents/{content['id']}/email/"
    bad = client.put(url, {"subject": "S", "sender": sender.pk, "mjml": "<mjml><mj-body>"}, format="json")
    assert bad.status_code == 400 and "mjml" in bad.json()["error"]["fields"]
    good = client.put(url, {"subject": "S", "sender": sender.pk, "mjml": MJML}, format="json")
    assert good.status_code == 200 and "<table" in good.json()["html"]

    response = client.post(
        f"/publishing/contents/{content['id']}/edit/",
        {"subject": "S", "sender": sender.pk, "mjml": MJML.replace("Shop the sale", "Last day"), "html": ""},
        format="multipart",  # a browser's form post
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert "Last day" in ContentVersion.objects.get(content_id=content["id"]).html
