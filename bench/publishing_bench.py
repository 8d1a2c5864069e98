"""Publishing benchmark: open pixel and click redirect under load, against a bare Django view on the same
server, then every event accounted for after the buffer is drained.

    .venv/bin/python bench/publishing_bench.py [--requests 3000] [--concurrency 32] [--workers 2]
    .venv/bin/python bench/publishing_bench.py send [--recipients 10000] [--profile]
    .venv/bin/python tests/pgrun.py -- sh -c 'BENCH_DATABASE_URL=$DATABASE_URL .venv/bin/python bench/publishing_bench.py send'

gunicorn (sync workers, loopback) serves the project's URLs plus two bare views added by this module
(``/bare/gif/`` answers the same 1×1 GIF, ``/bare/redirect/`` the same 302), so both sides pay the same
WSGI, middleware and HTTP cost. The load generator is an asyncio httpx client in this process (keep-alive
off: one connection per request, as mail clients fetch). Opens and clicks are written to the Redis Stream
buffer by the endpoints; afterwards this process drains it (``tracking_events_drain``) and checks that the
number of ``open``/``click`` events equals the number of 200/302 answers.

``send``: a campaign (default 10,000 recipients) sent by the sending service in this process (one thread,
``campaign_send_batch`` until done) to ``tests/publishing/sink_process.py`` in another process, against a raw
``smtplib`` loop over one connection to the same sink; prints messages/s, the ratio and peak RSS.

Runs on a throw-away SQLite database (WAL; or ``BENCH_DATABASE_URL``) and a private redis-server; nothing
outside loopback. This file
is also the WSGI module gunicorn imports (``publishing_bench:application``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _env(tmp: Path, redis_url: str) -> dict[str, str]:
    return {
        "AICMO_ENV": "dev",
        "DEBUG": "false",
        # BENCH_DATABASE_URL: another (empty, throw-away) database, e.g. PostgreSQL from tests/pgrun.py.
        "DATABASE_URL": os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{tmp / 'bench.sqlite3'}",
        "REDIS_URL": redis_url,
        "DJANGO_SETTINGS_MODULE": "aicmo.settings",
        "LOG_LEVEL": "WARNING",
        "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
    }


# ------------------------------------------------------------------------------ served by gunicorn

if __name__ != "__main__" and os.environ.get("AICMO_PUBLISHING_BENCH_SERVER") == "1":
    import django
    from django.conf import settings

    django.setup()
    settings.ROOT_URLCONF = __name__

    from django.http import HttpResponse, HttpResponseRedirect
    from django.urls import include, path
    from django.views.decorators.cache import never_cache

    from aicmo.wsgi import application  # noqa: F401 - gunicorn's entry point
    from publishing.views import PIXEL

    @never_cache
    def bare_gif(request):
        return HttpResponse(PIXEL, content_type="image/gif")

    @never_cache
    def bare_redirect(request):
        return HttpResponseRedirect("https://acme.example/offer")

    urlpatterns = [
        path("bare/gif/", bare_gif),
        path("bare/redirect/", bare_redirect),
        path("", include("aicmo.urls")),
    ]


# ------------------------------------------------------------------------------------ the bench


def setup(tmp: Path, recipients: int, *, send_mode: bool = False):
    from aicmo.localredis import start_redis

    redis = start_redis(data_dir=tmp / "redis", persist=False)
    os.environ.update(_env(tmp, redis.url))
    import django
    from django.core.management import call_command

    django.setup()
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    call_command("migrate", verbosity=0)

    from django.utils import timezone

    from aicmo.models import Workspace
    from crm.models import Contact, ContactList, ListMembership
    from publishing.models import Delivery, Sender
    from publishing.services import campaigns, tracking
    from publishing.services import content as content_services

    ws = Workspace.objects.create(name="bench", slug="bench")
    sender = Sender.objects.create(
        workspace=ws, email="news@acme.example", name="Acme", verified_at=timezone.now()
    )
    content = content_services.content_create(workspace=ws, name="Bench")
    content_services.email_version_save(
        content=content,
        subject="Hi",
        sender=sender,
        html='<p>Hi</p><a href="https://acme.example/offer">Offer</a><a href="{{ unsubscribe_url }}">U</a>',
    )
    contact_list = ContactList.objects.create(workspace=ws, name="All")
    Contact.objects.bulk_create(
        [Contact(workspace=ws, email=f"p{i}@example.com") for i in range(recipients)], batch_size=500
    )
    ListMembership.objects.bulk_create(
        [
            ListMembership(workspace=ws, contact_list=contact_list, contact=c)
            for c in Contact.objects.filter(workspace=ws)
        ],
        batch_size=500,
    )
    campaign = campaigns.campaign_create(
        workspace=ws, name="Bench", content=content, audience={"lists": [contact_list.pk]}
    )
    if send_mode:
        return redis, ws, campaign
    campaigns.campaign_send_now(campaign=campaign)
    # Sent a minute ago, so a browser hit is a human event (the 10 s machine window is not the subject here).
    Delivery.objects.filter(campaign=campaign).update(
        status="sent", sent_at=timezone.now() - timezone.timedelta(minutes=1)
    )
    link = tracking.links_ensure(campaign, ["https://acme.example/offer"])["https://acme.example/offer"]
    deliveries = list(Delivery.objects.filter(campaign=campaign))
    base = "http://127.0.0.1:8000"
    opens = [tracking.open_url(d)[len(base) :] for d in deliveries]
    clicks = [tracking.click_url(d, link)[len(base) :] for d in deliveries]
    return redis, opens, clicks


async def _load(port: int, paths: list[str], concurrency: int) -> tuple[float, dict[int, int]]:
    import httpx

    statuses: dict[int, int] = {}
    queue = list(paths)
    agent = (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
    )
    limits = httpx.Limits(max_keepalive_connections=0, max_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as client:

        async def worker():
            while queue:
                response = await client.get(queue.pop(), headers={"User-Agent": agent})
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start, statuses


def run(port: int, paths: list[str], concurrency: int) -> tuple[float, dict[int, int]]:
    seconds, statuses = asyncio.run(_load(port, paths, concurrency))
    return len(paths) / seconds, statuses


def _process_tree(pid: int) -> tuple[float, float]:
    """(CPU seconds, peak RSS in MB of the largest process) of ``pid`` and its children, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, changed = {pid}, True
    while changed:
        grown = tree | {child for child, parent in parents.items() if parent in tree}
        changed, tree = grown != tree, grown
    cpu = peak = 0.0
    for member in tree:
        try:
            fields = (Path("/proc") / str(member) / "stat").read_text().rpartition(")")[2].split()
            cpu += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            status = (Path("/proc") / str(member) / "status").read_text()
            hwm = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
            peak = max(peak, int(hwm.split()[1]) / 1024)
        except (OSError, StopIteration, ValueError):
            continue
    return cpu, peak


def _worker_send(
    campaign, port: int, log: Path, recipients: int, concurrency: int
) -> tuple[float, float, float]:
    """The campaign sent the way production sends it: ``campaign_send_now`` queues
    PUBLISHING_SEND_CONCURRENCY send tasks and a real ``celery -A aicmo worker --concurrency N`` (prefork)
    runs them. Returns (seconds from send_now until the sink logged every message, CPU seconds of the
    worker's processes, peak RSS in MB of its largest process)."""
    from aicmo.celery import app
    from publishing.services import campaigns

    env = {**os.environ, "AICMO_GATEWAY_LOOPBACK_ALLOW": f"127.0.0.1:{port}", "LOG_LEVEL": "WARNING"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "aicmo", "worker", "--concurrency", str(concurrency),
         "-P", "prefork", "--prefetch-multiplier", "1", "--without-gossip", "--without-mingle", "-l", "warning"],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(300):
            if app.control.ping(timeout=0.5):
                break
        cpu_before, _ = _process_tree(worker.pid)
        start = time.perf_counter()
        campaigns.campaign_send_now(campaign=campaign)
        while not log.exists() or sum(1 for _ in log.open()) < recipients:
            if worker.poll() is not None:
                raise RuntimeError("the worker stopped")
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        cpu, peak = _process_tree(worker.pid)
    finally:
        worker.terminate()
        worker.wait(30)
    return seconds, cpu - cpu_before, peak


def send_bench(
    recipients: int, profile: bool = False, dump: str | None = None, worker_concurrency: int = 0
) -> None:
    """10,000-recipient campaign (default) through the sending service in this process (one thread, batches
    of PUBLISHING_SEND_BATCH_SIZE) to the SMTP sink in another process, vs a raw ``smtplib`` loop over one
    connection to the same sink with a message of the same size. ``profile``: the send loop runs under
    cProfile and the top 60 functions by cumulative and by own time are printed. ``worker_concurrency``:
    sent instead by a real Celery worker with that concurrency (`_worker_send`), as production sends."""
    import cProfile
    import pstats
    import resource
    import smtplib
    from email.message import EmailMessage

    from aicmo.localredis import free_port

    with tempfile.TemporaryDirectory(prefix="aicmo-sendbench-") as tmpdir:
        tmp = Path(tmpdir)
        redis, ws, campaign = setup(tmp, recipients, send_mode=True)
        port, log = free_port(), tmp / "sink.jsonl"
        sink = subprocess.Popen(
            [sys.executable, str(ROOT / "tests/publishing/sink_process.py"), str(port), str(log)]
        )
        try:
            for _ in range(100):
                try:
                    smtplib.SMTP("127.0.0.1", port, timeout=1).quit()
                    break
                except OSError:
                    time.sleep(0.1)
            from django.conf import settings

            from gateway.services import account_create
            from publishing.services import campaigns, sending

            settings.GATEWAY_LOOPBACK_ALLOW = [*settings.GATEWAY_LOOPBACK_ALLOW, f"127.0.0.1:{port}"]
            account_create(
                workspace=ws, by=None, capability="send_email", adapter="smtp", name="Sink",
                base_url=f"smtp+plain://127.0.0.1:{port}", credentials={"username": "u", "password": "p"},
                options={"from_email": "news@acme.example"}, timeout_seconds=10,
            )  # fmt: skip
            if worker_concurrency:
                ours, ours_cpu, rss_mb = _worker_send(campaign, port, log, recipients, worker_concurrency)
                batches = -1
            else:
                campaigns.campaign_send_now(campaign=campaign)
            profiler = cProfile.Profile() if profile else None
            if not worker_concurrency:
                cpu = time.process_time()
                start = time.perf_counter()
                batches = 0
                if profiler:
                    profiler.enable()
                while sending.campaign_send_batch(campaign_id=campaign.pk).more:
                    batches += 1
                if profiler:
                    profiler.disable()
                ours = time.perf_counter() - start
                ours_cpu = time.process_time() - cpu
                rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

            sample = EmailMessage()
            sample["From"], sample["Subject"] = "news@acme.example", "Hi"
            sample.set_content("x" * 600)
            sample.add_alternative("<p>" + "x" * 1200 + "</p>", subtype="html")
            cpu = time.process_time()
            start = time.perf_counter()
            with smtplib.SMTP("127.0.0.1", port) as smtp:
                smtp.login("u", "p")
                for i in range(recipients):
                    del sample["To"]
                    sample["To"] = f"raw{i}@example.com"
                    smtp.send_message(sample)
            raw = time.perf_counter() - start
            raw_cpu = time.process_time() - cpu
        finally:
            sink.terminate()
            sink.wait(10)
            redis.stop()
        delivered = sum(1 for _ in log.open())
    how = (
        f"a Celery worker --concurrency {worker_concurrency} (prefork), CPU and RSS of its processes"
        if worker_concurrency
        else f"{batches} batches, one thread in-process"
    )
    print(f"{recipients} recipients, {how}; sink in another process")
    # CPU time of this process per message: what the sending code costs, whatever the machine's load.
    print("| | seconds | messages/s | ratio | CPU ms per message (this process) |")
    print("|---|---|---|---|---|")
    print(
        f"| raw smtplib, one connection | {raw:.1f} | {recipients / raw:.0f} | 1.00 | {raw_cpu / recipients * 1000:.2f} |"
    )
    print(
        f"| campaign_send_batch loop | {ours:.1f} | {recipients / ours:.0f} | {raw / ours:.2f} | {ours_cpu / recipients * 1000:.2f} |"
    )
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(
        f"peak RSS of the sending process: {rss_mb:.0f} MB; sink accepted {delivered} (expected {2 * recipients})"
    )
    if delivered != 2 * recipients:
        sys.exit(1)
    if profiler:
        stats = pstats.Stats(profiler)
        if dump:
            stats.dump_stats(dump)
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(60)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "send":
        parser = argparse.ArgumentParser(description="send benchmark")
        parser.add_argument("mode")
        parser.add_argument("--recipients", type=int, default=10_000)
        parser.add_argument("--profile", action="store_true", help="cProfile the send loop")
        parser.add_argument("--profile-dump", metavar="FILE", help="also write the pstats data to FILE")
        parser.add_argument(
            "--worker", type=int, default=0, metavar="N", help="send with a Celery worker --concurrency N"
        )
        args = parser.parse_args()
        send_bench(
            args.recipients,
            profile=args.profile or bool(args.profile_dump),
            dump=args.profile_dump,
            worker_concurrency=args.worker,
        )
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per endpoint and round")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (the best of each is kept)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="aicmo-pubbench-") as tmpdir:
        tmp = Path(tmpdir)
        redis, opens, clicks = setup(tmp, args.recipients)
        from aicmo.localredis import free_port

        port = free_port()
        env = {**os.environ, **_env(tmp, redis.url), "AICMO_PUBLISHING_BENCH_SERVER": "1"}
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "--chdir", str(ROOT / "bench"), "--pythonpath", str(ROOT),
             "-w", str(args.workers), "-b", f"127.0.0.1:{port}", "--log-level", "warning", "publishing_bench:application"],
            env=env,
        )  # fmt: skip
        try:
            import httpx

            for _ in range(200):
                try:
                    httpx.get(f"http://127.0.0.1:{port}/bare/gif/", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            rng = random.Random(1)
            best: dict[str, float] = {}
            answered = {"open": 0, "click": 0}
            for _ in range(args.rounds):
                for name, paths, ok in (
                    ("pixel", [rng.choice(opens) for _ in range(args.requests)], 200),
                    ("bare gif", ["/bare/gif/"] * args.requests, 200),
                    ("click", [rng.choice(clicks) for _ in range(args.requests)], 302),
                    ("bare redirect", ["/bare/redirect/"] * args.requests, 302),
                ):
                    rate, statuses = run(port, paths, args.concurrency)
                    assert set(statuses) == {ok}, (name, statuses)
                    best[name] = max(best.get(name, 0.0), rate)
                    if name in ("pixel", "click"):
                        answered["open" if name == "pixel" else "click"] += statuses[ok]
        finally:
            server.terminate()
            server.wait(10)

        from publishing.models import EngagementEvent
        from publishing.services.event_buffer import tracking_buffer_length, tracking_events_drain

        waiting = tracking_buffer_length()
        start = time.perf_counter()
        drained = tracking_events_drain(max_batches=10_000)
        drain_seconds = time.perf_counter() - start
        stored = {kind: EngagementEvent.objects.filter(kind=kind).count() for kind in ("open", "click")}
        redis.stop()

    print(
        f"gunicorn -w {args.workers} (sync), {args.requests} requests × {args.rounds} rounds, concurrency {args.concurrency}"
    )
    print("| endpoint | requests/s (best round) | bare view requests/s | ratio |")
    print("|---|---|---|---|")
    for name, bare in (("pixel", "bare gif"), ("click", "bare redirect")):
        print(f"| {name} | {best[name]:.0f} | {best[bare]:.0f} | {best[name] / best[bare]:.2f} |")
    print(f"buffered: {waiting} entries; drained {drained.read} in {drain_seconds:.2f} s "
          f"({drained.read / max(drain_seconds, 1e-9):.0f} events/s)")  # fmt: skip
    print(
        f"answered opens {answered['open']}, stored {stored['open']}; answered clicks {answered['click']}, stored {stored['click']}"
    )
    ok = stored == answered and waiting == drained.read
    print("every event accounted for" if ok else "EVENTS MISSING OR DOUBLED")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
