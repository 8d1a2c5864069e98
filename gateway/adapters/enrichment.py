"""People enrichment and email verification vendors: Apollo, Hunter, Dropcontact."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx

from gateway.adapters.base import Adapter, FieldSpec
from gateway.capabilities import Capability, EnrichmentResult, PersonQuery, Verdict, VerificationResult
from gateway.errors import ErrorKind, ProviderError, error_from_response, parse_retry_after


def _first(*values: Any) -> Any:
    for value in values:
        if value not in (None, "", [], {}):
            return value
    return None


def _norm(value: Any) -> str:
    text = str(value or "").strip().lower()
    for prefix in ("https://", "http://", "www."):
        text = text.removeprefix(prefix)
    return text.rstrip("/")


def _clean(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v not in (None, "", [], {})}


class ApolloAdapter(Adapter):
    """Apollo.io people enrichment (``/api/v1/people/match`` and ``bulk_match``)."""

    key = "apollo"
    label = "Apollo"
    capabilities = frozenset({Capability.ENRICH_PERSON})
    credential_fields = ("api_key",)
    default_base_url = "https://api.apollo.io"
    docs_url = "https://docs.apollo.io/docs/create-api-key"
    field_specs = {
        "api_key": FieldSpec(
            "API key",
            "Apollo → Settings → Integrations → API: a master key (bulk match needs it).",
            kind="secret",
            required=True,
        ),
    }
    BULK_SIZE: ClassVar[int] = 10

    def default_headers(self) -> dict[str, str]:
        return {
            **super().default_headers(),
            "X-Api-Key": self.credential("api_key"),
            "Cache-Control": "no-cache",
            "Content-Type": "application/json",
        }

    @staticmethod
    def _details(query: PersonQuery) -> dict[str, Any]:
        return _clean(
            {
                "email": query.email,
                "first_name": query.first_name,
                "last_name": query.last_name,
                "domain": query.domain,
                "organization_name": query.company,
                "linkedin_url": query.linkedin_url,
            }
        )

    def _result(self, person: dict[str, Any] | None, query: PersonQuery, credits: int) -> EnrichmentResult:
        if not person:
            return EnrichmentResult(provider=self.key, matched=False, credits_used=0, query=query)
        org = person.get("organization") or {}
        phones = person.get("phone_numbers") or []
        fields = _clean(
            {
                "first_name": person.get("first_name"),
                "last_name": person.get("last_name"),
                "title": person.get("title"),
                "email": person.get("email"),
                "email_status": person.get("email_status"),
                "linkedin_url": person.get("linkedin_url"),
                "city": person.get("city"),
                "state": person.get("state"),
                "country": person.get("country"),
                "seniority": person.get("seniority"),
                "company": _first(org.get("name"), person.get("organization_name")),
                "domain": _first(org.get("primary_domain"), query.domain),
                "industry": org.get("industry"),
                "headcount": org.get("estimated_num_employees"),
                "phone": _first(*(p.get("sanitized_number") or p.get("raw_number") for p in phones)),
            }
        )
        return EnrichmentResult(
            provider=self.key,
            matched=True,
            fields=fields,
            credits_used=credits,
            raw_id=str(person.get("id") or ""),
            query=query,
        )

    def enrich_person(self, query: PersonQuery) -> EnrichmentResult:
        if query.is_empty():
            raise self.fail(ErrorKind.BAD_INPUT, "Apollo needs an email, a LinkedIn URL or name + domain")
        resp = self.request("POST", "/api/v1/people/match", json=self._details(query))
        data = self.json(resp)
        person = data.get("person") if isinstance(data, dict) else None
        return self._result(person, query, credits=1 if person else 0)

    def enrich_people(self, queries: Sequence[PersonQuery]) -> list[EnrichmentResult]:
        empty = [i for i, q in enumerate(queries) if q.is_empty()]
        if empty:
            raise self.fail(
                ErrorKind.BAD_INPUT, f"Queries {empty} carry no email, LinkedIn URL or name + domain"
            )
        out: list[EnrichmentResult] = []
        for start in range(0, len(queries), self.BULK_SIZE):
            chunk = list(queries[start : start + self.BULK_SIZE])
            resp = self.request(
                "POST", "/api/v1/people/bulk_match", json={"details": [self._details(q) for q in chunk]}
            )
            data = self.json(resp)
            matches = list(data.get("matches") or []) if isinstance(data, dict) else []
            if len(matches) != len(chunk):
                # Apollo keeps input order with null placeholders; anything else cannot be aligned safely.
                raise self.fail(
                    ErrorKind.TRANSIENT,
                    f"Apollo bulk_match returned {len(matches)} matches for {len(chunk)} details",
                    status=resp.status_code,
                )
            for query, person in zip(chunk, matches, strict=True):
                out.append(self._result(person, query, credits=1 if person else 0))
        return out

    def health_check(self) -> None:
        data = self.json(self.request("GET", "/api/v1/auth/health"))
        if isinstance(data, dict) and data.get("is_logged_in") is False:
            raise self.fail(ErrorKind.REAUTH, "Apollo rejected the API key (is_logged_in=false)")


HUNTER_VERDICTS = {
    "valid": Verdict.VALID,
    "webmail": Verdict.VALID,
    "invalid": Verdict.INVALID,
    "accept_all": Verdict.CATCH_ALL,
    "disposable": Verdict.RISKY,
    "unknown": Verdict.UNKNOWN,
}


class HunterAdapter(Adapter):
    """Hunter.io email verifier (``GET /v2/email-verifier``).

    The key travels in Hunter's ``X-API-KEY`` header (its API v2 accepts header, Bearer or ``api_key``
    query): a query-string key would land in the access logs of every proxy on the way.
    """

    key = "hunter"
    label = "Hunter"
    capabilities = frozenset({Capability.VERIFY_EMAIL})
    credential_fields = ("api_key",)
    default_base_url = "https://api.hunter.io"
    docs_url = "https://hunter.io/api-documentation/v2#email-verifier"
    field_specs = {
        "api_key": FieldSpec("API key", "Hunter → API: your secret API key.", kind="secret", required=True),
    }
    PENDING_RETRY_AFTER: ClassVar[float] = 5.0

    def default_headers(self) -> dict[str, str]:
        return {**super().default_headers(), "X-API-KEY": self.credential("api_key")}

    def error_for(self, response: httpx.Response) -> ProviderError:
        err = error_from_response(response, provider=self.key)
        errors = self.error_body(response).get("errors") or []
        ids = {str(e.get("id", "")) for e in errors if isinstance(e, dict)}
        details = "; ".join(str(e.get("details", "")) for e in errors if isinstance(e, dict))
        if response.status_code == 222:
            err.kind = ErrorKind.TRANSIENT
        if "too_many_requests" in ids or "usage_limit" in " ".join(ids):
            err.kind = ErrorKind.THROTTLED
            err.retry_after = err.retry_after or 60.0
        if details:
            err.message = f"HTTP {response.status_code} from hunter: {details}"
        return err

    def verify_email(self, email: str) -> VerificationResult:
        if "@" not in email:
            raise self.fail(ErrorKind.BAD_INPUT, f"Not an email address: {email!r}")
        resp = self.request("GET", "/v2/email-verifier", params={"email": email})
        if resp.status_code == 202:
            raise self.fail(
                ErrorKind.THROTTLED,
                "Hunter is still verifying this address; ask again shortly",
                retry_after=parse_retry_after(resp.headers.get("Retry-After")) or self.PENDING_RETRY_AFTER,
                status=202,
            )
        if resp.status_code == 222:
            raise self.error_for(resp)
        data = (self.json(resp) or {}).get("data") or {}
        status = str(data.get("status") or "unknown")
        verdict = HUNTER_VERDICTS.get(status, Verdict.UNKNOWN)
        score = data.get("score")
        return VerificationResult(
            email=str(data.get("email") or email),
            verdict=verdict,
            provider=self.key,
            score=int(score) if isinstance(score, int | float) else None,
            raw_status=status,
        )

    def health_check(self) -> None:
        data = self.json(self.request("GET", "/v2/account"))
        if not isinstance(data, dict) or "data" not in data:
            raise self.fail(ErrorKind.TRANSIENT, "Hunter /v2/account answered without data")


DROPCONTACT_VERDICTS = {
    "nominative@pro": Verdict.VALID,
    "nominative@perso": Verdict.VALID,
    "catch_all@pro": Verdict.CATCH_ALL,
    "catch-all@pro": Verdict.CATCH_ALL,
    "catch_all@perso": Verdict.CATCH_ALL,
    "generic@pro": Verdict.RISKY,
    "generic@perso": Verdict.RISKY,
    "random": Verdict.RISKY,
    "disposable": Verdict.RISKY,
    "invalid": Verdict.INVALID,
}


class DropcontactAdapter(Adapter):
    """Dropcontact batch enrichment + verification: submit, then poll by request id.

    "Not ready yet" is a 200 with ``success: false``; we poll with a bounded total wait and, if the
    batch is still not ready, raise THROTTLED so the chain/task retries later instead of blocking.
    """

    key = "dropcontact"
    label = "Dropcontact"
    capabilities = frozenset({Capability.ENRICH_PERSON, Capability.VERIFY_EMAIL})
    credential_fields = ("api_key",)
    option_fields = ("poll_interval", "max_wait", "language")
    default_base_url = "https://api.dropcontact.com"
    docs_url = "https://developer.dropcontact.com/"
    field_specs = {
        "api_key": FieldSpec(
            "API key", "Dropcontact → API: your access token.", kind="secret", required=True
        ),
        "poll_interval": FieldSpec(
            "Poll interval (seconds)",
            "How often to ask whether a batch is ready. Blank: 5.",
            kind="number",
            minimum=0.1,
        ),
        "max_wait": FieldSpec(
            "Longest wait (seconds)",
            "Give up on a batch after this long and retry later. Blank: 180.",
            kind="number",
            minimum=1,
        ),
        "language": FieldSpec("Language", "Language of returned job titles, e.g. en or fr. Blank: en."),
    }
    BATCH_SIZE: ClassVar[int] = 250

    def default_headers(self) -> dict[str, str]:
        return {
            **super().default_headers(),
            "X-Access-Token": self.credential("api_key"),
            "Content-Type": "application/json",
        }

    @property
    def poll_interval(self) -> float:
        return float(self.options.get("poll_interval", 5.0))

    @property
    def max_wait(self) -> float:
        return float(self.options.get("max_wait", 180.0))

    def error_for(self, response: httpx.Response) -> ProviderError:
        err = error_from_response(response, provider=self.key)
        body = self.error_body(response)
        reason = body.get("reason") or body.get("detail")
        if reason:
            err.message = f"HTTP {response.status_code} from dropcontact: {reason}"
            if "credit" in str(reason).lower() and response.status_code in (402, 403):
                # Out of credits: no point retrying soon, but another provider can take the work.
                err.kind, err.retry_after = ErrorKind.THROTTLED, 3600.0
        return err

    @staticmethod
    def _record(query: PersonQuery) -> dict[str, Any]:
        return _clean(
            {
                "email": query.email,
                "first_name": query.first_name,
                "last_name": query.last_name,
                "website": query.domain,
                "company": query.company,
                "linkedin": query.linkedin_url,
            }
        )

    def _submit(self, records: list[dict[str, Any]]) -> str:
        payload = {"data": records, "siren": False, "language": self.options.get("language", "en")}
        resp = self.request("POST", "/v1/enrich/all", json=payload)
        body = self.json(resp)
        if not isinstance(body, dict) or not body.get("success") or not body.get("request_id"):
            reason = body.get("reason") if isinstance(body, dict) else body
            kind = ErrorKind.THROTTLED if "credit" in str(reason).lower() else ErrorKind.BAD_INPUT
            raise self.fail(kind, f"Dropcontact refused the batch: {reason}", status=resp.status_code)
        return str(body["request_id"])

    def _poll(self, request_id: str) -> list[dict[str, Any]]:
        deadline = time.monotonic() + self.max_wait
        while True:
            resp = self.request("GET", f"/v1/enrich/all/{request_id}")
            body = self.json(resp)
            if isinstance(body, dict) and body.get("success") and isinstance(body.get("data"), list):
                return body["data"]
            reason = str(body.get("reason", "")) if isinstance(body, dict) else ""
            if isinstance(body, dict) and body.get("error") and "not ready" not in reason.lower():
                raise self.fail(ErrorKind.TRANSIENT, f"Dropcontact batch {request_id} failed: {reason}")
            if time.monotonic() + self.poll_interval > deadline:
                raise self.fail(
                    ErrorKind.THROTTLED,
                    f"Dropcontact batch {request_id} not ready after {self.max_wait:g}s: {reason}",
                    retry_after=30.0,
                )
            time.sleep(self.poll_interval)

    def _run(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        data = self._poll(self._submit(records))
        if len(data) != len(records):
            raise self.fail(
                ErrorKind.TRANSIENT, f"Dropcontact returned {len(data)} records for {len(records)}"
            )
        return data

    @staticmethod
    def _best_email(row: dict[str, Any]) -> tuple[str, str]:
        emails = row.get("email")
        if isinstance(emails, str):
            return emails, str(row.get("qualification") or "")
        for entry in emails or []:
            if isinstance(entry, dict) and entry.get("email"):
                return str(entry["email"]), str(entry.get("qualification") or "")
        return "", ""

    def _enrichment(self, row: dict[str, Any], query: PersonQuery) -> EnrichmentResult:
        email, qualification = self._best_email(row)
        fields = _clean(
            {
                "first_name": row.get("first_name"),
                "last_name": row.get("last_name"),
                "email": email,
                "email_status": qualification,
                "title": row.get("job"),
                "company": row.get("company"),
                "domain": row.get("website"),
                "linkedin_url": row.get("linkedin"),
                "phone": _first(row.get("mobile_phone"), row.get("phone")),
                "country": row.get("country"),
                "headcount": row.get("nb_employees"),
                "industry": row.get("naf5_des"),
            }
        )
        echo = {
            "first_name": query.first_name,
            "last_name": query.last_name,
            "email": query.email,
            "domain": query.domain,
            "company": query.company,
            "linkedin_url": query.linkedin_url,
        }
        new_info = {
            k
            for k, v in fields.items()
            if k not in ("first_name", "last_name", "email_status") and _norm(v) != _norm(echo.get(k, ""))
        }
        matched = bool(email) or bool(new_info)
        return EnrichmentResult(
            provider=self.key,
            matched=matched,
            fields=fields if matched else {},
            credits_used=1 if email and qualification not in ("", "invalid") else 0,
            query=query,
        )

    def enrich_person(self, query: PersonQuery) -> EnrichmentResult:
        return self.enrich_people([query])[0]

    def enrich_people(self, queries: Sequence[PersonQuery]) -> list[EnrichmentResult]:
        for q in queries:
            if q.is_empty() and not (q.first_name and q.last_name and q.company):
                raise self.fail(
                    ErrorKind.BAD_INPUT, f"Dropcontact needs an email, LinkedIn URL or name + company: {q}"
                )
        out: list[EnrichmentResult] = []
        for start in range(0, len(queries), self.BATCH_SIZE):
            chunk = list(queries[start : start + self.BATCH_SIZE])
            rows = self._run([self._record(q) for q in chunk])
            out.extend(self._enrichment(row, q) for row, q in zip(rows, chunk, strict=True))
        return out

    def verify_email(self, email: str) -> VerificationResult:
        if "@" not in email:
            raise self.fail(ErrorKind.BAD_INPUT, f"Not an email address: {email!r}")
        row = self._run([{"email": email}])[0]
        found, qualification = self._best_email(row)
        if found and found.lower() != email.lower():
            # Dropcontact replaced the address with a corrected one: say nothing about the one we sent.
            return VerificationResult(
                email=email, verdict=Verdict.UNKNOWN, provider=self.key, raw_status=f"corrected:{found}"
            )
        verdict = DROPCONTACT_VERDICTS.get(qualification.replace(" ", ""), Verdict.UNKNOWN)
        return VerificationResult(email=email, verdict=verdict, provider=self.key, raw_status=qualification)

    def health_check(self) -> None:
        resp = self.request("GET", "/v1/account/credits")
        body = self.json(resp)
        if isinstance(body, dict) and body.get("success") is False:
            raise self.fail(ErrorKind.REAUTH, f"Dropcontact: {body.get('reason') or body.get('detail')}")
