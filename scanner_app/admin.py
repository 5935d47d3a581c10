"""The admin's conflicts, read and resolved from a door device (SPEC section 7): an admin API key
typed on the device (the device token alone cannot see conflicts). The gate offers this to the
app; the app never talks to the server itself.
"""

from __future__ import annotations

from typing import Any

import httpx

from scanner_app.errors import GateError, Problem
from shared.conflicts import Resolution

__all__ = ["AdminClient", "AdminError"]


class AdminError(GateError):
    """A plain sentence for the admin screen, with its code."""

    def __init__(self, message: str, code: Problem = Problem.REFUSED) -> None:
        super().__init__(code, message)


class AdminClient:
    def __init__(
        self,
        server_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.http = httpx.Client(
            base_url=server_url.rstrip("/"),
            headers={"Authorization": f"Bearer {api_key.strip()}"},
            timeout=timeout,
            follow_redirects=False,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise AdminError(
                f"cannot reach the server ({exc.__class__.__name__})", Problem.UNREACHABLE
            ) from None
        if response.status_code in (401, 403):
            raise AdminError(
                "this key is not an admin API key of this organization", Problem.NOT_ADMIN
            )
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                message = f"{error['message']} ({error['code']})"
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {response.status_code}"
            raise AdminError(message)
        return response.json()

    def conflicts(self, event_id: str, status: str = "open") -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {"status": status, "limit": 100}
        while True:
            page = self._call("GET", f"/v1/events/{event_id}/conflicts", params=params)
            out.extend(page["data"])
            if not page.get("has_more") or len(out) >= 1000:
                return out
            params["cursor"] = page["next_cursor"]

    def conflict(self, conflict_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/v1/conflicts/{conflict_id}"))

    def resolve(self, conflict_id: str, resolution: str, note: str = "") -> dict[str, Any]:
        if resolution not in set(Resolution):
            raise AdminError(f"unknown resolution {resolution!r}")
        body = {"resolution": resolution, "note": note.strip() or None}
        return dict(self._call("POST", f"/v1/conflicts/{conflict_id}/resolve", json=body))
