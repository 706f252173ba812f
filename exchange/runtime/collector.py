"""Garbage-collector settings for a long-running server that must answer within milliseconds.

CPython's default collects the youngest generation every 700 net allocations and, as the
heap grows, scans the whole of it. A server holding books, orders and recent history keeps
hundreds of thousands of long-lived objects, and each full scan stopped the event loop for
30 to 40 ms, dozens of times a minute under load: that was most of the worst-case request
latency, and about a fifth of the CPU per order. Almost everything the server allocates per
request (commands, events, messages) dies by reference count, so the collector can run far
less often without memory growing.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000
"""Net allocations between young collections (CPython's default is 700). Larger values
collect less often but each young collection scans more; 100,000 made single pauses of over
30 ms, 20,000 keeps them to a few."""


def tune_for_serving() -> None:
    """Collect less often, and never scan again what exists now (the restored state).

    Call once the state is loaded, before serving. Frozen objects are never collected, so a
    reference cycle among them that later becomes garbage stays in memory; the state the
    server loads is held by the exchange for as long as it runs.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 10, 10)
