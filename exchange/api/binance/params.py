"""Binance request parameters: query string and form body, read with Binance's errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from exchange.api.binance import errors
from exchange.api.context import ApiContext
from exchange.core.market import Market

T = TypeVar("T")


def parse(*encoded: str) -> dict[str, str]:
    """Merge url-encoded strings (query, then body); a later value wins."""
    values: dict[str, str] = {}
    for text in encoded:
        values.update(parse_qsl(text, keep_blank_values=True))
    return values


def field_text(value: Any) -> str:
    """Return a JSON parameter value as its text in a query string (booleans lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


class Params:
    """Typed reads of the request's parameters; an empty value counts as absent."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        return value if value else None

    def required(self, name: str) -> str:
        value = self.text(name)
        if value is None:
            raise errors.mandatory(name)
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.text(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered not in ("true", "false"):
            raise errors.invalid_value(name)
        return lowered == "true"

    def integer(self, name: str) -> int | None:
        value = self.text(name)
        if value is None:
            return None
        if not value.lstrip("-").isdigit() or len(value) > 20:
            raise errors.illegal_characters(name)
        return int(value)

    def bounded(self, name: str, default: int, low: int, high: int) -> int:
        value = self.integer(name)
        if value is None:
            return default
        if not low <= value <= high:
            raise errors.invalid_value(name)
        return value

    def choice(
        self, name: str, choices: Mapping[str, T], error: errors.BinanceError | None = None
    ) -> T | None:
        value = self.text(name)
        if value is None:
            return None
        found = choices.get(value.upper())
        if found is None:
            raise error or errors.invalid_value(name)
        return found

    def market(self, context: ApiContext) -> Market:
        """Return the market of the mandatory `symbol` parameter."""
        return market_of(context, self.required("symbol"))

    def optional_market(self, context: ApiContext) -> Market | None:
        symbol = self.text("symbol")
        return None if symbol is None else market_of(context, symbol)


def market_of(context: ApiContext, symbol: str) -> Market:
    market = context.exchange.markets.get(symbol.upper())
    if market is None:
        raise errors.invalid_symbol()
    return market
