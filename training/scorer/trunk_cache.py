"""Frozen-trunk features of (augmented) training images, computed once and cached.

The trunk (ImageNet stem through stage 5) is never trained, so running it every epoch
would repeat the same work. Each image is passed through it in ``variants`` versions:
variant 0 as captured, the others with a random flip / quarter turn (heatmap target
turned with it) and colour, brightness and noise changes the enclosure can produce. The
training loop then picks a variant per sample and epoch and adds cheap flips and turns of
the feature maps themselves.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from engines.preprocess import to_tensor
from training.image_cache import save_arrays
from training.scorer.data import ScorerSamples
from training.scorer.model import FrozenTrunk

Progress = Callable[[int, int], None]


@dataclass
class TrunkFeatures:
    """Per variant and sample: stride-8 and stride-16 features (float16) and heat targets."""

    stride8: np.ndarray        # V×N×40×(S/8)×(S/8) float16
    stride16: np.ndarray       # V×N×112×(S/16)×(S/16) float16
    heat_targets: np.ndarray   # V×N×(S/8)×(S/8) uint8

    @property
    def variants(self) -> int:
        return self.stride8.shape[0]

    @staticmethod
    def concatenate(parts: "list[TrunkFeatures]") -> "TrunkFeatures":
        """Samples of several parts side by side (axis 1); parts share size and variants."""
        if len({part.stride8.shape[0] for part in parts}) != 1:
            raise ValueError("trunk features with different numbers of variants")
        return TrunkFeatures(*(np.concatenate([getattr(part, name) for part in parts], axis=1)
                               for name in ("stride8", "stride16", "heat_targets")))


def augment_image(image: np.ndarray, target: np.ndarray,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random flip, quarter turn and photometric change; the target gets the same geometry."""
    if rng.random() < 0.5:
        image, target = image[:, ::-1], target[:, ::-1]
    turns = int(rng.integers(0, 4))
    image, target = np.rot90(image, turns), np.rot90(target, turns)
    gain = 1.0 + 0.3 * (rng.random() - 0.5)
    tint = 1.0 + 0.1 * (rng.random(3) - 0.5)
    shift = 30.0 * (rng.random() - 0.5)
    noise = rng.normal(0.0, 3.0, image.shape)
    changed = image.astype(np.float32) * gain * tint + shift + noise
    return np.clip(changed, 0, 255).astype(np.uint8), np.ascontiguousarray(target)


def compute_trunk_features(trunk: FrozenTrunk, samples: ScorerSamples, variants: int,
                           device: torch.device, seed: int = 0, batch_size: int = 8,
                           cache_dir: Path | None = None,
                           progress: Progress | None = None) -> TrunkFeatures:
    """Run the trunk over ``variants`` versions of every sample (variant 0 unaugmented)."""
    # Variant 0 is the image as captured: without augmented variants the features do not
    # depend on the seed, so runs with other seeds (an ensemble's members) share the cache.
    augmentation_seed = seed if variants > 1 else 0
    key = hashlib.sha256(repr((samples.capture_ids, samples.images.shape, variants,
                               augmentation_seed,
                               float(samples.images[:, ::7, ::7].mean()) if len(samples) else 0.0)
                              ).encode()).hexdigest()[:16]
    cache = cache_dir / f"trunk-{samples.images.shape[1]}-{key}.npz" if cache_dir else None
    if cache and cache.is_file():
        with np.load(cache) as stored:
            return TrunkFeatures(stored["stride8"], stored["stride16"], stored["heat"])
    rng = np.random.default_rng(seed)
    count, size = len(samples), samples.images.shape[1]
    stride8 = np.empty((variants, count, 40, size // 8, size // 8), np.float16)
    stride16 = np.empty((variants, count, 112, size // 16, size // 16), np.float16)
    heat = np.empty((variants, count) + samples.heat_targets.shape[1:], np.uint8)
    trunk = trunk.to(device).eval()
    total, done = variants * count, 0
    if progress and total:
        progress(0, total)
    for variant in range(variants):
        for start in range(0, count, batch_size):
            images = samples.images[start:start + batch_size]
            targets = samples.heat_targets[start:start + batch_size]
            if variant > 0:
                pairs = [augment_image(i, t, rng) for i, t in zip(images, targets)]
                images = np.stack([p[0] for p in pairs])
                targets = np.stack([p[1] for p in pairs])
            with torch.no_grad():
                f8, f16 = trunk(torch.from_numpy(to_tensor(images)).to(device))
            stride8[variant, start:start + len(images)] = f8.cpu().numpy()
            stride16[variant, start:start + len(images)] = f16.cpu().numpy()
            heat[variant, start:start + len(images)] = targets
            done += len(images)
            if progress:
                progress(done, total)
    if cache:
        save_arrays(cache, stride8=stride8, stride16=stride16, heat=heat)
    return TrunkFeatures(stride8, stride16, heat)
