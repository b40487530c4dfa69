"""orchestration tests."""
