"""Deciding what each imported row does: validate it, match it by email or code against the
event's attendees (and the rows before it), and plan the creates, updates and row errors.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from sync_server.models import TicketType
from sync_server.models.people import AttendeeCreate
from sync_server.services.import_upload import RowError, SourceRow

__all__ = [
    "CHUNK_SIZE",
    "COMPARED",
    "Plan",
    "Progress",
    "Valid",
    "plan_rows",
    "validate_rows",
]

CHUNK_SIZE = 5_000
MAX_DEPTH = 32
COMPARED = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "ticket_type_id",
    "tags",
    "custom_data",
    "code",
    "status",
    "valid_from",
    "valid_until",
)
TEXT_FIELDS = ("first_name", "last_name", "email", "phone", "company", "code")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

Progress = Callable[[str, int, int], None]
"""Told `(phase, done, total)` as an import advances: "validating", "signing", "writing"."""


@dataclass(frozen=True, slots=True)
class Valid:
    """A validated row: every field's value (defaults filled in) and the fields it gave."""

    number: int
    values: dict[str, Any]
    given: frozenset[str]


def _field_of(error: Any) -> str:
    loc = ".".join(str(part) for part in error.get("loc", ()))
    return _CONTROL.sub("?", loc)[:100] or "row"


def _too_deep(value: Any) -> bool:
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(item, dict | list):
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def _message(error: Any) -> str:
    """pydantic's message without its "Value error, " prefix (our validators' own words)."""
    return str(error["msg"]).removeprefix("Value error, ")[:200]


def _validate(row: SourceRow, types: dict[str, str]) -> Valid | list[RowError]:
    """Validate with `AttendeeCreate`, then refuse what the door cannot show or store."""
    if row.error is not None:
        return [row.error]
    try:
        model = AttendeeCreate.model_validate(row.data)
    except ValidationError as exc:
        return [
            RowError(row.number, _field_of(e), _message(e), str(e["type"]))
            for e in exc.errors()[:5]
        ]
    except RecursionError:
        return [RowError(row.number, "custom_data", "nested too deeply")]
    values = dict(model.__dict__)
    texts = {name: values[name] or "" for name in TEXT_FIELDS} | {"tags": "".join(values["tags"])}
    if _CONTROL.search("".join(texts.values())):
        bad = next(name for name, text in texts.items() if _CONTROL.search(text))
        return [RowError(row.number, bad, "contains control characters", "control_characters")]
    if _too_deep(values["custom_data"]):
        return [RowError(row.number, "custom_data", f"nested deeper than {MAX_DEPTH} levels")]
    values["ticket_type_id"] = types.get(values.pop("ticket_type"))
    if values["ticket_type_id"] is None:
        return [RowError(row.number, "ticket_type", "unknown ticket type", "unknown")]
    values["status"] = str(values["status"])
    values["email_norm"] = values["email"].strip().lower() if values["email"] else None
    given = {"ticket_type_id" if n == "ticket_type" else n for n in model.model_fields_set}
    return Valid(row.number, values, frozenset(given))


@dataclass(slots=True)
class _Index:
    """The event's attendees as the import found them, and what the file has claimed so far."""

    rows: dict[str, dict[str, Any]]
    by_email: dict[str, str] = field(default_factory=dict)
    by_code: dict[str, str] = field(default_factory=dict)
    seen: dict[tuple[str, Any], int] = field(default_factory=dict)
    claimed: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for attendee_id, row in self.rows.items():
            if row["email_norm"]:
                self.by_email[row["email_norm"]] = attendee_id
            if row["code"]:
                self.by_code[row["code"]] = attendee_id

    def match(self, row: Valid) -> str | RowError | None:
        """The attendee this row updates, None to create one, or why the row clashes."""
        email = row.values["email_norm"] if "email" in row.given else None
        code = row.values["code"] if "code" in row.given else None
        for key in (("email", email), ("code", code)):
            if key[1] and key in self.seen:
                return RowError(
                    row.number,
                    key[0],
                    f"duplicate {key[0]} in the file (row {self.seen[key]})",
                    "duplicate",
                )
        by_email = self.by_email.get(email) if email else None
        by_code = self.by_code.get(code) if code else None
        if by_email and by_code and by_email != by_code:
            return RowError(
                row.number,
                "code",
                "the email belongs to one attendee and the code to another",
                "conflict",
            )
        target = by_email or by_code
        if target and target in self.claimed:
            return RowError(
                row.number,
                "email" if by_email else "code",
                f"the same attendee as row {self.claimed[target]}",
                "duplicate",
            )
        for key in (("email", email), ("code", code)):
            if key[1]:
                self.seen[key] = row.number
        if target:
            self.claimed[target] = row.number
        return target


_UNMATCHABLE = (
    "neither email nor code: a re-import of this file cannot find this attendee and creates another"
)


@dataclass(slots=True)
class Plan:
    """What the import does: rows to create, merged rows to update, how many it leaves
    unchanged, and every row error."""

    creates: list[Valid] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    notes: list[RowError] = field(default_factory=list)  # done, but the organizer should know

    def upsert(self, row: Valid, current: dict[str, Any] | None) -> None:
        """Create, update or leave alone, depending on what the row changes."""
        if current is None:
            self.creates.append(row)
            if not row.values.get("email_norm") and not row.values.get("code"):
                self.notes.append(RowError(row.number, "email", _UNMATCHABLE, "unmatchable"))
            return
        merged = {**current, **{name: row.values[name] for name in row.given}}
        if "code" in row.given and merged["code"] != current["code"]:
            was, now = current["code"] or "(a signed ticket)", merged["code"] or "(a signed ticket)"
            message = (
                f"{current['id']}'s code (the QR content) changes from {was!r} to {now!r}: "
                "tickets printed before stop admitting"
            )
            self.notes.append(RowError(row.number, "code", message[:300], "code_changed"))
        if "email" in row.given:
            merged["email_norm"] = row.values["email_norm"]
        if any(merged[name] != current[name] for name in COMPARED):
            self.updates.append(merged)
        else:
            self.unchanged += 1

    def failed(self) -> int:
        return len({e.row for e in self.errors})


def validate_rows(
    rows: Sequence[SourceRow], types: dict[str, TicketType], progress: Progress | None
) -> tuple[list[Valid], list[RowError]]:
    """Validate every row, telling `progress` as chunks pass; the valid rows and the errors."""
    slugs = {t.slug: t.id for t in types.values()}
    valid: list[Valid] = []
    errors: list[RowError] = []
    for i, row in enumerate(rows, start=1):
        checked = _validate(row, slugs)
        if isinstance(checked, list):
            errors.extend(checked)
        else:
            valid.append(checked)
        if progress and (i % CHUNK_SIZE == 0 or i == len(rows)):
            progress("validating", i, len(rows))
    return valid, errors


def plan_rows(
    valid: list[Valid], errors: list[RowError], existing: dict[str, dict[str, Any]]
) -> Plan:
    """Match every valid row against the event's attendees (and the rows before it)."""
    index, plan = _Index(existing), Plan(errors=list(errors))
    for row in valid:
        target = index.match(row)
        if isinstance(target, RowError):
            plan.errors.append(target)
        else:
            plan.upsert(row, existing[target] if target else None)
    plan.errors.sort(key=lambda e: e.row)
    return plan
