"""Sending one signed attempt over HTTP(S) with urllib3: to the address the SSRF guard checked (the
name is resolved once, at send time, and the connection goes to that address; TLS still checks
the certificate against the URL's host name, sent as SNI), no redirects followed, no retries
(the outbox retries), keep-alive connections kept per target.

    sender = Sender(timeout=10, allow_private=False, pool_size=32)
    outcome = sender.send(job)   # an Outcome, never an exception

urllib3 rather than httpx here: it costs less than half as much CPU per request (~170 µs vs
~370 µs measured on loopback), and a dispatcher spends most of its time sending.
"""

from __future__ import annotations

import threading
import time
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError

from shared.webhooks import signature_headers
from sync_server import __version__
from sync_server.webhooks.recording import Job, Outcome
from sync_server.webhooks.ssrf import UnsafeUrl, resolve_target

__all__ = ["EXCERPT_BYTES", "Sender"]

EXCERPT_BYTES = 2048
MAX_POOLS = 512  # distinct targets kept warm; beyond that the cache starts over

PoolKey = tuple[str, str, int, str]  # scheme, address, port, host name


class Sender:
    def __init__(self, *, timeout: float, allow_private: bool, pool_size: int) -> None:
        self.timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self.allow_private = allow_private
        self.pool_size = pool_size
        self._pools: dict[PoolKey, urllib3.HTTPConnectionPool] = {}
        self._lock = threading.Lock()
        self.user_agent = f"doorcheck-webhooks/{__version__}"

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()

    def send(self, job: Job) -> Outcome:
        started = time.monotonic()
        try:
            address = resolve_target(job.url, allow_private=self.allow_private)
        except UnsafeUrl as exc:
            return Outcome(None, 0, None, f"refused: {exc}"[:500])
        parts = urlsplit(job.url)
        scheme = parts.scheme.lower()
        port = parts.port or (443 if scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        body = job.body.encode()
        headers = signature_headers(job.message_id, int(time.time()), body, job.secrets)
        headers.update(
            {
                "content-type": "application/json",
                "user-agent": self.user_agent,
                "host": parts.netloc.rpartition("@")[2],
            }
        )
        pool = self._pool((scheme, address, port, parts.hostname or ""))
        try:
            response = pool.urlopen(
                "POST",
                path,
                body=body,
                headers=headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
            )
            try:  # read no more than the excerpt we keep
                head = response.read(EXCERPT_BYTES, decode_content=False)
            finally:
                if response.length_remaining == 0:
                    response.release_conn()  # read to its end: the connection can be reused
                else:
                    response.close()  # more than we want (or chunked): drop the connection
        except HTTPError as exc:
            elapsed = int((time.monotonic() - started) * 1000)
            return Outcome(None, elapsed, None, f"{exc.__class__.__name__}: {exc}"[:500])
        elapsed = int((time.monotonic() - started) * 1000)
        status = response.status
        return Outcome(
            status,
            elapsed,
            head[:EXCERPT_BYTES].decode("utf-8", "replace"),
            None if 200 <= status < 300 else f"HTTP {status}",
            _retry_after(response.headers.get("retry-after")),
        )

    def _pool(self, key: PoolKey) -> urllib3.HTTPConnectionPool:
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None:
                return pool
            if len(self._pools) >= MAX_POOLS:
                for old in self._pools.values():
                    old.close()
                self._pools.clear()
            scheme, address, port, host = key
            common = dict(
                maxsize=self.pool_size,
                block=False,
                timeout=self.timeout,
                retries=False,
                headers={"accept-encoding": "identity"},
            )
            if scheme == "https":
                pool = urllib3.HTTPSConnectionPool(
                    address,
                    port,
                    server_hostname=host,  # SNI and certificate checked against the name
                    assert_hostname=host,
                    cert_reqs="CERT_REQUIRED",
                    **common,  # type: ignore[arg-type]
                )
            else:
                pool = urllib3.HTTPConnectionPool(address, port, **common)  # type: ignore[arg-type]
            self._pools[key] = pool
            return pool


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return min(seconds, 86_400.0) if seconds >= 0 else None
