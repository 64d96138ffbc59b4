"""Fixtures of the unit tests: pylive_logs is in tests/conftest.py (the privileged tests use it too)."""
