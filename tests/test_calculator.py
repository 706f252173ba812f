"""`paperex liq` and calculate(): the published examples end to end, and bad input."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from exchange.calculator import CalculatorError, calculate
from exchange.cli import DEFAULT_INSTRUMENTS, main
from exchange.core.instruments import Instrument
from exchange.instrument_config import load_instruments

REPO = Path(__file__).resolve().parents[1]

# Tick 0.01 and Binance's 2021 brackets, which its published examples were computed with.
EXAMPLE_INSTRUMENTS = """
[instruments.BTCUSDT]
base_asset = "BTC"
tick_size = "0.01"
lot_size = "0.001"
min_qty = "0.001"
max_qty = "1000"
brackets = [
    { floor = "0", cap = "50000", max_leverage = 125, maintenance_margin_rate = "0.004" },
    { floor = "50000", cap = "250000", max_leverage = 100, maintenance_margin_rate = "0.005" },
    { floor = "250000", cap = "1000000", max_leverage = 50, maintenance_margin_rate = "0.01" },
    { floor = "1000000", cap = "5000000", max_leverage = 20, maintenance_margin_rate = "0.025" },
    { floor = "5000000", cap = "20000000", max_leverage = 10, maintenance_margin_rate = "0.05" },
]

[instruments.ETHUSDT]
base_asset = "ETH"
tick_size = "0.01"
lot_size = "0.001"
min_qty = "0.001"
max_qty = "10000"
brackets = [
    { floor = "0", cap = "10000", max_leverage = 100, maintenance_margin_rate = "0.005" },
    { floor = "10000", cap = "100000", max_leverage = 75, maintenance_margin_rate = "0.0065" },
    { floor = "100000", cap = "500000", max_leverage = 50, maintenance_margin_rate = "0.01" },
    { floor = "500000", cap = "1000000", max_leverage = 25, maintenance_margin_rate = "0.02" },
    { floor = "1000000", cap = "2000000", max_leverage = 10, maintenance_margin_rate = "0.05" },
    { floor = "2000000", cap = "5000000", max_leverage = 5, maintenance_margin_rate = "0.1" },
    { floor = "5000000", cap = "10000000", max_leverage = 4, maintenance_margin_rate = "0.125" },
]
"""

WALLET = "1535443.01"
ETH_POSITION = {
    "symbol": "ETHUSDT",
    "side": "long",
    "qty": "3683.979",
    "entry_price": "1456.84",
    "mark_price": "1335.18",
}
BTC_POSITION = {
    "symbol": "BTCUSDT",
    "side": "long",
    "qty": "109.488",
    "entry_price": "32481.98",
    "mark_price": "31967.27",
}
CROSS_SCENARIO = {
    "wallet_balance": WALLET,
    "positions": [
        {**ETH_POSITION, "margin_mode": "cross", "mmr": "0.10", "cum": "135365"},
        {**BTC_POSITION, "margin_mode": "cross", "mmr": "0.025", "cum": "16300"},
    ],
}
SIMPLE = ["liq", "--symbol", "BTCUSDT", "--entry", "60000", "--qty", "1", "--mmr", "0.004"]


@pytest.fixture
def example_instruments(tmp_path: Path) -> Path:
    path = tmp_path / "instruments.toml"
    path.write_text(EXAMPLE_INSTRUMENTS, encoding="utf-8")
    return path


@pytest.fixture
def shipped() -> dict[str, Instrument]:
    return load_instruments(DEFAULT_INSTRUMENTS)


def run_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    assert main([*argv, "--json"]) == 0
    positions: list[dict[str, Any]] = json.loads(capsys.readouterr().out)["positions"]
    return positions


def run_failing(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    return captured.err


# ---------------------------------------------------------------------------------------------
# Published examples
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("position", "expected"),
    [(ETH_POSITION, "1114.78"), (BTC_POSITION, "18778.73")],
)
def test_isolated_examples_through_the_instrument_brackets(
    position: dict[str, str],
    expected: str,
    example_instruments: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [
        "liq",
        "--instruments",
        str(example_instruments),
        "--symbol",
        position["symbol"],
        "--side",
        "long",
        "--entry",
        position["entry_price"],
        "--qty",
        position["qty"],
        "--margin",
        WALLET,
    ]
    [result] = run_json(argv, capsys)
    assert result["liquidation_price"] == expected


def test_isolated_example_with_a_fixed_tier(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["liq", "--symbol", "ETHUSDT", "--side", "long", "--entry", "1456.84"]
    argv += ["--qty", "3683.979", "--margin", WALLET, "--mmr", "0.1", "--cum", "135365"]
    [result] = run_json(argv, capsys)
    assert result["liquidation_price"] == "1114.78"
    assert result["max_loss"] == "1535443.01"


def test_cross_example_from_a_scenario_on_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(CROSS_SCENARIO)))
    eth, btc = run_json(["liq", "--scenario", "-"], capsys)
    assert (eth["liquidation_price"], btc["liquidation_price"]) == ("1153.26", "26316.89")
    # The account's figures are shared by its cross positions.
    assert eth["margin_ratio"] == btc["margin_ratio"]
    assert eth["max_loss"] == btc["max_loss"] == "1030895.55638"
    assert eth["unrealized_pnl"] == "-448192.88514"
    assert btc["maintenance_margin"] == "71200.811444"


def test_cross_example_with_the_brackets_from_a_scenario_file(
    tmp_path: Path, example_instruments: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = {
        "wallet_balance": WALLET,
        "positions": [
            {**ETH_POSITION, "margin_mode": "cross"},
            {**BTC_POSITION, "margin_mode": "cross"},
        ],
    }
    path = tmp_path / "account.json"
    path.write_text(json.dumps(scenario), encoding="utf-8")
    argv = ["liq", "--scenario", str(path), "--instruments", str(example_instruments)]
    eth, btc = run_json(argv, capsys)
    assert (eth["liquidation_price"], btc["liquidation_price"]) == ("1153.26", "26316.89")


@pytest.mark.parametrize(
    ("side", "liquidation", "bankruptcy"),
    [("long", "57228.92", "57000.00"), ("short", "62749.00", "63000.00")],
)
@pytest.mark.parametrize("sizing", [["--leverage", "20"], ["--margin", "3000"]])
def test_simple_isolated_position(
    side: str,
    liquidation: str,
    bankruptcy: str,
    sizing: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    [result] = run_json([*SIMPLE, "--side", side, "--mode", "isolated", *sizing], capsys)
    assert result["liquidation_price"] == liquidation
    assert result["bankruptcy_price"] == bankruptcy
    assert result["initial_margin"] == "3000.00"
    assert result["maintenance_margin"] == "240.00"
    assert result["margin_ratio"] == "0.0800"
    assert result["risk_level"] == "safe"
    assert result["max_loss"] == "3000.00"
    assert result["unrealized_pnl"] == "0.00"


def test_json_output_has_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    [result] = run_json([*SIMPLE, "--side", "long", "--leverage", "20", "--mark", "58000"], capsys)
    assert set(result) >= {
        "symbol",
        "side",
        "liquidation_price",
        "bankruptcy_price",
        "initial_margin",
        "maintenance_margin",
        "margin_ratio",
        "distance_to_liquidation_pct",
        "risk_level",
        "max_loss",
        "unrealized_pnl",
    }
    assert result["unrealized_pnl"] == "-2000.00"
    assert result["margin_ratio"] == "0.2320"
    assert result["distance_to_liquidation_pct"] == "1.33"


def test_shipped_brackets_apply_without_a_fixed_tier(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["liq", "--symbol", "BTCUSDT", "--side", "long", "--entry", "60000", "--qty", "1"]
    [result] = run_json([*argv, "--leverage", "20"], capsys)
    # 60,000 USDT is in the second bracket: MMR 0.5%, cum 50.
    assert result["maintenance_margin"] == "250.00"
    assert result["liquidation_price"] == "57236.18"


def test_no_liquidation_price_is_null_and_none(capsys: pytest.CaptureFixture[str]) -> None:
    [result] = run_json([*SIMPLE, "--side", "long", "--leverage", "1"], capsys)
    assert result["liquidation_price"] is None
    assert result["distance_to_liquidation_pct"] is None
    assert main([*SIMPLE, "--side", "long", "--leverage", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].split() == ["liquidation", "price", "none"]


def test_cross_position_from_flags(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*SIMPLE, "--side", "long", "--mode", "cross", "--wallet", "5000"]
    [result] = run_json(argv, capsys)
    assert result["liquidation_price"] == "55220.88"
    assert result["initial_margin"] == "3000.00"
    assert result["max_loss"] == "5000.00"


def test_table_shows_one_column_per_position(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(CROSS_SCENARIO)))
    assert main(["liq", "--scenario", "-"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ETHUSDT", "long", "BTCUSDT", "long"]
    assert lines[2].split()[-2:] == ["1153.26", "26316.89"]


def test_console_entry_runs_as_a_module() -> None:
    argv = [*SIMPLE, "--side", "short", "--leverage", "20", "--json"]
    completed = subprocess.run(
        [sys.executable, "-m", "exchange.cli", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["positions"][0]["liquidation_price"] == "62749.00"


def test_console_entry_reports_bad_input_with_exit_code_2() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "exchange.cli", *SIMPLE, "--side", "long"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip() == (
        "paperex liq: error: --margin: an isolated position needs isolated_margin or leverage"
    )


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["liq", "--symbol", "DOGEUSDT", "--side", "long", "--entry", "1", "--qty", "1"],
            "--symbol: unknown symbol 'DOGEUSDT'",
        ),
        ([*SIMPLE, "--qty", "-1", "--side", "long", "--leverage", "2"], "--qty: "),
        ([*SIMPLE, "--qty", "0.0001", "--side", "long", "--leverage", "2"], "--qty: "),
        ([*SIMPLE, "--side", "long", "--leverage", "125"], "125x is above the 100x maximum"),
        ([*SIMPLE, "--side", "long", "--leverage", "0"], "--leverage: "),
        ([*SIMPLE, "--side", "long", "--leverage", "ten"], "invalid int value"),
        ([*SIMPLE, "--side", "sideways", "--leverage", "2"], "invalid choice"),
        ([*SIMPLE, "--side", "long", "--mode", "cross"], "wallet"),
        ([*SIMPLE, "--side", "long", "--margin", "0.000000001"], "--margin: "),
        ([*SIMPLE, "--side", "long", "--entry", "abc", "--leverage", "2"], "--entry: "),
        ([*SIMPLE, "--side", "long", "--mmr", "1", "--leverage", "2"], "--mmr: "),
        (["liq", "--side", "long"], "missing --symbol, --entry, --qty"),
        (["liq", "--scenario", "-", "--symbol", "BTCUSDT"], "cannot be combined with --symbol"),
        (["liq", "--scenario", "/nonexistent/account.json"], "cannot read"),
        (["liq", *SIMPLE[1:], "--side", "long", "--instruments", "/nonexistent.toml"], "cannot"),
        (["liq", "--frobnicate"], "unrecognized arguments"),
        ([], "required"),
    ],
)
def test_bad_flags_give_one_line_and_exit_code_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert message in run_failing(argv, capsys)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"positions": [', "malformed JSON"),
        ("[]", "scenario: "),
        ('{"positions": []}', "positions: "),
        (
            '{"positions": [{"symbol": "BTCUSDT", "side": "long", "qty": "-1",'
            ' "entry_price": "60000", "margin_mode": "isolated", "leverage": 2}]}',
            "positions.0.qty: ",
        ),
        (
            '{"positions": [{"symbol": "BTCUSDT", "side": "long", "qty": "1",'
            ' "entry_price": "60000", "margin_mode": "isolated", "leverage": 2, "colour": 1}]}',
            "positions.0.colour: ",
        ),
    ],
)
def test_bad_scenarios_give_one_line_and_exit_code_2(
    text: str,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(text))
    assert message in run_failing(["liq", "--scenario", "-"], capsys)


def test_help_returns_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["liq", "--help"]) == 0
    assert "--scenario" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# calculate(), the function the server will share
# ---------------------------------------------------------------------------------------------


def position(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "symbol": "BTCUSDT",
        "side": "long",
        "qty": "1",
        "entry_price": "60000",
        "margin_mode": "isolated",
        "leverage": 20,
        "mmr": "0.004",
    }
    return {**base, **changes}


def test_calculate_takes_and_returns_json_data(shipped: dict[str, Instrument]) -> None:
    result = calculate({"positions": [position()]}, shipped)
    assert json.loads(json.dumps(result)) == result
    assert result["positions"][0]["liquidation_price"] == "57228.92"


def test_calculate_keeps_isolated_positions_out_of_the_cross_account(
    shipped: dict[str, Instrument],
) -> None:
    cross = position(margin_mode="cross")
    alone = calculate({"wallet_balance": "5000", "positions": [cross]}, shipped)
    mixed = calculate(
        {
            "wallet_balance": "5000",
            "positions": [
                cross,
                position(symbol="ETHUSDT", qty="10", entry_price="3000", mark_price="1"),
            ],
        },
        shipped,
    )
    assert mixed["positions"][0] == alone["positions"][0]
    assert mixed["positions"][1]["risk_level"] == "critical"
    assert mixed["positions"][1]["margin_ratio"] is None


@pytest.mark.parametrize(
    ("scenario", "field"),
    [
        ({"positions": [position(), position()]}, "positions.1.symbol"),
        ({"positions": [position(margin_mode="cross")]}, "wallet_balance"),
        ({"positions": [position(qty=1.5)]}, "positions.0.qty"),
        ({"positions": [position(leverage=True)]}, "positions.0.leverage"),
        ({"positions": [position(mmr=None, cum="5")]}, "positions.0.cum"),
        (
            {"positions": [position(margin_mode="cross", isolated_margin="1")]},
            "positions.0.isolated_margin",
        ),
        ({"wallet_balance": "-1", "positions": [position()]}, "wallet_balance"),
    ],
)
def test_calculate_names_the_field_at_fault(
    scenario: dict[str, object], field: str, shipped: dict[str, Instrument]
) -> None:
    with pytest.raises(CalculatorError) as caught:
        calculate(scenario, shipped)
    assert caught.value.field == field
