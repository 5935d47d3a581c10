"""Gates racing each other over real HTTP: the same ticket at two gates of one zone is admitted
once, a capacity-N zone admits exactly N, and a retried scan id is recorded once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.server.conftest import Api, Org, add_attendee, setup_event


def _race(
    clients: list[httpx.Client], work: Callable[[int, httpx.Client], list[httpx.Response]]
) -> list[httpx.Response]:
    """Run `work(i, client)` for every client in its own thread, all released at once."""
    start = threading.Barrier(len(clients))

    def run(i: int) -> list[httpx.Response]:
        start.wait()
        return work(i, clients[i])

    with ThreadPoolExecutor(len(clients)) as pool:
        results = list(pool.map(run, range(len(clients))))
    return [r for batch in results for r in batch]


def _clients(org: Org, n: int) -> list[httpx.Client]:
    return [org.as_key(org.admin_key) for _ in range(n)]


def _all_scans(org: Org, event_id: str, **params: Any) -> list[dict[str, Any]]:
    rows, cursor = [], None
    while True:
        query = {"limit": 100, **params, **({"cursor": cursor} if cursor else {})}
        page = org.client.get(f"/v1/events/{event_id}/scans", params=query).json()
        rows += page["data"]
        if not page["has_more"]:
            return rows
        cursor = page["next_cursor"]


def test_one_ticket_at_two_gates_is_admitted_once(api: Api, org: Org) -> None:
    s = setup_event(org)
    eid, zone = s["id"], s["zone"]["id"]
    person = add_attendee(org, eid)
    gates = [s["gate_a"]["id"], s["gate_b"]["id"]]
    clients = _clients(org, 2)

    def fifty(i: int, client: httpx.Client) -> list[httpx.Response]:
        url = f"/v1/checkpoints/{gates[i]}/scans"
        return [client.post(url, json={"code": person["qr"]}) for _ in range(50)]

    responses = _race(clients, fifty)
    assert [r.status_code for r in responses] == [200] * 100, {r.text for r in responses}
    reasons = Counter(r.json()["verdict"]["reason"] for r in responses)
    assert reasons == {"ok": 1, "already_inside": 99}
    accepted = _all_scans(org, eid, status="accepted")
    assert len(accepted) == 1 and accepted[0]["attendee_id"] == person["id"]
    assert len(_all_scans(org, eid)) == 100
    assert org.client.get(f"/v1/events/{eid}/zones/{zone}").json()["occupancy"] == 1
    seen = org.client.get(f"/v1/events/{eid}/attendees/{person['id']}").json()
    assert seen["entries"] == 1 and seen["inside"] == {zone: True}
    for client in clients:
        client.close()


def test_a_full_zone_admits_exactly_its_capacity(api: Api, org: Org) -> None:
    capacity, people = 7, 24
    s = setup_event(org, zone_capacity=capacity)
    eid, zone = s["id"], s["zone"]["id"]
    tickets = [add_attendee(org, eid)["qr"] for _ in range(people)]
    gates = [s["gate_a"]["id"], s["gate_b"]["id"]]
    clients = _clients(org, 4)

    def share(i: int, client: httpx.Client) -> list[httpx.Response]:
        url = f"/v1/checkpoints/{gates[i % 2]}/scans"
        return [client.post(url, json={"code": code}) for code in tickets[i::4]]

    responses = _race(clients, share)
    assert [r.status_code for r in responses] == [200] * people, {r.text for r in responses}
    reasons = Counter(r.json()["verdict"]["reason"] for r in responses)
    assert reasons == {"ok": capacity, "zone_full": people - capacity}
    assert len(_all_scans(org, eid, status="accepted")) == capacity
    assert org.client.get(f"/v1/events/{eid}/zones/{zone}").json()["occupancy"] == capacity
    stats = org.client.get(f"/v1/events/{eid}/stats").json()
    assert stats["unique_attendees_in"] == capacity
    assert stats["denied_by_reason"] == {"zone_full": people - capacity}
    for client in clients:
        client.close()


def test_a_retried_scan_id_is_recorded_once(api: Api, org: Org) -> None:
    s = setup_event(org)
    eid = s["id"]
    person = add_attendee(org, eid)
    lobby = org.client.post(f"/v1/events/{eid}/checkpoints", json={"name": "Lobby"}).json()["id"]
    clients = _clients(org, 4)
    ids = [f"retry-{n:04d}-{'x' * 8}" for n in range(10)]

    def retry(i: int, client: httpx.Client) -> list[httpx.Response]:
        # Every client sends the same ids, as a flaky network retrying the same readings would;
        # the lobby has no zone, so nothing but the id itself orders the racing requests.
        return [
            client.post(
                f"/v1/checkpoints/{lobby}/scans",
                json={"code": person["qr"] if n == 0 else f"NOPE-{n}", "id": scan_id},
            )
            for n, scan_id in enumerate(ids)
        ]

    responses = _race(clients, retry)
    assert [r.status_code for r in responses] == [200] * 40, {r.text for r in responses}
    by_id: dict[str, set[str]] = {}
    for r in responses:
        body = r.json()
        by_id.setdefault(body["scan_id"], set()).add(repr(sorted(body["verdict"].items())))
    assert sorted(by_id) == sorted(ids)
    assert all(len(answers) == 1 for answers in by_id.values())  # everyone got the first answer
    log = _all_scans(org, eid)
    assert sorted(r["id"] for r in log) == sorted(ids)
    assert org.client.get(f"/v1/events/{eid}/attendees/{person['id']}").json()["entries"] == 1
    for client in clients:
        client.close()
