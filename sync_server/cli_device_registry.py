"""Where `doorcheck devices` finds the devices: the `/v1/devices` API of a running server
(`--server` with an admin key) or a database worked on directly (`--db`), as one `Registry`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import quote, unquote

import typer

from sync_server.cli_server import fail, settings_for

if TYPE_CHECKING:
    import httpx
    from sqlmodel import Session

__all__ = ["DEFAULT_SERVER_URL", "Registry", "Source", "open_registry", "usage"]

DEFAULT_SERVER_URL = "http://127.0.0.1:8000"
PAGE_SIZE = 100


def usage(message: str) -> typer.Exit:
    """Bad usage: one line on stderr and exit code 2."""
    typer.echo(f"doorcheck: {message} (see --help)", err=True)
    return typer.Exit(2)


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


@dataclass(frozen=True)
class Source:
    """Where the devices live: a server and its admin key, or a database URL."""

    server: str | None = None
    api_key: str | None = None
    db: str | None = None
    org: str | None = None
    server_url: str | None = None  # --db only: the server the pairing URI points scanners at

    def check(self) -> None:
        if (self.server is None) == (self.db is None):
            raise usage("give either --server URL --api-key KEY, or --db URL")
        if self.server is not None:
            if not self.api_key:
                raise usage("--server needs --api-key (or $DOORCHECK_API_KEY)")
            if self.org is not None or self.server_url is not None:
                raise usage(
                    "--org and --server-url go with --db; the API key picks the "
                    "organization and the server its own URL"
                )
        if self.server_url is not None and not self.server_url.startswith(("http://", "https://")):
            raise usage("--server-url must start with http:// or https://")


class Registry(Protocol):
    def create(self, name: str) -> dict[str, Any]: ...
    def devices(self) -> list[dict[str, Any]]: ...
    def revoke(self, device_id: str) -> None: ...
    def wipe(self, device_id: str) -> dict[str, Any]: ...


@contextmanager
def open_registry(source: Source) -> Iterator[Registry]:
    """The registry `source` names, once its options are checked (bad usage exits with 2)."""
    source.check()
    if source.server is not None:
        with _Remote.open(source.server.rstrip("/"), str(source.api_key)) as remote:
            yield remote
    else:
        with _Local.open(source) as local:
            yield local


def _enrolment(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "device_id": body["id"],
        "enrollment_code": body["enrollment_code"],
        "expires_at": body["enrollment_expires_at"],
        "pairing_uri": body["pairing_uri"],
    }


# --- over HTTP --------------------------------------------------------------------------------


class _Remote:
    """The `/v1/devices` API of a running server."""

    def __init__(self, server: str, client: httpx.Client) -> None:
        self.server, self.client = server, client

    @classmethod
    @contextmanager
    def open(cls, server: str, api_key: str) -> Iterator[_Remote]:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        try:
            client = httpx.Client(base_url=server, headers=headers, timeout=30)
        except httpx.InvalidURL as exc:
            raise usage(f"--server is not a usable URL: {exc}") from exc
        with client:
            yield cls(server, client)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self.client.request(method, path, **kwargs)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise usage(f"--server is not a usable URL: {exc}") from exc
        except httpx.TransportError as exc:
            raise fail(f"cannot reach the server at {self.server}: {_first_line(exc)}") from exc
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        if response.is_success:
            if response.status_code != 204 and not isinstance(body, dict):
                raise fail(
                    f"{self.server} did not answer like a doorcheck server "
                    f"(HTTP {response.status_code})"
                )
            return body
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict):
            raise fail(f"the server answered HTTP {response.status_code} without an explanation")
        if error.get("code") == "not_found" and path.startswith("/v1/devices/"):
            raise fail(f"no such device: {unquote(path.split('/')[3])}")
        raise fail(
            f"the server refused ({response.status_code} {error.get('code')}): "
            f"{error.get('message')}"
        )

    def create(self, name: str) -> dict[str, Any]:
        return _enrolment(self._call("POST", "/v1/devices", json={"name": name}))

    def devices(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            params = {"limit": PAGE_SIZE, **({"cursor": cursor} if cursor else {})}
            page = self._call("GET", "/v1/devices", params=params)
            found.extend(page.get("data") or [])
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not cursor or cursor in seen:
                return found
            seen.add(cursor)

    def revoke(self, device_id: str) -> None:
        self._call("DELETE", f"/v1/devices/{quote(device_id, safe='')}")

    def wipe(self, device_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self._call("POST", f"/v1/devices/{quote(device_id, safe='')}/wipe")
        return body


# --- on a database ----------------------------------------------------------------------------


class _Local:
    """The devices table of a database, through the same services the API uses."""

    def __init__(self, source: Source, session: Session) -> None:
        self.source, self.session = source, session
        self.settings = settings_for(source.db)

    @classmethod
    @contextmanager
    def open(cls, source: Source) -> Iterator[_Local]:
        from sqlalchemy.exc import SQLAlchemyError
        from sqlmodel import Session

        from sync_server.db import make_engine

        url = settings_for(source.db).db_url
        if url.startswith("sqlite:///") and not Path(url[10:]).exists():
            raise fail(f"no database at {url[10:]}")
        engine = make_engine(url)
        try:
            with Session(engine, expire_on_commit=False) as session:
                yield cls(source, session)
        except SQLAlchemyError as exc:
            reason = _first_line(getattr(exc, "orig", None) or exc)
            raise fail(f"cannot use the database: {reason}") from exc
        finally:
            engine.dispose()

    def _organization(self) -> str:
        from sqlmodel import select

        from sync_server.models import Organization

        if self.source.org is not None:
            found = self.session.get(Organization, self.source.org)
            if found is None:
                raise fail(f"no such organization: {self.source.org}")
            return found.id
        ids = list(self.session.exec(select(Organization.id).order_by(Organization.id).limit(6)))
        if not ids:
            raise fail("the database has no organization yet: run doorcheck init --org NAME")
        if len(ids) > 1:
            shown = ", ".join(ids[:5]) + (", …" if len(ids) > 5 else "")
            raise fail(f"the database holds several organizations ({shown}): pick one with --org")
        return ids[0]

    def create(self, name: str) -> dict[str, Any]:
        from sync_server.services.devices import create_enrolment

        settings = self.settings
        if not settings.secret_key and not (settings.data_dir / "secret.key").is_file():
            # A new secret here would hash a code the server can never match.
            raise fail(
                f"no server secret in {settings.data_dir.resolve()}: set "
                "DOORCHECK_SECRET_KEY or DOORCHECK_DATA_DIR as the server has them"
            )
        server_url = self.source.server_url or settings.public_url or DEFAULT_SERVER_URL
        enrolment = create_enrolment(
            self.session,
            organization_id=self._organization(),
            name=name,
            server_url=server_url,
            secret=settings.secret(),
        )
        body = _public(enrolment.device)
        return _enrolment(
            {**body, "enrollment_code": enrolment.code, "pairing_uri": enrolment.pairing_uri}
        )

    def devices(self) -> list[dict[str, Any]]:
        from sqlmodel import col, select

        from sync_server.models import Device

        query = (
            select(Device)
            .where(Device.organization_id == self._organization())
            .order_by(col(Device.created_at).desc(), col(Device.id).desc())
        )
        return [_public(device) for device in self.session.exec(query)]

    def _device(self, device_id: str) -> Any:
        from sync_server.models import Device

        device = self.session.get(Device, device_id) if len(device_id) <= 40 else None
        wrong_org = device is not None and self.source.org not in (None, device.organization_id)
        if device is None or wrong_org:
            raise fail(f"no such device: {device_id}")
        return device

    def revoke(self, device_id: str) -> None:
        from sync_server.services.devices import revoke_device

        revoke_device(self.session, self._device(device_id))

    def wipe(self, device_id: str) -> dict[str, Any]:
        from sync_server.services.devices import request_wipe

        return _public(request_wipe(self.session, self._device(device_id)))


def _public(device: Any) -> dict[str, Any]:
    """A device as the API shows it (same fields, same status rule)."""
    from sync_server.api.routes.devices import device_public

    body: dict[str, Any] = device_public(device).model_dump(mode="json")
    return body
