"""The server's configuration: one TOML file validated by pydantic.

Decimal values (prices, rates, amounts) are read exactly, as in the instruments file: strings,
integers or TOML floats read from their text, never through binary floating point. Paths are
relative to the config file. The instruments themselves live in their own file
(`instruments_file`), loaded with `exchange.instrument_config.load_instruments`.
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from exchange.core.enums import SelfTradePrevention
from exchange.core.instruments import Instrument
from exchange.instrument_config import (
    DecimalText,
    InstrumentConfigError,
    describe_validation_error,
    load_instruments,
)


class ConfigError(ValueError):
    """A config file that cannot be read or does not describe a runnable exchange."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PositiveDecimal = Annotated[DecimalText, Field(gt=0)]
NonNegativeDecimal = Annotated[DecimalText, Field(ge=0)]
Fraction = Annotated[DecimalText, Field(ge=0, lt=1)]


class ServerConfig(_Section):
    """Where and how the server listens."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 8765
    data_dir: Path = Path("./data")
    admin_token: str | None = None
    rate_limit_per_s: Annotated[int, Field(gt=0)] = 200
    max_message_bytes: Annotated[int, Field(gt=0)] = 65536


class ExchangeConfig(_Section):
    """Settings of the core exchange."""

    margin_call_ratio: Annotated[DecimalText, Field(gt=0, le=1)] = Decimal("0.8")
    self_trade_prevention: SelfTradePrevention = SelfTradePrevention.EXPIRE_MAKER


class SymbolFeedConfig(_Section):
    """How the index of one symbol starts and moves.

    volatility is annualised (0.6 is 60% a year); jump_probability is the chance of a jump
    on each feed tick and jump_size the standard deviation of a jump's log return.
    """

    start_price: PositiveDecimal | None = None
    volatility: NonNegativeDecimal = Decimal("0.6")
    jump_probability: Fraction = Decimal(0)
    jump_size: NonNegativeDecimal = Decimal("0.01")
    replay_file: Path | None = None


class FeedConfig(_Section):
    """The index source, how often marks are published, and how the mark is derived.

    kind: synthetic (seeded GBM with jumps), replay (CSV of timestamp_ms,price per symbol,
    `speed` times faster than recorded) or manual (only operators move the index).
    mark: "premium" (DESIGN.md section 4) or "index" (mark equals the index).
    seed: None draws one at start; either way it is logged.
    """

    kind: Literal["synthetic", "replay", "manual"] = "synthetic"
    seed: int | None = None
    interval_ms: Annotated[int, Field(gt=0)] = 1000
    mark: Literal["premium", "index"] = "premium"
    mark_band: Annotated[DecimalText, Field(gt=0, lt=1)] = Decimal("0.01")
    basis_window_s: Annotated[int, Field(gt=0)] = 300
    speed: PositiveDecimal = Decimal(1)
    symbols: dict[str, SymbolFeedConfig] = Field(default_factory=dict)


class FundingConfig(_Section):
    """Funding every interval; interest_rate and cap are per interval, as on Binance."""

    enabled: bool = True
    interval_s: Annotated[int, Field(gt=0)] = 28800
    interest_rate: Annotated[DecimalText, Field(ge=-1, le=1)] = Decimal("0.0001")
    cap: Annotated[DecimalText, Field(gt=0, lt=1)] = Decimal("0.0075")


class MarketMakerConfig(_Section):
    """A ladder of `levels` bids and asks around the index on the house account.

    The best bid and ask are spread_bps apart (half on each side of the index), further
    levels step_bps apart; size is the notional of one level in USDT, so one setting fits
    instruments of very different prices.
    """

    enabled: bool = True
    levels: Annotated[int, Field(ge=1, le=100)] = 10
    spread_bps: Annotated[DecimalText, Field(gt=0)] = Decimal(4)
    step_bps: Annotated[DecimalText, Field(gt=0)] = Decimal(2)
    size: PositiveDecimal = Decimal(5000)
    leverage: Annotated[int, Field(ge=1, le=125)] = 10


class NoiseTakerConfig(_Section):
    """Market orders of random side and size (USDT notional) at rate_per_s on average."""

    enabled: bool = False
    rate_per_s: PositiveDecimal = Decimal("0.5")
    min_size: PositiveDecimal = Decimal(200)
    max_size: PositiveDecimal = Decimal(2000)
    deposit: PositiveDecimal = Decimal(1_000_000)
    leverage: Annotated[int, Field(ge=1, le=125)] = 5

    @model_validator(mode="after")
    def _sizes_ordered(self) -> NoiseTakerConfig:
        if self.min_size > self.max_size:
            raise ValueError("min_size must not exceed max_size")
        return self


class JournalConfig(_Section):
    """Durability: the command journal and snapshots in `server.data_dir`.

    synchronous: "normal" survives the process being killed at any moment; "full" also
    survives a power cut, at one fsync per batch. A snapshot is written every
    snapshot_every_commands commands or snapshot_every_s seconds, whichever comes first,
    and on a clean stop. enabled = false keeps everything in memory (tests, benchmarks).
    """

    enabled: bool = True
    synchronous: Literal["normal", "full"] = "normal"
    snapshot_every_commands: Annotated[int, Field(gt=0)] = 100_000
    snapshot_every_s: Annotated[int, Field(gt=0)] = 300
    snapshots_kept: Annotated[int, Field(ge=1)] = 3


class AgentsConfig(_Section):
    market_maker: MarketMakerConfig = Field(default_factory=MarketMakerConfig)
    noise_taker: NoiseTakerConfig = Field(default_factory=NoiseTakerConfig)


class DemoAccountConfig(_Section):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    deposit: NonNegativeDecimal = Decimal(0)


class Config(_Section):
    """The whole configuration; `instruments` is filled from instruments_file on load."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    server: ServerConfig = Field(default_factory=ServerConfig)
    instruments_file: Path = Path("instruments.toml")
    exchange: ExchangeConfig = Field(default_factory=ExchangeConfig)
    feed: FeedConfig = Field(default_factory=FeedConfig)
    funding: FundingConfig = Field(default_factory=FundingConfig)
    agents: AgentsConfig = Field(default_factory=AgentsConfig)
    journal: JournalConfig = Field(default_factory=JournalConfig)
    house_deposit: NonNegativeDecimal = Decimal(100_000_000)
    insurance_fund_deposit: NonNegativeDecimal = Decimal(1_000_000)
    demo_accounts: list[DemoAccountConfig] = Field(default_factory=list)
    # Not read from the file: the loaded instruments, keyed by symbol.
    instruments: dict[str, Instrument] = Field(default_factory=dict, exclude=True)
    base_dir: Path = Field(default=Path("."), exclude=True)


def parse_config(data: dict[str, Any], base_dir: Path) -> Config:
    """Validate parsed TOML, resolve relative paths against base_dir and load instruments."""
    for reserved in ("instruments", "base_dir"):
        if reserved in data:
            raise ConfigError(f"{reserved}: not a config key")
    try:
        config = Config.model_validate(data)
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error)) from None
    instruments_path = _resolve(base_dir, config.instruments_file)
    try:
        instruments = load_instruments(instruments_path)
    except InstrumentConfigError as error:
        raise ConfigError(str(error)) from None
    _check_feed(config.feed, instruments)
    symbols = {
        symbol: settings.model_copy(
            update={
                "replay_file": None
                if settings.replay_file is None
                else _resolve(base_dir, settings.replay_file)
            }
        )
        for symbol, settings in config.feed.symbols.items()
    }
    return config.model_copy(
        update={
            "instruments_file": instruments_path,
            "feed": config.feed.model_copy(update={"symbols": symbols}),
            "server": config.server.model_copy(
                update={"data_dir": _resolve(base_dir, config.server.data_dir)}
            ),
            "instruments": instruments,
            "base_dir": base_dir,
        }
    )


def loads_config(text: str, base_dir: Path) -> Config:
    """Parse a config from TOML text; relative paths are taken from base_dir."""
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"malformed TOML: {error}") from None
    return parse_config(data, base_dir)


def load_config(path: Path | str) -> Config:
    """Read and validate a config file; errors name the file and the field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None
    try:
        return loads_config(text, path.parent)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def _resolve(base_dir: Path, path: Path) -> Path:
    return path if path.is_absolute() else base_dir / path


def _check_feed(feed: FeedConfig, instruments: dict[str, Instrument]) -> None:
    for symbol in feed.symbols:
        if symbol not in instruments:
            raise ConfigError(f"feed.symbols.{symbol}: no such instrument")
    for symbol in instruments:
        settings = feed.symbols.get(symbol)
        if feed.kind == "synthetic" and (settings is None or settings.start_price is None):
            raise ConfigError(f"feed.symbols.{symbol}.start_price: a synthetic feed needs it")
        if feed.kind == "replay" and (settings is None or settings.replay_file is None):
            raise ConfigError(f"feed.symbols.{symbol}.replay_file: a replay feed needs it")
