"""Scoring one capture end to end: tray image + item mask (+ references) → scores → verdict.

The one place where the supervised scorer, the reference comparison, the fusion and the
verdict meet, so that the station, offline replay and the fusion fit
(``training.fusion_fit.score_split``) compute a capture's scores with the same code.

The item mask comes from the caller (a data set's mask, as the paper evaluates) or, when
the inspector has an ``ItemExtractor``, from the segmenter; then the quality gates apply
and a refused capture comes back as ``Refused`` with the gate codes, not as scores.
Batches run the supervised scorer once for several tray images (one runtime call); the
reference comparison stays per capture (its banks come from the feature cache). With an
item scorer (``engines.item_scoring``) the item crops of the batch are scored too, in one
more runtime call.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import cv2
import numpy as np

from engines.fusion import FusionModel, ItemScore
from engines.item_crop import CropBox, square_item_crop
from engines.item_extraction import ItemExtractor
from engines.item_scoring import with_item_view
from engines.preprocess import read_mask, read_rgb
from engines.quality_gates import QualityIssue
from engines.reference import (AUGMENTATIONS, ComparisonSettings, ReferenceFeatureCache,
                               ReferenceResult, compare, file_identity, query_grid,
                               reference_heatmap)
from engines.runtime.base import WARM_UP_RUNS
from engines.scoring import SupervisedScore, SupervisedScorer
from engines.segmentation import ItemSegmenter
from engines.taxonomy import DEFECT_TYPES
from engines.verdict import DecisionThresholds, Verdict, decide

SUPERVISED_FEATURES = ("logit_p_any", "logit_p_major", "logit_p_any_with_references",
                       "logit_item_p_any", "logit_item_p_major")


@dataclass(frozen=True)
class ReferenceImage:
    """One reference capture: ``identity`` keys its cached bank (``file_identity`` of its
    files or ``content_identity`` of its pixels); ``load`` gives (tray image, item mask)
    and is called only when the bank is not cached yet."""

    identity: str
    load: Callable[[], tuple[np.ndarray, np.ndarray]]

    @classmethod
    def from_files(cls, image: str | os.PathLike[str], mask: str | os.PathLike[str],
                   reduction: int = 1) -> ReferenceImage:
        """A reference stored as files, decoded at 1/``reduction`` of their size; the
        identity names the reduction, so its bank is never mistaken for another size's.
        Raises OSError when a file cannot be read."""
        return cls(file_identity(image, mask, reduction=reduction),
                   lambda: (read_rgb(str(image), reduction), read_mask(str(mask), reduction)))


@dataclass(frozen=True)
class CaptureInput:
    """What a capture brings: its tray image, the item mask (None: segment it) and the
    item's references (empty: no reference comparison)."""

    tray_image: np.ndarray
    mask: np.ndarray | None = None
    references: Sequence[ReferenceImage] = ()


@dataclass(frozen=True)
class CaptureScores:
    """Every score of one capture. Supervised values are NaN (and ``heatmap`` None) when
    the inspector ran without the supervised heads; ``fused`` and ``verdict`` need them."""

    p_any: float
    p_major: float
    p_types: dict[str, float]
    heatmap: np.ndarray | None              # supervised, on the stride-8 grid
    reference_score: float | None           # None: the item has no references
    reference_map: np.ndarray | None        # on the heatmap grid, item's OK level 0, twice it 1
    fused: float
    verdict: Verdict | None
    mask: np.ndarray | None                 # the item mask the scores used
    timings_ms: dict[str, float] = field(default_factory=dict)
    reference_result: ReferenceResult | None = None
    item: SupervisedScore | None = None     # the item scorer's own score (crop grid heatmap)
    item_box: CropBox | None = None         # where the item crop was cut, tray pixels


@dataclass(frozen=True)
class Refused:
    """A capture the quality gates refused (segmenter mode): no scores, the gates' reasons."""

    issues: tuple[QualityIssue, ...]
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(issue.code for issue in self.issues)


InspectionResult = CaptureScores | Refused


class Inspector:
    """Scores captures with one set of models, fusion and thresholds."""

    def __init__(self, scorer: SupervisedScorer, cache: ReferenceFeatureCache,
                 fusion: FusionModel | None = None,
                 thresholds: DecisionThresholds | None = None,
                 comparison: ComparisonSettings = ComparisonSettings(),
                 extractor: ItemExtractor | None = None, supervised: bool = True,
                 item_scorer: SupervisedScorer | None = None) -> None:
        """``item_scorer``: scores the item crop too (needs the item mask); None = tray only."""
        self.scorer = scorer
        self.item_scorer = item_scorer
        self.cache = cache
        self.fusion = fusion or FusionModel.supervised_only()
        self.thresholds = thresholds
        self.comparison = comparison
        self.extractor = extractor
        self.supervised = supervised

    def warm_up(self, runs: int = WARM_UP_RUNS,
                segmenter: ItemSegmenter | None = None) -> dict[str, float]:
        """Run every model ``runs`` times at the shapes a capture will use (blank images),
        so that the first items are as fast as the rest; milliseconds per model. The
        reference embedding covers the query (one crop) and a reference bank not yet cached
        (one crop per pose transform), as most items in a warehouse are new to it.
        ``segmenter``: one that segments outside the inspector (the station's own)."""
        settings = self.cache.settings
        transforms = len(AUGMENTATIONS[settings.augmentation])

        def embedding() -> None:
            for count in sorted({1, transforms}):
                self.scorer.warm_up_embedding(settings.embed_size, count, runs)

        steps: list[tuple[str, Callable[[], object]]] = [("reference_embedding", embedding)]
        if self.supervised:
            steps.insert(0, ("scorer", lambda: self.scorer.warm_up(runs)))
            if self.item_scorer is not None:
                steps.insert(1, ("item_scorer", lambda: self.item_scorer.warm_up(runs)))
        if self.extractor is not None:
            segmenter = self.extractor.segmenter
        if segmenter is not None:
            steps.append(("segmenter", lambda: segmenter.warm_up(runs)))
        timings = {}
        for name, step in steps:
            started = time.perf_counter()
            step()
            timings[name] = (time.perf_counter() - started) * 1000.0
        return timings

    def prepare_references(self, references: Sequence[ReferenceImage]) -> int:
        """Build and cache the pose banks of the references not cached yet (cached ones are
        not read); how many were built. The station calls this when an item is scanned, so
        that the banks of an item new to it are built while the associate places the item,
        not after the trigger."""
        before = self.cache.computed
        for reference in references:
            if not self.cache.path(reference.identity).is_file():
                self.cache.bank(reference.identity, self.scorer, reference.load)
        return self.cache.computed - before

    def inspect(self, capture: CaptureInput) -> InspectionResult:
        return self.inspect_batch([capture])[0]

    def inspect_batch(self, captures: Sequence[CaptureInput]) -> list[InspectionResult]:
        """One result per capture, in order; the supervised scorer runs once for the batch."""
        timings = [dict[str, float]() for _ in captures]
        masks: list[np.ndarray | None] = []
        refused: dict[int, Refused] = {}
        for index, capture in enumerate(captures):
            if capture.mask is not None or self.extractor is None:
                masks.append(capture.mask)
                continue
            extracted = self.extractor.from_tray_image(capture.tray_image)
            timings[index].update(extracted.timings_ms)
            masks.append(extracted.mask)
            if not extracted.accepted:
                refused[index] = Refused(tuple(extracted.issues), timings[index])
        scoring = [i for i in range(len(captures)) if i not in refused]
        supervised = self._supervised(captures, scoring, timings)
        items = self._items(captures, masks, scoring, timings)
        results: list[InspectionResult] = []
        for index, capture in enumerate(captures):
            if index in refused:
                results.append(refused[index])
                continue
            results.append(self._finish(capture, masks[index], supervised.get(index),
                                        timings[index], *items.get(index, (None, None))))
        return results

    def _items(self, captures: Sequence[CaptureInput], masks: list[np.ndarray | None],
               indices: list[int], timings: list[dict[str, float]]
               ) -> dict[int, tuple[SupervisedScore, CropBox]]:
        """The item scorer's score and crop box of each capture that has an item mask."""
        indices = [i for i in indices if masks[i] is not None and np.any(masks[i])]
        if self.item_scorer is None or not self.supervised or not indices:
            return {}
        started = time.perf_counter()
        crops = [square_item_crop(captures[i].tray_image, _mask_for(captures[i], masks[i]))
                 for i in indices]
        scores = self.item_scorer.score_batch([crop for crop, _ in crops])
        share = (time.perf_counter() - started) * 1000.0 / len(indices)
        for index in indices:
            timings[index]["item_scorer"] = share
        return {index: (score, box) for index, score, (_, box) in zip(indices, scores, crops)}

    def _supervised(self, captures: Sequence[CaptureInput], indices: list[int],
                    timings: list[dict[str, float]]) -> dict[int, SupervisedScore]:
        if not self.supervised or not indices:
            return {}
        started = time.perf_counter()
        scores = self.scorer.score_batch([captures[i].tray_image for i in indices])
        share = (time.perf_counter() - started) * 1000.0 / len(indices)
        for index in indices:
            timings[index]["supervised"] = share   # the batch's time, shared evenly
        return dict(zip(indices, scores))

    def _finish(self, capture: CaptureInput, mask: np.ndarray | None,
                supervised: SupervisedScore | None, timings: dict[str, float],
                item: SupervisedScore | None = None, item_box: CropBox | None = None
                ) -> CaptureScores:
        reference = None
        if capture.references:
            if mask is None:
                raise ValueError("a reference comparison needs the item mask")
            started = time.perf_counter()
            banks = [self.cache.bank(r.identity, self.scorer, r.load) for r in capture.references]
            grid = query_grid(self.scorer, capture.tray_image, mask, self.cache.settings)
            reference = compare(grid, banks, self.comparison)
            timings["reference"] = (time.perf_counter() - started) * 1000.0
        if supervised is None:
            return CaptureScores(math.nan, math.nan, {}, None,
                                 None if reference is None else reference.score, None,
                                 math.nan, None, mask, timings, reference)
        started = time.perf_counter()
        reference_score = None if reference is None else reference.score
        item_score = ItemScore(item.p_any, item.p_major) if item is not None else None
        tray_only = supervised
        if item is not None and item_box is not None:
            supervised = with_item_view(supervised, item, item_box, capture.tray_image.shape[:2])
        fused = self.fusion.probability(tray_only.p_any, tray_only.p_major, reference_score,
                                        item_score)
        reference_map = None
        if reference is not None:
            reference_map = reference_heatmap(reference, capture.tray_image.shape[0],
                                              supervised.heatmap.shape,
                                              reference.baseline,
                                              max(2.0 * reference.baseline,
                                                  reference.baseline + 1e-3))
        verdict = None
        if self.thresholds is not None:
            shares = self.fusion.contributions(supervised.p_any, supervised.p_major,
                                               reference_score, item_score)
            verdict = decide(fused, self.thresholds, supervised.p_types, supervised.heatmap,
                             reference_map, reference_evidence=shares["reference_score"],
                             supervised_evidence=sum(shares[n] for n in SUPERVISED_FEATURES))
        timings["fusion_verdict"] = (time.perf_counter() - started) * 1000.0
        p_types = {name: supervised.p_types.get(name, math.nan) for name in DEFECT_TYPES}
        return CaptureScores(supervised.p_any, supervised.p_major, p_types, supervised.heatmap,
                             reference_score, reference_map, fused, verdict, mask, timings,
                             reference, item, item_box)


def _mask_for(capture: CaptureInput, mask: np.ndarray) -> np.ndarray:
    """The item mask at the tray image's size (a data set's mask may be read reduced)."""
    height, width = capture.tray_image.shape[:2]
    if mask.shape[:2] == (height, width):
        return mask
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
