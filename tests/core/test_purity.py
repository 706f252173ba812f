"""The core stays pure: no I/O, no clock, no randomness, no async."""

from __future__ import annotations

import ast
from pathlib import Path

import exchange.core

FORBIDDEN = {"asyncio", "aiohttp", "pydantic", "structlog", "time", "random", "uuid", "datetime"}
CORE = Path(exchange.core.__file__).parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name | ast.Attribute)
            and getattr(node.func, "id", getattr(node.func, "attr", "")) == "__import__"
        ):
            names.update(
                arg.value
                for arg in node.args
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            )
    return names


def test_core_imports_no_shell_and_no_source_of_nondeterminism() -> None:
    sources = sorted(CORE.rglob("*.py"))
    assert len(sources) > 5
    offenders = {
        f"{path.relative_to(CORE)}: {name}"
        for path in sources
        for name in imported_modules(path)
        if name.split(".")[0] in FORBIDDEN or name.startswith("importlib")
    }
    assert offenders == set()


def test_core_imports_nothing_outside_the_core_of_this_project() -> None:
    offenders = {
        f"{path.relative_to(CORE)}: {name}"
        for path in sorted(CORE.rglob("*.py"))
        for name in imported_modules(path)
        if name.split(".")[0] in {"exchange", "clients"} and not name.startswith("exchange.core")
    }
    assert offenders == set()


def test_the_purity_check_catches_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom time import monotonic\nimport random as r\n")
    assert {"time", "random"} <= imported_modules(sample)
