"""Supervisor override at a gate (SPEC section 11): a denied guest let in with the event's
override PIN, checked offline against the hash the event's sync brought (`shared.override`).
Wrong PINs make the next try wait (three free, then 1, 2, 4 … s, at most five minutes), counted
in the store so that a restart does not reset them. The admission is recorded and queued like
any reading, with `override: true`, the reason and the note (sealed: the note is personal).

    verdict = admit(pipeline, ctx, config, OverrideRequest(code, "2468", "vip", "a guest"))
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from scanner_app.context import GateContext
from scanner_app.errors import OverrideRefused, Problem
from scanner_app.pipeline import ScanPipeline, Supervised
from scanner_app.state import GateConfig, GateVerdict, OverrideRequest
from scanner_app.store import Store, iso, parse_iso
from shared.override import (
    OverrideInvalid,
    clean_note,
    override_reason,
    valid_pin,
    verify_pin,
    wrong_pin_delay,
)

__all__ = ["OverrideRequest", "PinTries", "admit", "pin_tries"]

_TRIES = "override_pin_tries"  # meta: {"failures": n, "wait_until": RFC 3339 | null}


@dataclass(frozen=True, slots=True)
class PinTries:
    """Wrong override PINs in a row on this gate, and until when the next try must wait."""

    failures: int = 0
    wait_until: datetime | None = None

    def wait(self, now: datetime) -> float:
        """Seconds until a PIN may be tried (0: now)."""
        if self.wait_until is None or now >= self.wait_until:
            return 0.0
        return (self.wait_until - now).total_seconds()


def pin_tries(store: Store) -> PinTries:
    """The gate's wrong-PIN count as stored (none when nothing or something unreadable is)."""
    stored = store.get_json(_TRIES)
    if not isinstance(stored, dict):
        return PinTries()
    failures = stored.get("failures")
    until = stored.get("wait_until")
    try:
        wait_until = parse_iso(until) if isinstance(until, str) else None
    except ValueError:
        wait_until = None
    return PinTries(failures if isinstance(failures, int) else 0, wait_until)


def _save(store: Store, tries: PinTries) -> None:
    store.set_json(_TRIES, {"failures": tries.failures, "wait_until": iso(tries.wait_until)})


def _pin_hash(store: Store, event_id: str) -> str | None:
    row = store.one("SELECT data FROM events WHERE id = ?", (event_id,))
    if row is None:
        return None
    value = json.loads(row[0] or "{}").get("override_pin_hash")
    return value if isinstance(value, str) else None


def _refused(problem: OverrideInvalid) -> OverrideRefused:
    return OverrideRefused(Problem.OVERRIDE_INVALID, str(problem), field=problem.field)


def admit(
    pipeline: ScanPipeline, ctx: GateContext, config: GateConfig, request: OverrideRequest
) -> GateVerdict:
    """Check the request and the PIN (offline), then record the guest's admission with
    `override`. Raises `OverrideRefused`: `OVERRIDE_INVALID` (reason, note or a guest no
    override admits: nothing is counted against the PIN), `OVERRIDE_UNAVAILABLE` (the event
    has no override PIN), `OVERRIDE_WAIT` (too many wrong PINs: `retry_after`),
    `OVERRIDE_PIN_WRONG`."""
    try:
        reason, note = override_reason(request.reason), clean_note(request.note)
    except OverrideInvalid as exc:
        raise _refused(exc) from None
    if not request.target or not request.target.strip():
        raise OverrideRefused(Problem.OVERRIDE_INVALID, "scan or pick the guest", field="code")
    stored = _pin_hash(pipeline.store, ctx.event_id)
    if stored is None:
        raise OverrideRefused(
            Problem.OVERRIDE_UNAVAILABLE, "this event has no override PIN: sync, or ask to set one"
        )
    store, now = pipeline.store, pipeline.clock()
    tries = pin_tries(store)
    if tries.wait(now):
        raise OverrideRefused(
            Problem.OVERRIDE_WAIT,
            "too many wrong PINs: wait before trying again",
            field="pin",
            retry_after=tries.wait(now),
        )
    if not (valid_pin(request.pin) and verify_pin(request.pin, stored)):
        failures = tries.failures + 1
        delay = wrong_pin_delay(failures)
        _save(store, PinTries(failures, now + delay if delay > timedelta(0) else None))
        raise OverrideRefused(
            Problem.OVERRIDE_PIN_WRONG,
            "wrong override PIN",
            field="pin",
            retry_after=delay.total_seconds(),
        )
    if tries.failures:
        _save(store, PinTries())
    operator = request.operator.strip()[:200]
    try:
        return pipeline.override(ctx, config, request.target, Supervised(reason, note, operator))
    except OverrideInvalid as exc:
        raise _refused(exc) from None
