"""Image → tensor preprocessing shared by training and every runtime.

Training imports these same functions, so a model sees identical pixels on the
training machine, under ONNX Runtime and under TensorRT.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize to size×size; area interpolation when shrinking (no aliasing), linear else."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    shrinking = image.shape[0] > size
    return cv2.resize(image, (size, size),
                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def to_tensor(images: np.ndarray | Sequence[np.ndarray],
              mean: Sequence[float] = IMAGENET_MEAN,
              std: Sequence[float] = IMAGENET_STD) -> np.ndarray:
    """RGB uint8 images (H×W×3, or a batch N×H×W×3) → normalised float32 N×3×H×W."""
    batch = np.asarray(images)
    if batch.ndim == 3:
        batch = batch[None]
    scale = 1.0 / (255.0 * np.asarray(std, dtype=np.float32))
    offset = np.asarray(mean, dtype=np.float32) / np.asarray(std, dtype=np.float32)
    tensor = batch.astype(np.float32) * scale - offset
    return np.ascontiguousarray(tensor.transpose(0, 3, 1, 2))


def read_rgb(path: str, reduce: int = 1) -> np.ndarray:
    """Read an image file as RGB uint8; ``reduce`` 2, 4 or 8 decodes JPEGs at that fraction."""
    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
             8: cv2.IMREAD_REDUCED_COLOR_8}[reduce]
    image = cv2.imread(str(path), flags)
    if image is None:
        raise OSError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_mask(path: str, reduce: int = 1) -> np.ndarray:
    """Read a mask PNG as uint8 0/255."""
    flags = {1: cv2.IMREAD_GRAYSCALE, 2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
             4: cv2.IMREAD_REDUCED_GRAYSCALE_4, 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}[reduce]
    mask = cv2.imread(str(path), flags)
    if mask is None:
        raise OSError(f"cannot read mask {path}")
    return np.where(mask > 127, 255, 0).astype(np.uint8)
