"""An SMTP sink in its own process, for tests that kill workers: every accepted message is appended to a
JSON-lines log (to, Message-ID). For ``--slow`` recipients, a marker file is written when their DATA
arrives and the answer is held back ``--delay`` seconds, so a test can act while that message is in flight.

    python tests/publishing/sink_process.py PORT LOG [--slow addr ...] [--marker PATH] [--delay S]
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import json
import signal
import threading
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class Handler:
    def __init__(self, log: Path, slow: set[str], marker: Path | None, delay: float) -> None:
        self.log, self.slow, self.marker, self.delay = log, slow, marker, delay
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        message = email.message_from_bytes(
            envelope.original_content or envelope.content, policy=email.policy.default
        )
        rcpts = [r.lower() for r in envelope.rcpt_tos]
        if self.slow.intersection(rcpts):
            if self.marker is not None:
                with self.marker.open("a") as fh:
                    fh.write(",".join(rcpts) + "\n")
            await asyncio.sleep(self.delay)
        with self.lock, self.log.open("a") as fh:
            fh.write(json.dumps({"to": rcpts, "message_id": str(message["Message-ID"])}) + "\n")
        return "250 Message accepted for delivery"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("log", type=Path)
    parser.add_argument("--slow", nargs="*", default=[])
    parser.add_argument("--marker", type=Path)
    parser.add_argument("--delay", type=float, default=5.0)
    args = parser.parse_args()
    handler = Handler(args.log, {s.lower() for s in args.slow}, args.marker, args.delay)
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=args.port,
        authenticator=lambda *a: AuthResult(success=True),
        auth_require_tls=False,
        ready_timeout=10,
    )
    controller.start()
    print("ready", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    controller.stop()


if __name__ == "__main__":
    main()
