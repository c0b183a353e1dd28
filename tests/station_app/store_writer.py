"""Capture-store test helper: deterministic records and images, and a writer process.

``python -m tests.station_app.store_writer ROOT RUN COUNT`` adds COUNT captures to the
store at ROOT, confirming every other one, and prints "stored ID" / "confirmed ID" after
each call returns, so a parent that kills it knows what must have survived.
"""

from __future__ import annotations

import hashlib
import sys
from datetime import datetime, timedelta, timezone

import numpy as np

from engines.taxonomy import DEFECT_TYPES
from station_app.store import CaptureRecord, CaptureStore, Confirmation, ModelOutputs

BASE_TIME = datetime(2025, 3, 1, 8, 0, tzinfo=timezone.utc)


def _seed(capture_id: str) -> int:
    return int.from_bytes(hashlib.sha256(capture_id.encode()).digest()[:4], "big")


def make_record(capture_id: str, item: str = "item-A", minutes: float = 0.0,
                material: str = "cardboard") -> CaptureRecord:
    """A full record whose every value follows from its id, so a reader can check it."""
    rng = np.random.default_rng(_seed(capture_id))
    p_types = {name: round(float(p), 6) for name, p in zip(DEFECT_TYPES, rng.random(len(DEFECT_TYPES)))}
    fused = round(float(rng.random()), 6)
    return CaptureRecord(
        capture_id=capture_id,
        captured_at=(BASE_TIME + timedelta(minutes=minutes)).isoformat(),
        station_id="st-01", operator="badge-42", item_identifier=item, item_material=material,
        camera_settings={"exposure_us": 8000.0, "gain_db": 1.5, "white_balance": [1.9, 1.0, 1.6]},
        lighting_level=round(float(rng.uniform(20, 90)), 3),
        calibration_profile_version="profile-7",
        outputs=ModelOutputs(p_any=round(float(rng.random()), 6), p_major=round(float(rng.random()), 6),
                             p_types=p_types, reference_score=round(float(rng.random()), 6),
                             fused=fused, verdict="REVIEW", likely_types=("deformation",),
                             verdict_reason="fused score between thresholds",
                             item_p_any=round(float(rng.random()), 6),
                             item_p_major=round(float(rng.random()), 6)),
        model_versions={"segmenter": "seg-1.2.0", "scorer": "scorer-3.0.1"},
        latencies_ms={"grab": 41.5, "preprocess": 12.25, "supervised": 30.0, "reference": 8.5},
    )


def make_images(capture_id: str, size: int = 96) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(_seed(capture_id))
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 255
    return {
        "frame": rng.integers(0, 256, (size + 24, size + 48, 3), dtype=np.uint8),
        "tray": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
        "mask": mask,
        "item_crop": rng.integers(0, 256, (size // 2, size // 2, 3), dtype=np.uint8),
        "heatmap": rng.random((size // 8, size // 8)).astype(np.float32),
    }


def make_confirmation(capture_id: str) -> Confirmation:
    defective = _seed(capture_id) % 3 == 0
    return Confirmation("badge-42", "major" if defective else "none", agrees=not defective,
                        defect_types=("penetration",) if defective else (),
                        confirmed_at=(BASE_TIME + timedelta(hours=1)).isoformat())


def main(root: str, run: str, count: int) -> None:
    with CaptureStore(root, min_free_gb=0.1, gallery_size=3) as store:
        print("ready", flush=True)
        for index in range(count):
            capture_id = f"{run}-{index:04d}"
            store.add_capture(make_record(capture_id, item=f"item-{index % 4}", minutes=index),
                              make_images(capture_id))
            print("stored", capture_id, flush=True)
            if index % 2 == 0:
                store.confirm(capture_id, make_confirmation(capture_id))
                print("confirmed", capture_id, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
