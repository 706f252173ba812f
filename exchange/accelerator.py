"""The hot modules compiled by mypyc, built once per state of the sources and run in their place.

`paperex compile` (and `scripts/run`, on first start) compiles the modules in
`COMPILED_MODULES` into `build/compiled/<fingerprint>/`. The fingerprint is a hash of every
source file of the `exchange` package, the Python and mypy versions and the module list, so
a build only ever stands in for exactly the sources it was made from: edit any file and the
server runs interpreted until the next `paperex compile`. Nothing is written beside the
sources; tests import the sources.

`activate` puts a build in front of the sources for the rest of the process. It must run
before any compiled module is imported, which is why `paperex serve` does it first thing.

Compiled and interpreted code give the same results and state hashes; `pytest --compiled`
runs the test suite against the build (scripts/test runs it both ways). Snapshots have one
form for both (exchange/core/pickling.py), so either loads what the other wrote; a snapshot
written before that form is skipped by a compiled server, which then replays the journal.
The events compile too: the ones every trade makes write their own __init__, which mypyc
turns into a native constructor (see events.py). The enums, codes, records and integrity
checks stay interpreted: mypyc mishandles IntEnum constants, records.py generates code at
run time, and the integrity errors subclass AssertionError, which mypyc cannot compile.
"""

from __future__ import annotations

import hashlib
import importlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[1]
PACKAGE: Final = ROOT / "exchange"
BUILD_ROOT: Final = ROOT / "build" / "compiled"

COMPILED_MODULES: Final = (
    "exchange.core.book",
    "exchange.core.commands",
    "exchange.core.events",
    "exchange.core.instruments",
    "exchange.core.exchange",
    "exchange.core.ledger",
    "exchange.core.liquidation",
    "exchange.core.margin",
    "exchange.core.market",
    "exchange.core.numbers",
    "exchange.core.orders",
    "exchange.core.pickling",
    "exchange.core.risk",
    "exchange.core.risk_index",
    "exchange.core.triggers",
    "exchange.core.validation",
    "exchange.api.convert",
    "exchange.api.history",
    "exchange.api.jsonrpc",
    "exchange.api.methods_trading",
    "exchange.api.ratelimit",
    "exchange.api.registry",
    "exchange.api.render",
    "exchange.api.streams",
    "exchange.api.ws",
    "exchange.runtime.clock",
    "exchange.runtime.journal",
    "exchange.runtime.sequencer",
    "exchange.runtime.fanout",
)
"""The modules mypyc compiles: the matching path and the request path of the server."""

_MYPYC: Final = "import sys; from mypyc.__main__ import main; sys.argv[0] = 'mypyc'; main()"
_MYPY_CONFIG: Final = "[mypy]\n\n[mypy-sortedcontainers.*]\nignore_missing_imports = True\n"
_BUILT: Final = "BUILT"

_active: Path | None = None


class AcceleratorError(Exception):
    """The compiled modules cannot be built or used here; the message says why."""


def fingerprint() -> str:
    """Return the name a build of the sources as they are now has."""
    try:
        mypy_version = metadata.version("mypy")
    except metadata.PackageNotFoundError:
        mypy_version = "none"
    digest = hashlib.sha256(f"{sys.version}|mypy {mypy_version}|".encode())
    digest.update(" ".join(COMPILED_MODULES).encode())
    for path in sorted(PACKAGE.rglob("*.py")):
        digest.update(b"\0" + path.relative_to(PACKAGE).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:20]


def find_build() -> Path | None:
    """Return the build of the sources as they are now, if one was made."""
    directory = BUILD_ROOT / fingerprint()
    return directory if (directory / _BUILT).exists() else None


def build(echo: Callable[[str], None] = print) -> Path:
    """Compile the modules unless a build of these sources exists; return the build."""
    existing = find_build()
    if existing is not None:
        return existing
    try:
        importlib.import_module("mypyc")
    except ImportError:
        raise AcceleratorError("mypyc is not installed (it comes with mypy)") from None
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        raise AcceleratorError("no C compiler (cc or gcc) on PATH")
    BUILD_ROOT.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="staging-", dir=BUILD_ROOT))
    try:
        shutil.copytree(PACKAGE, staging / "exchange", ignore=shutil.ignore_patterns("__pycache__"))
        (staging / "mypy.ini").write_text(_MYPY_CONFIG)
        name = fingerprint()
        if not _same_sources(staging / "exchange"):
            raise AcceleratorError("a source file changed while it was copied; run again")
        echo(f"compiling {len(COMPILED_MODULES)} modules with mypyc (about a minute) ...")
        sources = [module.replace(".", "/") + ".py" for module in COMPILED_MODULES]
        result = subprocess.run(
            [sys.executable, "-c", _MYPYC, *sources],
            cwd=staging,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise AcceleratorError(f"mypyc failed:\n{output[-4000:]}")
        _keep_only_extensions(staging)
        (staging / _BUILT).write_text(name + "\n")
        target = BUILD_ROOT / name
        if not target.exists():
            staging.rename(target)
        for old in BUILD_ROOT.iterdir():
            if old.is_dir() and not old.name.startswith("staging-") and old != target:
                shutil.rmtree(old, ignore_errors=True)  # built from sources no longer here
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    echo(f"compiled into {target}")
    return target


def activate(directory: Path) -> None:
    """Import the compiled modules from a build from now on, in place of their sources."""
    global _active
    if _active is not None:
        return
    imported = [module for module in COMPILED_MODULES if module in sys.modules]
    if imported:
        raise AcceleratorError(f"{imported[0]} was imported from its source already")
    if not (directory / _BUILT).exists():
        raise AcceleratorError(f"{directory} is not a finished build")
    # mypyc puts the code of all modules in one library at the build's top level; each
    # module's own extension imports it by name.
    sys.path.append(str(directory))
    for package_name in sorted({module.rpartition(".")[0] for module in COMPILED_MODULES}):
        package = importlib.import_module(package_name)
        package.__path__.insert(0, str(directory.joinpath(*package_name.split("."))))
    _active = directory


def active_build() -> Path | None:
    """Return the build this process runs, or None when it runs the sources."""
    return _active


def describe() -> str:
    """Say in a few words which code this process runs."""
    if _active is None:
        return "interpreted (paperex compile makes a compiled build)"
    return f"compiled by mypyc, build {_active.name}"


def _same_sources(copy: Path) -> bool:
    """Tell whether a copy of the package holds the sources the fingerprint was taken of."""
    real = [path.relative_to(PACKAGE) for path in sorted(PACKAGE.rglob("*.py"))]
    copied = [path.relative_to(copy) for path in sorted(copy.rglob("*.py"))]
    return real == copied and all(
        (PACKAGE / path).read_bytes() == (copy / path).read_bytes() for path in real
    )


def _keep_only_extensions(staging: Path) -> None:
    """Leave the compiled extensions and nothing else, so no source copy shadows the real."""
    shutil.rmtree(staging / "build", ignore_errors=True)  # the generated C and objects
    (staging / "mypy.ini").unlink()
    shutil.rmtree(staging / ".mypy_cache", ignore_errors=True)
    for path in sorted(staging.rglob("*"), reverse=True):
        if path.is_dir():
            if not any(path.iterdir()):
                path.rmdir()
        elif not path.name.endswith(".so"):
            path.unlink()
