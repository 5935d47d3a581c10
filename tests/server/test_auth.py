"""Authentication, scopes and API keys over real HTTP, and the walk over every route of the app
with another organization's ids: each answers 404 exactly as for a missing id."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from shared import ids
from shared.hlc import HLC
from sync_server.models.base import new_id
from tests.server.conftest import (
    Api,
    Org,
    add_attendee,
    api_routes,
    assert_error,
    scan,
    setup_event,
)


def _client(api: Api, headers: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=api.url, timeout=30, headers=headers)


def test_missing_garbage_and_revoked_keys(api: Api, org: Org) -> None:
    well_formed_unknown = "dk_live_" + "A" * 43
    device_shaped = "dk_dev_" + "B" * 43
    revoked = org.key("read")
    key_id = next(
        k["id"]
        for k in org.client.get("/v1/api-keys").json()["data"]
        if k["prefix"] == revoked[:12]
    )
    assert org.client.delete(f"/v1/api-keys/{key_id}").status_code == 204
    for headers in [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {org.admin_key}"},
        {"Authorization": f"Token {org.admin_key}"},
        {"Authorization": "Bearer garbage"},
        {"Authorization": f"Bearer {org.admin_key[:-1]}"},
        {"Authorization": f"Bearer {org.admin_key}x"},
        {"Authorization": f"Bearer {'dk_live_' + 'x' * 5000}"},
        {"Authorization": f"Bearer {well_formed_unknown}"},
        {"Authorization": f"Bearer {device_shaped}"},
        {"Authorization": f"Bearer {revoked}"},
        {"X-API-Key": revoked},
        {"X-API-Key": "' OR 1=1 --"},
        {"X-API-Key": ""},
    ]:
        with _client(api, headers) as client:
            for method, path in (
                ("GET", "/v1/events"),
                ("POST", "/v1/events"),
                ("GET", "/v1/api-keys"),
                ("GET", "/v1/events/evt_x/stats"),
            ):
                response = client.request(method, path, json={"name": "x", "slug": "x"})
                assert_error(response, 401, "invalid_api_key")
                assert response.headers["www-authenticate"] == "Bearer", headers
                assert "x-ratelimit-limit" not in response.headers


def test_bearer_and_x_api_key(api: Api, org: Org) -> None:
    for headers in [
        {"Authorization": f"Bearer {org.admin_key}"},
        {"Authorization": f"bearer {org.admin_key}"},
        {"Authorization": f"Bearer  {org.admin_key}"},
        {"X-API-Key": org.admin_key},
        # A foreign scheme in Authorization does not hide a good X-API-Key.
        {"Authorization": "Basic dXNlcjpwYXNz", "X-API-Key": org.admin_key},
    ]:
        with _client(api, headers) as client:
            response = client.get("/v1/events")
            assert response.status_code == 200, (headers, response.text)
            assert response.json()["object"] == "list"


def test_scopes(api: Api, org: Org) -> None:
    s = setup_event(org)
    eid, gate = s["id"], s["gate_a"]["id"]
    person = add_attendee(org, eid)
    readers = org.as_key(org.key("read"))
    writers = org.as_key(org.key("write"))
    both = org.as_key(org.key("read", "write"))
    hooks = org.as_key(org.key("webhooks"))
    reads = [
        f"/v1/events/{eid}",
        f"/v1/events/{eid}/attendees",
        f"/v1/events/{eid}/scans",
        f"/v1/events/{eid}/stats",
        f"/v1/events/{eid}/zones",
        "/v1/events",
        f"/v1/events/{eid}/attendees/{person['id']}/qr.png",
    ]
    writes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("POST", "/v1/events", {"name": "N", "slug": "n"}),
        ("PATCH", f"/v1/events/{eid}", {"name": "Renamed"}),
        ("POST", f"/v1/events/{eid}/zones", {"name": "Z"}),
        (
            "POST",
            f"/v1/events/{eid}/registrations",
            {"first_name": "R", "last_name": "S", "ticket_type": "general"},
        ),
        ("PATCH", f"/v1/events/{eid}/attendees/{person['id']}", {"tags": ["x"]}),
        ("POST", f"/v1/checkpoints/{gate}/scans", {"code": "nothing"}),
    ]
    for path in reads:
        assert readers.get(path).status_code == 200, path
        assert both.get(path).status_code == 200, path
        assert_error(hooks.get(path), 403, "insufficient_scope")
    for method, path, body in writes:
        assert_error(readers.request(method, path, json=body), 403, "insufficient_scope")
        assert_error(hooks.request(method, path, json=body), 403, "insufficient_scope")
        ok = writers.request(method, path, json=body)
        assert ok.status_code in (200, 201), (path, ok.text)
    assert_error(
        readers.delete(f"/v1/events/{eid}/attendees/{person['id']}"), 403, "insufficient_scope"
    )
    # A refused write changed nothing.
    assert org.client.get(f"/v1/events/{eid}/attendees/{person['id']}").json()["tags"] == ["x"]
    # Only admin keys manage keys.
    for client in (readers, writers, both, hooks):
        assert_error(client.get("/v1/api-keys"), 403, "insufficient_scope")
        assert_error(
            client.post("/v1/api-keys", json={"name": "x", "scopes": ["admin"]}),
            403,
            "insufficient_scope",
        )
        assert_error(client.delete("/v1/api-keys/key_x"), 403, "insufficient_scope")
    error = assert_error(readers.post("/v1/events", json={}), 403, "insufficient_scope")
    assert "write" in error["message"]
    for client in (readers, writers, both, hooks):
        client.close()


def test_api_keys(api: Api, org: Org) -> None:
    c = org.client
    created = c.post("/v1/api-keys", json={"name": "Box office", "scopes": ["read", "write"]})
    assert created.status_code == 201, created.text
    key = created.json()
    token = key["key"]
    assert re.fullmatch(r"dk_live_[A-Za-z0-9_-]{43}", token)
    assert key["id"].startswith("key_") and key["prefix"] == token[:12]
    assert (key["name"], key["scopes"], key["last_used_at"], key["revoked_at"]) == (
        "Box office",
        ["read", "write"],
        None,
        None,
    )

    listed = c.get("/v1/api-keys")
    assert listed.status_code == 200
    assert token not in listed.text and token[12:] not in listed.text
    rows = {k["id"]: k for k in listed.json()["data"]}
    assert set(rows) >= {key["id"]} and len(rows) == 2  # with the admin key
    assert all("key" not in k and "key_hash" not in k for k in rows.values())
    assert rows[key["id"]]["last_used_at"] is None

    with org.as_key(token) as box_office:
        assert box_office.get("/v1/events").status_code == 200
        used = {k["id"]: k for k in c.get("/v1/api-keys").json()["data"]}[key["id"]]
        assert used["last_used_at"] is not None
        assert used["last_used_at"] >= key["created_at"]

        assert c.delete(f"/v1/api-keys/{key['id']}").status_code == 204
        assert_error(box_office.get("/v1/events"), 401, "invalid_api_key")  # at once
    revoked = {k["id"]: k for k in c.get("/v1/api-keys").json()["data"]}[key["id"]]
    assert revoked["revoked_at"] is not None
    assert c.delete(f"/v1/api-keys/{key['id']}").status_code == 204  # revoking twice is fine
    assert_error(c.delete("/v1/api-keys/key_missing"), 404, "not_found")
    assert_error(c.delete(f"/v1/api-keys/{'k' * 41}"), 404, "not_found")

    for bad in (
        {"name": "x", "scopes": []},
        {"name": "x", "scopes": ["root"]},
        {"name": "x", "scopes": ["scan"]},  # device tokens only
        {"name": "", "scopes": ["read"]},
        {"scopes": ["read"]},
        {"name": "x", "scopes": "read"},
        {"name": "x", "scopes": ["read"], "key": "mine"},
        {"name": "n\u0000", "scopes": ["read"]},
    ):
        assert_error(c.post("/v1/api-keys", json=bad), 422, "validation_error")

    # An admin may revoke its own key; the next call is refused.
    own = next(k for k in c.get("/v1/api-keys").json()["data"] if k["prefix"] == org.admin_key[:12])
    assert c.delete(f"/v1/api-keys/{own['id']}").status_code == 204
    assert_error(c.get("/v1/api-keys"), 401, "invalid_api_key")


# Routes anyone may call: the probes, and a device trading its one-time enrolment code.
PUBLIC = {"healthz", "readyz", "enroll_device"}


def test_every_route_needs_a_key_with_the_right_scope(api: Api, org: Org) -> None:
    hooks_only = org.key("webhooks")
    checked = 0
    for method, path, operation_id in api_routes(api.app):
        if operation_id in PUBLIC:
            continue
        url = re.sub(r"\{\w+\}", "x_missing", path)
        body = {} if method in ("POST", "PATCH", "PUT") else None
        with _client(api, {}) as anonymous:
            assert_error(anonymous.request(method, url, json=body), 401, "invalid_api_key")
        if not path.startswith("/v1/webhooks"):
            with _client(api, {"X-API-Key": hooks_only}) as hooks:
                response = hooks.request(method, url, json=body)
                assert response.status_code == 403, (method, path, response.text)
                assert_error(response, 403, "insufficient_scope")
        checked += 1
    assert checked >= 25


# --- every route, with another organization's ids ------------------------------------------


def _world(api: Api, org: Org, email: str) -> dict[str, str]:
    """Real resources of `org`, one of each kind, keyed by what a path parameter names."""
    s = setup_event(org)
    person = add_attendee(org, s["id"], email=email)
    scan(org.client, s["gate_a"]["id"], person["qr"])
    spare = org.client.post("/v1/api-keys", json={"name": "spare", "scopes": ["read"]}).json()
    world = {
        "event": s["id"],
        "ticket-types": s["general"]["id"],
        "zones": s["zone"]["id"],
        "checkpoints": s["gate_b"]["id"],
        "attendees": person["id"],
        "api-keys": spare["id"],
        "spare_key": spare["key"],
    }
    operations = {operation for _, _, operation in api_routes(api.app)}
    if "create_device" in operations:
        world.update(_device_and_conflict(api, org, s, "get_conflict" in operations))
    if "create_webhook" in operations:
        world.update(_webhook_and_delivery(org))
    return world


def _webhook_and_delivery(org: Org) -> dict[str, str]:
    """A webhook endpoint of `org` (never reachable: no network here) and one delivery to it."""
    created = org.client.post(
        "/v1/webhooks", json={"url": "https://hooks.example.com/in", "events": ["checkin.accepted"]}
    )
    assert created.status_code == 201, created.text
    webhook = created.json()["id"]
    assert org.client.post(f"/v1/webhooks/{webhook}/test").status_code == 202
    deliveries = org.client.get(f"/v1/webhooks/{webhook}/deliveries").json()["data"]
    return {"webhooks": webhook, "deliveries": deliveries[0]["id"]}


def _device_and_conflict(api: Api, org: Org, s: dict[str, Any], conflicts: bool) -> dict[str, str]:
    """A device of `org`; with `conflicts`, one conflict: the device admitted, offline, a
    ticket the server had revoked."""
    created = org.client.post("/v1/devices", json={"name": "Gate phone"})
    assert created.status_code == 201, created.text
    device = created.json()
    found = {"devices": str(device["id"])}
    if not conflicts:
        return found
    enrolled = httpx.post(
        f"{api.url}/v1/devices/enroll",
        json={"code": device["enrollment_code"], "name": "Gate phone"},
    )
    assert enrolled.status_code == 200, enrolled.text
    revoked = add_attendee(org, s["id"], status="revoked")
    now = datetime.now(UTC)
    item = {
        "id": str(uuid.uuid4()),
        "event_id": s["id"],
        "checkpoint_id": s["gate_a"]["id"],
        "code": revoked["qr"],
        "direction": "in",
        "scanned_at": now.isoformat(),
        "hlc": HLC(int(now.timestamp() * 1000), 0, device["id"]).encode(),
        "device_verdict": {"status": "accepted", "reason": "ok"},
    }
    pushed = httpx.post(
        f"{api.url}/v1/sync/push",
        json={"device_time": now.isoformat(), "scans": [item]},
        headers={"Authorization": f"Bearer {enrolled.json()['device_token']}"},
    )
    assert pushed.status_code == 200, pushed.text
    found["conflicts"] = str(pushed.json()["results"][0]["conflict_id"])
    assert found["conflicts"].startswith("cfl_"), pushed.text
    return found


PREFIX_OF = {
    "event": ids.EVENT,
    "ticket-types": ids.TICKET_TYPE,
    "zones": ids.ZONE,
    "checkpoints": ids.CHECKPOINT,
    "attendees": ids.ATTENDEE,
    "api-keys": ids.API_KEY,
    "devices": ids.DEVICE,
    "conflicts": ids.CONFLICT,
    "webhooks": ids.WEBHOOK_ENDPOINT,
    "deliveries": ids.DELIVERY,
}
# Bodies that pass validation, for routes that validate their body before the id lookup.
BODIES: dict[str, dict[str, Any]] = {
    "scan_online": {"code": "ANYTHING-1"},
    "resolve_conflict": {"resolution": "accept"},
}


def _stable(value: Any) -> Any:
    """A webhook answer without what the dispatcher may change while the walk runs."""
    volatile = {"failing_since", "disabled_reason", "updated_at"}
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in volatile}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _kind(path: str, param: str) -> str:
    """Which resource `{param}` names in `path`: `event_id` or the collection just before it."""
    if param == "event_id":
        return "event"
    segments = path.split("/")
    collection = segments[segments.index(f"{{{param}}}") - 1]
    assert collection in PREFIX_OF, (
        f"{path}: add a foreign resource for {{{param}}} to _world and PREFIX_OF"
    )
    return collection


def _walkable_routes(api: Api) -> list[tuple[str, str, str]]:
    """The routes that name a resource in their path."""
    return [r for r in api_routes(api.app) if "{" in r[1]]


def test_every_route_hides_other_organizations(api: Api, org: Org) -> None:
    other = api.new_org("Rival Events")
    theirs = _world(api, other, "secret@example.com")
    mine = _world(api, org, "mine@example.com")
    missing = {kind: new_id(prefix) for kind, prefix in PREFIX_OF.items()}
    event = f"/v1/events/{theirs['event']}"
    watched = [
        event,
        f"{event}/scans",
        f"{event}/stats",
        f"{event}/attendees",
        *(
            f"{event}/{kind}/{theirs[kind]}"
            for kind in ("ticket-types", "zones", "checkpoints", "attendees")
        ),
    ]
    if "devices" in theirs:
        watched.append("/v1/devices")
    if "conflicts" in theirs:
        watched.append(f"/v1/conflicts/{theirs['conflicts']}")
    if "webhooks" in theirs:
        watched += ["/v1/webhooks", f"/v1/webhooks/{theirs['webhooks']}"]
    before = {path: other.client.get(path).json() for path in watched}
    walked = []
    for method, path, operation_id in _walkable_routes(api):
        params = re.findall(r"\{(\w+)\}", path)
        kinds = {p: _kind(path, p) for p in params}
        # Each parameter foreign in turn (the others the caller's own), then all of them.
        cases = [{p} for p in params] + ([set(params)] if len(params) > 1 else [])
        for foreign in cases:

            def url(
                source: dict[str, str],
                foreign: set[str] = foreign,
                path: str = path,
                kinds: dict[str, str] = kinds,
            ) -> str:
                return path.format(
                    **{p: (source if p in foreign else mine)[kind] for p, kind in kinds.items()}
                )

            body = BODIES.get(operation_id, {}) if method in ("POST", "PATCH", "PUT") else None
            as_foreign = org.client.request(method, url(theirs), json=body)
            as_missing = org.client.request(method, url(missing), json=body)
            where = f"{method} {path} with foreign {sorted(foreign)}"
            assert as_foreign.status_code == 404, (where, as_foreign.text)
            assert_error(as_foreign, 404, "not_found")
            assert as_foreign.json() == as_missing.json(), where
            assert as_foreign.status_code == as_missing.status_code, where
            walked.append(where)
    operations = {operation for _, _, operation in _walkable_routes(api)}
    assert {
        "get_event",
        "delete_event",
        "update_attendee",
        "get_attendee_qr",
        "scan_online",
        "revoke_api_key",
        "delete_checkpoint",
        "list_scans",
        "get_event_stats",
    } <= operations
    assert len(walked) >= 30

    # Nothing of theirs changed, and nothing leaked into my lists.
    after = {path: other.client.get(path).json() for path in watched}
    for path in watched:
        if path.endswith("/stats"):
            before[path].pop("generated_at"), after[path].pop("generated_at")
        if path.startswith("/v1/webhooks"):  # a dispatcher may record failures meanwhile
            before[path], after[path] = _stable(before[path]), _stable(after[path])
        assert after[path] == before[path], path
    with other.as_key(theirs["spare_key"]) as spare:
        assert spare.get("/v1/events").status_code == 200  # not revoked by the walk
    c = org.client
    lists = [
        "/v1/events",
        "/v1/api-keys",
        f"/v1/events/{mine['event']}/attendees",
        f"/v1/events/{mine['event']}/scans",
    ]
    lists += ["/v1/devices"] if "devices" in mine else []
    lists += [f"/v1/events/{mine['event']}/conflicts"] if "conflicts" in mine else []
    if "webhooks" in mine:
        lists += ["/v1/webhooks", f"/v1/webhooks/{mine['webhooks']}/deliveries"]
    for path in lists:
        text = c.get(path).text
        assert "secret@example.com" not in text, path
        assert not any(theirs[k] in text for k in PREFIX_OF if k in theirs), path
    assert (
        c.get(
            f"/v1/events/{mine['event']}/scans", params={"checkpoint": theirs["checkpoints"]}
        ).json()["data"]
        == []
    )
    assert (
        c.get(f"/v1/events/{mine['event']}/attendees", params={"q": theirs["attendees"]}).json()[
            "data"
        ]
        == []
    )
    # Their zone cannot be attached to my checkpoint.
    error = assert_error(
        c.post(
            f"/v1/events/{mine['event']}/checkpoints",
            json={"name": "X", "zone_id": theirs["zones"]},
        ),
        422,
        "validation_error",
    )
    same = c.post(
        f"/v1/events/{mine['event']}/checkpoints", json={"name": "X", "zone_id": missing["zones"]}
    ).json()["error"]
    assert error == same
    other.client.close()
