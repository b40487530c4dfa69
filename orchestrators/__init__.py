"""Deterministic orchestrator generators: no I/O, no clock, no environment reads."""
