"""What a denial tells staff to do next (SPEC section 11), computed once for the gate and the
online scan: who, since when and where for `already_inside`, the count and the last entry for
`max_entries_reached`, occupancy / capacity for `zone_full`, the checkpoints that do accept the
ticket type for `ticket_type_not_allowed`, and the scanned code, shortened, on every denial.

    detail = verdict.detail.named({"cp_1": "Main entrance"})
    DenialDetailJSON.of(detail).model_dump(mode="json")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from pydantic import BaseModel

from shared.kinds import CheckpointDirection
from shared.policy import CheckpointPolicy

__all__ = ["DenialDetail", "DenialDetailJSON", "accepting_checkpoints", "short_code"]

_HEAD, _TAIL = 6, 4
_ELLIPSIS = "…"


def short_code(code: str) -> str:
    """The scanned code as a denial shows it: its first 6 and last 4 characters (a short code
    whole), unprintable characters as `?`.

    >>> short_code("DC1ABCDEFGHIJKLMNOPQRSTUVWXYZ"), short_code("VIP-7")
    ('DC1ABC…WXYZ', 'VIP-7')
    """
    shown = "".join(ch if ch.isprintable() else "?" for ch in code)
    if len(shown) <= _HEAD + _TAIL + 1:
        return shown
    return shown[:_HEAD] + _ELLIPSIS + shown[-_TAIL:]


def accepting_checkpoints(
    ticket_type: str, checkpoints: Iterable[CheckpointPolicy], *, besides: str
) -> tuple[str, ...]:
    """The ids of the active entry checkpoints (other than `besides`) that accept `ticket_type`,
    in the order given: where to send a guest this checkpoint refuses."""
    return tuple(
        cp.id
        for cp in checkpoints
        if cp.id != besides
        and cp.active
        and cp.direction is not CheckpointDirection.OUT
        and (not cp.allowed_ticket_types or ticket_type in cp.allowed_ticket_types)
    )


@dataclass(frozen=True, slots=True)
class DenialDetail:
    """Everything a denial knows beyond its reason; fields that do not apply stay empty.

    - `code`: the scanned code, shortened (`short_code`); `name`: the attendee's, when known;
    - `already_inside`: `inside_since`, `via_checkpoint_id`;
    - `max_entries_reached`: `entries_used` of `entries_allowed`, `last_entry_at` (at this
      checkpoint); `reentry_not_allowed`: `entries_used`, `last_entry_at`;
    - `zone_full`: `occupancy` of `capacity`;
    - `ticket_type_not_allowed`: `ticket_type` and `accepted_at` (checkpoint ids);
    - `not_yet_valid` / `expired`: `valid_from` / `valid_until`;
    - `checkpoint_closed`: `opens_at` / `closes_at`.

    Checkpoint ids become names with `named` (`via_checkpoint_name`, `accepted_at_names`).
    """

    code: str = ""
    name: str = ""
    inside_since: datetime | None = None
    via_checkpoint_id: str | None = None
    entries_used: int | None = None
    entries_allowed: int | None = None
    last_entry_at: datetime | None = None
    occupancy: int | None = None
    capacity: int | None = None
    ticket_type: str | None = None
    accepted_at: tuple[str, ...] = ()
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    opens_at: datetime | None = None
    closes_at: datetime | None = None
    via_checkpoint_name: str | None = None
    accepted_at_names: tuple[str, ...] = ()

    def named(self, names: Mapping[str, str]) -> DenialDetail:
        """The same detail with checkpoint names beside the ids (an unknown id stands as is)."""
        via = self.via_checkpoint_id
        return replace(
            self,
            via_checkpoint_name=names.get(via, via) if via is not None else None,
            accepted_at_names=tuple(names.get(cp, cp) for cp in self.accepted_at),
        )


class DenialDetailJSON(BaseModel):
    """A denial's detail on the wire (the online scan's `verdict.detail`): every field always
    present, times RFC 3339."""

    code: str
    name: str
    inside_since: datetime | None
    via_checkpoint_id: str | None
    via_checkpoint_name: str | None
    entries_used: int | None
    entries_allowed: int | None
    last_entry_at: datetime | None
    occupancy: int | None
    capacity: int | None
    ticket_type: str | None
    accepted_at: list[str]
    accepted_at_names: list[str]
    valid_from: datetime | None
    valid_until: datetime | None
    opens_at: datetime | None
    closes_at: datetime | None

    def detail(self) -> DenialDetail:
        """The detail again (an idempotent retry answers what the first answer said)."""
        values = self.model_dump()
        values["accepted_at"] = tuple(self.accepted_at)
        values["accepted_at_names"] = tuple(self.accepted_at_names)
        return DenialDetail(**values)

    @classmethod
    def of(cls, detail: DenialDetail) -> DenialDetailJSON:
        return cls(
            code=detail.code,
            name=detail.name,
            inside_since=detail.inside_since,
            via_checkpoint_id=detail.via_checkpoint_id,
            via_checkpoint_name=detail.via_checkpoint_name,
            entries_used=detail.entries_used,
            entries_allowed=detail.entries_allowed,
            last_entry_at=detail.last_entry_at,
            occupancy=detail.occupancy,
            capacity=detail.capacity,
            ticket_type=detail.ticket_type,
            accepted_at=list(detail.accepted_at),
            accepted_at_names=list(detail.accepted_at_names),
            valid_from=detail.valid_from,
            valid_until=detail.valid_until,
            opens_at=detail.opens_at,
            closes_at=detail.closes_at,
        )
