"""doorcheck's functional core: check-in rules and everything the gate and the server must agree
on around them (code resolution, the history fold, the timeline re-decision, conflicts), ticket
codes, webhook signatures, clocks and the sync wire contract. Pure: it imports only the standard
library, pydantic, cryptography and msgspec (docs/architecture.md).
"""

from shared.rules import (
    AttendeeStatus,
    CheckpointPolicy,
    Direction,
    History,
    Reason,
    ScanInput,
    Status,
    Ticket,
    Verdict,
    ZoneOccupancy,
    decide,
)

__all__ = [
    "AttendeeStatus",
    "CheckpointPolicy",
    "Direction",
    "History",
    "Reason",
    "ScanInput",
    "Status",
    "Ticket",
    "Verdict",
    "ZoneOccupancy",
    "decide",
]
