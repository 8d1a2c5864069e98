"""Gateway benchmarks against a local Apollo-shaped provider (POST /api/v1/people/bulk_match).

    .venv/bin/python bench/gateway_bench.py [--latency 0.1] [--seconds 3] [--levels 1,4,8,16]

1. Throughput: N threads call ``gateway.services.enrich_people`` (one person per call) for a few seconds
   against a provider that answers after ``--latency`` seconds; ideal = N / latency; we print the ratio.
2. Rate limit: 16 threads against an account limited to 20 calls/s (burst 2); the provider counts
   requests per sliding second, which must never exceed rate + burst.
3. Overhead: sequential calls to a zero-latency provider through the whole chain (DB lookup, breaker,
   token bucket, health counters buffered in Redis) vs calling the same adapter directly; printed as a ratio.

Runs on a throw-away SQLite database and a private redis-server; nothing outside loopback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Provider:
    """A threaded HTTP server speaking Apollo's bulk_match shape after a fixed latency."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.stamps: list[float] = []
        self.lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else headers and body in two writes meet delayed ACK (+40 ms)

            def do_POST(self):  # noqa: N802 - http.server's hook name
                length = int(self.headers.get("Content-Length") or 0)
                details = json.loads(self.rfile.read(length) or b"{}").get("details", [])
                with provider.lock:
                    provider.stamps.append(time.monotonic())
                if provider.latency:
                    time.sleep(provider.latency)
                body = json.dumps(
                    {
                        "matches": [
                            {"id": f"p{i}", "email": d.get("email"), "title": "CTO"}
                            for i, d in enumerate(details)
                        ]
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def max_in_window(self, window: float = 1.0) -> int:
        stamps = sorted(self.stamps)
        best, j = 0, 0
        for i, start in enumerate(stamps):
            while j < len(stamps) and stamps[j] - start < window:
                j += 1
            best = max(best, j - i)
        return best

    def stop(self) -> None:
        self.server.shutdown()


def setup(tmp: Path):
    from aicmo.localredis import start_redis

    redis = start_redis(data_dir=tmp / "redis", persist=False)
    os.environ.setdefault("AICMO_ENV", "dev")
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["REDIS_URL"] = redis.url
    os.environ["DJANGO_SETTINGS_MODULE"] = "aicmo.settings"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django
    from django.core.management import call_command

    django.setup()
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    call_command("migrate", verbosity=0)
    return redis


def make_account(workspace, name: str, url: str, **extra):
    from urllib.parse import urlsplit

    from django.conf import settings

    from gateway.services import account_create

    # The stand-in vendor listens on loopback: allow exactly its host:port through the SSRF guard.
    parts = urlsplit(url)
    settings.GATEWAY_LOOPBACK_ALLOW = [*settings.GATEWAY_LOOPBACK_ALLOW, f"{parts.hostname}:{parts.port}"]

    return account_create(
        workspace=workspace,
        by=None,
        capability="enrich_person",
        adapter="apollo",
        name=name,
        base_url=url,
        credentials={"api_key": "bench-key"},
        timeout_seconds=5,
        **extra,
    )


def hammer(workspace, threads: int, seconds: float) -> tuple[int, int, float]:
    from django.db import connection

    from gateway.capabilities import PersonQuery
    from gateway.services import enrich_people

    done = [0] * threads
    failed = [0] * threads
    stop = time.monotonic() + seconds

    def worker(k: int) -> None:
        i = 0
        try:
            while time.monotonic() < stop:
                i += 1
                try:
                    [result] = enrich_people(
                        workspace=workspace, queries=[PersonQuery(email=f"t{k}-{i}@ex.com")]
                    )
                    done[k] += result.matched
                except Exception:
                    failed[k] += 1
        finally:
            connection.close()

    started = time.monotonic()
    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(done), sum(failed), time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--levels", default="1,4,8,16")
    parser.add_argument("--overhead-calls", type=int, default=300)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmpdir:
        redis = setup(Path(tmpdir))
        try:
            run(args)
        finally:
            redis.stop()


def run(args) -> None:
    from aicmo.models import Workspace
    from gateway.adapters import adapter_for
    from gateway.capabilities import PersonQuery
    from gateway.services import enrich_people

    print(f"## Gateway benchmark (provider latency {args.latency * 1000:.0f} ms)\n")
    print("| concurrency N | calls/s | ideal N/latency | ratio | failed |")
    print("|---|---|---|---|---|")
    for n in [int(x) for x in args.levels.split(",")]:
        ws = Workspace.objects.create(name=f"tp{n}", slug=f"tp{n}")
        provider = Provider(args.latency)
        make_account(ws, "Apollo", provider.url)
        ok, failed, elapsed = hammer(ws, n, args.seconds)
        provider.stop()
        rate = ok / elapsed
        ideal = n / args.latency
        print(f"| {n} | {rate:.1f} | {ideal:.0f} | {rate / ideal:.2f} | {failed} |")

    from gateway import ratelimit

    ws = Workspace.objects.create(name="rl", slug="rl")
    provider = Provider(args.latency)
    make_account(ws, "Apollo limited", provider.url, rate_limit_per_second=20, rate_limit_burst=2)
    grants = Provider.__new__(Provider)  # reuse max_in_window over the token grant times
    grants.stamps = []
    real_try_acquire = ratelimit.try_acquire

    def recording_try_acquire(account):
        wait = real_try_acquire(account)
        if wait == 0.0:
            grants.stamps.append(time.monotonic())
        return wait

    ratelimit.try_acquire = recording_try_acquire
    try:
        ok, failed, elapsed = hammer(ws, 16, args.seconds + 1)
    finally:
        ratelimit.try_acquire = real_try_acquire
    provider.stop()
    peak, peak_grants = provider.max_in_window(1.0), grants.max_in_window(1.0)
    print(
        f"\nRate limit 20/s burst 2, 16 threads: {ok / elapsed:.1f} calls/s; peak in any 1 s window: "
        f"{peak_grants} token grants, {peak} arrivals at the provider (bucket bound {20 + 2}); "
        f"{failed} calls gave up (ProvidersUnavailable after the wait bound)"
    )

    ws = Workspace.objects.create(name="oh", slug="oh")
    provider = Provider(0.0)
    make_account(ws, "Apollo fast", provider.url)
    queries = [PersonQuery(email=f"o{i}@ex.com") for i in range(args.overhead_calls)]
    adapter = adapter_for("apollo")(base_url=provider.url, credentials={"api_key": "bench-key"}, timeout=5)
    for q in queries[:20]:  # warm up both paths
        adapter.enrich_people([q])
        enrich_people(workspace=ws, queries=[q])
    t0 = time.perf_counter()
    for q in queries:
        adapter.enrich_people([q])
    direct = (time.perf_counter() - t0) / len(queries)
    adapter.close()
    t0 = time.perf_counter()
    for q in queries:
        fresh = adapter_for("apollo")(base_url=provider.url, credentials={"api_key": "bench-key"}, timeout=5)
        fresh.enrich_people([q])
        fresh.close()
    direct_fresh = (time.perf_counter() - t0) / len(queries)
    t0 = time.perf_counter()
    for q in queries:
        enrich_people(workspace=ws, queries=[q])
    chained = (time.perf_counter() - t0) / len(queries)
    provider.stop()
    print(f"\nOverhead ({len(queries)} sequential calls, zero-latency provider):")
    print(f"- direct adapter call, reused client: {direct * 1000:.2f} ms/call")
    print(f"- direct adapter call, new client per call: {direct_fresh * 1000:.2f} ms/call")
    print(
        f"- through the chain: {chained * 1000:.2f} ms/call "
        f"(ratio {chained / direct:.2f}× vs reused client, {chained / direct_fresh:.2f}× vs new client; "
        f"+{(chained - direct) * 1000:.2f} ms per call)"
    )


if __name__ == "__main__":
    main()
