"""A total deadline for one outbound HTTP call: connect, TLS handshake, sending the request and reading the
answer, headers and body, all inside one budget of seconds.

httpx's timeouts bound each socket operation on its own: a receiver that sends its headers and then one byte
a second never trips a 10 s read timeout and holds the calling worker for as long as it keeps trickling.
Inside :func:`total_deadline`, every socket operation of the guarded transport
(:class:`gateway.ssrf.GuardedTransport`, which wraps its streams in :class:`DeadlineStream`) gets at most
the time left, so the whole call ends within the deadline (plus scheduling noise). An operation cut short
by the deadline raises a :class:`DeadlineExceeded` subclass of httpcore's timeout for that phase, which
httpx turns into its own ``ConnectTimeout`` / ``WriteTimeout`` / ``ReadTimeout`` with this exception as
``__cause__``.

The deadline is held in a context variable: it belongs to the call in progress on this thread, not to the
pooled connection, so a kept-alive connection reused by a later call obeys that call's deadline.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import httpcore

WRITE_CHUNK_BYTES = 16 * 1024  # a send buffer's worth: each chunk's send gets only the time still left


@dataclass(frozen=True)
class Deadline:
    """``seconds``: the budget; ``at``: the ``time.monotonic()`` instant it runs out."""

    seconds: float
    at: float

    def remaining(self) -> float:
        return self.at - time.monotonic()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


_current: ContextVar[Deadline | None] = ContextVar("gateway_http_deadline", default=None)


class DeadlineExceeded(Exception):
    """Marks a timeout caused by the total deadline rather than by a per-operation timeout."""


class ConnectDeadlineExceeded(DeadlineExceeded, httpcore.ConnectTimeout):
    pass


class WriteDeadlineExceeded(DeadlineExceeded, httpcore.WriteTimeout):
    pass


class ReadDeadlineExceeded(DeadlineExceeded, httpcore.ReadTimeout):
    pass


_PHASES: dict[type[httpcore.TimeoutException], type[DeadlineExceeded]] = {
    httpcore.ConnectTimeout: ConnectDeadlineExceeded,
    httpcore.WriteTimeout: WriteDeadlineExceeded,
    httpcore.ReadTimeout: ReadDeadlineExceeded,
}


@contextmanager
def total_deadline(seconds: float) -> Iterator[Deadline]:
    """Bound every guarded socket operation started inside the block to ``seconds`` in total."""
    deadline = Deadline(seconds=float(seconds), at=time.monotonic() + float(seconds))
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)


def current_deadline() -> Deadline | None:
    """The deadline of the call in progress in this context, if any."""
    return _current.get()


@contextmanager
def bounded(timeout: float | None, phase: type[httpcore.TimeoutException]) -> Iterator[float | None]:
    """The timeout to give one socket operation: ``timeout`` or the time left, whichever is shorter.

    Raises the ``phase``'s :class:`DeadlineExceeded` at once when no time is left, and turns the operation's
    own ``phase`` timeout into it when the time left (not ``timeout``) was the limit."""
    deadline = _current.get()
    if deadline is None:
        yield timeout
        return
    left = deadline.remaining()
    exceeded = _PHASES[phase]
    message = f"total deadline of {deadline.seconds:g} s passed"
    if left <= 0:
        raise exceeded(message)
    if timeout is not None and timeout < left:
        yield timeout
        return
    try:
        yield left
    except phase as exc:
        if isinstance(exc, DeadlineExceeded):
            raise
        raise exceeded(message) from exc


class DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every read, write and TLS handshake obeys :func:`total_deadline`."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with bounded(timeout, httpcore.ReadTimeout) as limit:
            return self._stream.read(max_bytes, limit)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        for start in range(0, len(view), WRITE_CHUNK_BYTES):
            with bounded(timeout, httpcore.WriteTimeout) as limit:
                self._stream.write(bytes(view[start : start + WRITE_CHUNK_BYTES]), limit)

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname: str | None = None, timeout: float | None = None):
        with bounded(timeout, httpcore.ConnectTimeout) as limit:
            return DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, limit))

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)
