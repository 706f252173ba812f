"""The `paperex` command: one subcommand per function, `run_<name>(args) -> exit code`.

    paperex liq --symbol BTCUSDT --side long --entry 60000 --qty 1 --leverage 20
    paperex liq --scenario account.json --json
    echo '{...}' | paperex liq --scenario -
    paperex serve --config configs/default.toml [--host H] [--port N] [--admin-token T]
                  [--event-loop auto|uvloop|asyncio]
    paperex replay --data-dir DIR [--until-seq N] [--verify]
    paperex export --data-dir DIR --out FILE
    paperex compile

Bad input ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from exchange import accelerator

if TYPE_CHECKING:
    from exchange.core.instruments import Instrument

# Everything that imports the core is imported inside the commands: `paperex serve` must
# put the compiled build in front of the sources before the first of them is imported.

DEFAULT_INSTRUMENTS = Path(__file__).resolve().parents[1] / "configs" / "instruments.toml"
"""The instruments file shipped with paperex."""

USAGE_ERROR = 2
FAILURE = 1

Handler = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """Input the command cannot run with; printed as one line on stderr after its program."""

    def __init__(self, message: str, prog: str = "paperex") -> None:
        super().__init__(message)
        self.prog = prog


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and leave exiting to main()."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.prog)


# ---------------------------------------------------------------------------------------------
# paperex liq
# ---------------------------------------------------------------------------------------------

# Scenario fields as the flags that fill them, so single-position errors name the flag typed.
_FLAG_OF_FIELD = {
    "wallet_balance": "--wallet",
    "positions.0.symbol": "--symbol",
    "positions.0.side": "--side",
    "positions.0.qty": "--qty",
    "positions.0.entry_price": "--entry",
    "positions.0.mark_price": "--mark",
    "positions.0.margin_mode": "--mode",
    "positions.0.isolated_margin": "--margin",
    "positions.0.leverage": "--leverage",
    "positions.0.mmr": "--mmr",
    "positions.0.cum": "--cum",
}

_LIQ = "paperex liq"

_POSITION_FLAGS = ("symbol", "side", "entry", "qty", "mark", "leverage", "margin", "mmr", "cum")


def add_liq_command(commands: argparse._SubParsersAction[_Parser]) -> None:
    """Add `paperex liq`, the liquidation-price calculator."""
    parser = commands.add_parser(
        "liq",
        help="compute liquidation and bankruptcy prices",
        description=(
            "Compute liquidation price, bankruptcy price, margins and risk for one position "
            "(flags) or for several positions of one account (--scenario)."
        ),
    )
    parser.add_argument("--symbol", help="instrument symbol, e.g. BTCUSDT")
    parser.add_argument("--side", choices=("long", "short"), help="position side")
    parser.add_argument("--entry", metavar="PRICE", help="entry price")
    parser.add_argument("--qty", help="position size in base units (positive)")
    parser.add_argument("--mark", metavar="PRICE", help="mark price (default: the entry price)")
    parser.add_argument(
        "--mode",
        choices=("isolated", "cross"),
        default="isolated",
        help="margin mode (default: isolated)",
    )
    parser.add_argument("--leverage", type=int, help="leverage, e.g. 20")
    parser.add_argument(
        "--margin", metavar="USDT", help="isolated margin (default: entry notional / leverage)"
    )
    parser.add_argument("--wallet", metavar="USDT", help="cross wallet balance")
    parser.add_argument("--mmr", help="fix the maintenance margin rate instead of brackets")
    parser.add_argument("--cum", metavar="USDT", help="fix the maintenance amount (with --mmr)")
    parser.add_argument(
        "--scenario",
        metavar="FILE",
        help="JSON account with several positions; '-' reads standard input",
    )
    parser.add_argument(
        "--instruments",
        metavar="FILE",
        type=Path,
        default=DEFAULT_INSTRUMENTS,
        help="instruments TOML (default: the shipped configs/instruments.toml)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(handler=run_liq)


def _read_scenario(source: str) -> Any:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as error:
        raise UsageError(f"--scenario: cannot read {source}: {error.strerror}", _LIQ) from None
    try:
        # Numbers become Decimal so a JSON 0.1 stays exactly 0.1.
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as error:
        raise UsageError(f"--scenario: malformed JSON: {error}", _LIQ) from None


def _scenario_from_flags(args: argparse.Namespace) -> dict[str, Any]:
    missing = [
        f"--{name}" for name in ("symbol", "side", "entry", "qty") if getattr(args, name) is None
    ]
    if missing:
        raise UsageError(f"missing {', '.join(missing)} (or give --scenario)", _LIQ)
    position: dict[str, Any] = {
        "symbol": args.symbol,
        "side": args.side,
        "qty": args.qty,
        "entry_price": args.entry,
        "margin_mode": args.mode,
    }
    optional = {
        "mark_price": args.mark,
        "leverage": args.leverage,
        "isolated_margin": args.margin,
        "mmr": args.mmr,
        "cum": args.cum,
    }
    position.update({key: value for key, value in optional.items() if value is not None})
    scenario: dict[str, Any] = {"positions": [position]}
    if args.wallet is not None:
        scenario["wallet_balance"] = args.wallet
    return scenario


def run_liq(args: argparse.Namespace) -> int:
    """Print the liquidation figures of one position or of a scenario."""
    if args.scenario is not None:
        given = [f"--{name}" for name in _POSITION_FLAGS if getattr(args, name) is not None]
        if args.wallet is not None:
            given.append("--wallet")
        if given:
            raise UsageError(f"--scenario cannot be combined with {', '.join(given)}", _LIQ)
        scenario = _read_scenario(args.scenario)
        flag_names: dict[str, str] = {}
    else:
        scenario = _scenario_from_flags(args)
        flag_names = _FLAG_OF_FIELD
    from exchange.calculator import CalculatorError, calculate, render_table

    instruments = _load_instruments(args.instruments)
    try:
        result = calculate(scenario, instruments)
    except CalculatorError as error:
        raise UsageError(
            f"{flag_names.get(error.field, error.field)}: {error.reason}", _LIQ
        ) from None
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(render_table(result))
    return 0


def _load_instruments(path: Path) -> dict[str, Instrument]:
    from exchange.instrument_config import InstrumentConfigError, load_instruments

    try:
        return load_instruments(path)
    except InstrumentConfigError as error:
        raise UsageError(f"--instruments: {error}", _LIQ) from None


# ---------------------------------------------------------------------------------------------
# paperex serve
# ---------------------------------------------------------------------------------------------

_SERVE = "paperex serve"

ADMIN_TOKEN_VARIABLE = "PAPEREX_ADMIN_TOKEN"
"""The environment variable an operator token may come from instead of --admin-token."""


def add_serve_command(commands: argparse._SubParsersAction[_Parser]) -> None:
    """Add `paperex serve`, the exchange server."""
    parser = commands.add_parser(
        "serve",
        help="run the exchange server",
        description=(
            "Run the exchange and its JSON-RPC WebSocket API at ws://HOST:PORT/ws. "
            f"The operator token may also come from ${ADMIN_TOKEN_VARIABLE}."
        ),
    )
    parser.add_argument("--config", metavar="FILE", type=Path, required=True, help="config TOML")
    parser.add_argument("--host", help="address to listen on (default: the config's)")
    parser.add_argument("--port", type=int, help="port to listen on; 0 picks a free one")
    parser.add_argument("--data-dir", metavar="DIR", type=Path, help="where data is kept")
    parser.add_argument("--admin-token", metavar="TOKEN", help="token for auth.admin")
    parser.add_argument(
        "--log-level",
        choices=("debug", "info", "warning", "error"),
        default="info",
        help="least severe log lines printed (default: info)",
    )
    parser.add_argument(
        "--event-loop",
        choices=("auto", "uvloop", "asyncio"),
        default="auto",
        help="event loop to run on (default: auto, uvloop when installed)",
    )
    parser.add_argument(
        "--compiled",
        choices=("auto", "on", "off"),
        default="auto",
        help="run the hot modules compiled by mypyc: auto uses a build of these sources if "
        "`paperex compile` made one, on builds one if needed, off runs the sources",
    )
    parser.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Load the config, apply the flags, and serve until interrupted."""
    _use_compiled(args.compiled)
    from exchange.runtime.config import ConfigError, load_config

    try:
        config = load_config(args.config)
    except ConfigError as error:
        raise UsageError(f"--config: {error}", _SERVE) from None
    if args.port is not None and not 0 <= args.port <= 65535:
        raise UsageError("--port: must be 0 to 65535", _SERVE)
    overrides = {
        "host": args.host,
        "port": args.port,
        "data_dir": args.data_dir,
        "admin_token": args.admin_token or os.environ.get(ADMIN_TOKEN_VARIABLE) or None,
    }
    server = config.server.model_copy(
        update={key: value for key, value in overrides.items() if value is not None}
    )
    configure_logging(args.log_level)
    from exchange.runtime import eventloop
    from exchange.runtime.journal import JournalCorruptError
    from exchange.runtime.storage import StorageError

    try:
        eventloop.run(_serve(config.model_copy(update={"server": server})), args.event_loop)
    except eventloop.EventLoopError as error:
        raise UsageError(f"--event-loop: {error}", _SERVE) from None
    except (StorageError, JournalCorruptError) as error:
        # Never serve a partial state: the operator decides (see docs/operations.md).
        print(f"{_SERVE}: cannot start: {_one_line(str(error))}", file=sys.stderr)
        return FAILURE
    return 0


def configure_logging(level: str) -> None:
    """Print structlog lines at level and above (the agents' requotes are debug lines)."""
    import logging

    import structlog

    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        )
    )


def _use_compiled(choice: str) -> None:
    """Run the compiled build as asked, before anything imports the modules it replaces."""
    if choice == "off":
        return
    try:
        build = accelerator.build() if choice == "on" else accelerator.find_build()
        if build is not None:
            accelerator.activate(build)
    except accelerator.AcceleratorError as error:
        if choice == "on":
            raise UsageError(f"--compiled on: {error}", _SERVE) from None
        # auto: the sources run the same exchange, only slower.
        print(f"paperex: not using the compiled build: {_one_line(str(error))}", flush=True)


async def _serve(config: Any) -> None:
    from aiohttp import web

    from exchange.runtime import collector, eventloop
    from exchange.server import build_app, describe

    app = build_app(config)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    # The runtime has started: the snapshot is loaded and the journal replayed.
    collector.tune_for_serving()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signal_number, stop.set)
    try:
        site = web.TCPSite(runner, config.server.host, config.server.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        print(f"paperex: listening on ws://{host}:{port}/ws", flush=True)
        for name, keys in describe(app).items():
            print(
                f"paperex: demo account {name!r} (id {keys['account_id']}): "
                f"api_key {keys['api_key']} api_secret {keys['api_secret']}",
                flush=True,
            )
        if config.server.admin_token:
            print("paperex: operator methods enabled (auth.admin)", flush=True)
        print(f"paperex: event loop {eventloop.loop_name(loop)}", flush=True)
        print(f"paperex: modules {accelerator.describe()}", flush=True)
        await stop.wait()
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------------------------------------
# paperex replay, paperex export
# ---------------------------------------------------------------------------------------------

_REPLAY = "paperex replay"
_EXPORT = "paperex export"


def add_replay_command(commands: argparse._SubParsersAction[_Parser]) -> None:
    """Add `paperex replay`, which rebuilds the state from a data directory's journal."""
    parser = commands.add_parser(
        "replay",
        help="rebuild the state from a journal and print its seq and state hash",
        description=(
            "Replay the journal of a data directory into a fresh exchange (no snapshot is "
            "used) and print the final seq and state hash. With --verify, also check the "
            "state hash recorded with every snapshot passed on the way."
        ),
    )
    parser.add_argument("--data-dir", metavar="DIR", type=Path, required=True)
    parser.add_argument("--until-seq", metavar="N", type=int, help="stop after seq N")
    parser.add_argument("--verify", action="store_true", help="check every snapshot's hash")
    parser.set_defaults(handler=run_replay)


def run_replay(args: argparse.Namespace) -> int:
    """Replay a journal; exit 1 if it is corrupt or a snapshot disagrees with it."""
    from exchange.runtime.journal import JournalCorruptError
    from exchange.runtime.snapshot import SnapshotStore
    from exchange.runtime.storage import (
        SNAPSHOT_DIR,
        StorageError,
        exchange_from_settings,
        open_journal_read_only,
    )

    configure_logging("warning")
    if args.until_seq is not None and args.until_seq < 0:
        raise UsageError("--until-seq: must not be negative", _REPLAY)
    try:
        journal, settings = open_journal_read_only(args.data_dir)
    except StorageError as error:
        raise UsageError(f"--data-dir: {error}", _REPLAY) from None
    snapshots = {}
    if args.verify:
        snapshots = {info.seq: info for info in SnapshotStore(args.data_dir / SNAPSHOT_DIR).list()}
    exchange = exchange_from_settings(settings)
    failures = 0
    try:
        for command in journal.read():
            if args.until_seq is not None and command.seq > args.until_seq:
                break
            try:
                exchange.apply(command)
            except Exception as error:
                if exchange.last_seq != command.seq:
                    raise
                print(f"seq {command.seq}: apply raised {error!r} (as when first applied)")
            info = snapshots.get(command.seq)
            if info is not None:
                actual = exchange.state_hash()
                verdict = "ok" if actual == info.state_hash else "MISMATCH"
                failures += verdict != "ok"
                print(f"snapshot seq {info.seq}: {verdict} {info.state_hash}")
    except JournalCorruptError as error:
        print(f"{_REPLAY}: error: {_one_line(str(error))}", file=sys.stderr)
        return FAILURE
    finally:
        journal.close()
    if journal.dropped_tail is not None:
        print(f"dropped corrupt last record: seq {journal.dropped_tail}")
    print(f"seq {exchange.last_seq}")
    print(f"state_hash {exchange.state_hash()}")
    return FAILURE if failures else 0


def add_export_command(commands: argparse._SubParsersAction[_Parser]) -> None:
    """Add `paperex export`, which writes a data directory's journal as JSON lines."""
    parser = commands.add_parser(
        "export",
        help="write the journal as JSON lines",
        description=(
            "Write the journal of a data directory as JSON lines: a header with the core "
            "settings (instruments, exchange settings), then one command per line."
        ),
    )
    parser.add_argument("--data-dir", metavar="DIR", type=Path, required=True)
    parser.add_argument("--out", metavar="FILE", type=Path, required=True, help="'-': stdout")
    parser.set_defaults(handler=run_export)


def run_export(args: argparse.Namespace) -> int:
    """Export a journal; exit 1 if it is corrupt."""
    from exchange.runtime.journal import JournalCorruptError
    from exchange.runtime.storage import StorageError, export_lines, open_journal_read_only

    configure_logging("warning")
    try:
        journal, settings = open_journal_read_only(args.data_dir)
    except StorageError as error:
        raise UsageError(f"--data-dir: {error}", _EXPORT) from None
    count = -1
    try:
        if str(args.out) == "-":
            for count, line in enumerate(export_lines(journal, settings)):  # noqa: B007
                sys.stdout.write(line + "\n")
        else:
            temporary = args.out.with_name(args.out.name + ".tmp")
            try:
                with temporary.open("w", encoding="utf-8") as handle:
                    for count, line in enumerate(export_lines(journal, settings)):  # noqa: B007
                        handle.write(line + "\n")
                os.replace(temporary, args.out)
            except OSError as error:
                raise UsageError(f"--out: cannot write: {error.strerror}", _EXPORT) from None
    except JournalCorruptError as error:
        print(f"{_EXPORT}: error: {_one_line(str(error))}", file=sys.stderr)
        return FAILURE
    finally:
        journal.close()
    if str(args.out) != "-":
        print(f"exported {count} commands to {args.out}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------
# paperex compile
# ---------------------------------------------------------------------------------------------


def add_compile_command(commands: argparse._SubParsersAction[_Parser]) -> None:
    """Add `paperex compile`, which builds the compiled modules `paperex serve` runs."""
    parser = commands.add_parser(
        "compile",
        help="compile the hot modules with mypyc, for paperex serve",
        description=(
            "Compile the matching and request paths with mypyc into build/compiled/, once per "
            "state of the sources; `paperex serve` then runs them. Needs mypy and a C compiler."
        ),
    )
    parser.set_defaults(handler=run_compile)


def run_compile(args: argparse.Namespace) -> int:
    """Build the compiled modules unless a build of these sources exists."""
    existing = accelerator.find_build()
    if existing is not None:
        print(f"paperex compile: up to date: {existing}")
        return 0
    try:
        accelerator.build(echo=lambda line: print(f"paperex compile: {line}", flush=True))
    except accelerator.AcceleratorError as error:
        print(f"paperex compile: error: {error}", file=sys.stderr)
        return FAILURE
    return 0


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """Build the parser of every subcommand."""
    parser = _Parser(prog="paperex", description="paperex: a paper-trading exchange")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_liq_command(commands)
    add_serve_command(commands)
    add_replay_command(commands)
    add_export_command(commands)
    add_compile_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `paperex` command line; return the exit code."""
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit_request:
            # --help prints and asks to exit; hand its code back instead of raising.
            code = exit_request.code
            return code if isinstance(code, int) else 0
        handler: Handler = args.handler
        return handler(args)
    except UsageError as error:
        print(f"{error.prog}: error: {_one_line(str(error))}", file=sys.stderr)
        return USAGE_ERROR


def _one_line(message: str) -> str:
    return " ".join(message.split())


if __name__ == "__main__":
    raise SystemExit(main())
