"""Performance measurements; figures are recorded in docs/performance.md."""
