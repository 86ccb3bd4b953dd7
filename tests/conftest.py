"""Shared test options: ``--update-goldens`` rewrites the bundled scenarios' golden summaries."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        help="rewrite tests/goldens/*.json from the current simulator instead of comparing",
    )


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say so when the core under test is a compiled build left in the checkout (it takes
    precedence over the .py files, so edits to them would not be what ran)."""
    import cfssim.sched.core

    if not cfssim.sched.core.__file__.endswith(".py"):
        where = cfssim.sched.core.__file__
        terminalreporter.write_line(f"note: the core under test is compiled: {where}")
