"""The composition root: the `doorcheck` command line, which puts the sync server and the scanner
side by side (the only package that imports both)."""

from sync_server import __version__

__all__ = ["__version__"]
