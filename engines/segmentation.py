"""Item segmentation at run time: tray image in, full-resolution item mask out.

The U-Net sees the tray at its input size (256² by default, fast on CPU); its logits
are upsampled to the tray image before thresholding, so the mask edge is smooth at
2048² rather than blocky.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engines.preprocess import resize_square, to_tensor
from engines.runtime.base import WARM_UP_RUNS, InferenceSession


@dataclass(frozen=True)
class Segmentation:
    mask: np.ndarray            # uint8 0/255 at the tray image's size
    item_probability: np.ndarray  # float32 at the model's size, for display and checks


class ItemSegmenter:
    """Runs a segmenter model (any runtime) described by its manifest."""

    def __init__(self, session: InferenceSession) -> None:
        if session.manifest is None:
            raise ValueError(f"{session.onnx_path}: a segmenter needs its manifest")
        self.session = session
        spec = session.manifest.inputs[0]
        self.input_name = spec.name
        self.size = int(spec.size[0]) if spec.size else int(spec.shape[-1])
        self.mean = spec.mean
        self.std = spec.std
        self.output_name = session.manifest.outputs[0].name

    def logits(self, tray_images: list[np.ndarray]) -> np.ndarray:
        """Raw logits N×size×size for a batch of RGB tray images."""
        batch = np.stack([resize_square(image, self.size) for image in tray_images])
        feeds = {self.input_name: to_tensor(batch, self.mean, self.std)}
        return self.session.run(feeds)[self.output_name][:, 0]

    def warm_up(self, runs: int = WARM_UP_RUNS) -> None:
        """Run a blank image at the model's input size, so that the first items do not pay
        the runtime's first-run costs."""
        blank = np.zeros((self.size, self.size, 3), np.uint8)
        for _ in range(runs):
            self.logits([blank])

    def segment(self, tray_image: np.ndarray) -> Segmentation:
        return self.segment_batch([tray_image])[0]

    def segment_batch(self, tray_images: list[np.ndarray]) -> list[Segmentation]:
        results = []
        for image, logit in zip(tray_images, self.logits(tray_images)):
            height, width = image.shape[:2]
            upsampled = cv2.resize(logit, (width, height), interpolation=cv2.INTER_LINEAR)
            mask = cv2.compare(upsampled, 0.0, cv2.CMP_GT)  # uint8 0/255 in one pass
            probability = 1.0 / (1.0 + np.exp(-logit))
            results.append(Segmentation(mask=mask, item_probability=probability.astype(np.float32)))
        return results


def mask_iou(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Intersection over union of two masks (non-zero = item); 1.0 when both are empty."""
    predicted, truth = predicted > 0, truth > 0
    union = np.count_nonzero(predicted | truth)
    return 1.0 if union == 0 else np.count_nonzero(predicted & truth) / union
