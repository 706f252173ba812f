"""Rendering: the integer formatters write exactly what the core's Decimal formatting does."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from exchange.api.render import money, steps_formatter
from exchange.core.numbers import format_atoms, format_steps

STEPS = ["0.1", "0.5", "0.001", "0.0010", "0.00000001", "1", "5", "10", "25", "1E+2", "0.25"]


@pytest.mark.parametrize("step", STEPS)
def test_the_fast_formatter_matches_format_steps(step: str) -> None:
    size = Decimal(step)
    formatter = steps_formatter(size)
    rng = random.Random(step)
    samples = [0, 1, -1, 9, 10, 99, 100, 101, -101, 10**26, -(10**26), 10**30, -(10**31)]
    samples += [rng.randrange(-(10**12), 10**12) for _ in range(2_000)]
    for steps in samples:
        assert formatter(steps) == format_steps(steps, size), steps


def test_money_matches_format_atoms() -> None:
    rng = random.Random(7)
    for amount in [0, 1, -1, 99_999_999, 100_000_000, -100_000_001, 10**27, -(10**28)] + [
        rng.randrange(-(10**18), 10**18) for _ in range(2_000)
    ]:
        assert money(amount) == format_atoms(amount), amount
