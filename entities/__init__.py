"""Durable entities: single-flight per image and the ACI quota gate."""
