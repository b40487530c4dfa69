"""Local Durable Functions host and ARM simulator; dev/test only, never imported by the app."""
