"""Exports (SPEC section 13) over a real server: 10,000 attendees exported as JSON lines equal the
list page by page, CSV reads back through the import, the filters select what the list selects,
readings export too, and bad filters are refused with the envelope."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx

from tests.server.conftest import Org, add_attendee, assert_error, scan, setup_event


def _import(org: Org, eid: str, rows: int) -> None:
    lines = ["first_name,last_name,email,ticket_type,tags,custom.seat"]
    lines += [
        f"P{n},Q{n},p{n}@example.com,{'vip' if n % 7 == 0 else 'general'},"
        f"{'press' if n % 3 == 0 else ''},S{n}"
        for n in range(rows)
    ]
    response = org.client.post(
        f"/v1/events/{eid}/attendees/import",
        content="\n".join(lines).encode(),
        headers={"Content-Type": "text/csv"},
        timeout=120,
    )
    assert response.status_code == 200 and response.json()["created"] == rows, response.text


def _listed(org: Org, path: str, **params: Any) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        page = org.client.get(path, params={**params, "limit": 100, "cursor": cursor}).json()
        items += page["data"]
        if not page["has_more"]:
            return items
        cursor = page["next_cursor"]


def test_ten_thousand_attendees_export_as_the_list_shows_them(org: Org) -> None:
    setup = setup_event(org)
    eid = setup["id"]
    _import(org, eid, 10_000)
    with org.client.stream("GET", f"/v1/events/{eid}/attendees/export?format=jsonl") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        exported = [json.loads(line) for line in response.iter_lines() if line]
    assert exported == _listed(org, f"/v1/events/{eid}/attendees")
    vip = org.client.get(
        f"/v1/events/{eid}/attendees/export?format=jsonl&ticket_type=vip&tag=press"
    )
    selected = [json.loads(line) for line in vip.text.splitlines()]
    assert selected == _listed(org, f"/v1/events/{eid}/attendees", ticket_type="vip", tag="press")
    assert len(selected) == len([n for n in range(10_000) if n % 21 == 0])


def test_csv_export_reads_back_through_the_import(org: Org) -> None:
    eid = setup_event(org)["id"]
    add_attendee(
        org,
        eid,
        email="ana@example.com",
        tags=["press", "speaker"],
        custom_data={"seat": "A1"},
        company="=HYPERLINK(1)",
    )
    add_attendee(org, eid, first_name="Bo", email="bo@example.com", ticket_type="vip")
    response = org.client.get(f"/v1/events/{eid}/attendees/export")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["email"] for r in rows] == ["bo@example.com", "ana@example.com"]
    ana = rows[1]
    assert ana["tags"] == "press;speaker" and ana["custom.seat"] == "A1"
    assert ana["company"] == "'=HYPERLINK(1)"  # never a formula in a spreadsheet
    again = org.client.post(
        f"/v1/events/{eid}/attendees/import",
        content=response.content.replace(b"'=HYPERLINK", b"=HYPERLINK"),
        headers={"Content-Type": "text/csv"},
    )
    assert again.status_code == 200, again.text
    assert again.json()["unchanged"] == 2 and again.json()["created"] == 0, again.json()


def test_readings_export_with_filters(org: Org) -> None:
    setup = setup_event(org)
    eid = setup["id"]
    people = [add_attendee(org, eid, email=f"r{n}@example.com") for n in range(3)]
    for person in people:
        scan(org.client, setup["gate_a"]["id"], person["qr"])
    scan(org.client, setup["gate_b"]["id"], "nope")
    exported = org.client.get(f"/v1/events/{eid}/scans/export?format=jsonl").text.splitlines()
    assert [json.loads(x) for x in exported] == _listed(org, f"/v1/events/{eid}/scans")
    denied = org.client.get(f"/v1/events/{eid}/scans/export", params={"status": "denied"})
    rows = list(csv.DictReader(io.StringIO(denied.text)))
    assert [r["reason"] for r in rows] == ["unknown_code"]
    by_gate = org.client.get(
        f"/v1/events/{eid}/scans/export", params={"checkpoint": setup["gate_a"]["id"]}
    )
    assert len(list(csv.DictReader(io.StringIO(by_gate.text)))) == 3


def test_bad_export_requests_are_refused(org: Org) -> None:
    eid = setup_event(org)["id"]
    base = f"/v1/events/{eid}/attendees/export"
    for params in (
        {"format": "xlsx"},
        {"status": "gone"},
        {"q": "x" * 500},
        {"checked_in": "maybe"},
        {"format": "csv\x00"},
    ):
        assert_error(org.client.get(base, params=params), 422, "validation_error")
    assert_error(org.client.get(base, params={"ticket_type": "nope"}), 422, "validation_error")
    assert_error(org.client.get("/v1/events/evt_nope/scans/export"), 404, "not_found")
    anonymous = httpx.get(f"{org.client.base_url}{base}")
    assert_error(anonymous, 401, "invalid_api_key")
    empty = org.client.get(base)
    assert empty.status_code == 200 and empty.text.count("\r\n") == 1  # the header alone
