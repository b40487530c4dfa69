"""devhost tests."""
