"""Wire decimals to ticks and lots: remembered conversions answer as the core's do."""

from __future__ import annotations

import pytest

from exchange.api.convert import price_ticks, qty_lots
from exchange.api.errors import ApiError
from tests.runtime.helpers import exchange


def test_a_repeated_conversion_gives_the_same_integers_and_refusals() -> None:
    instrument = exchange().markets["BTCUSDT"].instrument
    for _ in range(2):
        assert price_ticks(instrument, "57600.0", "price") == instrument.price_ticks("57600.0")
        assert qty_lots(instrument, "0.002", "qty") == instrument.qty_lots("0.002")
    for _ in range(2):
        with pytest.raises(ApiError) as off_tick:
            price_ticks(instrument, "57600.01", "price")
        assert off_tick.value.data == {"field": "price", "reason": "price_off_tick"}
        with pytest.raises(ApiError) as negative:
            qty_lots(instrument, "-0.002", "qty")
        assert negative.value.data is not None
        assert negative.value.data["field"] == "qty"
