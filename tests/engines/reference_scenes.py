"""Small synthetic tray scenes for the reference tests, plus a scorer to embed them.

An item is a rectangle of random printed artwork on a plain tray; a defect is a dark torn
hole with a pale rim. Scenes are 384² and cheap, so the tests run in seconds while still
going through the real scorer trunk (the bundled model when present, else an untrained
export: its ``features`` come from the same frozen ImageNet trunk).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

TRAY = 384
ITEM = (150, 100)   # width, height in pixels


def artwork(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    height, width = ITEM[1], ITEM[0]
    art = cv2.resize(rng.integers(40, 230, (6, 8, 3)).astype(np.uint8), (width, height),
                     interpolation=cv2.INTER_NEAREST)
    for _ in range(6):   # lines of "text"
        y = int(rng.integers(8, height - 8))
        x = int(rng.integers(5, width // 2))
        cv2.line(art, (x, y), (x + int(rng.integers(20, width // 2)), y), (20, 20, 20), 2)
    cv2.circle(art, (width // 3, height // 2), 14, (200, 30, 30), -1)
    return art


def add_defect(item: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = item.copy()
    centre = (int(ITEM[0] * 0.7), int(ITEM[1] * 0.35))
    cv2.ellipse(out, centre, (24, 16), float(rng.uniform(0, 180)), 0, 360, (235, 235, 225), -1)
    cv2.ellipse(out, centre, (18, 12), float(rng.uniform(0, 180)), 0, 360, (10, 8, 8), -1)
    return out


def scene(item: np.ndarray, angle: float, seed: int, centre: tuple[float, float] = (192, 192)
          ) -> tuple[np.ndarray, np.ndarray]:
    """(RGB tray image, item mask 0/255): the item turned by ``angle`` on a tray."""
    rng = np.random.default_rng(seed)
    tray = np.full((TRAY, TRAY, 3), (120, 125, 130), np.float32)
    tray += rng.normal(0, 3, tray.shape)
    height, width = item.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    matrix[:, 2] += np.array(centre) - np.array([width / 2, height / 2])
    warped = cv2.warpAffine(item, matrix, (TRAY, TRAY), flags=cv2.INTER_LINEAR)
    mask = cv2.warpAffine(np.full((height, width), 255, np.uint8), matrix, (TRAY, TRAY),
                          flags=cv2.INTER_NEAREST)
    tray[mask > 0] = warped[mask > 0]
    return np.clip(tray, 0, 255).astype(np.uint8), mask


@pytest.fixture(scope="session")
def trunk_scorer(tmp_path_factory):
    """(SupervisedScorer, model sha256): the bundled scorer, else an untrained export."""
    from engines.manifest import load_manifest
    from engines.runtime import load_model
    from engines.scoring import SupervisedScorer

    onnx_path = Path(__file__).resolve().parents[2] / "engines" / "models" / "scorer.onnx"
    if not onnx_path.is_file():
        torch = pytest.importorskip("torch")
        from training.efficientnet_lite import load_imagenet_lite0
        from training.scorer.export import export_scorer_onnx
        from training.scorer.model import DefectScorer
        from training.scorer.train import ScorerOptions, _write_manifest

        torch.manual_seed(0)
        onnx_path = export_scorer_onnx(DefectScorer(load_imagenet_lite0()),
                                       tmp_path_factory.mktemp("scorer") / "scorer.onnx", 128)
        _write_manifest(onnx_path, Path("synthetic"), ScorerOptions(size=128), {})
    manifest = load_manifest(onnx_path.with_suffix(".yaml"))
    session = load_model(onnx_path, manifest, runtime="onnxruntime", threads=1)
    yield SupervisedScorer(session, max_batch=16), manifest.sha256
    session.close()
