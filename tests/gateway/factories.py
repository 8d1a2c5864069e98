"""Gateway factories and small test adapters that speak HTTP through the real Adapter base class."""

from __future__ import annotations

import factory
import pytest

from gateway.adapters.base import Adapter
from gateway.capabilities import Capability, EnrichmentResult, PersonQuery, Verdict, VerificationResult
from gateway.crypto import encrypt_credentials
from gateway.models import HealthCheck, HealthMinute, ProviderAccount
from tests.factories import WorkspaceFactory


class VerifierAdapter(Adapter):
    """A Hunter-shaped verifier: GET /v2/email-verifier?email=&api_key= -> {"data": {"status": ...}}."""

    key = "test-verifier"
    label = "Test verifier"
    capabilities = frozenset({Capability.VERIFY_EMAIL, Capability.ENRICH_PERSON})
    credential_fields = ("api_key",)

    def verify_email(self, email: str) -> VerificationResult:
        response = self.request(
            "GET", "/v2/email-verifier", params={"email": email, "api_key": self.credential("api_key")}
        )
        status = self.json(response)["data"]["status"]
        verdict = {"valid": Verdict.VALID, "invalid": Verdict.INVALID}.get(status, Verdict.UNKNOWN)
        return VerificationResult(email=email, verdict=verdict, provider=self.key, raw_status=status)

    def enrich_person(self, query: PersonQuery) -> EnrichmentResult:
        response = self.request("POST", "/api/v1/people/match", json={"email": query.email})
        person = self.json(response).get("person")
        return EnrichmentResult(provider=self.key, matched=bool(person), fields=person or {}, query=query)

    def health_check(self) -> None:
        self.request("GET", "/v2/account", params={"api_key": self.credential("api_key")})


class DemoVerifierAdapter(Adapter):
    key = "test-demo"
    label = "Demo (test)"
    capabilities = frozenset({Capability.VERIFY_EMAIL, Capability.ENRICH_PERSON})
    is_demo = True

    def verify_email(self, email: str) -> VerificationResult:
        return VerificationResult(email=email, verdict=Verdict.VALID, provider=self.key, demo=True)

    def health_check(self) -> None:
        return None


TEST_ADAPTERS = {cls.key: cls for cls in (VerifierAdapter, DemoVerifierAdapter)}


def register_test_adapters() -> None:
    """For subprocesses (the fixture in conftest does the same with monkeypatch)."""
    from gateway.adapters import ADAPTERS

    ADAPTERS.update(TEST_ADAPTERS)


class ProviderAccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProviderAccount
        skip_postgeneration_save = True

    workspace = factory.SubFactory(WorkspaceFactory)
    capability = Capability.VERIFY_EMAIL
    adapter = VerifierAdapter.key
    name = factory.Sequence(lambda n: f"Account {n}")
    priority = factory.Sequence(lambda n: n)
    timeout_seconds = 2.0

    @factory.post_generation
    def credentials(obj, create, extracted, **kwargs):
        value = {"api_key": "secret-key-1234"} if extracted is None else extracted
        obj.credentials_encrypted = encrypt_credentials(value)
        obj.credentials_hint = "api_key ••••1234" if value else ""
        if create:
            obj.save(update_fields=["credentials_encrypted", "credentials_hint"])


class HealthMinuteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HealthMinute

    account = factory.SubFactory(ProviderAccountFactory)
    workspace = factory.SelfAttribute("account.workspace")


class HealthCheckFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HealthCheck

    account = factory.SubFactory(ProviderAccountFactory)
    workspace = factory.SelfAttribute("account.workspace")
    ok = True


@pytest.fixture(name="test_adapters")
def fixture_test_adapters(monkeypatch):
    """Registers the test adapters in the real registry for one test."""
    from gateway.adapters import ADAPTERS

    for key, cls in TEST_ADAPTERS.items():
        monkeypatch.setitem(ADAPTERS, key, cls)
    return TEST_ADAPTERS


@pytest.fixture(name="gateway_fast")
def fixture_gateway_fast(settings, redis_client, test_adapters):
    """Real Redis, test adapters, and short breaker / retry timings so scenarios finish in seconds."""
    settings.GATEWAY_BREAKER = {
        "window_seconds": 30,
        "min_calls": 4,
        "failure_rate": 0.5,
        "consecutive_failures": 3,
        "cooldown_seconds": 0.5,
        "half_open_probes": 1,
        "probe_ttl_seconds": 5,
    }
    settings.GATEWAY_RETRY = {
        "max_attempts": 6,
        "max_seconds": 5,
        "base_delay": 0.01,
        "max_delay": 0.05,
        "max_wait_seconds": 1,
    }
    return redis_client
