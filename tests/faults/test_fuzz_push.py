"""A hypothesis fuzzer for push batches on PostgreSQL (the stricter engine): any mixture of good,
broken, hostile and repeated items is answered item by item; nothing answers 5xx, every item
gets a result, what is applied is stored exactly once, and a repeat changes nothing."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync_server.api.deps import RateLimiter
from tests.server.conftest import Api, Org, add_attendee, setup_event

pytestmark = pytest.mark.postgres

HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "\x00", "a\x00b", "😀" * 50, "x" * 3000, "DROP TABLE scans;--", "\u202e"]),
)
TIMES = st.one_of(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
    ),
    st.datetimes(timezones=st.just(timezone(timedelta(hours=14)))),
)


@st.composite
def items(draw: st.DrawFn, venue: dict[str, Any], codes: list[str]) -> Any:
    kind = draw(st.sampled_from(["good", "good", "broken", "hostile", "junk"]))
    at = (
        draw(TIMES)
        if kind != "good"
        else datetime.now(UTC) - timedelta(seconds=draw(st.integers(0, 3600)))
    )
    item: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "event_id": venue["id"],
        "checkpoint_id": draw(st.sampled_from([venue["gate_a"]["id"], venue["gate_b"]["id"]])),
        "code": draw(st.sampled_from(codes)) if kind == "good" else draw(HOSTILE_TEXT),
        "direction": draw(st.sampled_from(["in", "out"])),
        "scanned_at": at.isoformat(),
        "hlc": f"{draw(st.integers(0, 10**15)):015d}-00001-fuzz",
        "device_verdict": {
            "status": draw(st.sampled_from(["accepted", "denied"])),
            "reason": draw(st.sampled_from(["ok", "already_inside", "unknown_code"])),
        },
        "operator": draw(st.one_of(st.none(), HOSTILE_TEXT)) if kind == "hostile" else "Sam",
        "manual": draw(st.booleans()) if kind != "good" else False,
    }
    if kind == "broken":
        field = draw(st.sampled_from(sorted(item)))
        item[field] = draw(
            st.one_of(
                st.none(), st.integers(), st.booleans(), HOSTILE_TEXT, st.just([]), st.just({})
            )
        )
    if kind == "hostile":
        item["event_id"] = draw(st.one_of(st.just(venue["id"]), HOSTILE_TEXT))
        item["hlc"] = draw(HOSTILE_TEXT)
    if kind == "junk":
        return draw(st.one_of(st.none(), st.integers(), HOSTILE_TEXT, st.lists(st.integers())))
    return item


@pytest.fixture
def world(api: Api, org: Org) -> tuple[httpx.Client, dict[str, Any], list[str]]:
    api.app.state.enroll_limiter = RateLimiter(10**6)
    venue = setup_event(org, zone_capacity=3)
    codes = [add_attendee(org, venue["id"], first_name=f"F{i}")["qr"] for i in range(5)]
    code = org.client.post("/v1/devices", json={"name": "Fuzz"}).json()["enrollment_code"]
    token = httpx.post(f"{api.url}/v1/devices/enroll", json={"code": code, "name": "F"}).json()[
        "device_token"
    ]
    device = httpx.Client(
        base_url=api.url, timeout=60, headers={"Authorization": f"Bearer {token}"}
    )
    return device, venue, codes


def test_any_push_batch_is_answered_item_by_item(
    world: tuple[httpx.Client, dict[str, Any], list[str]], org: Org, db_url: str
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("the fuzzer runs on PostgreSQL, the engine that refuses more")
    device, venue, codes = world
    applied: set[str] = set()
    batches = [0]

    @settings(
        max_examples=int(os.environ.get("DOORCHECK_FUZZ_EXAMPLES", "40")),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        batch=st.lists(items(venue, codes), min_size=1, max_size=12),
        device_time=TIMES,
        repeat=st.booleans(),
    )
    def push(batch: list[Any], device_time: datetime, repeat: bool) -> None:
        body = {
            "device_time": device_time.isoformat(),
            "scans": batch + (batch[:2] if repeat else []),
        }
        batches[0] += 1
        answer = device.post("/v1/sync/push", json=body)
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert len(results) == len(body["scans"])
        for item, result in zip(body["scans"], results, strict=True):
            assert result["status"] in ("applied", "duplicate", "rejected"), result
            if isinstance(item, dict) and result["status"] != "rejected":
                assert result["id"] == item["id"]
            if result["status"] == "applied":
                assert result["id"] not in applied, "applied twice"
                applied.add(result["id"])
        again = device.post("/v1/sync/push", json=body)
        assert again.status_code == 200, again.text
        assert all(r["status"] != "applied" for r in again.json()["results"])

    push()
    assert batches[0] >= 20 and applied  # it did push, and some of it was good
    stored: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = org.client.get(f"/v1/events/{venue['id']}/scans", params=params).json()
        stored += [s["id"] for s in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert sorted(stored) == sorted(applied)  # exactly what was answered `applied`, once each
