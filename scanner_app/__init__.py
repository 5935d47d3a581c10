"""doorcheck's scanner: the headless gate (cache, decoder, queue, sync loop) and its Flet app."""

__version__ = "0.1.0"
