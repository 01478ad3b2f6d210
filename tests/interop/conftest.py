"""The `interop` marker, and a short summary of what the real clients reported (versions, protocol)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

FACTS = pytest.StashKey[list[str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "interop: drives real MCP clients (conformance suite, Inspector, Claude Code); "
        "needs tests/interop/setup.sh, skips otherwise",
    )
    config.stash[FACTS] = []


@pytest.fixture
def record_fact(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Note one line for the end-of-run summary (what a client negotiated, how long it took)."""
    return request.config.stash[FACTS].append


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    facts = config.stash.get(FACTS, [])
    if facts:
        terminalreporter.section("interop")
        for line in dict.fromkeys(facts):  # each line once, in order
            terminalreporter.write_line(line)
