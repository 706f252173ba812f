#!/usr/bin/env python3
"""Count the server's instructions per order round trip: a figure that does not swing.

The wall-clock figures of bench_ws.py move by a tenth or more with whatever else the machine
does. This runs `paperex serve` (configs/manual.toml, journal on, compiled unless told
otherwise) under valgrind's callgrind with counting off, opens bench_ws.py's 10 logged-in
connections, warms up, switches counting on (`callgrind_control -i on`), runs exactly N
place/cancel round trips with 32 in flight per connection, and dumps. Instructions are the
server process's, every thread, user space only (system calls are not counted). Under
valgrind the server runs some 50 times slower; the count does not depend on that.

    .venv/bin/python scripts/count_ws.py [--round-trips 20000] [--compiled on|off]
        [--keep FILE]

The last line is one JSON object: instructions_per_round_trip, round_trips, instructions.
--keep copies the callgrind dump for callgrind_annotate. Needs valgrind (Debian's package).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
# The bench's clients, config and workload, not a copy of them.
import bench_ws

WARMUP_ROUND_TRIPS = 2_000


async def run_round_trips(clients: list[bench_ws.RpcClient], count: int) -> bench_ws.Counts:
    counts = bench_ws.Counts()
    chains = [bench_ws.PlaceCancelChains(client, counts) for client in clients]
    for chain in chains:
        await chain.start(bench_ws.WINDOW)
    while counts.done < count:
        await asyncio.sleep(0.02)
    for chain in chains:
        chain.running = False
    for chain in chains:
        await asyncio.wait_for(chain.finished.wait(), 600)
    return counts


def control(*arguments: str) -> None:
    subprocess.run(["callgrind_control", *arguments], check=True, capture_output=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--round-trips", type=int, default=20_000)
    parser.add_argument("--compiled", choices=("auto", "on", "off"), default="on")
    parser.add_argument("--keep", type=Path, help="copy the callgrind dump here")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("count_ws.py needs valgrind (apt-get install valgrind)")
    directory = Path(tempfile.mkdtemp(prefix="paperex-count-"))
    try:
        config = bench_ws.write_config(directory, 1_000_000)
        dump = directory / "callgrind.out"
        wrapper = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        wrapper.append(f"--callgrind-out-file={dump}")
        server = await bench_ws.ServerProcess.start(config, None, "auto", args.compiled, wrapper)
        process = server.process
        print(f"server pid {process.pid} at {server.url}; modules {server.modules.strip()}")
        async with aiohttp.ClientSession() as session:
            bench = bench_ws.Bench(server, session)
            clients = await bench.traders("count", bench_ws.CONNECTIONS)
            await run_round_trips(clients, WARMUP_ROUND_TRIPS)
            control("-i", "on", str(process.pid))
            counts = await run_round_trips(clients, args.round_trips)
            control("-d", str(process.pid))
            control("-i", "off", str(process.pid))
            await bench.close()
        await server.stop()
        instructions = 0
        for part in sorted(directory.glob("callgrind.out*")):
            text = part.read_text(errors="replace")
            if "Trigger: dump" in text:
                found = re.search(r"^totals: (\d+)", text, re.MULTILINE)
                if found:
                    instructions += int(found.group(1))
                if args.keep is not None:
                    shutil.copy(part, args.keep)
        if counts.errors:
            raise SystemExit(f"{counts.errors} requests failed: {counts.first_error}")
        per_round_trip = instructions / counts.done
        print(f"{counts.done:,} round trips, {instructions:,} instructions")
        print(f"instructions per round trip: {per_round_trip:,.0f}")
        print(
            json.dumps(
                {
                    "instructions_per_round_trip": round(per_round_trip),
                    "round_trips": counts.done,
                    "instructions": instructions,
                    "server_modules": args.compiled,
                }
            )
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
