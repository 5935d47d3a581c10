"""What `/openapi.json` says of each operation for integrators: a summary that reads as a sentence
and a description (the scope it needs, what it answers), for the operations whose route does not
say it itself. `document_operations` fills them in; a route's own docstring is kept and the
scope line added when missing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["OPERATIONS", "document_operations"]

_CHILD = {
    "ticket_type": ("ticket type", "ticket-types", "what a ticket grants: its slug is what imports"
                    " and the scanner show"),
    "zone": ("zone", "zones", "an area whose occupancy the checkpoints count (optional capacity)"),
    "checkpoint": ("checkpoint", "checkpoints", "a gate: its zone, direction (in, out, both) and "
                   "rules such as anti-passback"),
}  # fmt: skip

# operation id: (summary, description, scope)
OPERATIONS: dict[str, tuple[str, str, str]] = {
    "scan_online": ("Scan a code at a checkpoint (online)", "", "write or a device token"),
    "list_scans": (
        "List an event's readings",
        "The reading log, newest received first, "
        "filtered by checkpoint, attendee, device or status; paged with `cursor`.",
        "read",
    ),
    "get_event_stats": (
        "Get an event's live figures",
        "Check-ins, occupancy and readings, as they stand now.",
        "read",
    ),
    "sync_events": (
        "List the events a device may sync",
        "The events a gate can pull.",
        "a device token (scan)",
    ),
    "sync_pull": ("Pull an event's attendees and settings", "", "a device token (scan)"),
    "sync_push": ("Upload offline readings and door registrations", "", "a device token (scan)"),
    "confirm_device_wipe": ("Confirm a device wiped itself", "", "the device's own token"),
    "healthz": (
        "Check that the server process is up",
        "Touches nothing: answers at once.",
        "no key",
    ),
    "readyz": (
        "Check that the database answers",
        "503 `unavailable` when it does not within 2 s.",
        "",
    ),
    "create_api_key": (
        "Create an API key (shown once)",
        "The key is in `key` in this answer and never again; only its prefix is kept readable.",
        "admin",
    ),
    "list_api_keys": (
        "List the organization's API keys",
        "Prefixes, scopes, last use and revocation; never the keys.",
        "admin",
    ),
    "revoke_api_key": ("Revoke an API key", "It answers 401 from now on.", "admin"),
    "create_event": (
        "Create an event",
        "An event holds ticket types, zones, checkpoints and "
        "attendees; its `slug` is unique in the organization.",
        "write",
    ),
    "list_events": ("List events", "Newest first, paged with `cursor`.", "read"),
    "get_event": ("Get an event", "", "read"),
    "update_event": ("Update an event", "Only the fields sent change.", "write"),
    "delete_event": ("Delete an event", "Answers 204 with no body.", "write"),
    "create_attendee": (
        "Create an attendee",
        "`code` (the QR content) is generated when absent; a duplicate email or code answers 409.",
        "write",
    ),
    "list_attendees": (
        "List an event's attendees",
        "Search by name, email or code (`q`), "
        "filter by status, ticket type, tag or check-in; newest first.",
        "read",
    ),
    "register_attendee": ("Register an attendee at the door or from a form", "", "write"),
    "get_attendee": ("Get an attendee", "With check-in state (`entries`, `inside`).", "read"),
    "update_attendee": (
        "Update an attendee",
        "Only the fields sent change; a changed status "
        "(e.g. `cancelled`) applies at every gate on its next pull.",
        "write",
    ),
    "delete_attendee": (
        "Delete an attendee",
        "Gates forget them on their next pull; 204.",
        "write",
    ),
    "get_attendee_qr": ("Get an attendee's QR code (PNG)", "The image a ticket prints.", "read"),
    "import_attendees": ("Import attendees from CSV or JSON", "", "write"),
    "create_device": ("Create a device and its enrolment code", "", "admin"),
    "list_devices": (
        "List devices",
        "Status, last seen, app version, clock offset and the readings each still holds.",
        "admin",
    ),
    "enroll_device": ("Trade an enrolment code for a device token", "", "none (the code)"),
    "revoke_device": ("Revoke a device", "Its token answers 401 from now on.", "admin"),
    "get_device": ("Get a device", "", "admin"),
    "wipe_device": ("Order a device to erase its data", "", "admin"),
    "list_conflicts": (
        "List an event's sync conflicts",
        "Readings that offline gates decided differently from the server; paged with `cursor`.",
        "admin",
    ),
    "get_conflict": ("Get a sync conflict", "With the readings involved.", "admin"),
    "resolve_conflict": (
        "Resolve a sync conflict",
        "Records the organizer's decision; emits `conflict.resolved`.",
        "admin",
    ),
    "get_webhook_catalog": ("List the webhook event types", "", "webhooks"),
    "create_webhook": ("Create a webhook endpoint (secret shown once)", "", "webhooks"),
    "list_webhooks": ("List webhook endpoints", "Never their secrets.", "webhooks"),
    "get_webhook": ("Get a webhook endpoint", "", "webhooks"),
    "update_webhook": (
        "Update a webhook endpoint",
        'URL, event types (`["*"]` for all), events, description, active.',
        "webhooks",
    ),
    "delete_webhook": (
        "Delete a webhook endpoint",
        "Pending deliveries to it are dropped; 204.",
        "webhooks",
    ),
    "test_webhook": ("Send a test webhook", "", "webhooks"),
    "rotate_webhook_secret": ("Rotate a webhook endpoint's signing secret", "", "webhooks"),
    "replay_webhook_delivery": ("Send a webhook delivery again", "", "webhooks"),
    **{
        f"{verb}_{name}{'s' if verb == 'list' else ''}": (summary, text, scope)
        for name, (label, _, what) in _CHILD.items()
        for verb, summary, text, scope in (
            ("create", f"Create a {label}", f"A {label}: {what}.", "write"),
            ("list", f"List an event's {label}s", "All of them, in creation order.", "read"),
            ("get", f"Get a {label}", "", "read"),
            ("update", f"Update a {label}", "Only the fields sent change.", "write"),
            ("delete", f"Delete a {label}", "Answers 204 with no body.", "write"),
        )
    },
}


def document_operations(paths: dict[str, Any]) -> None:
    """Give each operation its summary, and a description saying what it needs."""
    for operations in paths.values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            found = OPERATIONS.get(operation.get("operationId", ""))
            if found is None:
                continue
            summary, text, scope = found
            operation["summary"] = summary
            own = operation.get("description") or ""
            description = "\n\n".join(part for part in (own, text) if part) or summary + "."
            if scope and "Needs" not in description:
                description += f"\n\nNeeds: {scope}."
            operation["description"] = description
