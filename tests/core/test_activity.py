"""The activity feed in words: every audit verb the code can write has a sentence (aicmo.activity.PHRASES),
the sentence is what the overview and the audit log show, and the technical verb is one click away."""

from __future__ import annotations

import ast
import re

import pytest

from aicmo.activity import PHRASES, describe
from aicmo.audit import audit_record
from aicmo.models import AuditEvent
from gateway import services as gateway_services
from tests.factories import AuditEventFactory
from tests.sources import app_modules

VERB = re.compile(r"^[a-z_]+(\.[a-z_]+)+$")


def _audit_call_verbs():
    """Every verb argument of an audit-writing call in the apps' source: ``verb=...`` keywords anywhere and
    the positional arguments of any function whose name contains ``audit``. Literal verbs come back as
    strings, f-strings as regular expressions of their literal parts."""
    literals, patterns = {}, {}
    for relative, module in app_modules():
        for node in ast.walk(module):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", "")
            args = [k.value for k in node.keywords if k.arg == "verb"]
            if "audit" in name:
                args += node.args
            where = f"{relative}:{node.lineno}"
            for arg in args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and VERB.match(arg.value):
                    literals[arg.value] = where
                elif isinstance(arg, ast.JoinedStr):
                    parts = [
                        re.escape(v.value) if isinstance(v, ast.Constant) else "[a-z_.]+" for v in arg.values
                    ]
                    patterns["".join(parts)] = where
    return literals, patterns


def test_every_verb_the_code_writes_has_a_phrase():
    literals, patterns = _audit_call_verbs()
    assert len(literals) > 60, "the scan found too few audit calls: has audit_record been renamed?"
    missing = {verb: where for verb, where in literals.items() if verb not in PHRASES}
    assert not missing, f"audit verbs without a phrase in aicmo.activity.PHRASES: {missing}"
    for pattern, where in patterns.items():  # verbs built at run time: their family must have phrases
        assert any(re.fullmatch(pattern, verb) for verb in PHRASES), f"{where}: no phrase matches {pattern}"


@pytest.mark.django_db
def test_audit_record_refuses_a_verb_without_a_phrase(workspace):
    with pytest.raises(ValueError, match="no phrase"):
        audit_record(workspace=workspace, actor=None, verb="crm.contact.teleported")
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("verb", sorted(PHRASES))
def test_every_phrase_reads_as_words(verb, workspace):
    event = AuditEventFactory(workspace=workspace, verb=verb, actor_label="ana", target_repr="Thing")
    words = str(describe(event))
    assert verb not in words and "{" not in words and "_" not in words
    assert words[0].isupper() or words.startswith("ana"), words


@pytest.mark.django_db
def test_the_provider_account_sentence(workspace, member_factory):
    ana = member_factory(workspace, "admin", first_name="Ana", last_name="")
    gateway_services.account_create(
        workspace=workspace,
        by=ana,
        capability="send_email",
        adapter="smtp",
        name="Mailgun EU",
        base_url="smtp://93.184.215.14:587",
    )
    event = AuditEvent.objects.get(workspace=workspace, verb="gateway.account_created")
    assert str(describe(event)) == "Ana added the provider account “Mailgun EU”"


@pytest.mark.django_db
def test_changes_fill_the_sentence_and_roles_read_as_labels(workspace):
    event = AuditEventFactory(
        workspace=workspace, verb="member.role_changed", actor_label="ops",
        changes={"user": "bo", "from": "viewer", "to": "marketer"},
    )  # fmt: skip
    assert str(describe(event)) == "ops changed the role of bo to Marketer"
    system = AuditEventFactory(workspace=workspace, verb="invitation.sent", changes={"email": "c@ex.com"})
    assert str(describe(system)) == "The invitation to c@ex.com was sent"


@pytest.mark.django_db
def test_sentences_escape_what_people_typed(workspace):
    hostile = '<img src=x onerror="alert(1)">'
    event = AuditEventFactory(
        workspace=workspace, verb="crm.tag.renamed", actor_label=hostile, changes={"from": hostile, "to": "b"}
    )
    words = str(describe(event))
    assert "<img" not in words and "&lt;img" in words


@pytest.mark.django_db
def test_an_old_verb_without_a_phrase_still_reads(workspace):
    event = AuditEventFactory(
        workspace=workspace, verb="crm.contact.archived", actor_label="ann", target_repr="x"
    )
    assert str(describe(event)) == "ann archived contact x"


def test_home_and_audit_log_show_the_sentence_with_the_verb_one_click_away(client_for):
    admin = client_for("admin")
    AuditEventFactory(
        workspace=admin.workspace, verb="crm.contact.deleted", actor_label="ann", target_repr="x@ex.com"
    )
    home = admin.get("/").content.decode()
    assert "ann deleted the contact “x@ex.com”" in home
    log = admin.get("/audit/").content.decode()
    assert "ann deleted the contact “x@ex.com”" in log
    assert "<summary>Technical detail</summary>" in log and "<code>crm.contact.deleted</code>" in log
    assert "deleted the contact" not in client_for("marketer").get("/").content.decode()
