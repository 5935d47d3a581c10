"""The server's tables and their wire schemas (SQLModel ladder: Base → Create/Update → table →
Public); importing this package registers every table on `SQLModel.metadata`.
"""

from sync_server.models.core import ApiKey, Organization
from sync_server.models.devices import Conflict, Device, DoorRegistration
from sync_server.models.events import Checkpoint, Event, TicketType, Zone
from sync_server.models.operations import IdempotencyRecord, RateLimitWindow
from sync_server.models.people import Attendee, AttendeeTombstone, Scan
from sync_server.models.webhooks import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookFanout,
    WebhookMessage,
)

__all__ = [
    "ApiKey",
    "Attendee",
    "AttendeeTombstone",
    "Checkpoint",
    "Conflict",
    "Device",
    "DoorRegistration",
    "Event",
    "IdempotencyRecord",
    "Organization",
    "RateLimitWindow",
    "Scan",
    "TicketType",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookFanout",
    "WebhookMessage",
    "Zone",
]
