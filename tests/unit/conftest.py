"""Hooks of the unit tests (the pylive_logs fixture is in tests/conftest.py: the privileged tests use it too)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _fresh_pylive_log() -> Iterator[None]:
    """Each test starts with pylive's logger as in a new process: not set up, so that main() writes to this
    test's stderr (capsys) and not to the stream of an earlier test's set-up in the same worker (an
    order-dependent failure once xdist's file order changed)."""
    from pylive.log import log

    log.level, log.kmsg, log.console, log._pending = 0, None, False, False
    logger = logging.getLogger("pylive")
    logger.handlers.clear()
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
    yield


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fuzz profile's time (FUZZ_SECONDS) is shared among the campaigns collected (tests/unit/fuzzing.py)."""
    from . import fuzzing

    count = sum(1 for item in items if hasattr(getattr(item, "function", None), "fuzz_target"))
    fuzzing.share_s = fuzzing.FUZZ_SECONDS / max(count, 1)
