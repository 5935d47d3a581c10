"""What an import tells the organizer (SPEC section 13): errors by file line and column (the
header is line 1, blank lines and multi-line cells count), no pydantic prefixes, the rejected
rows as a CSV to fix and import again (`--rejected`), warnings for rows a re-import cannot match
and for a code changed by an email match, unknown columns kept or refused one by one; and
`doorcheck export` reading what the API streams."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.server import test_cli_tools
from tests.server.conftest import Org, setup_event
from tests.server.test_cli_tools import Local, result_of, run


@pytest.fixture
def local(tmp_path: Path) -> Local:
    return test_cli_tools.local.__wrapped__(tmp_path)  # type: ignore[attr-defined]


FILE = (
    "first_name,last_name,email,ticket_type,notes\n"  # line 1
    "Ana,Ruiz,ana@example.com,general,ok\n"  # line 2: row 1
    "\n"  # line 3: blank (row 2, skipped)
    'Bo,"Lee\nJr",bo@example,general,two lines\n'  # lines 4-5: row 3, bad email
    "Cy,,cy@example.com,nope,x\n"  # line 6: row 4, no last name and unknown type
    "Di,Noe,,general,\n"  # line 7: row 5, neither email nor code
)


def _import(org: Org, eid: str, body: str) -> dict:
    response = org.client.post(
        f"/v1/events/{eid}/attendees/import",
        content=body.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_errors_carry_the_file_line_and_the_column(org: Org) -> None:
    eid = setup_event(org)["id"]
    result = _import(org, eid, FILE)
    assert (result["created"], result["failed"]) == (2, 2)
    where = {(e["line"], e["row"], e["field"]) for e in result["errors"]}
    assert (4, 3, "email") in where
    assert {(6, 4, "last_name"), (6, 4, "ticket_type")} & where
    assert not any("Value error" in e["message"] for e in result["errors"])
    assert any("row 5 (line 7), email: neither email nor code" in w for w in result["warnings"])
    assert any("'notes' kept as custom field" in w for w in result["warnings"])
    people = org.client.get(f"/v1/events/{eid}/attendees").json()["data"]
    assert {p["custom_data"].get("notes") for p in people} == {"ok", None}


def test_an_email_match_that_changes_the_code_says_so(org: Org) -> None:
    eid = setup_event(org)["id"]
    _import(org, eid, "first_name,last_name,email,ticket_type,code\nA,B,a@x.io,general,OLD-1\n")
    result = _import(
        org, eid, "first_name,last_name,email,ticket_type,code\nA,B,a@x.io,general,NEW-2\n"
    )
    assert result["updated"] == 1
    [warning] = result["warnings"]
    assert "row 1 (line 2), code:" in warning and "'OLD-1' to 'NEW-2'" in warning


def test_the_cli_writes_the_rejected_rows_to_fix(local: Local) -> None:
    people = local.write("people.csv", FILE.replace("nope", "general"))
    rejected = local.folder / "rejected.csv"
    done = run(
        "import", str(people), "--event", local.event_id, "--db", local.db,
        "--rejected", str(rejected), cwd=local.folder,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "line" in done.stdout and "warning:" in done.stdout
    rows = list(csv.DictReader(io.StringIO(rejected.read_text())))
    assert [(r["first_name"], r["last_name"]) for r in rows] == [("Bo", "Lee\nJr"), ("Cy", "")]
    assert rows[0]["import_errors"].startswith("email:")
    fixed = (
        rejected.read_text()
        .replace("bo@example,", "bo@example.com,")
        .replace(",,cy", ",Ye,cy")
        .replace('"Lee\nJr"', "Lee Jr")
    )
    local.write("fixed.csv", fixed)
    again = run("import", str(local.folder / "fixed.csv"), "--event", local.event_id,
                "--db", local.db, "--json", cwd=local.folder)  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert result_of(again)["created"] == 2
    assert any("import_errors" in w for w in result_of(again)["warnings"])


def test_doorcheck_export_from_the_database_and_the_server(
    local: Local, org: Org, tmp_path: Path
) -> None:
    people = local.write("people.csv", FILE)
    run("import", str(people), "--event", local.event_id, "--db", local.db, cwd=local.folder)
    out = local.folder / "out.jsonl"
    done = run("export", "attendees", "--event", local.event_id, "--db", local.db,
               "--format", "jsonl", "--out", str(out), cwd=local.folder)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(p["first_name"] for p in lines) == ["Ana", "Di"]
    # over HTTP, to standard output, filtered
    eid = setup_event(org)["id"]
    _import(org, eid, FILE)
    done = run("export", "attendees", "--event", eid, "--server", str(org.client.base_url),
               "--api-key", org.admin_key, "--q", "ana", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert [r["email"] for r in rows] == ["ana@example.com"]
    bad = run("export", "scans", "--event", eid, "--server", str(org.client.base_url),
              "--api-key", org.admin_key, "--status", "x" * 40, cwd=tmp_path)  # fmt: skip
    assert bad.returncode != 0 and "422" in bad.stderr
    neither = run("export", "scans", "--event", eid, cwd=tmp_path)
    assert neither.returncode == 2


def test_the_api_answers_the_rejected_rows_when_asked(org: Org) -> None:
    eid = setup_event(org)["id"]
    url = f"/v1/events/{eid}/attendees/import"
    plain = _import(org, eid, FILE)
    assert plain["rejected_csv"] is None  # only when asked
    asked = org.client.post(
        url,
        params={"rejected": "true"},
        content=FILE.encode(),
        headers={"Content-Type": "text/csv"},
    ).json()
    rows = list(csv.DictReader(io.StringIO(asked["rejected_csv"])))
    assert [(r["first_name"], r["last_name"]) for r in rows] == [("Bo", "Lee\nJr"), ("Cy", "")]
    assert rows[0]["import_errors"].startswith("email:") and rows[1]["import_errors"]
    clean = org.client.post(
        url, params={"rejected": "true"}, json=[{"first_name": "E", "last_name": "F",
                                                 "ticket_type": "general"}],
    ).json()  # fmt: skip
    assert clean["failed"] == 0 and clean["rejected_csv"] is None


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (("--event", "evt_' OR 1=1 --"), "no such event"),
        (("--event", "e" * 5000), "no such event"),
        (("--event", "x", "--db", "sqlite:////nonexistent/dir/x.db"), "no database at"),
        (("--event", "x", "--db", "nonsense://what"), "database"),
        (("--event", "x", "--db", "postgresql+psycopg://nobody@127.0.0.1:1/x"), "database"),
        (("--ticket-type", "nope"), "ticket type"),
        (("--out", "/nonexistent/dir/out.csv"), "cannot write"),
        (("--server", "http://127.0.0.1:99999", "--api-key", "k"), "cannot reach"),
        (("--server", "not a url", "--api-key", "k"), "reach"),
        (("--server", "http://127.0.0.1:1", "--api-key", "k"), "cannot reach"),
    ],
)
def test_hostile_export_flags_get_one_clear_line(
    local: Local, flags: tuple[str, ...], said: str
) -> None:
    given = dict(zip(flags[::2], flags[1::2], strict=True))
    args = ["export", "attendees", "--event", given.pop("--event", local.event_id)]
    if "--server" not in given:
        args += ["--db", given.pop("--db", local.db)]
    for flag, value in given.items():
        args += [flag, value]
    done = run(*args, cwd=local.folder)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and said in done.stderr.lower(), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_an_event_id_cannot_walk_to_another_path(org: Org, tmp_path: Path) -> None:
    done = run("export", "attendees", "--event", "../../healthz?x=", "--server",
               str(org.client.base_url), "--api-key", org.admin_key, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 1 and "404" in done.stderr and "status" not in done.stdout
