"""The ASGI entry point for uvicorn: `uvicorn sync_server.asgi:app` (settings from DOORCHECK_*)."""

from sync_server.app import create_app

app = create_app()
