"""Webhooks: the SSRF guard, the event catalog, the outbox and its dispatcher (SPEC section 8)."""
