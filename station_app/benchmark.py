"""Per-stage latency (p50/p95) and peak memory of the inspection pipeline.

A benchmark prints figures; it never asserts on them (speed depends on the machine).
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass
class StageTimer:
    """Collects wall-clock durations per named stage over repeated runs."""

    samples: dict[str, list[float]] = field(default_factory=dict)

    def measure(self, stage: str, work: Callable[[], object]) -> object:
        started = time.perf_counter()
        result = work()
        self.samples.setdefault(stage, []).append((time.perf_counter() - started) * 1000.0)
        return result

    def add(self, stage: str, milliseconds: float) -> None:
        self.samples.setdefault(stage, []).append(milliseconds)

    def summary(self) -> dict[str, dict[str, float]]:
        return {stage: {"p50_ms": float(np.percentile(values, 50)),
                        "p95_ms": float(np.percentile(values, 95)),
                        "mean_ms": float(np.mean(values)), "runs": len(values)}
                for stage, values in self.samples.items()}


def peak_memory_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def format_table(summary: dict[str, dict[str, float]]) -> str:
    width = max(len(stage) for stage in summary) + 2
    lines = [f"{'stage':<{width}}{'p50 ms':>10}{'p95 ms':>10}{'runs':>7}"]
    for stage, figures in summary.items():
        lines.append(f"{stage:<{width}}{figures['p50_ms']:>10.1f}{figures['p95_ms']:>10.1f}"
                     f"{figures['runs']:>7d}")
    return "\n".join(lines)
