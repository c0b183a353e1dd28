"""Round-trip time of one lighting command (``ST1``) through the driver over a real pty.

Prints figures; asserts nothing. ``python -m drivers.lighting.bench --count 200``.
The pty has no baud rate, so the figures are driver + kernel + simulator overhead; a real
115200 8N1 line adds 10 bits per byte on the wire, printed alongside for comparison.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass

from drivers.lighting.gardasoft import GardasoftController
from drivers.lighting.simulator import GardasoftSimulator


@dataclass(frozen=True)
class BenchResult:
    count: int
    seconds: list[float]
    wire_bytes: int

    def percentile(self, q: float) -> float:
        ordered = sorted(self.seconds)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    def report(self, baudrate: int = 115200) -> str:
        ms = 1000.0
        wire_ms = self.wire_bytes * 10 / baudrate * ms
        return (f"ST1 round trips over pty: n={self.count} "
                f"median={statistics.median(self.seconds) * ms:.3f} ms "
                f"p95={self.percentile(0.95) * ms:.3f} ms "
                f"min={min(self.seconds) * ms:.3f} ms max={max(self.seconds) * ms:.3f} ms\n"
                f"(a real {baudrate} 8N1 line adds {wire_ms:.2f} ms on the wire "
                f"for the {self.wire_bytes} bytes sent and received)")


def run_bench(count: int = 200) -> BenchResult:
    with GardasoftSimulator() as simulator, GardasoftController(simulator.port) as lights:
        lights.set_brightness(1, 80)
        seconds = []
        for _ in range(count):
            start = time.perf_counter()
            lights.status(1)
            seconds.append(time.perf_counter() - start)
        wire_bytes = len(b"ST1\r") + len(simulator.respond("ST1"))
    return BenchResult(count, seconds, wire_bytes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m drivers.lighting.bench", description=__doc__)
    parser.add_argument("--count", type=int, default=200)
    args = parser.parse_args(argv)
    print(run_bench(args.count).report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
