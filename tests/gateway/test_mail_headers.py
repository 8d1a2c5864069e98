"""Header writing of the SMTP adapter: plain ASCII values are folded at spaces and kept as written (long
URLs in List-Unsubscribe are not turned into RFC 2047 encoded-words); the rest goes through the policy."""

from __future__ import annotations

import email
import email.policy
import email.utils
from email.header import decode_header, make_header
from email.utils import specialsre

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.adapters.mail import SMTPAdapter
from gateway.capabilities import OutgoingEmail
from gateway.errors import ErrorKind, ProviderError


def wire(**fields) -> bytes:
    adapter = SMTPAdapter(base_url="smtp+plain://127.0.0.1:2525", options={"from_email": "news@acme.example"})
    fields.setdefault("text", "Hello")
    msg = OutgoingEmail(to=fields.pop("to", "p@example.com"), subject=fields.pop("subject", "Hi"), **fields)
    return adapter.build_message(msg).data


def head(data: bytes) -> str:
    return data.split(b"\r\n\r\n", 1)[0].decode("ascii")


def test_long_list_unsubscribe_urls_go_out_as_written():
    https = "https://mail.acme.example/publishing/u/" + "a" * 40 + ":" + "S" * 27 + "/"
    mailto = "mailto:news@acme.example?subject=unsubscribe%20" + "a" * 40 + "%3A" + "S" * 27
    data = wire(headers={"List-Unsubscribe": f"<{https}>, <{mailto}>"})
    assert "=?" not in head(data)
    assert f"List-Unsubscribe: <{https}>,\r\n <{mailto}>\r\n" in head(data)
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed["List-Unsubscribe"] == f"<{https}>, <{mailto}>"


def test_non_ascii_subject_is_still_encoded_and_round_trips():
    subject = "Grüße aus München — " + " ".join(["lang"] * 20)
    data = wire(subject=subject)
    assert "=?utf-8?" in head(data)
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed["Subject"] == subject


@given(
    st.text(
        alphabet=st.characters(min_codepoint=32, max_codepoint=126),
        min_size=1,
        max_size=600,
    ).filter(lambda v: v.strip() == v and "  " not in v)
)
def test_any_printable_ascii_subject_round_trips_within_line_limits(subject):
    data = wire(subject=subject)
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed["Subject"] == subject


_BODY_TEXT = st.lists(
    st.sampled_from(list("ab =.\t\r\n-_é€😀<>\"'") + ["=_", "--", "\r\n", " \n", "\n.\n", "From "]),
    max_size=300,
).map("".join) | st.builds(
    lambda word, n: (word + " ") * n, st.sampled_from(["x", "lang", "é"]), st.integers(0, 90)
)


def _content(part) -> str:
    return part.get_content().replace("\r\n", "\n")


def _normalized(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text if text.endswith("\n") else text + "\n"


@given(text=_BODY_TEXT, html=_BODY_TEXT)
def test_any_text_and_html_bodies_round_trip_through_the_mime_writer(text, html):
    data = wire(text=text, html=html or "<p>x</p>")
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF only
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert not parsed.defects
    if text:
        assert parsed.get_content_type() == "multipart/alternative"
        plain, rich = parsed.get_payload()
        assert plain.get_content_type() == "text/plain" and _content(plain) == _normalized(text)
        assert rich.get_content_type() == "text/html"
        assert _content(rich) == _normalized(html or "<p>x</p>")
    else:
        assert parsed.get_content_type() == "text/html"
        assert _content(parsed) == _normalized(html or "<p>x</p>")


# (display name, address as stored, address expected in the header and the envelope, needs SMTPUTF8)
ADDRESS_SPELLINGS = [
    ("", "news@acme.example", "news@acme.example", False),
    ("Acme News", "news@acme.example", "news@acme.example", False),
    ("Acme, Inc.", "news@acme.example", "news@acme.example", False),
    ('Say "hi" \\ bye', "news@acme.example", "news@acme.example", False),
    ("Team <Ops> (EU)", "news@acme.example", "news@acme.example", False),
    ("", "news@bücher.example", "news@xn--bcher-kva.example", False),
    ("Bücher & Söhne", "news@bücher.example", "news@xn--bcher-kva.example", False),
    (("Ünïcödé Nämé " * 8).strip(), "news@acme.example", "news@acme.example", False),
    ('Grüße, "Verlag" 😀', "news@münchen.example", "news@xn--mnchen-3ya.example", False),
    ("Jürgen", "jürgen@bücher.example", "jürgen@bücher.example", True),
]


@pytest.mark.parametrize(("name", "address", "wire_address", "international"), ADDRESS_SPELLINGS)
def test_sender_spellings_reach_the_header_and_envelope_intact(name, address, wire_address, international):
    adapter = SMTPAdapter(base_url="smtp+plain://127.0.0.1:2525", options={})
    msg = OutgoingEmail(to=address, subject="Hi", text="Hello", from_email=address, from_name=name)
    built = adapter.build_message(msg)
    assert (built.envelope_from, built.recipient, built.international) == (
        wire_address,
        wire_address,
        international,
    )
    head = built.data.split(b"\r\n\r\n", 1)[0]
    assert head.isascii() != international  # raw UTF-8 only in an SMTPUTF8 message
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    parsed = email.message_from_string(built.data.decode(), policy=email.policy.default)
    assert parsed["From"].addresses[0].addr_spec == wire_address
    assert parsed["To"].addresses[0].addr_spec == wire_address
    # The display name as an RFC 2047 reader decodes it (whitespace between adjacent encoded-words is
    # dropped, RFC 2047 §6.2; the standard library's newer parser keeps it inside a phrase).
    if international:  # raw UTF-8 address: only the newer parser reads it
        assert parsed["From"].addresses[0].display_name == name
        return
    raw_from = email.message_from_bytes(built.data, policy=email.policy.compat32)["From"]
    decoded = str(make_header(decode_header(raw_from)))
    assert decoded == (f"{name} <{wire_address}>" if name else wire_address) or (
        specialsre.search(name) and email.utils.parseaddr(decoded) == (name, wire_address)
    )
    assert built.message_id.isascii() and built.message_id.endswith(
        "@" + wire_address.rpartition("@")[2].encode("idna").decode() + ">"
    )


def test_an_invalid_idn_domain_is_bad_input_not_a_crash():
    adapter = SMTPAdapter(base_url="smtp+plain://127.0.0.1:2525", options={})
    with pytest.raises(ProviderError) as caught:
        adapter.build_message(OutgoingEmail(to="a@xn--a.example", subject="s", text="t", from_email="b@ü‐.x"))
    assert caught.value.kind == ErrorKind.BAD_INPUT
