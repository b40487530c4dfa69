"""The pure domain: events, image references, settings and reports; no azure.* imports."""
