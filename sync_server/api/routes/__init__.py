"""One router module per resource, wired in `sync_server.app`."""
