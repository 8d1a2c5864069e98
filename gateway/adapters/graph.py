"""Shared plumbing for Meta's Graph API (Instagram publishing, Marketing API)."""

from __future__ import annotations

from typing import Any

import httpx

from gateway.adapters.base import Adapter, FieldSpec
from gateway.errors import ErrorKind, ProviderError, error_from_response


def as_int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


# Graph API error codes (https://developers.facebook.com/docs/graph-api/guides/error-handling)
GRAPH_THROTTLE_CODES = frozenset(
    {4, 17, 32, 613, 80000, 80001, 80002, 80003, 80004, 80005, 80006, 80008, 80014}
)
GRAPH_REAUTH_CODES = frozenset({102, 190, 458, 459, 460, 463, 464, 467, 10}) | frozenset(range(200, 300))
GRAPH_TRANSIENT_CODES = frozenset({1, 2})


def graph_error(adapter: Adapter, response: httpx.Response) -> ProviderError:
    """Classify a Graph API error body; Graph uses HTTP 400 for most failures, so the code decides."""
    err = error_from_response(response, provider=adapter.key)
    error = adapter.error_body(response).get("error") or {}
    if not isinstance(error, dict):
        return err
    code = as_int(error.get("code"))
    if code in GRAPH_THROTTLE_CODES:
        err.kind = ErrorKind.THROTTLED
        err.retry_after = err.retry_after if err.retry_after is not None else 60.0
    elif code in GRAPH_REAUTH_CODES:
        err.kind = ErrorKind.REAUTH
    elif code in GRAPH_TRANSIENT_CODES or error.get("is_transient"):
        err.kind = ErrorKind.TRANSIENT
    elif code == 100 or 400 <= response.status_code < 500:
        err.kind = ErrorKind.BAD_INPUT if response.status_code not in (401, 429) else err.kind
    message = error.get("error_user_msg") or error.get("message")
    if message:
        err.message = f"HTTP {response.status_code} from {adapter.key}: {message} (code {code})"
    return err


class GraphAdapter(Adapter):
    """Graph API adapters: versioned paths, access token as a parameter, errors classified by code."""

    credential_fields = ("access_token",)
    default_base_url = "https://graph.facebook.com"
    field_specs = {
        "access_token": FieldSpec(
            "Access token",
            "A long-lived system-user token from Meta Business Settings.",
            kind="secret",
            required=True,
        ),
        "api_version": FieldSpec("Graph API version", "e.g. v21.0. Blank: v21.0."),
    }

    @property
    def version(self) -> str:
        return str(self.options.get("api_version") or "v21.0")

    def error_for(self, response: httpx.Response) -> ProviderError:
        return graph_error(self, response)

    def _call(self, method: str, path: str, **params: Any) -> dict[str, Any]:
        params["access_token"] = self.credential("access_token")
        kwargs = {"params": params} if method == "GET" else {"data": params}
        body = self.json(self.request(method, f"/{self.version}/{path}", **kwargs))
        if not isinstance(body, dict):
            raise self.fail(ErrorKind.TRANSIENT, f"Unexpected Graph answer: {body!r}"[:300])
        return body
