"""The fault suite runs against the real server on both engines (the `api` and `org` fixtures of
the server suite, each test once on SQLite and once on PostgreSQL)."""

from tests.server.conftest import api, org  # noqa: F401 - fixtures
