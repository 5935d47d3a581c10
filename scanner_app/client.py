"""The device's HTTP client for the sync server: enrolment, event list, pull and push, speaking
the `shared.sync` wire types.

Failures are sorted into what the sync loop acts on: `Unreachable` (network, timeout, 5xx: keep
everything and retry later), `Revoked` (401: this device must erase its data and stop),
`WipeOrdered` (410 `device_wiped`: the organizer ordered this device wiped), `MustRefetch` (410
on pull: download the snapshot again) and `ServerRefused` (any other 4xx).
Each carries a `scanner_app.errors.Problem` code for the screens.

`ServerClient(url, token, transport=httpx.MockTransport(...))` runs without a socket.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from scanner_app import __version__
from scanner_app.errors import Problem
from shared.sync import (
    PENDING_HEADER,
    PULL_PAGE,
    PUSH_RESPONSE,
    SYNC_EVENTS,
    EventConfig,
    PullPage,
    PushRequest,
    PushResponse,
    WipeReport,
    WireError,
    encode,
)

__all__ = [
    "MustRefetch",
    "Revoked",
    "ServerClient",
    "ServerRefused",
    "SyncError",
    "Unreachable",
    "WipeOrdered",
]


class SyncError(Exception):
    """Base of the client's errors; `str()` is a line fit for a log, `code` says what it is and
    `error_code` is the server's own code when it answered one."""

    code = Problem.UNREACHABLE
    error_code: str | None = None

    def __init__(self, message: str, code: Problem | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class Unreachable(SyncError):
    pass


class Revoked(SyncError):
    code = Problem.UNAUTHORIZED


class WipeOrdered(Revoked):
    code = Problem.WIPED


class MustRefetch(SyncError):
    code = Problem.MUST_REFETCH


class ServerRefused(SyncError):
    code = Problem.REFUSED

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"server refused ({status} {code}): {message}")
        self.status, self.error_code = status, code


def _error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
        err = body.get("error") or {}
        return str(err.get("code", "error")), str(err.get("message", response.reason_phrase))
    except (ValueError, AttributeError):
        return "error", response.reason_phrase or f"HTTP {response.status_code}"


class ServerClient:
    """One keep-alive connection pool per client; safe to share between two threads."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        pending: Any = None,
    ) -> None:
        """`pending()`, when given, is how many items the device queues: sent with each request
        so that the server knows what a device that goes missing still held."""
        self.base_url = base_url.rstrip("/")
        self.pending = pending
        headers = {"X-Doorcheck-App-Version": f"doorcheck-scanner/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            follow_redirects=False,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def _call(
        self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any
    ) -> httpx.Response:
        try:
            extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
            if self.pending is not None:
                headers = dict(kwargs.pop("headers", None) or {})
                headers[PENDING_HEADER] = str(int(self.pending()))
                extra["headers"] = headers
            response = self.http.request(method, path, **extra, **kwargs)
        except httpx.TimeoutException:
            raise Unreachable(f"{self.base_url} did not answer in time", Problem.TIMEOUT) from None
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach {self.base_url}: {exc.__class__.__name__}") from None
        if response.status_code >= 500:
            raise Unreachable(
                f"server error {response.status_code} at {self.base_url}", Problem.SERVER_ERROR
            )
        if response.status_code == 401:
            code, message = _error_of(response)
            revoked = Revoked(f"this device is no longer allowed ({code}): {message}")
            revoked.error_code = code
            raise revoked
        if response.status_code == 410:
            code, message = _error_of(response)
            if code == "device_wiped":
                wiped = WipeOrdered(f"the organizer wiped this device: {message}")
                wiped.error_code = code
                raise wiped
            raise MustRefetch("the server asks for a fresh download")
        if response.status_code >= 400:
            code, message = _error_of(response)
            raise ServerRefused(response.status_code, code, message)
        return response

    def _decode(self, decoder: Any, response: httpx.Response) -> Any:
        try:
            return decoder.decode(response.content)
        except WireError:
            raise Unreachable(
                "the server answered something this app cannot read", Problem.SERVER_ERROR
            ) from None

    def enroll(self, code: str, name: str) -> dict[str, Any]:
        response = self._call("POST", "/v1/devices/enroll", json={"code": code, "name": name})
        try:
            return dict(response.json())
        except (ValueError, json.JSONDecodeError):
            raise Unreachable("the server answered something that is not JSON") from None

    def events(self) -> list[EventConfig]:
        return list(self._decode(SYNC_EVENTS, self._call("GET", "/v1/sync/events")).data)

    def pull(
        self, event_id: str, cursor: str | None, *, limit: int = 5000, wait: int = 0
    ) -> PullPage:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        if wait:
            params["wait"] = wait
        response = self._call(
            "GET", f"/v1/sync/events/{event_id}/pull", params=params, timeout=wait + 15.0
        )
        page: PullPage = self._decode(PULL_PAGE, response)
        return page

    def push(self, request: PushRequest) -> PushResponse:
        response = self._call(
            "POST",
            "/v1/sync/push",
            content=encode(request),
            headers={"Content-Type": "application/json"},
            timeout=60.0,
        )
        answer: PushResponse = self._decode(PUSH_RESPONSE, response)
        return answer

    def report_wipe(self, report: WipeReport) -> None:
        """Tell the server this device erased its data (and what was still queued)."""
        self._call(
            "POST",
            "/v1/sync/wiped",
            content=encode(report),
            headers={"Content-Type": "application/json"},
        )
