"""normalize_email: one stored form per mailbox (NFC, lowercased, Unicode IDNA domain), invisible characters
stripped at the ends and refused inside; the ASCII fast path never disagrees with the full validator."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm.normalize import (
    InvalidEmail,
    _normalize_email_full,
    domain_clean,
    email_lookup_key,
    normalize_email,
    strip_invisible,
)

INVISIBLE = ["\u00a0", "\u200b", "\ufeff", "\u00ad", "\u2060", "\t", " ", "\r\n", "\u3000", "\u2028"]


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("a@ex.com", "a@ex.com"),
        ("First.Last+Tag@Sub.Example.co.uk", "first.last+tag@sub.example.co.uk"),
        ("O'Brien@ex.com", "o'brien@ex.com"),
        ("a@ex.c", "a@ex.c"),
        ("zoë@ex.com", "zoë@ex.com"),
        ("ZOË@EX.COM", "zoë@ex.com"),
        ("a@bücher.de", "a@bücher.de"),
        ("a@xn--bcher-kva.de", "a@bücher.de"),
        ("a@B\u00dcCHER.de", "a@bücher.de"),
        ("用户@例子.广告", "用户@例子.广告"),
        ("a@ex.com\n", "a@ex.com"),
        # Case folding is str.lower: ß and ss stay different mailboxes, the capital sharp s becomes ß, the
        # dotted capital I becomes i + COMBINING DOT ABOVE (Unicode SpecialCasing), never a plain i.
        ("straße@ex.de", "straße@ex.de"),
        ("STRAẞE@ex.de", "straße@ex.de"),
        ("strasse@ex.de", "strasse@ex.de"),
        ("İpek@ex.com.tr", "i\u0307pek@ex.com.tr"),
    ],
)
def test_stored_form(value, stored):
    assert normalize_email(value) == stored


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "not-an-email",
        "a..b@ex.com",
        ".a@ex.com",
        "a@ex",
        "a@-ex.com",
        "a@ex-.com",
        "a@localhost",
        "a@[127.0.0.1]",
        "a@b@ex.com",
        "a b@ex.com",
        "a@ex..com",
        "a@ex.test",
        "a@mail.local",
        "x" * 65 + "@example.com",
        "x" * 60 + "@" + ".".join(["y" * 60] * 4) + ".com",
        None,
        42,
    ],
)
def test_refused(value):
    with pytest.raises(InvalidEmail):
        normalize_email(value)
    assert email_lookup_key(value) == ""


def test_nfc_nfd_and_punycode_domain_are_one_value():
    nfc = "info@b\u00e4ckerei.example"
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    forms = {
        normalize_email(v) for v in (nfc, nfd, "info@xn--bckerei-5wa.example", "INFO@B\u00c4CKEREI.example")
    }
    assert forms == {"info@bäckerei.example"}
    local_nfd = unicodedata.normalize("NFD", "jürgen@example.de")
    assert normalize_email(local_nfd) == "jürgen@example.de"


@pytest.mark.parametrize("char", INVISIBLE)
def test_invisible_characters_stripped_at_the_ends_refused_inside(char):
    assert normalize_email(f"{char}kai@example.com{char}") == "kai@example.com"
    with pytest.raises(InvalidEmail, match="invisible"):
        normalize_email(f"ka{char}i@example.com")
    with pytest.raises(InvalidEmail, match="invisible"):
        normalize_email(f"kai@exam{char}ple.com")


@given(st.text(alphabet=st.characters(categories=["Zs", "Zl", "Zp", "Cc", "Cf"]), max_size=6), st.booleans())
def test_any_invisible_run_at_either_end_is_stripped(padding, leading):
    value = padding + "mia@example.org" if leading else "mia@example.org" + padding
    assert strip_invisible(value) == "mia@example.org"
    assert normalize_email(value) == "mia@example.org"


_ATEXT = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~."
_addresses = st.builds(
    lambda local, labels, tld, pad: pad + f"{local}@{'.'.join(labels)}.{tld}" + pad,
    st.text(alphabet=_ATEXT, min_size=1, max_size=70),
    st.lists(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-", min_size=1, max_size=64),
        min_size=1,
        max_size=3,
    ),
    st.sampled_from(["com", "de", "test", "local", "c", "example", "x1", "COM", "onion", "xn--p1ai"]),
    st.sampled_from(["", " ", "\t", "\n"]),
)


@settings(max_examples=400)
@given(st.one_of(_addresses, st.text(max_size=80)))
def test_ascii_fast_path_agrees_with_the_full_validator(value):
    """The bulk path (regex for plain ASCII) returns exactly what email-validator decides, or both refuse."""
    try:
        full = _normalize_email_full(value)
    except InvalidEmail:
        full = None
    try:
        fast = normalize_email(value)
    except InvalidEmail:
        fast = None
    assert fast == full


@given(st.text(max_size=300))
def test_normalized_value_is_a_fixed_point_and_fits_the_column(value):
    try:
        email = normalize_email(value)
    except InvalidEmail:
        return
    assert normalize_email(email) == email
    assert email == unicodedata.normalize("NFC", email) == email.lower()
    assert len(email) <= 254


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("https://www.Acme.com/about", "acme.com"),
        ("acme.com:8080", "acme.com"),
        ("xn--bckerei-5wa.example", "bäckerei.example"),
        ("\u00a0acme.io\u200b", "acme.io"),
    ],
)
def test_domain_clean(value, stored):
    assert domain_clean(value) == stored


@pytest.mark.parametrize("value", ["acme inc", "a" * 254 + ".com", "x" * 64 + ".com", "-acme.com", "a_b.com"])
def test_domain_clean_refuses(value):
    with pytest.raises(ValueError, match=r"domain"):
        domain_clean(value)


@pytest.mark.parametrize("value", ["STRAẞE@ex.de", "İpek@ex.com.tr", "ΟΔΟΣ@ex.gr", "ǅemal@ex.ba"])
def test_case_folded_addresses_are_stored_under_the_lowercase_constraint(workspace, value):
    from crm import services

    contact = services.contact_create(workspace=workspace, data={"email": value})
    contact.refresh_from_db()
    assert contact.email == normalize_email(value) == normalize_email(contact.email)


def test_company_domain_is_one_value_at_every_door(api_client_for):
    from crm import services

    client = api_client_for("marketer")
    resp = client.post(
        "/api/v1/crm/companies/", {"name": "Bäckerei", "domain": "https://www.xn--bckerei-5wa.example/"}
    )
    assert resp.status_code == 201 and resp.json()["domain"] == "bäckerei.example"
    company = services.company_get_or_create(
        workspace=client.workspace, domain="BA\u0308CKEREI.example", name="B"
    )
    assert company.pk == resp.json()["id"]
    assert domain_clean("bäckerei.example:443") == "bäckerei.example"
