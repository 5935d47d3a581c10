"""`doorcheck import` and `doorcheck tickets` as a user runs them: the real console script in a
subprocess, against a SQLite file (`--db`) and against a live server (`--server`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import pytest
import zxingcpp
from sqlmodel import Session, select

from sync_server.db import make_engine
from sync_server.models import Attendee, TicketType
from sync_server.models.events import EventCreate, TicketTypeCreate
from sync_server.services.events import create_child, create_event
from tests.server.conftest import Api, Org, setup_event

DOORCHECK = str(Path(sys.executable).parent / "doorcheck")
SECRET = "cli-test-secret-" + "y" * 32
PEOPLE = (
    "first_name,last_name,email,ticket_type,tags,code\n"
    "Ana,Ruiz,ana@example.com,vip,press,\n"
    "Bo,<Lee> & Co,bo@example.com,general,,GATE-42\n"
)


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DOORCHECK_")}
    environment.update(
        {
            "DOORCHECK_SECRET_KEY": SECRET,
            "DOORCHECK_DATA_DIR": str(cwd),
            "COLUMNS": "200",
            **(env or {}),
        }
    )
    return subprocess.run(
        [DOORCHECK, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=120
    )


def result_of(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return body


@dataclass
class Local:
    """A SQLite file set up by `doorcheck init`, with an event and two ticket types."""

    db: str
    event_id: str
    folder: Path

    def attendees(self) -> list[Attendee]:
        engine = make_engine(self.db)
        try:
            with Session(engine) as session:
                query = select(Attendee).where(Attendee.event_id == self.event_id)
                return list(session.exec(query))
        finally:
            engine.dispose()

    def write(self, name: str, text: str) -> Path:
        path = self.folder / name
        path.write_text(text, encoding="utf-8")
        return path


@pytest.fixture
def local(tmp_path: Path) -> Local:
    db = f"sqlite:///{tmp_path / 'door.db'}"
    done = run("init", "--org", "Acme", "--db", db, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    org_id = json.loads(done.stdout)["organization_id"]
    engine = make_engine(db)
    try:
        with Session(engine, expire_on_commit=False) as session:
            event = create_event(
                session,
                organization_id=org_id,
                secret=SECRET.encode(),
                data=EventCreate(name="Fest & <Friends>", slug="fest"),
            )
            create_child(
                session, TicketType, event, TicketTypeCreate(name="General", slug="general")
            )
            create_child(
                session, TicketType, event, TicketTypeCreate(name="VIP", slug="vip", is_vip=True)
            )
    finally:
        engine.dispose()
    return Local(db, event.id, tmp_path)


def test_import_into_a_database_file(local: Local) -> None:
    people = local.write("people.csv", PEOPLE)
    args = ("import", str(people), "--event", local.event_id, "--db", local.db)
    first = run(*args, "--json", cwd=local.folder)
    assert first.returncode == 0, first.stderr
    assert result_of(first)["created"] == 2
    again = run(*args, "--json", cwd=local.folder)
    assert again.returncode == 0 and result_of(again)["unchanged"] == 2
    table = run(*args, cwd=local.folder)
    assert table.returncode == 0 and "unchanged" in table.stdout and "Traceback" not in table.stderr
    codes = {a.email: a.qr for a in local.attendees()}
    assert codes["bo@example.com"] == "GATE-42" and codes["ana@example.com"].startswith("DC1")
    assert {a.source for a in local.attendees()} == {"import"}

    as_json = local.write(
        "more.json",
        json.dumps(
            [
                {
                    "first_name": "Cy",
                    "last_name": "Ng",
                    "email": "cy@example.com",
                    "ticket_type": "vip",
                }
            ]
        ),
    )
    done = run(
        "import",
        str(as_json),
        "--event",
        local.event_id,
        "--db",
        local.db,
        "--json",
        cwd=local.folder,
    )
    assert done.returncode == 0 and result_of(done)["created"] == 1


def test_row_errors_exit_1_and_atomic_writes_nothing(local: Local) -> None:
    bad = "".join(f"Bad{i},Row,bad{i}@,general,,\n" for i in range(60))
    mixed = local.write("mixed.csv", PEOPLE + bad)
    args = ("import", str(mixed), "--event", local.event_id, "--db", local.db)
    atomic = run(*args, "--atomic", "--json", cwd=local.folder)
    assert atomic.returncode == 1, atomic.stderr
    result = result_of(atomic)
    assert result["created"] == 0 and result["failed"] == 60
    assert {e["row"] for e in result["errors"]} == set(range(3, 63))
    assert local.attendees() == []
    done = run(*args, cwd=local.folder)
    assert done.returncode == 1, done.stderr
    assert "Rows not imported" in done.stdout and "… and 10 more" in done.stdout
    assert "Bad0" not in done.stdout and "email" in done.stdout
    assert len(local.attendees()) == 2


def test_usage_and_unreachable_things_give_one_line(local: Local) -> None:
    people = local.write("people.csv", PEOPLE)
    event = ("--event", local.event_id)
    neither = run("import", str(people), *event, cwd=local.folder)
    assert neither.returncode == 2 and "--server" in neither.stderr
    both = run(
        "import",
        str(people),
        *event,
        "--db",
        local.db,
        "--server",
        "http://x",
        "--api-key",
        "k",
        cwd=local.folder,
    )
    assert both.returncode == 2
    no_key = run("import", str(people), *event, "--server", "http://127.0.0.1:9", cwd=local.folder)
    assert no_key.returncode == 2
    odd = local.write("people.xlsx", "x")
    assert run("import", str(odd), *event, "--db", local.db, cwd=local.folder).returncode == 2
    for done in (
        run(
            "import", str(local.folder / "missing.csv"), *event, "--db", local.db, cwd=local.folder
        ),
        run(
            "import",
            str(people),
            *event,
            "--server",
            "http://127.0.0.1:9",
            "--api-key",
            "k",
            cwd=local.folder,
        ),
        run("import", str(people), "--event", "evt_nope", "--db", local.db, cwd=local.folder),
        run(
            "tickets",
            "--event",
            "evt_nope",
            "--out",
            str(local.folder / "t"),
            "--db",
            local.db,
            cwd=local.folder,
        ),
    ):
        assert done.returncode == 1, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("doorcheck: "), done.stderr
    empty = local.write("empty.csv", "")
    done = run("import", str(empty), *event, "--db", local.db, cwd=local.folder)
    assert done.returncode == 1 and "empty" in done.stderr and "Traceback" not in done.stderr


def test_tickets_write_pngs_that_decode_to_each_qr(local: Local) -> None:
    people = local.write("people.csv", PEOPLE)
    assert (
        run(
            "import", str(people), "--event", local.event_id, "--db", local.db, cwd=local.folder
        ).returncode
        == 0
    )
    out = local.folder / "tickets"
    done = run(
        "tickets", "--event", local.event_id, "--out", str(out), "--db", local.db, cwd=local.folder
    )
    assert done.returncode == 0, done.stderr
    sheet = Path(done.stdout.strip().splitlines()[-1])
    assert sheet == (out / "tickets.html").resolve() and sheet.is_file()
    page = sheet.read_text(encoding="utf-8")
    assert "@media print" in page and "data:image/png;base64," in page
    assert "Fest &amp; &lt;Friends&gt;" in page and "&lt;Lee&gt; &amp; Co" in page
    attendees = local.attendees()
    assert len(list(out.glob("*.png"))) == len(attendees) == 2
    for attendee in attendees:
        image = cv2.imread(str(out / f"{attendee.id}.png"))
        decoded = [r.text for r in zxingcpp.read_barcodes(image)]
        assert decoded == [attendee.qr]


def test_import_over_http_against_a_live_server(api: Api, org: Org, tmp_path: Path) -> None:
    eid = setup_event(org)["id"]
    people = tmp_path / "people.csv"
    people.write_text(PEOPLE + "Bad,Row,nope@,general,,\n", encoding="utf-8")
    args = ("import", str(people), "--event", eid, "--server", api.url + "/")
    done = run(*args, "--api-key", org.admin_key, "--json", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    result = result_of(done)
    assert result["created"] == 2 and [e["row"] for e in result["errors"]] == [3]
    listed = org.client.get(f"/v1/events/{eid}/attendees").json()["data"]
    assert {a["email"] for a in listed} == {"ana@example.com", "bo@example.com"}

    atomic = run(*args, "--api-key", org.admin_key, "--atomic", cwd=tmp_path)
    assert atomic.returncode == 1 and "nope@" not in atomic.stderr
    assert "Rows not imported" in atomic.stdout and "nothing was imported" in atomic.stdout

    good = tmp_path / "good.json"
    good.write_text(
        json.dumps(
            [
                {
                    "first_name": "Di",
                    "last_name": "Fox",
                    "ticket_type": "vip",
                    "email": "di@example.com",
                }
            ]
        ),
        encoding="utf-8",
    )
    ok = run(
        "import",
        str(good),
        "--event",
        eid,
        "--server",
        api.url,
        "--json",
        cwd=tmp_path,
        env={"DOORCHECK_API_KEY": org.admin_key},
    )
    assert ok.returncode == 0 and result_of(ok)["created"] == 1

    reader = run(
        "import",
        str(good),
        "--event",
        eid,
        "--server",
        api.url,
        "--api-key",
        org.key("read"),
        cwd=tmp_path,
    )
    assert reader.returncode == 1 and "insufficient_scope" in reader.stderr
    missing = run(
        "import",
        str(good),
        "--event",
        "evt_nope",
        "--server",
        api.url,
        "--api-key",
        org.admin_key,
        cwd=tmp_path,
    )
    assert missing.returncode == 1 and "not_found" in missing.stderr
