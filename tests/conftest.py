"""Shared pytest configuration: slow soak tests run only when asked for, and --compiled.

`pytest --compiled` runs the tests against the compiled build of the sources as they are
(exchange/accelerator.py), making it first if there is none, so that the code `paperex serve`
runs is tested too. Tests of the interpreted classes themselves are marked interpreted_only.
"""

from __future__ import annotations

import pytest

from exchange import accelerator


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")
    parser.addoption(
        "--compiled",
        action="store_true",
        help="run against the modules compiled by mypyc (paperex compile), building them first",
    )


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--compiled"):
        # Before collection: the test modules must import the compiled build.
        accelerator.activate(accelerator.build())


def pytest_report_header(config: pytest.Config) -> str:
    return f"paperex modules: {accelerator.describe()}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skips = []
    if not config.getoption("--run-slow"):
        skips.append(("slow", pytest.mark.skip(reason="slow soak test: run with --run-slow")))
    if config.getoption("--compiled"):
        reason = "tests the interpreted classes themselves"
        skips.append(("interpreted_only", pytest.mark.skip(reason=reason)))
    for item in items:
        for keyword, skip in skips:
            if keyword in item.keywords:
                item.add_marker(skip)
