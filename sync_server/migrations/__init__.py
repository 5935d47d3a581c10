"""Alembic migrations of the server schema; `doorcheck db upgrade` applies them."""
