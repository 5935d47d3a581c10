"""The device's HTTP client for the sync server: enrolment, event list, pull and push.

Failures are sorted into what the sync loop acts on: `Unreachable` (network, timeout, 5xx: keep
everything and retry later), `Revoked` (401: this device must forget its attendees and stop),
`MustRefetch` (410 on pull: download the snapshot again) and `ServerRefused` (any other 4xx).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from scanner_app import __version__

__all__ = [
    "MustRefetch",
    "Revoked",
    "ServerClient",
    "ServerRefused",
    "SyncError",
    "Unreachable",
]


class SyncError(Exception):
    """Base of the client's errors; `str()` is a line fit for the door staff."""


class Unreachable(SyncError):
    pass


class Revoked(SyncError):
    pass


class MustRefetch(SyncError):
    pass


class ServerRefused(SyncError):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"server refused ({status} {code}): {message}")
        self.status, self.code = status, code


def _error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        body = response.json()
        err = body.get("error") or {}
        return str(err.get("code", "error")), str(err.get("message", response.reason_phrase))
    except (ValueError, AttributeError):
        return "error", response.reason_phrase or f"HTTP {response.status_code}"


class ServerClient:
    """One keep-alive connection pool per client; safe to share between two threads."""

    def __init__(self, base_url: str, token: str | None = None, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"X-Doorcheck-App-Version": f"doorcheck-scanner/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            follow_redirects=False,
        )

    def close(self) -> None:
        self.http.close()

    def _call(
        self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any
    ) -> httpx.Response:
        try:
            extra = {} if timeout is None else {"timeout": timeout}
            response = self.http.request(method, path, **extra, **kwargs)
        except httpx.TimeoutException:
            raise Unreachable(f"{self.base_url} did not answer in time") from None
        except httpx.TransportError as exc:
            raise Unreachable(f"cannot reach {self.base_url}: {exc.__class__.__name__}") from None
        if response.status_code >= 500:
            raise Unreachable(f"server error {response.status_code} at {self.base_url}")
        if response.status_code == 401:
            code, message = _error_of(response)
            raise Revoked(f"this device is no longer allowed ({code}): {message}")
        if response.status_code == 410:
            raise MustRefetch("the server asks for a fresh download")
        if response.status_code >= 400:
            code, message = _error_of(response)
            raise ServerRefused(response.status_code, code, message)
        return response

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except (ValueError, json.JSONDecodeError):
            raise Unreachable("the server answered something that is not JSON") from None

    def enroll(self, code: str, name: str) -> dict[str, Any]:
        return dict(
            self._json(self._call("POST", "/v1/devices/enroll", json={"code": code, "name": name}))
        )

    def events(self) -> list[dict[str, Any]]:
        return list(self._json(self._call("GET", "/v1/sync/events"))["data"])

    def pull(
        self, event_id: str, cursor: str | None, *, limit: int = 5000, wait: int = 0
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        if wait:
            params["wait"] = wait
        response = self._call(
            "GET", f"/v1/sync/events/{event_id}/pull", params=params, timeout=wait + 15.0
        )
        return dict(self._json(response))

    def push(
        self, device_time: str, scans: list[dict[str, Any]], registrations: list[dict[str, Any]]
    ) -> dict[str, Any]:
        body = {"device_time": device_time, "scans": scans, "registrations": registrations}
        return dict(self._json(self._call("POST", "/v1/sync/push", json=body, timeout=60.0)))
