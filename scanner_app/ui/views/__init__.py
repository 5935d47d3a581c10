"""One module per screen; each renders `scanner_app.state` values and forwards events."""
