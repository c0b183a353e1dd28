"""Where training runs: a CUDA GPU when present, else the CPU."""

from __future__ import annotations

import torch


def pick_device(requested: str) -> torch.device:
    """``auto`` picks CUDA when available; ``cpu`` / ``cuda`` / ``cuda:N`` force one."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)
