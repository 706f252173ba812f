"""Configuration: the shipped files load, and mistakes are named by file and field."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from exchange.runtime.config import ConfigError, load_config
from tests.runtime.helpers import CONFIGS, config


def test_the_default_config_is_a_live_market() -> None:
    cfg = load_config(CONFIGS / "default.toml")
    assert sorted(cfg.instruments) == ["BTCUSDT", "ETHUSDT"]
    assert cfg.feed.kind == "synthetic"
    assert cfg.feed.seed is not None
    assert cfg.feed.symbols["BTCUSDT"].start_price == Decimal(64000)
    assert cfg.agents.market_maker.enabled
    assert cfg.agents.noise_taker.enabled
    assert cfg.funding.enabled
    assert cfg.funding.interval_s == 8 * 3600
    assert [(demo.name, demo.deposit) for demo in cfg.demo_accounts] == [("demo", Decimal(10000))]


def test_the_manual_config_is_a_still_market_for_exact_tests() -> None:
    cfg = load_config(CONFIGS / "manual.toml")
    assert cfg.feed.kind == "manual"
    assert cfg.feed.mark == "index"
    assert cfg.agents.market_maker.enabled
    assert not cfg.agents.noise_taker.enabled
    assert not cfg.funding.enabled
    assert cfg.instruments_file == CONFIGS / "instruments.toml"


def test_defaults_follow_the_contract() -> None:
    cfg = config("[feed]\nkind = 'manual'")
    assert (cfg.server.host, cfg.server.port) == ("127.0.0.1", 8765)
    assert cfg.server.rate_limit_per_s == 200
    assert cfg.server.max_message_bytes == 65536
    assert cfg.server.admin_token is None
    assert cfg.exchange.margin_call_ratio == Decimal("0.8")
    assert cfg.funding.cap == Decimal("0.0075")
    assert cfg.funding.interest_rate == Decimal("0.0001")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[server]\nport = 'eighty'", "server.port"),
        ("[feed]\nkind = 'magic'", "feed.kind"),
        ("[feed]\nkind = 'manual'\nsurprise = 1", "feed.surprise"),
        ("[feed]\nkind = 'manual'\n[funding]\ncap = '-1'", "funding.cap"),
        ("[feed]\nkind = 'manual'\n[feed.symbols.DOGEUSDT]\nstart_price = '1'", "DOGEUSDT"),
        ("[feed]\nkind = 'synthetic'", "feed.symbols.BTCUSDT.start_price"),
        ("[feed]\nkind = 'replay'", "feed.symbols.BTCUSDT.replay_file"),
        ("[feed]\nkind = 'manual'\n[[demo_accounts]]\ndeposit = '1'", "demo_accounts.0.name"),
        ("instruments_file = 'missing.toml'\n[feed]\nkind = 'manual'", "missing.toml"),
        ("[feed\n", "malformed TOML"),
    ],
)
def test_a_bad_config_names_the_field_at_fault(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        config(text)


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[feed]\nkind = 'magic'\n")
    with pytest.raises(ConfigError, match=r"broken\.toml: feed\.kind"):
        load_config(path)
