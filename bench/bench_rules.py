"""Decisions per second of `shared.rules.decide` on one core, over a realistic mix of scans.

Run: .venv/bin/python bench/bench_rules.py
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

from shared.rules import (
    AttendeeStatus,
    CheckpointPolicy,
    Direction,
    History,
    Reading,
    ScanInput,
    Status,
    Ticket,
    ZoneOccupancy,
    decide,
)

N = 200_000


def scans(n: int) -> list[ScanInput]:
    rng = random.Random(1)
    now = datetime(2026, 5, 15, 21, 0, tzinfo=UTC)
    cp = CheckpointPolicy(
        "cp_a",
        "evt_1",
        zone_id="zone_main",
        allowed_ticket_types=frozenset({"general", "vip"}),
        excluded_tags=frozenset({"banned"}),
        max_entries=5,
        open_until=now + timedelta(hours=6),
    )
    inside = History().apply(
        Reading("cp_b", "zone_main", Direction.IN, Status.ACCEPTED, now - timedelta(hours=1))
    )
    out = []
    for i in range(n):
        ticket = Ticket(
            f"att_{i}",
            "evt_1",
            rng.choice(["general", "vip", "staff"]),
            status=rng.choice([AttendeeStatus.VALID] * 18 + [AttendeeStatus.REVOKED]),
            tags=frozenset(rng.sample(["press", "crew", "banned", "vip"], 1)),
        )
        history = inside if rng.random() < 0.2 else History()
        direction = Direction.OUT if rng.random() < 0.15 else Direction.IN
        out.append(
            ScanInput(
                cp,
                now,
                direction,
                ticket,
                None,
                history,
                ZoneOccupancy(5000, rng.randint(0, 5000)),
                "dev_a",
            )
        )
    return out


def main() -> None:
    inputs = scans(N)
    start = time.process_time()
    for scan in inputs:
        decide(scan)
    cpu = time.process_time() - start
    print(f"decide: {N} decisions in {cpu:.3f} s CPU = {N / cpu:,.0f} decisions/s (one core)")


if __name__ == "__main__":
    main()
