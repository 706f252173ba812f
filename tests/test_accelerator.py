"""The compiled build stands in for the sources: same trades, same snapshots, chosen at start.

Each test runs the other kind of code in a child process: the compiled build when this run
imports the sources, the sources under `pytest --compiled`. They need a C compiler and mypy,
and make the build once per state of the sources (about a minute) if there is none.
"""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from exchange import accelerator
from exchange.core.exchange import Exchange
from tests.core.test_pickling import continue_trading, scenario_with_book_and_trigger

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None, reason="needs a C compiler"
)

# Run in the child: the other kind of code, then the step named by argv[2].
CHILD = """
import pickle, sys
from pathlib import Path
from exchange import accelerator
if sys.argv[1] != "interpreted":
    accelerator.activate(Path(sys.argv[1]))
import exchange.core.exchange as core
from tests.core.test_pickling import continue_trading, scenario_with_book_and_trigger
path = Path(sys.argv[3])
scenario, _, taker = scenario_with_book_and_trigger()
if sys.argv[2] == "write":
    path.write_bytes(pickle.dumps(scenario.exchange, protocol=pickle.HIGHEST_PROTOCOL))
    print(scenario.exchange.state_hash(), continue_trading(scenario, scenario.exchange, taker))
else:
    restored = pickle.loads(path.read_bytes())
    restored.check_invariants()
    print(restored.state_hash(), continue_trading(scenario, restored, taker))
print(Path(core.__file__).suffix)
"""


def run_other_kind(step: str, path: Path) -> list[str]:
    """Run CHILD with the kind of code this process does not run; return its lines."""
    if accelerator.active_build() is None:
        other = str(accelerator.build(echo=lambda _: None))
        expected_suffix = ".so"
    else:
        other, expected_suffix = "interpreted", ".py"
    result = subprocess.run(
        [sys.executable, "-c", CHILD, other, step, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    *lines, suffix = result.stdout.split()
    assert suffix == expected_suffix
    return lines


def test_a_snapshot_from_the_other_kind_of_code_loads_and_trades_the_same(tmp_path: Path) -> None:
    path = tmp_path / "exchange.pickle"
    state_hash, hash_after_trading = run_other_kind("write", path)
    restored: Exchange = pickle.loads(path.read_bytes())
    restored.check_invariants()
    assert restored.state_hash() == state_hash
    scenario, _, taker = scenario_with_book_and_trigger()
    assert continue_trading(scenario, restored, taker) == hash_after_trading


def test_the_other_kind_of_code_loads_a_snapshot_from_this_one(tmp_path: Path) -> None:
    path = tmp_path / "exchange.pickle"
    scenario, _, taker = scenario_with_book_and_trigger()
    path.write_bytes(pickle.dumps(scenario.exchange, protocol=pickle.HIGHEST_PROTOCOL))
    state_hash = scenario.exchange.state_hash()
    expected_after_trading = continue_trading(scenario, scenario.exchange, taker)
    assert run_other_kind("read", path) == [state_hash, expected_after_trading]


def test_the_build_is_refused_once_the_modules_it_replaces_are_imported() -> None:
    if accelerator.active_build() is not None:
        pytest.skip("this run imports the build")
    build = accelerator.build(echo=lambda _: None)
    with pytest.raises(accelerator.AcceleratorError, match="imported from its source"):
        accelerator.activate(build)
    assert accelerator.active_build() is None


@pytest.mark.parametrize(
    ("choice", "expected"), [("on", "compiled by mypyc"), ("off", "interpreted")]
)
def test_paperex_serve_says_which_code_it_runs(choice: str, expected: str, tmp_path: Path) -> None:
    accelerator.build(echo=lambda _: None)
    command = [sys.executable, "-m", "exchange.cli", "serve", "--port", "0"]
    command += ["--data-dir", str(tmp_path)]
    command += ["--config", str(ROOT / "configs" / "manual.toml"), "--compiled", choice]
    with subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as server:
        try:
            assert server.stdout is not None
            seen = []
            for line in server.stdout:
                seen.append(line)
                if line.startswith("paperex: modules "):
                    break
            assert seen, "the server printed nothing"
            assert seen[-1].startswith(f"paperex: modules {expected}"), "".join(seen)
        finally:
            server.terminate()


def test_the_compiled_classes_keep_their_native_layout() -> None:
    # A class mypyc cannot make native (an unknown decorator does that) still runs, as an
    # ordinary class whose every field read is a dictionary lookup: slower, not wrong.
    if accelerator.active_build() is None:
        pytest.skip("runs under pytest --compiled")
    from exchange.api.jsonrpc import Request
    from exchange.core.book import BookSide, PriceLevel
    from exchange.core.instruments import Instrument
    from exchange.core.ledger import Account, Position
    from exchange.core.orders import Order
    from exchange.runtime.codec import COMMAND_TYPES

    kinds = [*COMMAND_TYPES.values(), Exchange, Order, BookSide, PriceLevel, Account, Position]
    for kind in [*kinds, Instrument, Request]:
        assert "__mypyc_attrs__" in vars(kind), kind.__name__


def test_the_events_every_trade_makes_are_built_natively_when_compiled() -> None:
    from exchange.core import events
    from exchange.core.records import is_compiled

    hot = [
        (events.OrderAccepted, events.build_order_accepted),
        (events.OrderFilled, events.build_order_filled),
        (events.OrderCanceled, events.build_order_canceled),
        (events.OrderExpired, events.build_order_expired),
        (events.BookUpdated, events.build_book_updated),
        (events.PositionChanged, events.build_position_changed),
        (events.BalanceChanged, events.build_balance_changed),
    ]
    compiled = accelerator.active_build() is not None
    for kind, build in hot:
        # Compiled: the class's own __init__ is a native constructor and the builder a
        # native function. Interpreted: both are generated Python (fast_init, builder).
        assert is_compiled(vars(kind)["__init__"]) is compiled, kind.__name__
        assert is_compiled(build) is compiled, kind.__name__
        assert ("__mypyc_attrs__" in vars(kind)) is compiled, kind.__name__
