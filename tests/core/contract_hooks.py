"""Schemathesis hooks for the contract test (loaded by the CLI through `hooks` in its schemathesis.toml).

A well-behaved client sends a fresh ``Idempotency-Key`` for every new request and repeats a key only to
retry the same request. Deterministic generation draws the same few keys again and again (``"0"`` for many
operations), so two different requests carry one key and the API answers the 422 it specifies for that
(``aicmo.api.idempotency``; tests/reliability/test_idempotent_starts.py holds it). Before each call, a schema-valid key is
replaced by a fresh UUID; a malformed one (a negative case: the API must answer 400) is left alone.
"""

from __future__ import annotations

import os
import re
import sys
import uuid

import schemathesis

# the hooks of each kind of value or rule live in modules next to this one
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import contract_hooks_rules  # noqa: E402, F401 - rules across two values
import contract_hooks_secrets  # noqa: E402, F401 - PEM, URL, token and time formats
import contract_hooks_text  # noqa: E402, F401 - templates, host names, uploads

HEADER = "Idempotency-Key"
# aicmo.api.idempotency.KEY_PATTERN, passed by the test (this module runs in the CLI's process, without Django)
KEY_PATTERN = os.environ["AICMO_IDEMPOTENCY_KEY_PATTERN"]


@schemathesis.hook
def before_call(context, case, kwargs):
    key = (case.headers or {}).get(HEADER)
    if isinstance(key, str) and re.fullmatch(KEY_PATTERN, key):
        case.headers[HEADER] = str(uuid.uuid4())


@schemathesis.hook
def filter_case(context, case):
    """Drop a "negative" case that has nothing invalid in it: schemathesis labels a body negative, records no
    mutation (a multipart body whose only required part is a file, which its negative mode leaves alone)
    and sends a valid request, which the API rightly accepts. Every case with a mutation is kept."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_negative:
        return True
    data = meta.phase.data
    mutations = getattr(data, "mutations", None)
    return not (mutations == () and getattr(data, "description", "") == "Positive test case")
