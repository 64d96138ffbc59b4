"""Fixtures shared by the unit tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture
def pylive_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """pylive's log records, each once. Its logger does not propagate once log_setup has run in this
    process (and does before: caplog's root handler would see every record twice), and a set-up an
    earlier test left pending would drop caplog's handler: all of it is undone here."""
    from pylive.log import log

    saved = log.level, log._pending
    log.level, log._pending = 0, False
    logger = logging.getLogger("pylive")
    level, propagate = logger.level, logger.propagate
    logger.addHandler(caplog.handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # caplog's handler also sits on the root logger: each record once
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.setLevel(level)
    logger.propagate = propagate
    log.level, log._pending = saved


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fuzz profile's time (FUZZ_SECONDS) is shared among the campaigns collected (tests/unit/fuzzing.py)."""
    from . import fuzzing

    count = sum(1 for item in items if hasattr(getattr(item, "function", None), "fuzz_target"))
    fuzzing.share_s = fuzzing.FUZZ_SECONDS / max(count, 1)
