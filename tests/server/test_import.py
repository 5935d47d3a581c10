"""Attendee import over real HTTP: CSV and JSON, upsert counts, row errors, atomic imports,
hostile rows, and imported tickets that scan at the door."""

from __future__ import annotations

import json
from typing import Any

import httpx
from sqlmodel import Session

from sync_server.models import Event
from sync_server.services.import_upload import parse_upload
from sync_server.services.imports import ImportOptions, import_attendees
from tests.server.conftest import Api, Org, setup_event

CSV = "text/csv"
JSON = "application/json"


def _import(
    client: httpx.Client, eid: str, body: str | bytes, content_type: str = CSV, **params: Any
) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    return client.post(
        f"/v1/events/{eid}/attendees/import",
        content=content,
        headers={"Content-Type": content_type},
        params=params,
    )


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["object"] == "import_result"
    return body


def _counts(body: dict[str, Any]) -> tuple[int, int, int]:
    return body["created"], body["updated"], body["unchanged"]


def _attendees(client: httpx.Client, eid: str) -> dict[str, dict[str, Any]]:
    """Every attendee of the event by email (or code when it has none)."""
    found: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"/v1/events/{eid}/attendees", params=params).json()
        for person in page["data"]:
            found[person["email"] or person["code"]] = person
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return found


PEOPLE = (
    "first_name,last_name,email,ticket_type,tags,custom.seat,company\n"
    "Ana,Ruiz,ana@example.com,vip,press;speaker,A12,Acme\n"
    "Bo,Lee,bo@example.com,general,,B3,\n"
    "Cy,Ng,cy@example.com,general,staff|crew,,Initech\n"
)


def test_csv_import_then_reimport_counts_created_updated_unchanged(api: Api, org: Org) -> None:
    c, eid = org.client, setup_event(org)["id"]
    first = _ok(_import(c, eid, PEOPLE))
    assert _counts(first) == (3, 0, 0) and first["errors"] == [] and first["failed"] == 0
    people = _attendees(c, eid)
    ana = people["ana@example.com"]
    assert ana["tags"] == ["press", "speaker"] and ana["custom_data"] == {"seat": "A12"}
    assert ana["ticket_type"] == "vip" and ana["source"] == "import" and ana["company"] == "Acme"
    assert ana["qr"].startswith("DC1")
    assert people["bo@example.com"]["tags"] == [] and people["bo@example.com"]["company"] is None
    assert people["cy@example.com"]["tags"] == ["staff", "crew"]
    assert people["cy@example.com"]["custom_data"] == {}

    assert _counts(_ok(_import(c, eid, PEOPLE))) == (0, 0, 3)

    changed = PEOPLE.replace("Bo,Lee,bo@", "Bob,Lee,BO@").replace("general,staff", "vip,staff")
    changed += "Di,Fox,di@example.com,general,,,\n"
    assert _counts(_ok(_import(c, eid, changed))) == (1, 2, 1)
    after = _attendees(c, eid)
    assert len(after) == 4
    assert after["BO@example.com"]["first_name"] == "Bob"
    assert after["BO@example.com"]["id"] == people["bo@example.com"]["id"]
    cy = after["cy@example.com"]
    assert cy["ticket_type"] == "vip" and cy["qr"] != people["cy@example.com"]["qr"]
    assert after["ana@example.com"]["updated_at"] == ana["updated_at"]


def test_json_import_with_custom_codes_upserts_by_code(api: Api, org: Org) -> None:
    c, eid = org.client, setup_event(org)["id"]
    rows: list[dict[str, Any]] = [
        {
            "first_name": "Eva",
            "last_name": "Kim",
            "code": "BADGE-001",
            "ticket_type": "general",
            "tags": ["vip-lounge"],
            "custom_data": {"meal": "veg", "n": 2},
        },
        {
            "first_name": "Finn",
            "last_name": "Wu",
            "email": "finn@example.com",
            "code": "BADGE-002",
            "ticket_type": "vip",
            "status": "cancelled",
        },
    ]
    assert _counts(_ok(_import(c, eid, json.dumps(rows), JSON))) == (2, 0, 0)
    people = _attendees(c, eid)
    assert people["BADGE-001"]["qr"] == "BADGE-001"
    assert people["BADGE-001"]["custom_data"] == {"meal": "veg", "n": 2}
    assert people["finn@example.com"]["status"] == "cancelled"
    assert _counts(_ok(_import(c, eid, json.dumps(rows), JSON))) == (0, 0, 2)

    rows[0] = {**rows[0], "email": "eva@example.com", "last_name": "Kim-Lee"}
    rows[1] = {**rows[1], "code": "BADGE-202"}
    assert _counts(_ok(_import(c, eid, json.dumps(rows), JSON))) == (0, 2, 0)
    after = _attendees(c, eid)
    assert after["eva@example.com"]["id"] == people["BADGE-001"]["id"]
    assert after["eva@example.com"]["last_name"] == "Kim-Lee"
    assert after["finn@example.com"]["qr"] == "BADGE-202"
    assert len(after) == 2
    # Columns a file leaves out keep their values: no code column, so codes stay.
    no_codes = "first_name,last_name,email,ticket_type\nFinn,Wu,finn@example.com,vip\n"
    assert _counts(_ok(_import(c, eid, no_codes))) == (0, 0, 1)
    assert _attendees(c, eid)["finn@example.com"]["code"] == "BADGE-202"


def test_bom_semicolons_crlf_and_a_charset_parameter(api: Api, org: Org) -> None:
    c, eid = org.client, setup_event(org)["id"]
    body = (
        "\ufeffFirst Name;Last Name;Email;Ticket Type;Tags;custom.Größe\r\n"
        "Zoë;Ñúñez;zoe@example.com;general;a|b;M\r\n"
        "\r\n"
        "Ümit;Öz;umit@example.com;vip;;XL\r\n"
    )
    result = _ok(_import(c, eid, body.encode("utf-8"), "text/csv; charset=utf-8"))
    assert _counts(result) == (2, 0, 0)
    people = _attendees(c, eid)
    assert people["zoe@example.com"]["first_name"] == "Zoë"
    assert people["zoe@example.com"]["tags"] == ["a", "b"]
    assert people["umit@example.com"]["custom_data"] == {"Größe": "XL"}
    latin = "first_name,last_name,ticket_type\nJosé,Peña,general\n".encode("cp1252")
    assert _counts(_ok(_import(c, eid, latin, "text/csv; charset=windows-1252"))) == (1, 0, 0)


def test_bad_rows_are_reported_by_row_number_and_good_rows_land(api: Api, org: Org) -> None:
    c, eid = org.client, setup_event(org)["id"]
    body = (
        "first_name,last_name,email,ticket_type,status\n"
        "Ok,One,one@example.com,general,\n"  # 1
        "Bad,Email,not-an-email,general,\n"  # 2
        "Bad,Type,type@example.com,platinum,\n"  # 3
        ",NoFirst,nofirst@example.com,general,\n"  # 4
        "Dup,Email,ONE@example.com,general,\n"  # 5
        "Bad,Status,status@example.com,general,gone\n"  # 6
        "Ok,Two,two@example.com,vip,Cancelled\n"  # 7
    )
    result = _ok(_import(c, eid, body))
    assert _counts(result) == (2, 0, 0) and result["failed"] == 5
    got = {(e["row"], e["field"]) for e in result["errors"]}
    assert got == {(2, "email"), (3, "ticket_type"), (4, "first_name"), (5, "email"), (6, "status")}
    dup = next(e for e in result["errors"] if e["row"] == 5)
    assert "row 1" in dup["message"]
    people = _attendees(c, eid)
    assert set(people) == {"one@example.com", "two@example.com"}
    assert people["two@example.com"]["status"] == "cancelled"


def test_atomic_import_writes_nothing_when_a_row_is_bad(api: Api, org: Org) -> None:
    c, eid = org.client, setup_event(org)["id"]
    body = "first_name,last_name,email,ticket_type\nA,B,a@example.com,general\nC,D,c@x,nope\n"
    response = _import(c, eid, body, atomic="true")
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error" and "nothing was imported" in error["message"]
    fields = {d["field"] for d in error["details"]}
    assert {"row 2: email", "row 2: ticket_type"} & fields
    assert all(d["field"].startswith("row 2: ") for d in error["details"])
    assert _attendees(c, eid) == {}
    good = "first_name,last_name,email,ticket_type\nA,B,a@example.com,general\n"
    assert _counts(_ok(_import(c, eid, good, atomic="true"))) == (1, 0, 0)


def test_clashes_with_existing_attendees_and_within_the_file(api: Api, org: Org) -> None:
    c, eid = org.client, setup_event(org)["id"]
    seed = [
        {
            "first_name": "A",
            "last_name": "A",
            "email": "a@example.com",
            "code": "CODE-A",
            "ticket_type": "general",
        },
        {
            "first_name": "B",
            "last_name": "B",
            "email": "b@example.com",
            "code": "CODE-B",
            "ticket_type": "general",
        },
    ]
    assert _counts(_ok(_import(c, eid, json.dumps(seed), JSON))) == (2, 0, 0)
    rows = [
        {
            "first_name": "X",
            "last_name": "X",
            "email": "a@example.com",
            "code": "CODE-B",
            "ticket_type": "general",
        },  # 1
        {"first_name": "N", "last_name": "N", "code": "NEW-1", "ticket_type": "general"},  # 2
        {"first_name": "M", "last_name": "M", "code": "NEW-1", "ticket_type": "vip"},  # 3
        {"first_name": "B2", "last_name": "B", "code": "CODE-B", "ticket_type": "general"},  # 4
        {
            "first_name": "B3",
            "last_name": "B",
            "email": "B@example.com",
            "ticket_type": "general",
        },  # 5
        "not an object",  # 6
        {"first_name": "Q", "last_name": "Q", "ticket_type": "general", "shoe": 42},  # 7
    ]
    result = _ok(_import(c, eid, json.dumps(rows), JSON))
    assert _counts(result) == (1, 1, 0)
    got = {(e["row"], e["field"]) for e in result["errors"]}
    assert got == {(1, "code"), (3, "code"), (5, "email"), (6, "row"), (7, "shoe")}
    people = _attendees(c, eid)
    assert people["b@example.com"]["first_name"] == "B2"
    assert people["a@example.com"]["first_name"] == "A"


def test_unusable_uploads_answer_with_the_error_envelope(api: Api, org: Org) -> None:
    c, eid = org.client, setup_event(org)["id"]
    cases = [
        (b"<xml/>", "application/xml", 415, "unsupported_media_type"),
        (b"a,b", "", 415, "unsupported_media_type"),
        (b"", CSV, 422, "validation_error"),
        (b"\xef\xbb\xbf \r\n", CSV, 422, "validation_error"),
        (b"", JSON, 422, "validation_error"),
        (b'{"first_name": "A"}', JSON, 422, "validation_error"),
        (b"[{", JSON, 422, "validation_error"),
        (b"[NaN]", JSON, 422, "validation_error"),
        (b"\xff\xfe\x00a", CSV, 422, "validation_error"),
        (b"first_name,last_name\nA,B\n", CSV, 422, "validation_error"),
    ]
    for body, content_type, status, code in cases:
        response = _import(c, eid, body, content_type)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["code"] == code
    header_only = _ok(_import(c, eid, "first_name,last_name,ticket_type\n"))
    misspelt = _import(c, eid, "first_name,last_name,ticket_type,frist_name\n").json()
    assert misspelt["warnings"] == [
        "unknown column 'frist_name' ignored (did you mean 'first_name'?)"
    ]
    assert _counts(header_only) == (0, 0, 0)
    assert _counts(_ok(_import(c, eid, "[]", JSON))) == (0, 0, 0)
    for huge, content_type in (
        ("[" + ",".join(["{}"] * 200_001) + "]", JSON),
        ("first_name,last_name,ticket_type\n" + "a,b,c\n" * 200_001, CSV),
    ):
        too_many = _import(c, eid, huge, content_type)
        assert too_many.status_code == 413
        assert too_many.json()["error"]["code"] == "payload_too_large"
    reader = org.as_key(org.key("read"))
    assert _import(reader, eid, "[]", JSON).status_code == 403
    assert _import(c, "evt_nope", "[]", JSON).status_code == 404


def test_hostile_rows_become_row_errors(api: Api, org: Org) -> None:
    c, eid = org.client, setup_event(org)["id"]
    nested: Any = {}
    for _ in range(300):
        nested = {"x": nested}
    rows: list[Any] = [
        {"first_name": "Nul\x00l", "last_name": "A", "ticket_type": "general"},  # 1
        {"first_name": "N" * 10_000, "last_name": "A", "ticket_type": "general"},  # 2
        {
            "first_name": "🎉 Emoji 👩‍👩‍👧",
            "last_name": "テスト",
            "ticket_type": "general",
            "email": "emoji@example.com",
            "tags": ["🔥"],
        },  # 3
        {"first_name": "Esc\x1b[31m", "last_name": "A", "ticket_type": "general"},  # 4
        {
            "first_name": "A",
            "last_name": "A",
            "ticket_type": "general",
            "custom_data": {"k\x00": "v"},
        },  # 5
        {
            "first_name": "A",
            "last_name": "A",
            "ticket_type": "general",
            "custom_data": {"big": "x" * 20_000},
        },  # 6
        {"first_name": "A", "last_name": "A", "ticket_type": "general", "code": "DC1ABC"},  # 7
        {"first_name": "A", "last_name": "A", "ticket_type": "general", "custom_data": nested},
        {"first_name": "A", "last_name": "A", "ticket_type": "x" * 10_000},  # 9
        {"first_name": "A", "last_name": "A", "ticket_type": "general", "tags": "a;b"},  # 10
        {"first_name": "A", "last_name": "A", "ticket_type": "general", "code": "o\u0085k"},
        {"first_name": "A", "last_name": "A", "ticket_type": "general", "tags": ["ok", "b\x07"]},
    ]
    text = json.dumps(rows).replace("Nul\\u0000l", "Lone\\ud800")  # a lone surrogate too
    nul = '{"first_name": "Nul\\u0000l", "last_name": "A", "ticket_type": "general"}'
    text = text[:-1] + ", " + nul + "]"  # row 13: an escaped NUL
    result = _ok(_import(c, eid, text, JSON))
    assert result["created"] == 1, [(e["row"], e["field"]) for e in result["errors"]]  # row 3
    failed = {e["row"] for e in result["errors"]}
    assert failed == {1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}
    assert all(len(e["message"]) < 300 and len(e["field"]) <= 100 for e in result["errors"])
    emoji = _attendees(c, eid)["emoji@example.com"]
    assert emoji["first_name"] == "🎉 Emoji 👩‍👩‍👧" and emoji["tags"] == ["🔥"]

    csv_rows = (
        "first_name,last_name,ticket_type,custom_data\n"
        "Nul\x00,A,general,\n"
        f"{'L' * 10_000},A,general,\n"
        f'Big,A,general,"{"y" * 200_000}"\n'
        'Bad,Json,general,"{not json"\n'
        "Arr,Json,general,[1]\n"
        'Ok,Row,general,"{""a"": 1}"\n'
    )
    result = _ok(_import(c, eid, csv_rows))
    assert result["created"] == 1 and {e["row"] for e in result["errors"]} == {1, 2, 3, 4, 5}


def test_imported_attendees_scan_at_the_door(api: Api, org: Org) -> None:
    c = org.client
    setup = setup_event(org)
    eid, gate = setup["id"], setup["gate_a"]["id"]
    body = (
        "first_name,last_name,email,ticket_type,code\n"
        "Ana,Ruiz,ana@example.com,vip,\n"
        "Bo,Lee,bo@example.com,general,WRISTBAND-77\n"
    )
    assert _counts(_ok(_import(c, eid, body))) == (2, 0, 0)
    people = _attendees(c, eid)
    for email in ("ana@example.com", "bo@example.com"):
        scan = c.post(f"/v1/checkpoints/{gate}/scans", json={"code": people[email]["qr"]})
        assert scan.status_code == 200, scan.text
        verdict = scan.json()
        assert verdict["verdict"]["status"] == "accepted", verdict
        assert verdict["attendee"]["id"] == people[email]["id"]
    assert people["bo@example.com"]["qr"] == "WRISTBAND-77"
    assert people["ana@example.com"]["inside"] == {}
    # A re-import that changes nothing leaves the check-in state alone.
    assert _counts(_ok(_import(c, eid, body))) == (0, 0, 2)
    again = c.post(f"/v1/checkpoints/{gate}/scans", json={"code": "WRISTBAND-77"}).json()
    assert again["verdict"]["reason"] == "already_inside"


def test_changes_while_an_import_validates_are_folded_in(api: Api, org: Org) -> None:
    """Rows are validated and tickets signed before the write lock: a registration and a delete
    that land meanwhile (here: over HTTP, mid-import) are seen before anything is written."""
    c, eid = org.client, setup_event(org)["id"]
    gone = c.post(
        f"/v1/events/{eid}/attendees",
        json={
            "first_name": "Al",
            "last_name": "A",
            "email": "al@example.com",
            "ticket_type": "general",
        },
    )
    assert gone.status_code == 201
    body = (
        "first_name,last_name,email,ticket_type\n"
        "Al,New,al@example.com,general\n"
        "Bo,B,bo@example.com,general\n"
        "Cy,C,cy@example.com,vip\n"
    )
    meddled: list[str] = []

    def progress(phase: str, done: int, total: int) -> None:
        if phase == "signing" and not meddled:
            meddled.append(phase)
            assert c.delete(f"/v1/events/{eid}/attendees/{gone.json()['id']}").status_code == 204
            assert (
                c.post(
                    f"/v1/events/{eid}/registrations",
                    json={
                        "first_name": "Cyrus",
                        "last_name": "C",
                        "email": "CY@example.com",
                        "ticket_type": "vip",
                    },
                ).status_code
                == 201
            )

    with Session(api.app.state.engine, expire_on_commit=False) as session:
        event = session.get(Event, eid)
        assert event is not None
        result = import_attendees(
            session,
            event=event,
            rows=parse_upload(body.encode(), CSV).rows,
            secret=api.app.state.secret,
            options=ImportOptions(progress=progress),
        )
    assert meddled and (result.created, result.updated, result.unchanged) == (2, 1, 0)
    people = _attendees(c, eid)
    assert set(people) == {"al@example.com", "bo@example.com", "cy@example.com"}
    assert people["cy@example.com"]["first_name"] == "Cy"
    assert people["al@example.com"]["id"] != gone.json()["id"]
