"""Fixtures shared by the unit tests."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture
def pylive_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """pylive's log records. Its logger does not propagate once log_setup has run in this process,
    and a set-up an earlier test left pending would drop caplog's handler: both are undone here."""
    from pylive.log import log

    saved = log.level, log._pending
    log.level, log._pending = 0, False
    logger = logging.getLogger("pylive")
    level = logger.level
    logger.addHandler(caplog.handler)
    logger.setLevel(logging.INFO)
    yield caplog
    logger.removeHandler(caplog.handler)
    logger.setLevel(level)
    log.level, log._pending = saved
