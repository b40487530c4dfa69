"""Held-out checks of issue 9, written apart from the implementers' fakes (see each module)."""
