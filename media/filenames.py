"""Upload names: the name we serve is built from the detected type, the client's name is only metadata.

OWASP File Upload Cheat Sheet: the extension must come from validated content (a JPEG named
`shell.jpg.php` is served as `shell.jpg`), no double extensions, no path separators or control
characters, and a bounded length. The client's name survives only as escaped text (`escape_original`).
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_CHARS = 120
FALLBACK_STEM = "upload"

# Trailing "extensions" of the client's name: dropped, whatever they claim (`.php`, `.jpg`, `.tar`).
_TRAILING_EXT = re.compile(r"\.[A-Za-z0-9]{1,6}$")
# Characters Windows, shells or Content-Disposition treat specially.
_RESERVED = re.compile(r'[<>:"|?*;%\x7f]')
_SPACES = re.compile(r"[\s_]+")


def _visible(ch: str) -> bool:
    """False for control (Cc), format (Cf, e.g. U+202E RIGHT-TO-LEFT OVERRIDE), separators Zl/Zp and
    unassigned/surrogate code points (Cn, Cs)."""
    return unicodedata.category(ch) not in ("Cc", "Cf", "Cn", "Cs", "Co", "Zl", "Zp")


def safe_stem(original: str) -> str:
    """The client's name reduced to a harmless stem: last path component, NFC, no control or format
    characters, no extensions, dots and reserved characters replaced by `_`, at most `MAX_NAME_CHARS`.
    Never empty (falls back to `upload`)."""
    name = unicodedata.normalize("NFC", original or "")
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(ch if _visible(ch) else "" for ch in name)
    while True:
        stripped = _TRAILING_EXT.sub("", name.rstrip(" ."))
        if stripped == name:
            break
        name = stripped
    name = _RESERVED.sub("_", name).replace(".", "_")
    name = _SPACES.sub(lambda m: " " if m.group(0).isspace() else "_", name).strip(" _-")
    return name[:MAX_NAME_CHARS].rstrip(" _-") or FALLBACK_STEM


def safe_filename(original: str, extension: str) -> str:
    """Name to store and serve: `safe_stem(original)` plus the extension of the detected type
    (`extension` as in `Inspection.extension`, e.g. ".jpg"). `shell.jpg.php` → `shell.jpg`."""
    return safe_stem(original) + extension


def escape_original(original: str, limit: int = 255) -> str:
    """The client's name as inert text for metadata: control/format characters written as `\\uXXXX`
    (a NUL would be refused by PostgreSQL), cut to `limit` characters."""
    out = "".join(ch if _visible(ch) else f"\\u{ord(ch):04x}" for ch in (original or ""))
    return out[:limit]
