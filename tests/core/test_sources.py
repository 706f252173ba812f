"""The core runs from its sources.

scripts/bench_engine.py --compiled builds a mypyc copy of the core elsewhere, for itself. A
compiled module beside the sources would be imported instead of them and go on running after
they change, so there must never be one.
"""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

REPOSITORY_CORE = Path(__file__).resolve().parents[2] / "exchange" / "core"


def test_no_compiled_module_shadows_a_core_source() -> None:
    assert (REPOSITORY_CORE / "exchange.py").exists()
    compiled = [
        path.name
        for path in REPOSITORY_CORE.rglob("*")
        if any(path.name.endswith(suffix) for suffix in EXTENSION_SUFFIXES)
    ]
    assert compiled == []
