"""doorcheck's sync server: the organizer API, device sync, reconciliation and webhooks."""

__version__ = "0.1.0"
