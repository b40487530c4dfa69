"""Small Durable Functions apps that the devhost tests run."""
