"""The server's garbage-collector settings: young collections rarer, the loaded state frozen."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from exchange.runtime import collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_serving_freezes_what_is_loaded_and_collects_young_objects_less_often() -> None:
    loaded = [[index] for index in range(1_000)]
    collector.tune_for_serving()
    assert gc.get_threshold()[0] == collector.YOUNG_THRESHOLD > 700
    # What existed when serving began is never scanned again.
    assert gc.get_freeze_count() >= len(loaded)
    assert gc.isenabled()
