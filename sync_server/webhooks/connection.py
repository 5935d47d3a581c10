"""One keep-alive HTTP/1.1 connection to a webhook receiver: it writes a request and reads the
answer with httptools (uvicorn's parser), keeping at most `EXCERPT_BYTES` of the body.
"""

from __future__ import annotations

import asyncio

import httptools

__all__ = ["EXCERPT_BYTES", "Connection", "Response", "ResponseError"]

EXCERPT_BYTES = 2048


class ResponseError(Exception):
    """The receiver's answer could not be read as HTTP."""


class Response:
    __slots__ = ("excerpt", "keep_alive", "retry_after", "status")

    def __init__(self, status: int, excerpt: bytes, retry_after: str | None, keep_alive: bool):
        self.status = status
        self.excerpt = excerpt
        self.retry_after = retry_after
        self.keep_alive = keep_alive


class Connection(asyncio.Protocol):
    """One connection to a receiver and the one request on it at a time (HTTP/1.1 keep-alive)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[Response] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False
        self._reset()

    def _reset(self) -> None:
        self.status: int | None = None
        self.body = bytearray()
        self.truncated = False
        self.retry_after: str | None = None

    @property
    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def exchange(self, request: bytes, timeout: float, said: float) -> asyncio.Future[Response]:
        """Send `request`; the future answers the response, or fails (no answer within
        `timeout` seconds, reported as `said`; lost; garbled)."""
        assert self.transport is not None and self.waiter is None
        self._reset()
        self.waiter = self.loop.create_future()
        self.timer = self.loop.call_later(timeout, self._timed_out, said)
        self.transport.write(request)
        return self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # -- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # nothing was asked: a receiver talking out of turn
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ResponseError(f"the response is not valid HTTP: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is None:
            return
        if self.status is not None:  # a body that ends with the connection
            self._finish(keep_alive=False)
        else:
            self._fail(ConnectionError(f"the connection closed before an answer ({exc})"))

    # -- httptools callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        if self.waiter is None:  # a second answer to one request: the stream cannot be trusted
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"retry-after":
            self.retry_after = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        room = EXCERPT_BYTES - len(self.body)
        if len(body) > room:  # more than we keep: stop reading, drop the connection
            self.body += body[:room]
            self.truncated = True
            self._finish(keep_alive=False)
        else:
            self.body += body

    def on_message_complete(self) -> None:
        if self.status is not None and 100 <= self.status < 200:  # 100 Continue and the like
            self._reset()
            return
        self._finish(keep_alive=self.parser.should_keep_alive())

    # -- ending an exchange --------------------------------------------------------------------
    def _timed_out(self, timeout: float) -> None:
        self._fail(TimeoutError(f"no answer within {timeout:g} s"))
        self.close()

    def _finish(self, *, keep_alive: bool) -> None:
        waiter = self._settle()
        if waiter is None or self.status is None:
            return
        response = Response(self.status, bytes(self.body), self.retry_after, keep_alive)
        if not keep_alive:
            self.close()
        waiter.set_result(response)

    def _fail(self, error: Exception) -> None:
        waiter = self._settle()
        if waiter is not None:
            waiter.set_exception(error)

    def _settle(self) -> asyncio.Future[Response] | None:
        waiter, self.waiter = self.waiter, None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        return waiter if waiter is not None and not waiter.done() else None
