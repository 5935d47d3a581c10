"""The Flet scanner app: thin views over the headless `Gate` (see `scanner_app.ui.app`)."""
