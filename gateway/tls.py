"""TLS trust for provider accounts: a private CA is uploaded as PEM text and stored with the account.

Server file paths (``ca_file`` and the like) are operator configuration, never a workspace admin's input:
an account names no file on the server, it carries the certificates themselves.
"""

from __future__ import annotations

import re
import ssl

from cryptography import x509
from django.core.exceptions import ValidationError

CA_PEM_MAX_CHARS = 64 * 1024  # a chain of a few certificates is 2-10 KB; a CA bundle is not a private CA
CA_PEM_MAX_CERTIFICATES = 10
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----", re.DOTALL)


def validate_ca_pem(text: str) -> str:
    """The PEM text of 1..10 X.509 certificates, normalized (blocks joined by newlines); '' stays ''.

    Raises ValidationError (field ``ca_pem``) for anything else: text over 64 KB, no certificate, a
    block that is not a CERTIFICATE (private keys are refused outright), a certificate that does not
    parse (``cryptography.x509.load_pem_x509_certificates``), or text outside the PEM blocks.
    """
    if text is None or not str(text).strip():
        return ""
    text = str(text).strip()
    if len(text) > CA_PEM_MAX_CHARS:
        raise ValidationError({"ca_pem": f"CA certificates are limited to {CA_PEM_MAX_CHARS // 1024} KB."})
    blocks = list(_PEM_BLOCK.finditer(text))
    if not blocks:
        raise ValidationError(
            {"ca_pem": "Paste the CA certificate as PEM text (-----BEGIN CERTIFICATE----- ...), not a path."}
        )
    leftover = _PEM_BLOCK.sub("", text).strip()
    if leftover:
        raise ValidationError({"ca_pem": "Only PEM certificate blocks are accepted (found other text)."})
    kinds = {b.group(1) for b in blocks}
    if kinds != {"CERTIFICATE"}:
        raise ValidationError(
            {"ca_pem": f"Only certificates are accepted, not {', '.join(sorted(kinds - {'CERTIFICATE'}))}."}
        )
    if len(blocks) > CA_PEM_MAX_CERTIFICATES:
        raise ValidationError({"ca_pem": f"At most {CA_PEM_MAX_CERTIFICATES} certificates."})
    normalized = "\n".join(b.group(0).replace("\r\n", "\n") for b in blocks) + "\n"
    try:
        x509.load_pem_x509_certificates(normalized.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValidationError({"ca_pem": f"Not a valid X.509 certificate: {exc}"}) from exc
    return normalized


def tls_context(*, ca_pem: str = "", verify: bool = True) -> ssl.SSLContext:
    """A client context: the system trust store plus ``ca_pem`` (``create_default_context(cadata=...)``).

    ``verify=False`` turns off certificate and host name checks (for demo servers only).
    """
    context = ssl.create_default_context(cadata=ca_pem or None)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context
