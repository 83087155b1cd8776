"""Clocks behind the Clock port: the system clock, and a frozen one that tests and replays move by hand."""
