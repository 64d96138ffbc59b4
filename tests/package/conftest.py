"""The package tier (marker ``package``): tests that install pylive's Debian packages on this host.

They change the host (dpkg -i, then --purge), so they run only when selected by name,
``pytest -m package tests/package`` (``make test-package``); any other selection skips them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

PACKAGE_TESTS_DIR = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "package: installs the built .deb packages on this host (make test-package)")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    chosen = str(config.getoption("-m") or "").strip() == "package"
    for item in items:
        try:
            Path(str(item.path)).resolve().relative_to(PACKAGE_TESTS_DIR)
        except ValueError:
            continue
        item.add_marker(pytest.mark.package)
        if not chosen:
            item.add_marker(pytest.mark.skip(reason="changes the host: run with `make test-package` (-m package)"))
