"""Activities: thin shells, each around one external system."""
