"""The webhook sender against receivers that misbehave: a raw socket server on loopback answers
each request with scripted bytes (garbage, nothing, a flood, a drip, chunks, 1xx, a close), and
every attempt must come back as an Outcome with a clear error, never an exception or a hang."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
from standardwebhooks.webhooks import Webhook

from shared.webhooks import new_secret
from sync_server.webhooks.connection import EXCERPT_BYTES
from sync_server.webhooks.recording import Job, Outcome
from sync_server.webhooks.sender import Sender

SECRET = new_secret(b"s" * 32)
NO_CONTENT = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"

# what the receiver does with one request: the bytes to answer (None: answer nothing and keep
# the connection open), and whether to close the connection afterwards
Script = Callable[[bytes], tuple[bytes | None, bool]]


def answer(raw: bytes, close: bool = False) -> Script:
    return lambda _request: (raw, close)


@dataclass
class RawReceiver:
    """Accepts connections and plays `script(n)` for the n-th request (1-based)."""

    script: Callable[[int], Script] = lambda n: answer(NO_CONTENT)
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    def serve(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the sender may drop the connection
            self._converse(conn)

    def _converse(self, conn: socket.socket) -> None:
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            head, _, rest = buffer.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(rest) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                rest += chunk
            request, buffer = head + b"\r\n\r\n" + rest[:length], rest[length:]
            self.requests.append(request)
            reply, close = self.script(len(self.requests))(request)
            if reply is None:
                time.sleep(5)  # say nothing; the sender's timeout ends it
                return
            conn.sendall(reply)
            if close:
                return

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/in?x=1"


@pytest.fixture
def raw() -> Iterator[RawReceiver]:
    receiver = RawReceiver()
    listener = socket.create_server(("127.0.0.1", 0))
    receiver.port = listener.getsockname()[1]
    threading.Thread(target=receiver.serve, args=(listener,), daemon=True).start()
    yield receiver
    listener.close()


@pytest.fixture
def sender() -> Iterator[Sender]:
    sender = Sender(timeout=1.0, allow_private=True, pool_size=4)
    yield sender
    sender.close()


def job(url: str, n: int = 1, body: str = '{"type":"webhook.test","data":{}}') -> Job:
    return Job(f"dlv_{n}", 0, f"msg_{n}", body, "we_1", url, True, (SECRET,), None)


def test_a_delivery_is_signed_and_the_connection_kept(raw: RawReceiver, sender: Sender) -> None:
    body = '{"type":"checkin.accepted","data":{"name":"Zoë"}}'
    first = sender.send(job(raw.url, 1, body))
    second = sender.send(job(raw.url, 2, body))
    assert (first.status_code, first.error, first.excerpt) == (204, None, "")
    assert second.status_code == 204
    assert raw.connections == 1, "the second attempt reuses the first connection"
    head, _, sent = raw.requests[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /hooks/in?x=1 HTTP/1.1"
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert headers["host"] == f"127.0.0.1:{raw.port}"
    assert headers["content-type"] == "application/json"
    assert sent == body.encode()
    # an independent verifier accepts the signature
    assert Webhook(SECRET).verify(sent, headers) == {
        "type": "checkin.accepted",
        "data": {"name": "Zoë"},
    }


def test_status_excerpt_and_retry_after(raw: RawReceiver, sender: Sender) -> None:
    raw.script = lambda n: answer(
        b"HTTP/1.1 503 Busy\r\nRetry-After: 120\r\ncontent-length: 9\r\n\r\ntoo busy!"
    )
    outcome = sender.send(job(raw.url))
    assert (outcome.status_code, outcome.excerpt, outcome.error) == (503, "too busy!", "HTTP 503")
    assert outcome.retry_after == 120.0


def test_a_chunked_answer_and_an_interim_100_continue(raw: RawReceiver, sender: Sender) -> None:
    raw.script = lambda n: answer(
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    first = sender.send(job(raw.url, 1))
    second = sender.send(job(raw.url, 2))
    assert (first.status_code, first.excerpt) == (200, "hello world")
    assert (second.status_code, second.excerpt) == (200, "hello world")
    assert raw.connections == 1


def test_a_huge_answer_is_cut_to_the_excerpt_and_its_connection_dropped(
    raw: RawReceiver, sender: Sender
) -> None:
    flood = b"x" * 1_000_000
    raw.script = lambda n: answer(
        b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(flood), flood)
    )
    first = sender.send(job(raw.url, 1))
    second = sender.send(job(raw.url, 2))
    assert first.status_code == 200 and first.excerpt == "x" * EXCERPT_BYTES
    assert second.status_code == 200
    assert raw.connections == 2, "the rest of the flood is not read: a new connection"


def test_an_answer_that_ends_with_the_connection(raw: RawReceiver, sender: Sender) -> None:
    raw.script = lambda n: answer(b"HTTP/1.0 202 Accepted\r\n\r\nqueued", close=True)
    first = sender.send(job(raw.url, 1))
    second = sender.send(job(raw.url, 2))
    assert (first.status_code, first.excerpt, first.error) == (202, "queued", None)
    assert second.status_code == 202
    assert raw.connections == 2


@pytest.mark.parametrize(
    ("script", "error"),
    [
        (answer(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"), "not valid HTTP"),
        (answer(b"", close=True), "closed before an answer"),
        (answer(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nBad Header\r\n\r\nhello"), "HTTP"),
        (lambda request: (None, False), "no answer within 1 s"),
    ],
    ids=["not-http", "closed", "bad-header", "silent"],
)
def test_a_receiver_that_misbehaves_gives_a_failed_attempt(
    raw: RawReceiver, sender: Sender, script: Script, error: str
) -> None:
    raw.script = lambda n: script
    outcome = sender.send(job(raw.url))
    assert outcome.status_code is None
    assert outcome.error is not None and error in outcome.error, outcome.error
    raw.script = lambda n: answer(NO_CONTENT)
    assert sender.send(job(raw.url, 2)).status_code == 204, "the sender goes on"


def test_a_drip_fed_answer_times_out(raw: RawReceiver, sender: Sender) -> None:
    def drip(request: bytes) -> tuple[bytes | None, bool]:
        return b"HTTP/1.1 200 OK\r\n" + b"x-pad: y\r\n" * 2, False  # then never finishes

    raw.script = lambda n: drip
    outcome = sender.send(job(raw.url))
    assert outcome.status_code is None and outcome.error is not None
    assert "no answer within 1 s" in outcome.error, "the answer's timer, not the connection's"


def test_refusals_and_unreachable_targets(sender: Sender) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    refused = sender.send(job(f"http://127.0.0.1:{port}/x"))
    assert refused.status_code is None and "Connection" in (refused.error or "")
    strict = Sender(timeout=1.0, allow_private=False, pool_size=1)
    try:
        private = strict.send(job("http://10.1.2.3/x"))
        loopback = strict.send(job("http://localhost:8080/x"))
    finally:
        strict.close()
    assert private.error == "refused: the host is a private address (10.1.2.3)"
    assert loopback.error is not None and loopback.error.startswith("refused:")


def test_unsolicited_bytes_on_an_idle_connection_drop_it(raw: RawReceiver, sender: Sender) -> None:
    raw.script = lambda n: answer(NO_CONTENT + b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
    assert sender.send(job(raw.url, 1)).status_code == 204
    time.sleep(0.2)  # the stray answer arrives while nothing is asked
    assert sender.send(job(raw.url, 2)).status_code == 204
    assert raw.connections == 2


def test_submit_reports_every_job_once(raw: RawReceiver, sender: Sender) -> None:
    raw.script = lambda n: answer(NO_CONTENT if n % 3 else b"HTTP/1.1 500 No\r\n\r\n", n % 3 == 0)
    seen: list[tuple[str, int | None]] = []
    lock = threading.Lock()
    finished = threading.Event()
    jobs = [job(raw.url, n) for n in range(60)]

    def done(job: Job, outcome: Outcome | None) -> None:
        assert outcome is not None
        with lock:
            seen.append((job.delivery_id, outcome.status_code))
            if len(seen) == len(jobs):
                finished.set()

    sender.submit(jobs[:30], done)
    sender.submit(jobs[30:], done)
    assert finished.wait(20)
    assert sorted(d for d, _ in seen) == sorted(j.delivery_id for j in jobs)
    assert {status for _, status in seen} == {204, 500}
    assert sender.send_all([]) == []


def test_no_more_attempts_at_once_than_the_pool_allows(raw: RawReceiver) -> None:
    lock = threading.Lock()
    busy = [0, 0]  # now, most

    def slow(request: bytes) -> tuple[bytes | None, bool]:
        with lock:
            busy[0] += 1
            busy[1] = max(busy)
        time.sleep(0.1)
        with lock:
            busy[0] -= 1
        return NO_CONTENT, False

    raw.script = lambda n: slow
    sender = Sender(timeout=5, allow_private=True, pool_size=2)
    try:
        outcomes = sender.send_all([job(raw.url, n) for n in range(8)])
    finally:
        sender.close()
    assert [o.status_code for o in outcomes] == [204] * 8
    assert busy[1] == 2 and raw.connections == 2, "two at a time, on two kept connections"
