"""The webhook sender: signed attempts over HTTP(S) from one event-loop thread, a bounded number
at once, keep-alive connections pooled per target, each to the address the SSRF guard checked.

    sender = Sender(timeout=10, allow_private=False, pool_size=32)   # 32 attempts at once
    outcome = sender.send(job)           # blocking: an Outcome, never an exception
    sender.submit(jobs, done)            # returns at once; done(job, outcome) runs on the loop
    sender.close()
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import NamedTuple
from urllib.parse import urlsplit

from shared.webhooks import signature_headers
from sync_server import __version__
from sync_server.webhooks.connection import Connection, ResponseError
from sync_server.webhooks.recording import Job, Outcome
from sync_server.webhooks.ssrf import UnsafeUrl, resolve_target

# One asyncio loop (uvloop where installed) carries every attempt of a dispatcher, with the
# response parsed by httptools (uvicorn's parser): measured on this machine against a local
# receiver, 13-43 µs of CPU per request, against 375-416 µs for urllib3 from 32 threads and
# 129-150 µs for aiohttp (`docs/benchmarks.md`). A dispatcher shares the cores with the API it
# serves, so its cost per attempt is the API's loss.
try:  # the faster loop, where it is installed (uvicorn[standard] brings it on Linux and macOS)
    import uvloop

    _new_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
except ImportError:  # pragma: no cover - Windows
    _new_loop = asyncio.new_event_loop

__all__ = ["Done", "Sender"]

log = logging.getLogger("doorcheck.webhooks")

MAX_TARGETS = 512  # distinct targets kept warm; beyond that the idle connections start over
ERROR_CHARS = 500

PoolKey = tuple[str, str, int, str]  # scheme, address, port, host name
Done = Callable[[Job, Outcome | None], None]  # None: the attempt failed unexpectedly (a bug)


class Sender:
    """Attempts on one background event loop, `pool_size` at once (the others wait their turn),
    with as many connections kept per target; any thread may call `send` or `submit`. A URL's
    name is resolved once, at send time, and the connection goes to that address (TLS still
    checks the certificate against the URL's host name, sent as SNI); no redirects are
    followed, no retries made (the outbox retries)."""

    def __init__(self, *, timeout: float, allow_private: bool, pool_size: int) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self.pool_size = pool_size
        self._slots = asyncio.Semaphore(pool_size)
        self.user_agent = f"doorcheck-webhooks/{__version__}"
        self._idle: dict[PoolKey, list[Connection]] = {}
        self._tls: ssl.SSLContext | None = None
        self.loop = _new_loop()
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(started,), name="webhook-sender", daemon=True
        )
        self._thread.start()
        started.wait()

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(started.set)
        self.loop.run_forever()

    def close(self) -> None:
        """Wait for nothing: close the kept connections and stop the loop."""
        if self.loop.is_closed():
            return

        def stop() -> None:
            for pool in self._idle.values():
                for connection in pool:
                    connection.close()
            self._idle.clear()
            self.loop.call_later(0.05, self.loop.stop)  # let the closes reach the sockets

        self.loop.call_soon_threadsafe(stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self.loop.close()

    # -- the entry points ----------------------------------------------------------------------
    def send(self, job: Job) -> Outcome:
        """One attempt, waited for."""
        return asyncio.run_coroutine_threadsafe(self.attempt(job), self.loop).result()

    def send_all(self, jobs: Sequence[Job]) -> list[Outcome]:
        """Attempts made concurrently, waited for; the outcomes in the order of `jobs`."""

        async def all_of() -> list[Outcome]:
            return list(await asyncio.gather(*(self.attempt(job) for job in jobs)))

        return asyncio.run_coroutine_threadsafe(all_of(), self.loop).result() if jobs else []

    def submit(self, jobs: Sequence[Job], done: Done) -> None:
        """Start every attempt of `jobs` and return; `done(job, outcome)` is called on the loop
        thread as each ends (it must be quick and must not block)."""
        if jobs:
            self.loop.call_soon_threadsafe(self._start, list(jobs), done)

    def _start(self, jobs: list[Job], done: Done) -> None:
        for job in jobs:
            task = self.loop.create_task(self.attempt(job))
            task.add_done_callback(lambda t, job=job: _report(t, job, done))

    # -- one attempt -----------------------------------------------------------------------------
    async def attempt(self, job: Job) -> Outcome:
        """POST `job` once, when one of the `pool_size` slots is free; what happened as an
        Outcome (refusals and failures included)."""
        async with self._slots:
            return await self._attempt(job)

    async def _attempt(self, job: Job) -> Outcome:
        started = time.monotonic()
        try:
            address = await self._resolve(job.url)
        except UnsafeUrl as exc:
            return Outcome(None, 0, None, f"refused: {exc}"[:ERROR_CHARS])
        target = _target(job.url)
        key = (target.scheme, address, target.port, target.hostname)
        request = self._request(job, target.host, target.path)
        connection = None
        try:
            connection = self._take(key) or await self._connect(key, started)
            left = max(0.001, self.timeout - (time.monotonic() - started))
            response = await connection.exchange(request, left, self.timeout)
        except (OSError, TimeoutError, ssl.SSLError, ResponseError) as exc:
            if connection is not None:
                connection.close()
            elapsed = _ms(started)
            error = f"{exc.__class__.__name__}: {exc}"
            return Outcome(None, elapsed, None, error[:ERROR_CHARS])
        if response.keep_alive:
            self._give_back(key, connection)
        status = response.status
        return Outcome(
            status,
            _ms(started),
            response.excerpt.decode("utf-8", "replace"),
            None if 200 <= status < 300 else f"HTTP {status}",
            _retry_after(response.retry_after),
        )

    async def _resolve(self, url: str) -> str:
        """The checked address: for an IP literal at once (and the same every time), for a name
        resolved now, from a resolver thread."""
        if _target(url).literal:
            return _literal_target(url, self.allow_private)
        return await self.loop.run_in_executor(None, self._resolve_now, url)

    def _resolve_now(self, url: str) -> str:
        return resolve_target(url, allow_private=self.allow_private)

    def _request(self, job: Job, host: str, path: str) -> bytes:
        body = job.body.encode()
        headers = signature_headers(job.message_id, int(time.time()), body, job.secrets)
        lines = [
            f"POST {path} HTTP/1.1",
            f"host: {host}",
            "content-type: application/json",
            f"content-length: {len(body)}",
            f"user-agent: {self.user_agent}",
            "accept-encoding: identity",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    # -- connections -------------------------------------------------------------------------------
    def _take(self, key: PoolKey) -> Connection | None:
        pool = self._idle.get(key)
        while pool:
            connection = pool.pop()
            if connection.usable:
                return connection
        return None

    def _give_back(self, key: PoolKey, connection: Connection) -> None:
        if not connection.usable:
            return
        pool = self._idle.get(key)
        if pool is None:
            if len(self._idle) >= MAX_TARGETS:
                for old in self._idle.values():
                    for idle in old:
                        idle.close()
                self._idle.clear()
            pool = self._idle[key] = []
        if len(pool) < self.pool_size:
            pool.append(connection)
        else:
            connection.close()

    async def _connect(self, key: PoolKey, started: float) -> Connection:
        scheme, address, port, host = key
        tls = self._tls_context() if scheme == "https" else None
        left = max(0.001, self.timeout - (time.monotonic() - started))
        try:
            _, connection = await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: Connection(self.loop),
                    address,
                    port,
                    ssl=tls,
                    server_hostname=host if tls is not None else None,
                ),
                left,
            )
        except TimeoutError:
            raise TimeoutError(f"no connection within {self.timeout:g} s") from None
        return connection

    def _tls_context(self) -> ssl.SSLContext:
        """The system's trusted CAs (SSL_CERT_FILE / SSL_CERT_DIR honoured), names checked."""
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls


class _Target(NamedTuple):
    """What sending needs of a URL, parsed once per URL."""

    scheme: str
    hostname: str
    port: int
    host: str  # the Host header: the URL's host and port as written
    path: str  # path and query
    literal: bool  # the host is an IP address: no name to resolve


@functools.lru_cache(maxsize=4096)
def _target(url: str) -> _Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    hostname = parts.hostname or ""
    try:
        ipaddress.ip_address(hostname)
        literal = True
    except ValueError:
        literal = False
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    port = parts.port or (443 if scheme == "https" else 80)
    return _Target(scheme, hostname, port, parts.netloc.rpartition("@")[2], path, literal)


@functools.lru_cache(maxsize=4096)
def _literal_target(url: str, allow_private: bool) -> str:
    """`resolve_target` for a URL naming an IP address: the answer never changes (nor does a
    refusal, which lru_cache does not keep: it raises again)."""
    return resolve_target(url, allow_private=allow_private)


def _report(task: asyncio.Task[Outcome], job: Job, done: Done) -> None:
    if task.cancelled():
        done(job, None)
        return
    error = task.exception()
    if error is not None:
        log.error("webhook delivery %s failed unexpectedly", job.delivery_id, exc_info=error)
        done(job, None)
        return
    done(job, task.result())


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return min(seconds, 86_400.0) if seconds >= 0 else None
