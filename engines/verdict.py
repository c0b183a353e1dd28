"""The station's verdict from the fused score: OK, REVIEW or DAMAGED.

Two thresholds from the station profile split the fused score: OK below ``ok_below``,
DAMAGED at or above ``damaged_above``, REVIEW (a person decides) in between — the same
``score >= threshold`` convention the thresholds were chosen with. The verdict carries
what the operator needs to see: the likely defect types and one heatmap on the tray.

Heatmap to show: the supervised heatmap is the default (it is trained to localise
defects). When the reference comparison pushed the fused score towards damage more than
the supervised scorer did (a missing unit, which only a comparison can see), the
reference anomaly map — scaled so that the item's OK level is 0 and twice it is 1 — is
merged in by taking the maximum per cell, so both kinds of evidence stay visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping

import numpy as np

Label = Literal["OK", "REVIEW", "DAMAGED"]
TYPE_THRESHOLD = 0.5


@dataclass(frozen=True)
class DecisionThresholds:
    ok_below: float
    damaged_above: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.ok_below <= self.damaged_above <= 1.0:
            raise ValueError(f"thresholds must satisfy 0 <= ok_below ({self.ok_below}) <= "
                             f"damaged_above ({self.damaged_above}) <= 1")

    def label(self, fused_score: float) -> Label:
        if fused_score >= self.damaged_above:
            return "DAMAGED"
        if fused_score < self.ok_below:
            return "OK"
        return "REVIEW"


@dataclass(frozen=True)
class Verdict:
    label: Label
    fused_score: float
    likely_types: tuple[str, ...]
    heatmap: np.ndarray            # float32 in [0, 1] on the supervised heatmap grid
    heatmap_source: str            # "supervised" or "supervised+reference"
    reason: str


def likely_types(p_types: Mapping[str, float], label: Label,
                 threshold: float = TYPE_THRESHOLD) -> tuple[str, ...]:
    """Types at or above ``threshold``, most probable first; a DAMAGED verdict with none
    above it still names its most probable type, so the operator is never told "damaged"
    without a hint of how. An OK verdict names none."""
    if label == "OK" or not p_types:
        return ()
    chosen = sorted((name for name, p in p_types.items() if p >= threshold),
                    key=lambda name: -p_types[name])
    if not chosen and label == "DAMAGED":
        chosen = [max(p_types, key=lambda name: p_types[name])]
    return tuple(chosen)


def combined_heatmap(supervised: np.ndarray, reference: np.ndarray | None,
                     reference_is_stronger: bool) -> tuple[np.ndarray, str]:
    """The map to show and where it came from; ``reference`` is already on the supervised
    grid and scaled to [0, 1] (see ``engines.reference.display``)."""
    heat = np.clip(supervised.astype(np.float32), 0.0, 1.0)
    if reference is None or not reference_is_stronger:
        return heat, "supervised"
    if reference.shape != heat.shape:
        raise ValueError(f"reference map {reference.shape} is not on the heatmap grid {heat.shape}")
    return np.maximum(heat, np.clip(reference.astype(np.float32), 0.0, 1.0)), "supervised+reference"


def decide(fused_score: float, thresholds: DecisionThresholds, p_types: Mapping[str, float],
           supervised_heatmap: np.ndarray, reference_heatmap: np.ndarray | None = None,
           reference_evidence: float = 0.0, supervised_evidence: float = 0.0) -> Verdict:
    """The verdict. ``reference_evidence`` / ``supervised_evidence``: each source's push on
    the fused logit (``FusionModel.contributions``), used to pick the heatmap and explain."""
    if not 0.0 <= fused_score <= 1.0:
        raise ValueError(f"fused score {fused_score} is not a probability")
    label = thresholds.label(fused_score)
    stronger = reference_heatmap is not None and reference_evidence > max(0.0, supervised_evidence)
    heatmap, source = combined_heatmap(supervised_heatmap, reference_heatmap, stronger)
    types = likely_types(p_types, label)
    band = {"OK": f"below ok_below {thresholds.ok_below:.3f}",
            "DAMAGED": f"at or above damaged_above {thresholds.damaged_above:.3f}",
            "REVIEW": f"between ok_below {thresholds.ok_below:.3f} and damaged_above "
                      f"{thresholds.damaged_above:.3f}"}[label]
    driver = ("mostly from the reference comparison" if stronger
              else "mostly from the supervised scorer")
    reason = f"fused score {fused_score:.3f} {band}" + ("" if label == "OK" else f", {driver}")
    return Verdict(label, float(fused_score), types, heatmap, source, reason)
