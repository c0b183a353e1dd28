"""Training checkpoints: written atomically every epoch, resumed only with the same options."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from engines.files import atomic_output


def load_checkpoint(path: Path, options: Mapping[str, Any],
                    device: torch.device) -> dict[str, Any] | None:
    """The saved state to resume from, or None when there is none.

    A checkpoint made with other options is refused: resuming it would silently mix two
    different trainings.
    """
    if not path.is_file():
        return None
    state = torch.load(path, map_location=device, weights_only=False)
    if state["options"] != dict(options):
        raise ValueError(f"checkpoint {path} was made with other options ({state['options']}); "
                         "delete it or use another --out")
    return state


def save_checkpoint(path: Path, state: Mapping[str, Any]) -> None:
    """Write the checkpoint so that an interruption leaves the previous one intact."""
    with atomic_output(path) as stream:
        torch.save(dict(state), stream)
