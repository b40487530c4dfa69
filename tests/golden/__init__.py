"""Golden histories of the orchestrations: recorded from devhost runs, replayed against the current code."""
