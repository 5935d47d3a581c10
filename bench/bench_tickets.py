"""Ticket throughput on one core: issues and verifications of distinct codes per second.

Run: ``.venv/bin/python bench/bench_tickets.py [COUNT]`` (default 20,000).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from shared.ids import ATTENDEE, make_id
from shared.tickets import (
    EventKey,
    TicketPayload,
    decode_ticket,
    event_digest,
    issue_ticket,
    normalize_code,
    verify_ticket,
)


def main(count: int) -> None:
    key = EventKey.from_seed(os.urandom(32))
    digest = event_digest("evt_bench")
    payloads = [
        TicketPayload(
            event_digest=digest,
            attendee_id=make_id(ATTENDEE, os.urandom(16)),
            ticket_type_number=i % 7,
            valid_from=1_778_800_000,
            valid_until=1_778_900_000,
        )
        for i in range(count)
    ]
    private, public = key.private_bytes(), key.public_bytes()

    start = time.perf_counter()
    codes = [issue_ticket(p, private) for p in payloads]
    issue_s = time.perf_counter() - start

    scanned = [code.lower() + "\r\n" for code in codes]  # what a handheld scanner types
    start = time.perf_counter()
    for raw in scanned:
        verify_ticket(normalize_code(raw), public)
    verify_s = time.perf_counter() - start

    # The floor: OpenSSL's Ed25519 verification alone, on the same signatures.
    signed = [decode_ticket(code) for code in codes]
    key_object = Ed25519PublicKey.from_public_bytes(public)
    start = time.perf_counter()
    for ticket in signed:
        key_object.verify(ticket.signature, ticket.signed_bytes)
    ed25519_s = time.perf_counter() - start

    print(f"tickets: {count:,} distinct codes, {len(codes[0])} chars each, one thread")
    print(f"issue:   {count / issue_s:>9,.0f} per second ({issue_s * 1e6 / count:.1f} µs each)")
    print(f"verify:  {count / verify_s:>9,.0f} per second ({verify_s * 1e6 / count:.1f} µs each)")
    print(
        f"ed25519: {count / ed25519_s:>9,.0f} per second ({ed25519_s * 1e6 / count:.1f} µs each,"
        " signature check alone)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
