"""Client functions: the Event Hub starter, the HTTP API and the janitor timer."""
