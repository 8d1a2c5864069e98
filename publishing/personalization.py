"""Personalization: jinja2's SandboxedEnvironment over an allow-list of contact, company and custom fields.

Templates are checked when saved (`template_check`): a syntax error or a name outside the allow-list is
refused with its line number, so nothing is discovered per recipient while sending. Rendering only ever
sees plain dicts built from the allow-list (`recipient_context`), never model instances.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from jinja2 import Template, TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from crm.models import Contact, CustomFieldDefinition

CONTACT_FIELDS = ("email", "first_name", "last_name", "full_name", "title", "phone")
COMPANY_FIELDS = ("name", "domain")
# Links the platform fills in per recipient.
LINK_NAMES = ("unsubscribe_url", "preferences_url")
LAYOUT_NAMES = ("body", "preheader", "subject")


@dataclass(frozen=True)
class TemplateProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


def _environment(autoescape: bool) -> SandboxedEnvironment:
    return SandboxedEnvironment(autoescape=autoescape, keep_trailing_newline=True)


HTML_ENV = _environment(autoescape=True)
TEXT_ENV = _environment(autoescape=False)


@lru_cache(maxsize=512)
def _compiled(autoescape: bool, source: str) -> Template:
    return (HTML_ENV if autoescape else TEXT_ENV).from_string(source)


def html_template(source: str) -> Template:
    """``source`` compiled in the autoescaping sandbox, once per process (jinja's ``from_string`` compiles
    on every call: a campaign renders the same few sources for every recipient)."""
    return _compiled(True, source)


def text_template(source: str) -> Template:
    """``source`` compiled in the non-escaping sandbox (subjects, preheaders, text parts), cached likewise."""
    return _compiled(False, source)


def custom_field_keys(workspace) -> frozenset[str]:
    return frozenset(CustomFieldDefinition.objects.for_workspace(workspace).values_list("key", flat=True))


def _allowed_attrs(custom_keys: frozenset[str]) -> dict[str, frozenset[str]]:
    return {
        "contact": frozenset(CONTACT_FIELDS),
        "company": frozenset(COMPANY_FIELDS),
        "custom": custom_keys,
    }


def template_check(
    source: str, *, custom_keys: frozenset[str], extra_names: tuple[str, ...] = ()
) -> list[TemplateProblem]:
    """Problems of one template source (empty: it compiles and names only allowed fields).

    Allowed: ``contact.<field>``, ``company.<field>``, ``custom.<key>`` (also ``custom["key"]``),
    ``unsubscribe_url``/``preferences_url``, names the template sets itself and ``extra_names``.
    """
    try:
        tree = HTML_ENV.parse(source)
    except TemplateSyntaxError as exc:
        return [TemplateProblem(exc.lineno or 1, exc.message or "syntax error")]
    allowed = _allowed_attrs(custom_keys)
    assigned = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    problems: list[TemplateProblem] = []
    attr_names: set[int] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        base = node.node
        if isinstance(base, nodes.Name) and base.name not in allowed and base.name not in assigned:
            continue  # reported below as an unknown name
        if not isinstance(base, nodes.Name) or base.name not in allowed:
            # Only the three roots have fields; formatting is done with filters (| upper, | default(...)).
            problems.append(
                TemplateProblem(
                    node.lineno, "only contact.…, company.… and custom.… fields can be read; use filters"
                )
            )
            continue
        attr_names.add(id(base))
        if isinstance(node, nodes.Getattr):
            key = node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            key = node.arg.value
        else:
            problems.append(TemplateProblem(node.lineno, f"{base.name}[…] needs a quoted field name"))
            continue
        if key not in allowed[base.name]:
            problems.append(TemplateProblem(node.lineno, f"unknown field {base.name}.{key}"))
    known = set(LINK_NAMES) | set(extra_names) | assigned
    for name in tree.find_all(nodes.Name):
        if name.ctx != "load" or name.name in known:
            continue
        if name.name in allowed:
            if id(name) not in attr_names:
                problems.append(
                    TemplateProblem(name.lineno, f"use a field of {name.name}, e.g. {name.name}.…")
                )
            continue
        problems.append(TemplateProblem(name.lineno, f"unknown name {name.name!r}"))
    return sorted(problems, key=lambda p: p.line)


def _present(mapping: dict) -> dict:
    """Empty values are left out so ``| default("there")`` applies to blanks as well as to missing fields."""
    return {k: v for k, v in mapping.items() if v not in ("", None)}


def recipient_context(contact: Contact, *, custom_keys: frozenset[str]) -> dict:
    """The only data a template sees for one recipient (contact.company should be select_related)."""
    company = contact.company
    return {
        "contact": _present(
            {
                "email": contact.email,
                "first_name": contact.first_name,
                "last_name": contact.last_name,
                "full_name": contact.full_name,
                "title": contact.title,
                "phone": contact.phone,
            }
        ),
        "company": _present({"name": company.name, "domain": company.domain}) if company else {},
        "custom": _present({k: v for k, v in (contact.custom or {}).items() if k in custom_keys}),
    }


def sample_context(custom_keys: frozenset[str]) -> dict:
    """A context with every allowed field filled, for previews and pre-send checks."""
    return {
        "contact": {
            "email": "first.last@example.com",
            "first_name": "First",
            "last_name": "Last",
            "full_name": "First Last",
            "title": "Title",
            "phone": "+1 555 0100",
        },
        "company": {"name": "Example Inc.", "domain": "example.com"},
        "custom": {k: k for k in custom_keys},
    }
