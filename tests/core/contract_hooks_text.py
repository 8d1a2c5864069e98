"""Contract-test generators for text with a syntax of its own (docs/API.md, "Formats"): templates that must
compile, a company's domain, and the content of an upload.

Loaded by tests/core/contract_hooks.py in schemathesis' CLI process (no Django). Each custom ``format`` gets a
hypothesis strategy drawing values the server really accepts, varied in their surrounding text:

- ``jinja-template``, ``jinja-layout``, ``mjml-template``: ``publishing.personalization.template_check`` and
  ``publishing.services.content`` (a layout places ``{{ body }}``; MJML compiles with mjml-python);
- ``hostname-or-url``: ``crm.normalize.domain_clean`` (an IDNA host name once scheme, ``www.``, port and path
  are dropped).

An upload's ``file`` is a CSV or XLSX file (the schema's multipart ``encoding``); schemathesis draws any bytes
(a PNG, mostly). `real_uploads` gives every positive case of the two import operations a CSV drawn from
`contact_csvs`/`order_csvs` (headers the importers know, varied spellings, delimiters and rows) and, when the
case carries a ``mapping``, one naming that file's own headers, as the mapping's description requires.

A negative case whose only fault is a dropped custom ``format`` would be any string: schemathesis cannot
draw the complement of a format, and counts every such value invalid. `really_violate_formats` makes such a
value break its format for real (an unclosed ``{{``, a label opening with a hyphen), so the server's 400 is
what the case expects and a value that happens to be valid is never sent as "negative".
"""

from __future__ import annotations

import csv
import io

import schemathesis
from hypothesis import strategies as st
from PIL import Image

# Text around the placeholders: no "{" or "}" (Jinja's delimiters open with them), no markup characters (the
# HTML parser would read tags; an <img> must name a media asset), no control or surrogate characters.
TEXT = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="{}<>&"), max_size=15
)
# Only the names publishing.personalization allows (custom.<key> depends on the workspace: left out).
PLACEHOLDERS = (
    "{{ contact.first_name }}",
    '{{ contact.first_name | default("there") }}',
    "{{ company.name | upper }}",
    "{% if contact.title %}{{ contact.title }}{% endif %}",
    "{{ unsubscribe_url }}",
    "{{ contact['email'] }}",
    "{% set greeting = 'Hello' %}{{ greeting }}",
    "{# a comment #}",
)
WRAPS = (("", ""), ("<p>", "</p>"), ("<strong>", "</strong>"), ('<a href="{{ preferences_url }}">', "</a>"))


def _joined(pieces: st.SearchStrategy[str], max_size: int = 4) -> st.SearchStrategy[str]:
    return st.lists(st.one_of(TEXT, pieces), max_size=max_size).map("".join)


def jinja_templates() -> st.SearchStrategy[str]:
    """A template of text and allowed placeholders, possibly inside one HTML element (at most ~250 chars)."""
    return st.tuples(st.sampled_from(WRAPS), _joined(st.sampled_from(PLACEHOLDERS))).map(
        lambda parts: parts[0][0] + parts[1] + parts[0][1]
    )


def jinja_layouts() -> st.SearchStrategy[str]:
    """A layout: a template with ``{{ body }}`` (maybe filtered) somewhere, which may read the subject."""
    body = st.sampled_from(("{{ body }}", "{{body}}", "{{ body | safe }}"))
    extra = st.sampled_from((*PLACEHOLDERS, "{{ subject }}", "{{ preheader | default('') }}"))
    return st.tuples(_joined(extra), body, _joined(extra)).map("".join)


def mjml_templates() -> st.SearchStrategy[str]:
    """An MJML document of one to three sections, each a text block holding a template."""
    # MJML escapes quotes inside element text: no quoted subscripts or arguments there.
    plain = st.sampled_from([p for p in PLACEHOLDERS if "'" not in p and '"' not in p])
    section = _joined(plain).map(
        lambda text: f"<mj-section><mj-column><mj-text>{text}</mj-text></mj-column></mj-section>"
    )
    return st.lists(section, min_size=1, max_size=3).map(
        lambda s: f"<mjml><mj-body>{''.join(s)}</mj-body></mjml>"
    )


LABEL = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,12}[a-z0-9])?", fullmatch=True).filter(
    lambda s: s[2:4] != "--"
)
UNICODE_LABELS = st.sampled_from(("bäckerei", "münchen", "café", "例え", "пример", "Straße", "ÉCOLE"))


def hostnames_or_urls() -> st.SearchStrategy[str]:
    """A host name of ASCII or Unicode labels (any case), maybe behind a scheme and ``www.``, with a port, a
    path, a query or a trailing dot; at most 253 characters."""
    host = st.builds(
        lambda labels, top: ".".join([*labels, top]),
        st.lists(st.one_of(LABEL, UNICODE_LABELS), min_size=1, max_size=3),
        st.sampled_from(("com", "org", "de", "io", "co.uk", "example", "COM")),
    )
    before = st.sampled_from(("", "www.", "http://", "https://", "https://www.", "HTTP://WWW."))
    after = st.sampled_from(("", ".", ":8080", "/", "/about/team", "?utm_source=x", "#top", ":443/a?b=c"))
    return st.tuples(before, host, after).map("".join).filter(lambda value: len(value) <= 253)


FORMATS = {
    "jinja-template": jinja_templates(),
    "jinja-layout": jinja_layouts(),
    "mjml-template": mjml_templates(),
    "hostname-or-url": hostnames_or_urls(),
}
for _name, _strategy in FORMATS.items():
    schemathesis.openapi.format(_name, _strategy)

# How a value is made to break its format for real (see the module's docstring).
VIOLATIONS = {
    "jinja-template": lambda value: f"{value}{{{{",  # an unclosed "{{": a syntax error
    "jinja-layout": lambda value: f"{value}{{{{",
    "mjml-template": lambda value: f"{value}{{{{",  # text after the root element: MJML does not compile
    "hostname-or-url": lambda value: f"-{value}",  # a label may not open with a hyphen
}


def _formatted_properties(case) -> dict[str, str]:
    """Body property → its custom format, for the operation's request body (object bodies only)."""
    body = case.operation.get_body_for_media_type(case.media_type) if case.media_type else None
    schema = getattr(body, "resolved_schema", None) or {}
    found = {}
    for name, prop in (schema.get("properties") or {}).items():
        for branch in [prop, *prop.get("oneOf", []), *prop.get("anyOf", [])]:
            if isinstance(branch, dict) and branch.get("format") in VIOLATIONS:
                found[name] = branch["format"]
    return found


def _violated(case):
    meta = case.meta
    if meta is None or not meta.generation.mode.is_negative or not isinstance(case.body, dict):
        return case
    formats = _formatted_properties(case)
    for mutation in getattr(meta.phase.data, "mutations", ()):
        if "format" not in mutation.keywords:
            continue
        names = [part for part in mutation.path if isinstance(part, str) and part in formats]
        for name in names[-1:]:
            if isinstance(case.body.get(name), str):
                case.body[name] = VIOLATIONS[formats[name]](case.body[name])
    return case


# ------------------------------------------------------------------------------------------------ uploads

# Cells: letters, digits and a little punctuation (no quotes or delimiters: the server sniffs the delimiter
# from the first lines, and a row's values only decide its per-row errors, never the request's answer).
CELL = st.text(alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzÄéß0123456789 @.-_"), max_size=12)
DELIMITERS = st.sampled_from((",", ";", "\t"))
# Header spellings crm.importing.SYNONYMS knows, by target ("" : a column the import leaves out).
CONTACT_COLUMNS = {
    "email": ("email", "E-mail", "Email Address", "Courriel", "Work Email"),
    "first_name": ("First Name", "first_name", "Prénom"),
    "last_name": ("Last Name", "Surname"),
    "company": ("Company",),
    "title": ("Job Title",),
    "phone": ("Phone",),
    "company_domain": ("Website",),
    "": ("Notes", "Internal id"),
}
# Header spellings analytics.importing.ALIASES knows, by field.
ORDER_COLUMNS = {
    "order_id": ("order_id", "Order Number", "transaction_id"),
    "email": ("email", "Customer Email", "billing_email"),
    "ordered_at": ("ordered_at", "Order Date", "created_at"),
    "amount": ("amount", "Total", "revenue"),
    "currency": ("currency", "Currency Code"),
}


def _csv(headers: list[str], rows: list[list[str]], delimiter: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def _table(columns: dict[str, tuple[str, ...]], required: tuple[str, ...]):
    """(CSV bytes, {target: header}) with the required targets' columns and some others, in any order."""
    optional = [target for target in columns if target not in required]
    return st.builds(
        lambda chosen, order, delimiter, rows, spellings: (chosen, order, delimiter, rows, spellings),
        st.lists(st.sampled_from(optional), unique=True, max_size=len(optional)) if optional else st.just([]),
        st.randoms(use_true_random=False),
        DELIMITERS,
        st.lists(st.lists(CELL, min_size=len(columns), max_size=len(columns)), max_size=5),
        st.fixed_dictionaries({target: st.sampled_from(names) for target, names in columns.items()}),
    ).map(lambda drawn: _assemble(required, *drawn))


def _assemble(required, chosen, order, delimiter, rows, spellings):
    targets = [*required, *chosen]
    order.shuffle(targets)
    headers = [spellings[target] for target in targets]
    body = _csv(headers, [row[: len(headers)] for row in rows], delimiter)
    return body, {target: spellings[target] for target in targets}


def contact_csvs():
    """A contact import: an email column, maybe names, company, title, phone, website and unknown columns."""
    return _table(CONTACT_COLUMNS, ("email",))


def order_csvs():
    """An order import: order id, customer email, date, amount and currency columns."""
    return _table(ORDER_COLUMNS, tuple(ORDER_COLUMNS))


def _image(size: tuple[int, int], color: tuple[int, int, int], fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


def asset_files():
    """A file of a type the asset upload documents (``media.validation.ACCEPTED_MEDIA_TYPES``): a small
    PNG, JPEG, GIF or WebP image of any size and colour, or a plain-text file."""
    images = st.builds(
        _image,
        st.tuples(st.integers(1, 48), st.integers(1, 48)),
        st.tuples(*[st.integers(0, 255)] * 3),
        st.sampled_from(["PNG", "JPEG", "GIF", "WEBP"]),
    )
    texts = st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=200)
    return st.one_of(images, texts.map(lambda text: f"note {text}".encode())).map(lambda body: (body, {}))


UPLOADS = {
    # operation → (file strategy, the mapping the import's description asks for)
    "POST /api/v1/crm/imports/": (contact_csvs(), lambda columns: {h: t for t, h in columns.items()}),
    "POST /api/v1/analytics/orders/import/": (order_csvs(), lambda columns: dict(columns)),
    "POST /api/v1/media/assets/": (asset_files(), None),
}


def _with_upload(case, drawn):
    """A new body dict, never the drawn one changed in place: schemathesis may share a body dict between a
    positive case and a negative one it derives (then the negative case would carry this valid file)."""
    body, columns = drawn
    case.body = {**case.body, "file": body}
    if "mapping" in case.body and UPLOADS[case.operation.label][1] is not None:
        case.body["mapping"] = UPLOADS[case.operation.label][1](columns)
    return case


def _real_upload(files):
    def upload(case):
        meta = case.meta
        if meta is None or not meta.generation.mode.is_positive or not isinstance(case.body, dict):
            return st.just(case)
        return files.map(lambda drawn: _with_upload(case, drawn))

    return upload


@schemathesis.hook
def before_generate_case(context, strategy):
    label = context.operation.label if context.operation is not None else ""
    strategy = strategy.map(_violated)
    return strategy.flatmap(_real_upload(UPLOADS[label][0])) if label in UPLOADS else strategy
