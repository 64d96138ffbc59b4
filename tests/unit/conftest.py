"""Hooks of the unit tests (the pylive_logs fixture is in tests/conftest.py: the privileged tests use it too)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fuzz profile's time (FUZZ_SECONDS) is shared among the campaigns collected (tests/unit/fuzzing.py)."""
    from . import fuzzing

    count = sum(1 for item in items if hasattr(getattr(item, "function", None), "fuzz_target"))
    fuzzing.share_s = fuzzing.FUZZ_SECONDS / max(count, 1)
