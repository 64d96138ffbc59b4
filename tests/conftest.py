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


_DURATIONS = ROOT / "tests" / "durations.json"
QEMU_DEFAULT_S = 300.0


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Longest test files first (tests/durations.json). With xdist's `--dist loadfile
    --no-loadscope-reorder` (make test), each process takes the next whole file in this order, so the
    long QEMU files start at once and the short ones fill in at the end instead of one long file
    running alone on one core while the other is idle."""
    import json

    try:
        known: dict[str, float] = {k: float(v) for k, v in json.loads(_DURATIONS.read_text()).items()
                                   if not k.startswith("_")}
    except (OSError, ValueError):
        known = {}

    def weight(item: pytest.Item) -> float:
        rel = Path(str(item.path)).resolve().relative_to(ROOT).as_posix()
        return known.get(rel, QEMU_DEFAULT_S if rel.startswith("tests/qemu/") else 0.0)

    items.sort(key=lambda item: -weight(item))  # stable: the order inside a file is kept
