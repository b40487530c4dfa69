"""Tests of the scanner product."""
