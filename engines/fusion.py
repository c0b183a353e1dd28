"""One calibrated damage score from the supervised and reference scores.

A logistic model (Platt-style, so the output is a probability) on a few features:

- ``logit_p_any``, ``logit_p_major``: the supervised scorer's probabilities as logits;
- ``reference_score``: the reference anomaly score, standardised by the centre and scale
  measured on the fitting data, and 0 when the item has no references;
- ``has_references``: 1 when a reference comparison was made, else 0;
- ``logit_p_any_with_references``: ``logit_p_any`` again but only when references exist,
  so the weight of the supervised evidence can change when references speak too (a
  look-alike print is high on p_any but low against its references);
- ``logit_item_p_any``, ``logit_item_p_major``: the item scorer's probabilities (the item
  crop at about three times the tray's resolution on the item: faint scratches and a
  missing blister unit that the tray view blurs away). Without an item score (no item
  scorer configured, or no item mask) the tray scorer's values stand in, the best
  estimate of the same quantity, so a fusion fitted with both still gives a sane score.

Items without references use the same formula with the three reference terms zero; the
fit (``training/fusion_fit.py``) includes every validation query once with and once
without its references, so that branch is calibrated on its own. The model is data in
``fusion.yaml`` next to the scorer (coefficients, feature definitions, provenance).
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, NamedTuple

import numpy as np
import yaml

FEATURE_NAMES: tuple[str, ...] = ("logit_p_any", "logit_p_major", "reference_score",
                                  "has_references", "logit_p_any_with_references",
                                  "logit_item_p_any", "logit_item_p_major")
ITEM_FEATURES: tuple[str, ...] = ("logit_item_p_any", "logit_item_p_major")
FEATURE_DEFINITIONS: dict[str, str] = {
    "logit_p_any": "log(p/(1-p)) of the supervised P(any defect), p clipped to [1e-4, 1-1e-4]",
    "logit_p_major": "log(p/(1-p)) of the supervised P(major defect), same clipping",
    "reference_score": "(reference image score - reference_centre) / reference_scale; "
                       "0 without references",
    "has_references": "1 when the item had at least one reference, else 0",
    "logit_p_any_with_references": "logit_p_any × has_references",
    "logit_item_p_any": "log(p/(1-p)) of the item scorer's P(any defect), same clipping; "
                        "logit_p_any when there is no item score",
    "logit_item_p_major": "log(p/(1-p)) of the item scorer's P(major defect), same clipping; "
                          "logit_p_major when there is no item score",
}
PROBABILITY_CLIP = 1e-4
FORMAT_VERSION = 1


class ItemScore(NamedTuple):
    """The item scorer's two probabilities that the fusion uses."""

    p_any: float
    p_major: float


class FusionError(ValueError):
    """A fusion file that cannot be used; the message names the file and the field."""


def logit(probability: float | np.ndarray) -> float | np.ndarray:
    p = np.clip(probability, PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)
    return np.log(p / (1.0 - p))


def sigmoid(value: float | np.ndarray) -> float | np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(value, dtype=np.float64)))


@dataclass(frozen=True)
class FusionModel:
    """``probability = sigmoid(intercept + Σ coefficient[name] · feature[name])``."""

    intercept: float
    coefficients: Mapping[str, float]
    reference_centre: float = 0.0
    reference_scale: float = 1.0
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.coefficients) - set(FEATURE_NAMES)
        if unknown:
            raise FusionError(f"unknown fusion features {sorted(unknown)}; known: {FEATURE_NAMES}")
        if not self.reference_scale > 0:
            raise FusionError(f"reference_scale must be positive, got {self.reference_scale}")

    @classmethod
    def supervised_only(cls) -> FusionModel:
        """The fallback before a fusion is fitted: the fused score is P(any) itself."""
        return cls(0.0, {"logit_p_any": 1.0}, provenance={"note": "identity on p_any; not fitted"})

    def features(self, p_any: float, p_major: float, reference_score: float | None,
                 item: ItemScore | None = None) -> dict[str, float]:
        has_references = reference_score is not None and math.isfinite(reference_score)
        any_logit, major_logit = float(logit(p_any)), float(logit(p_major))
        return {
            "logit_p_any": any_logit,
            "logit_p_major": major_logit,
            "reference_score": ((reference_score - self.reference_centre) / self.reference_scale
                                if has_references else 0.0),
            "has_references": 1.0 if has_references else 0.0,
            "logit_p_any_with_references": any_logit if has_references else 0.0,
            "logit_item_p_any": float(logit(item.p_any)) if item else any_logit,
            "logit_item_p_major": float(logit(item.p_major)) if item else major_logit,
        }

    def contributions(self, p_any: float, p_major: float, reference_score: float | None,
                      item: ItemScore | None = None) -> dict[str, float]:
        """Each feature's share of the fused logit (for explaining a verdict)."""
        values = self.features(p_any, p_major, reference_score, item)
        return {name: self.coefficients.get(name, 0.0) * values[name] for name in FEATURE_NAMES}

    def reference_evidence(self, p_any: float, p_major: float,
                           reference_score: float | None) -> float:
        """The reference comparison's push on the fused logit (positive: towards damage)."""
        return self.contributions(p_any, p_major, reference_score)["reference_score"]

    def probability(self, p_any: float, p_major: float, reference_score: float | None = None,
                    item: ItemScore | None = None) -> float:
        """The fused, calibrated damage probability; ``reference_score`` None = no references,
        ``item`` None = no item score."""
        total = self.intercept + sum(
            self.contributions(p_any, p_major, reference_score, item).values())
        return float(sigmoid(total))

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "model": "logistic",
                "intercept": float(self.intercept),
                "coefficients": {name: float(self.coefficients.get(name, 0.0))
                                 for name in FEATURE_NAMES},
                "reference_centre": float(self.reference_centre),
                "reference_scale": float(self.reference_scale),
                "feature_definitions": dict(FEATURE_DEFINITIONS),
                "provenance": dict(self.provenance)}


def save_fusion(model: FusionModel, path: str | os.PathLike[str]) -> Path:
    """Write ``fusion.yaml`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(model.to_dict(), sort_keys=False, allow_unicode=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_fusion(path: str | os.PathLike[str]) -> FusionModel:
    """Read ``fusion.yaml``; a missing or malformed field raises ``FusionError`` naming it."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise FusionError(f"{path}: cannot read fusion model: {error}") from error
    if not isinstance(data, dict):
        raise FusionError(f"{path}: a fusion model must be a mapping")

    def number(mapping: Mapping[str, Any], key: str, where: str) -> float:
        value = mapping.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise FusionError(f"{path}: {where}{key}: must be a finite number, got {value!r}")
        return float(value)

    if data.get("format_version") != FORMAT_VERSION:
        raise FusionError(f"{path}: format_version: expected {FORMAT_VERSION}, "
                          f"got {data.get('format_version')!r}")
    coefficients = data.get("coefficients")
    if not isinstance(coefficients, dict):
        raise FusionError(f"{path}: coefficients: must be a mapping of feature → weight")
    unknown = sorted(set(coefficients) - set(FEATURE_NAMES))
    if unknown:
        raise FusionError(f"{path}: coefficients: unknown features {unknown}; known {FEATURE_NAMES}")
    provenance = data.get("provenance") or {}
    if not isinstance(provenance, dict):
        raise FusionError(f"{path}: provenance: must be a mapping")
    fields = {"intercept": number(data, "intercept", ""),
              "coefficients": {name: number(coefficients, name, "coefficients.")
                               for name in coefficients},
              "reference_centre": number(data, "reference_centre", ""),
              "reference_scale": number(data, "reference_scale", "")}
    try:
        return FusionModel(**fields, provenance=provenance)
    except FusionError as error:
        raise FusionError(f"{path}: {error}") from error
