"""doorcheck's scanner: the headless gate (cache, decoder, queue, sync loop) and its Flet app."""
