"""doorcheck's functional core: check-in rules, ticket codes, webhook signatures, clocks and the
sync wire schemas. Pure: it imports only the standard library, pydantic and cryptography.
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
