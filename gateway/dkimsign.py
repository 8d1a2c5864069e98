"""DKIM signing (RFC 6376) of a finished message, with dkimpy.

The SMTP adapter serializes the message once, signs those exact bytes and puts them on the wire, so what
was signed is what is sent. Canonicalization relaxed/relaxed (RFC 6376 §3.4.2, §3.4.4: survives header
refolding and trailing whitespace changes by relays), rsa-sha256.
"""

from __future__ import annotations

from gateway.capabilities import DkimKey

# Signed when present (a header that is absent is left out of ``h=`` rather than signed as empty).
SIGNED_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
)


class DkimSigningError(ValueError):
    """The key could not sign (unreadable PEM, domain/selector not ASCII)."""


def dkim_sign(data: bytes, key: DkimKey) -> bytes:
    """``data`` (a whole message, CRLF line endings) with a ``DKIM-Signature`` header prepended.

    Raises DkimSigningError when dkimpy refuses the key or the message."""
    import dkim  # imported on first use: dkimpy (and dnspython) stay out of processes that never sign

    present = {
        line.split(b":", 1)[0].strip().lower()
        for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        if line[:1] not in (b" ", b"\t") and b":" in line
    }
    headers = [name.encode() for name in SIGNED_HEADERS if name.lower().encode() in present]
    try:
        signature = dkim.sign(
            data,
            key.selector.encode("ascii"),
            key.domain.encode("ascii"),
            key.private_key_pem.encode("ascii"),
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=headers,
            linesep=b"\r\n",
        )
    except (dkim.DKIMException, UnicodeEncodeError) as exc:
        raise DkimSigningError(f"DKIM signing failed for {key.domain} ({key.selector}): {exc}") from exc
    return signature + data
