import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import logging  # noqa: E402 - after the path set-up above
from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402


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
