"""Supervised damage scoring at run time: tray image in, probabilities and heatmap out.

Runs the scorer model (any runtime) described by its manifest. The ONNX contract:
input ``image`` N×3×H×W (ImageNet mean/std, RGB; H and W multiples of 32); outputs
``p_any`` N×1, ``p_major`` N×1, ``p_types`` N×7 (order of ``DEFECT_TYPES``),
``heatmap`` N×1×H/8×W/8 (probabilities) and ``features`` N×C×H/16×W/16 (generic ImageNet
patch features for the reference comparison). The tray is scored at the manifest's
input size; ``embed`` runs the same model at another size for item crops.

Test-time views: with ``views`` 2 or 4 the tray is also scored mirrored (left-right, then
top-bottom and both). A tray has no preferred orientation, so each view is an equally
valid look at the same capture; probabilities are averaged as logits and each heatmap is
mirrored back before averaging. It costs one scorer pass per view (batched).

A second size (``second_size``) adds one more look, unmirrored, at another scale: a crop
seen at two sizes shows a faint scratch at two widths in pixels, and the model (trained at
one size) misses it at one of them less often than at both. The views' mean and the second
look weigh equally (logits; heatmaps on the first size's grid).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from engines.preprocess import IMAGENET_MEAN, IMAGENET_STD, resize_square, to_tensor
from engines.runtime.base import WARM_UP_RUNS, InferenceSession
from engines.taxonomy import DEFECT_TYPES

SCORER_OUTPUTS: tuple[str, ...] = ("p_any", "p_major", "p_types", "heatmap", "features")
INPUT_MULTIPLE = 32
# Mirror views (flip left-right, flip top-bottom), in the order ``views`` takes them;
# every one is its own inverse, so the same flips bring a view's heatmap back.
VIEW_FLIPS: tuple[tuple[bool, bool], ...] = ((False, False), (True, False), (False, True),
                                             (True, True))
VIEW_CHOICES: tuple[int, ...] = (1, 2, 4)
# The station's defaults (``models.score_views``, ``models.item_score_views``), chosen on
# validation: with the item scorer beside it, a second look at the tray added nothing
# there, a second look at the item crop did (README, "Damage scoring").
DEFAULT_VIEWS = 1
DEFAULT_ITEM_VIEWS = 2
# ``models.item_score_resolution``: the bundled item scorer was trained at 512, but the item
# crop (median about 1,150 px of the 2048 tray) loses one-pixel scratches at that size.
# Scoring at 576 to 768 raised validation AP_any of the item scorer alone from 91.9 to
# about 94 (README, "Damage scoring"); 576 is the cheapest of them.
DEFAULT_ITEM_SIZE = 576
# ``models.item_score_second_resolution``: one more look at the item crop at 768 px. On
# validation it raised AP_any of the item scorer alone from 94.2 to 95.0 and of the fused
# score from 94.0 to 94.7 (5-fold CV), for about 85 ms on 2 CPU cores (bench); a mirrored
# view at 768 as well (94.9 fused) would add as much again (README, "Damage scoring").
DEFAULT_ITEM_SECOND_SIZE = 768
PROBABILITY_CLIP = 1e-6


@dataclass(frozen=True)
class SupervisedScore:
    """One capture's supervised verdict inputs."""

    p_any: float
    p_major: float
    p_types: dict[str, float]      # every type of DEFECT_TYPES, in taxonomy order
    heatmap: np.ndarray            # float32 (size/8)×(size/8), defect probability per cell

    def likely_types(self, threshold: float = 0.5) -> list[str]:
        """Defect types at or above ``threshold``, most probable first."""
        chosen = [name for name, p in self.p_types.items() if p >= threshold]
        return sorted(chosen, key=lambda name: -self.p_types[name])


class SupervisedScorer:
    """Scores tray images and embeds crops with one scorer session."""

    def __init__(self, session: InferenceSession, max_batch: int = 8,
                 size: int | None = None, views: int = DEFAULT_VIEWS,
                 second_size: int = 0) -> None:
        """``size``: the side the tray image is resized to; None is the size the model was
        trained at (its manifest). The model takes any multiple of 32. ``views``: 1, 2 or
        4 mirrored looks at each tray, averaged; ``second_size``: one more look at that
        size, 0 = none (module docstring)."""
        if views not in VIEW_CHOICES:
            raise ValueError(f"views must be one of {VIEW_CHOICES}, got {views}")
        if session.manifest is None:
            raise ValueError(f"{session.onnx_path}: a scorer needs its manifest")
        missing = [name for name in SCORER_OUTPUTS if name not in {o.name for o in session.outputs}]
        if missing:
            raise ValueError(f"{session.onnx_path}: not a scorer model, outputs {missing} missing")
        self.session = session
        spec = session.manifest.inputs[0]
        self.input_name = spec.name
        self.trained_size = int(spec.size[0]) if spec.size else int(spec.shape[-1])
        self.size = int(size) if size is not None else self.trained_size
        if self.size < INPUT_MULTIPLE or self.size % INPUT_MULTIPLE:
            raise ValueError(f"scorer input size {self.size} must be a positive multiple of "
                             f"{INPUT_MULTIPLE}")
        self.second_size = int(second_size)
        if self.second_size and (self.second_size < INPUT_MULTIPLE
                                 or self.second_size % INPUT_MULTIPLE):
            raise ValueError(f"scorer second input size {self.second_size} must be 0 (none) or "
                             f"a positive multiple of {INPUT_MULTIPLE}")
        self.mean = spec.mean or IMAGENET_MEAN
        self.std = spec.std or IMAGENET_STD
        self.max_batch = max(1, min(max_batch, session.max_batch or max_batch))
        self.views = views

    def _run(self, images: Sequence[np.ndarray], size: int) -> dict[str, np.ndarray]:
        if size % INPUT_MULTIPLE:
            raise ValueError(f"input size {size} is not a multiple of {INPUT_MULTIPLE}")
        parts: list[dict[str, np.ndarray]] = []
        for start in range(0, len(images), self.max_batch):
            chunk = images[start:start + self.max_batch]
            batch = np.stack([resize_square(image, size) for image in chunk])
            parts.append(self.session.run({self.input_name: to_tensor(batch, self.mean, self.std)}))
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}

    def score(self, tray_image: np.ndarray) -> SupervisedScore:
        return self.score_batch([tray_image])[0]

    def score_batch(self, tray_images: Sequence[np.ndarray]) -> list[SupervisedScore]:
        """RGB tray images (any size; resized to the model's) → one score each."""
        if not tray_images:
            return []
        resized = [resize_square(image, self.size) for image in tray_images]
        flips = VIEW_FLIPS[:self.views]
        out = self._run([_mirror(image, flip) for image in resized for flip in flips], self.size)
        second = (self._run(list(tray_images), self.second_size) if self.second_size
                  else None)
        scores = []
        for i in range(len(tray_images)):
            rows = slice(i * len(flips), (i + 1) * len(flips))
            heatmaps = [_mirror(heat[0], flip) for heat, flip in zip(out["heatmap"][rows], flips)]
            score = SupervisedScore(
                p_any=mean_probability(out["p_any"][rows, 0]),
                p_major=mean_probability(out["p_major"][rows, 0]),
                p_types={name: mean_probability(out["p_types"][rows, k])
                         for k, name in enumerate(DEFECT_TYPES)},
                heatmap=np.mean(heatmaps, axis=0).astype(np.float32))
            if second is not None:
                score = _with_second_look(score, {name: values[i]
                                                  for name, values in second.items()})
            scores.append(score)
        return scores

    def warm_up(self, runs: int = WARM_UP_RUNS) -> None:
        """Score a blank image at the serving shape (every view), so that the first items
        do not pay the runtime's first-run costs."""
        blank = np.zeros((self.size, self.size, 3), np.uint8)
        for _ in range(runs):
            self.score(blank)

    def warm_up_embedding(self, size: int, count: int, runs: int = WARM_UP_RUNS) -> None:
        """Run each batch shape that embedding ``count`` images at ``size`` uses (full
        batches and the remainder), ``runs`` times, on blank images."""
        blank = np.zeros((size, size, 3), np.uint8)
        shapes = {min(count, self.max_batch)}
        if count > self.max_batch and count % self.max_batch:
            shapes.add(count % self.max_batch)
        for _ in range(runs):
            for batch in sorted(shapes):
                self.embed_batch([blank] * batch, size)

    def embed(self, image: np.ndarray, size: int) -> np.ndarray:
        """Patch features C×(size/16)×(size/16) of an RGB image resized to ``size``²."""
        return self.embed_batch([image], size)[0]

    def embed_batch(self, images: Sequence[np.ndarray], size: int) -> np.ndarray:
        """N×C×(size/16)×(size/16) float32 generic patch features."""
        if not images:
            raise ValueError("embed_batch needs at least one image")
        return self._run(images, size)["features"].astype(np.float32)


def _with_second_look(score: SupervisedScore, look: dict[str, np.ndarray]) -> SupervisedScore:
    """``score`` (the views' mean) and one look at the second size, weighed equally."""
    grid = score.heatmap.shape
    heatmap = cv2.resize(look["heatmap"][0], (grid[1], grid[0]), interpolation=cv2.INTER_AREA)
    return SupervisedScore(
        p_any=mean_probability(np.array([score.p_any, look["p_any"][0]])),
        p_major=mean_probability(np.array([score.p_major, look["p_major"][0]])),
        p_types={name: mean_probability(np.array([score.p_types[name], look["p_types"][k]]))
                 for k, name in enumerate(DEFECT_TYPES)},
        heatmap=((score.heatmap + heatmap) / 2).astype(np.float32))


def _mirror(image: np.ndarray, flip: tuple[bool, bool]) -> np.ndarray:
    left_right, top_bottom = flip
    if left_right:
        image = image[:, ::-1]
    if top_bottom:
        image = image[::-1]
    return np.ascontiguousarray(image) if left_right or top_bottom else image


def mean_probability(probabilities: np.ndarray) -> float:
    """The probability of the mean logit: one confident view is not averaged away linearly."""
    if len(probabilities) == 1:
        return float(probabilities[0])
    p = np.clip(probabilities.astype(np.float64), PROBABILITY_CLIP, 1.0 - PROBABILITY_CLIP)
    return float(1.0 / (1.0 + np.exp(-np.mean(np.log(p / (1.0 - p))))))
