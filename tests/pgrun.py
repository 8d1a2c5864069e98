"""Run a command against a throw-away PostgreSQL server (used by `make test` for the PostgreSQL run).

    python tests/pgrun.py -- pytest -n 2 -m "not browser"

Starts a private PostgreSQL on 127.0.0.1 (a free port, data in a temporary directory, fsync off),
exports ``DATABASE_URL=postgres://postgres@127.0.0.1:<port>/postgres`` to the command, and always
stops the server and deletes its data afterwards. Exits with the command's exit code.

Binaries, first that works: ``$AICMO_PG_BINDIR``; the server bundled in the ``pgserver`` wheel (no
system package needed); ``pg_config --bindir``; ``/usr/lib/postgresql/<newest>/bin``. PostgreSQL refuses
to run as root, so under root the server runs as the unprivileged ``nobody`` user (override with
``$AICMO_PG_USER``); a binary directory that user cannot reach (e.g. a virtualenv inside a 0700 temp
directory) is skipped in favour of the next candidate.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Durability is irrelevant for a test server; these make schema creation several times faster.
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "64MB",
    "dynamic_shared_memory_type": "mmap",
}


def log(message: str) -> None:
    print(f"[pgrun] {message}", file=sys.stderr, flush=True)


def candidate_bindirs() -> list[Path]:
    candidates: list[Path] = []
    if os.environ.get("AICMO_PG_BINDIR"):
        candidates.append(Path(os.environ["AICMO_PG_BINDIR"]))
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidates.append(Path(location) / "pginstall" / "bin")
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
            candidates.append(Path(out.stdout.strip()))
        except (OSError, subprocess.CalledProcessError):
            pass
    system = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(system)
    return [c for c in candidates if (c / "postgres").is_file() and (c / "initdb").is_file()]


def run_as(user: pwd.struct_passwd | None) -> dict:
    """subprocess keyword arguments that drop to ``user`` (only when we are root)."""
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def usable(bindir: Path, user: pwd.struct_passwd | None) -> bool:
    try:
        result = subprocess.run(
            [str(bindir / "postgres"), "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            cwd="/",
            **run_as(user),
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return result.returncode == 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(port: int, process: subprocess.Popen, timeout: float = 60) -> bool:
    import psycopg

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with psycopg.connect(
                f"postgresql://postgres@127.0.0.1:{port}/postgres", connect_timeout=2
            ) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            time.sleep(0.2)
    return False


class Server:
    def __init__(self, bindir: Path, user: pwd.struct_passwd | None):
        self.bindir = bindir
        self.user = user
        self.root = Path(tempfile.mkdtemp(prefix="aicmo-pg-"))
        self.data = self.root / "data"
        self.logfile = self.root / "postgres.log"
        self.process: subprocess.Popen | None = None
        self.port = 0

    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update({"LC_ALL": "C", "LANG": "C", "HOME": str(self.root)})
        return env

    def start(self) -> None:
        self.data.mkdir()
        if self.user is not None:
            for path in (self.root, self.data):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)
        subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            cwd=self.root,
            env=self._env(),
            **run_as(self.user),
        )
        for _attempt in range(3):
            if self.launch(free_port()):
                return
            self.stop(remove=False)
        raise RuntimeError(
            f"PostgreSQL did not start; log:\n{self.logfile.read_text(errors='replace')[-3000:]}"
        )

    def launch(self, port: int) -> bool:
        """Start the server on ``port`` over the existing data directory; True once it answers. Also
        used to bring a stopped server back on the same port (tests/reliability/test_database_outage.py)."""
        self.port = port
        argv = [str(self.bindir / "postgres"), "-D", str(self.data), "-h", "127.0.0.1", "-p", str(port)]
        argv += ["-k", ""]  # TCP only: no Unix socket directory to create or clean up
        for name, value in FAST_SETTINGS.items():
            argv += ["-c", f"{name}={value}"]
        with open(self.logfile, "ab") as logf:
            self.process = subprocess.Popen(
                argv,
                stdout=logf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
                env=self._env(),
                start_new_session=True,  # a terminal Ctrl-C reaches the tests, not the server
                **run_as(self.user),
            )
        return wait_ready(port, self.process)

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self, remove: bool = True) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGINT)  # "fast" shutdown: disconnect clients, stop cleanly
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.process = None
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)


def pick_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    name = os.environ.get("AICMO_PG_USER", "nobody")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        sys.exit(f"[pgrun] running as root and user {name!r} does not exist (set AICMO_PG_USER)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="command to run (after --)")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command to run, e.g. pgrun.py -- pytest")

    user = pick_user()
    candidates = candidate_bindirs()
    bindir = next((c for c in candidates if usable(c, user)), None)
    if bindir is None:
        who = f" by user {user.pw_name!r}" if user else ""
        log(f"no usable PostgreSQL binaries{who}; tried: {[str(c) for c in candidates] or 'none found'}")
        log("install one: `pip install pgserver` (in the venv) or `apt-get install postgresql`")
        return 2

    server = Server(bindir, user)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        server.start()
        version = subprocess.run(
            [str(bindir / "postgres"), "--version"], capture_output=True, text=True
        ).stdout
        user_note = f" as {user.pw_name}" if user else ""
        log(f"{version.strip()} from {bindir}{user_note} at {server.url}")
        env = dict(os.environ, DATABASE_URL=server.url)
        child = subprocess.Popen(command, env=env)
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:
                # The terminal's Ctrl-C already reached the child (same process group); let it finish.
                child.send_signal(signal.SIGINT)
    finally:
        server.stop()
        log("PostgreSQL stopped and its data removed")


if __name__ == "__main__":
    sys.exit(main())
