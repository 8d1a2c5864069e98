"""Airtable as a CRM sink: contact upsert merged on the Email field."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import ClassVar
from urllib.parse import quote

import httpx

from gateway.adapters.base import Adapter, FieldSpec
from gateway.capabilities import Capability, CrmRecord, CrmSyncResult
from gateway.errors import ErrorKind, ProviderError, error_from_response


class AirtableAdapter(Adapter):
    """``PATCH /v0/{baseId}/{table}`` with ``performUpsert`` on ``Email``, 10 records per request.

    Airtable allows 5 requests/s per base and asks for a 30 s pause after a 429; the adapter paces its
    own chunks (``min_interval``) and reports 429 as THROTTLED with retry_after=30 unless told otherwise.
    """

    key = "airtable"
    label = "Airtable"
    capabilities = frozenset({Capability.SYNC_CRM})
    credential_fields = ("api_key",)
    option_fields = ("base_id", "table", "email_field", "min_interval")
    default_base_url = "https://api.airtable.com"
    docs_url = "https://airtable.com/developers/web/guides/personal-access-tokens"
    field_specs = {
        "api_key": FieldSpec(
            "Personal access token",
            "Airtable → Developer hub → Personal access tokens, with data.records:write on the base.",
            kind="secret",
            required=True,
        ),
        "base_id": FieldSpec("Base id", "Starts with app…, from the base's URL.", required=True),
        "table": FieldSpec("Table", "The table contacts go to. Blank: Contacts."),
        "email_field": FieldSpec("E-mail field", "The column matched on. Blank: Email."),
        "min_interval": FieldSpec(
            "Pause between requests (seconds)",
            "Airtable allows 5 requests/s per base. Blank: 0.2.",
            kind="number",
            minimum=0,
        ),
    }
    CHUNK: ClassVar[int] = 10
    THROTTLE_WAIT: ClassVar[float] = 30.0

    def default_headers(self) -> dict[str, str]:
        return {
            **super().default_headers(),
            "Authorization": f"Bearer {self.credential('api_key')}",
            "Content-Type": "application/json",
        }

    @property
    def table_path(self) -> str:
        base_id = self.options.get("base_id")
        table = self.options.get("table") or "Contacts"
        if not base_id:
            raise self.fail(ErrorKind.BAD_INPUT, "Airtable base_id is not configured")
        return f"/v0/{quote(str(base_id), safe='')}/{quote(str(table), safe='')}"

    @property
    def email_field(self) -> str:
        return str(self.options.get("email_field") or "Email")

    def error_for(self, response: httpx.Response) -> ProviderError:
        err = error_from_response(response, provider=self.key)
        error = self.error_body(response).get("error")
        etype = error.get("type", "") if isinstance(error, dict) else str(error or "")
        message = error.get("message", "") if isinstance(error, dict) else ""
        if response.status_code == 429:
            err.retry_after = err.retry_after if err.retry_after is not None else self.THROTTLE_WAIT
        elif etype == "INVALID_PERMISSIONS_OR_MODEL_NOT_FOUND" or response.status_code == 404:
            # The token cannot see this base/table: either the token or the configured base is wrong;
            # an operator has to fix it, retrying will not help.
            err.kind = ErrorKind.REAUTH if response.status_code in (401, 403) else ErrorKind.BAD_INPUT
        if etype or message:
            err.message = f"HTTP {response.status_code} from airtable: {etype} {message}".strip()
        return err

    def sync_crm(self, records: Sequence[CrmRecord]) -> CrmSyncResult:
        created = updated = 0
        ids: dict[str, str] = {}
        min_interval = float(self.options.get("min_interval", 0.2))
        last_call = 0.0
        for start in range(0, len(records), self.CHUNK):
            chunk = records[start : start + self.CHUNK]
            for rec in chunk:
                if "@" not in rec.email:
                    raise self.fail(ErrorKind.BAD_INPUT, f"CRM record without a valid email: {rec.email!r}")
            payload = {
                "performUpsert": {"fieldsToMergeOn": [self.email_field]},
                "typecast": True,
                "records": [{"fields": {**rec.fields, self.email_field: rec.email.lower()}} for rec in chunk],
            }
            wait = last_call + min_interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            last_call = time.monotonic()
            body = self.json(self.request("PATCH", self.table_path, json=payload))
            created_ids = set(body.get("createdRecords") or [])
            for row in body.get("records") or []:
                email = str((row.get("fields") or {}).get(self.email_field) or "").lower()
                if email:
                    ids[email] = str(row.get("id", ""))
                if row.get("id") in created_ids:
                    created += 1
                else:
                    updated += 1
        return CrmSyncResult(created=created, updated=updated, ids=ids, provider=self.key)

    def health_check(self) -> None:
        self.request("GET", "/v0/meta/whoami")
