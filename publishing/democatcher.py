"""The demo mail catcher for ``make run``: an SMTP server on localhost that accepts every message and
stores it as ``<dir>/<UTC time>-<random>.eml`` instead of delivering it. The staff-only page
``/publishing/demo-outbox/`` lists and shows them, so a new user sees real sent messages with working
tracking links. Never for production: it binds loopback only and keeps everything.

    python -m publishing.democatcher --port 1025 --dir var/demo-mail
"""

from __future__ import annotations

import argparse
import secrets
import time
from datetime import UTC, datetime
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def accept_any_login(server, session, envelope, mechanism, auth_data) -> AuthResult:
    """Demo accounts may carry credentials: any login is accepted (nothing leaves this machine)."""
    return AuthResult(success=True)


class StoreHandler:
    def __init__(self, directory: Path):
        self.directory = directory

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        name = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{secrets.token_hex(4)}.eml"
        tmp = self.directory / f".{name}.tmp"
        tmp.write_bytes(envelope.original_content or envelope.content)
        tmp.rename(self.directory / name)  # readers never see a half-written file
        return "250 Message stored by the AICMO demo mail catcher"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", default="var/demo-mail")
    args = parser.parse_args(argv)
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    controller = Controller(
        StoreHandler(directory),
        hostname=args.host,
        port=args.port,
        authenticator=accept_any_login,
        auth_require_tls=False,
    )
    controller.start()
    print(f"demo mail catcher on {args.host}:{args.port}, storing in {directory}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
