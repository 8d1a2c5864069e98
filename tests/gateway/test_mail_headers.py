"""Header writing of the SMTP adapter: plain ASCII values are folded at spaces and kept as written (long
URLs in List-Unsubscribe are not turned into RFC 2047 encoded-words); the rest goes through the policy."""

from __future__ import annotations

import email
import email.policy

from hypothesis import given
from hypothesis import strategies as st

from gateway.adapters.mail import SMTPAdapter
from gateway.capabilities import OutgoingEmail


def wire(**fields) -> bytes:
    adapter = SMTPAdapter(base_url="smtp+plain://127.0.0.1:2525", options={"from_email": "news@acme.example"})
    msg = OutgoingEmail(to="p@example.com", subject=fields.pop("subject", "Hi"), text="Hello", **fields)
    return adapter.message_bytes(adapter.build_message(msg), msg, international=False)


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
