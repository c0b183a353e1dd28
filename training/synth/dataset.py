"""Writes a synthetic data set in the Kaputt layout: split by item, render, save, index.

Items are split train/validation/test (~70/15/15) before anything is drawn, so an item
identifier never appears in two splits; each item is rendered by one worker from its
own seed, which makes the output identical for any worker count.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from engines.dataset import QueryRecord, ReferenceRecord
from engines.taxonomy import SPLITS, format_defect_types
from engines.item_crop import square_item_crop
from training.synth.camera import capture_frame, tray_crop_from_frame
from training.synth.items import ItemIdentity
from training.synth.plan import CaptureSpec, capture_rng, plan_item
from training.synth.scene import render_scene

MARKER_FILE = "synth.json"
SUBDIRS = ("images", "crops", "masks", "defect_masks", "frames")
JPEG_QUALITY = 90


@dataclass
class CaptureImages:
    """Everything one capture produces, in memory (RGB uint8, masks 0/255)."""
    frame: np.ndarray
    corners: np.ndarray
    tray: np.ndarray
    item_mask: np.ndarray
    defect_mask: np.ndarray
    crop: np.ndarray


@dataclass
class SynthSummary:
    root: Path
    queries: dict[str, int] = field(default_factory=dict)
    defective_queries: dict[str, int] = field(default_factory=dict)
    references: dict[str, int] = field(default_factory=dict)
    defective_references: dict[str, int] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)
    files_written: int = 0
    seconds: float = 0.0


def assign_splits(items: int, seed: int) -> list[str]:
    """Split name per item index: ~70/15/15, at least one item per split."""
    if items < len(SPLITS):
        raise ValueError(f"need at least {len(SPLITS)} items, one per split; got {items}")
    validation = max(1, round(items * 0.15))
    test = max(1, round(items * 0.15))
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1 << 30,))).permutation(items)
    split_of = ["train"] * items
    for rank, index in enumerate(order):
        if rank < validation:
            split_of[index] = "validation"
        elif rank < validation + test:
            split_of[index] = "test"
    return split_of


def render_capture(identity: ItemIdentity, spec: CaptureSpec,
                   tray_corners: np.ndarray | None = None) -> CaptureImages:
    """Render one capture the way the station would see and preprocess it; ``tray_corners``
    places the tray at a fixed pose in the frame (a calibrated station), else at random."""
    rng = capture_rng(spec)
    scene = render_scene(identity, spec, rng)
    frame, corners = capture_frame(scene.tray, rng, tray_corners)
    tray = tray_crop_from_frame(frame, corners)
    return CaptureImages(frame=frame, corners=corners, tray=tray, item_mask=scene.item_mask,
                         defect_mask=scene.defect_mask,
                         crop=square_item_crop(tray, scene.item_mask)[0])


def _write_jpeg(path: Path, rgb: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                       [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise OSError(f"could not write {path}")


def _write_png(path: Path, mask: np.ndarray) -> None:
    if not cv2.imwrite(str(path), mask, [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise OSError(f"could not write {path}")


@dataclass
class _ItemResult:
    index: int
    queries: list[QueryRecord]
    references: list[ReferenceRecord]
    files_written: int


def _render_item(job: tuple[str, int, int, bool]) -> _ItemResult:
    root_text, seed, index, write_frames = job
    root = Path(root_text)
    plan = plan_item(seed, index)
    identity = plan.identity
    queries: list[QueryRecord] = []
    references: list[ReferenceRecord] = []
    files = 0
    for spec in plan.captures:
        images = render_capture(identity, spec)
        cid = spec.capture_id
        paths = {"image": f"images/{cid}.jpg", "crop": f"crops/{cid}.jpg",
                 "mask": f"masks/{cid}.png",
                 "defect_mask": f"defect_masks/{cid}.png" if spec.defective else "",
                 "frame": f"frames/{cid}.jpg" if write_frames else ""}
        _write_jpeg(root / paths["image"], images.tray)
        _write_jpeg(root / paths["crop"], images.crop)
        _write_png(root / paths["mask"], images.item_mask)
        files += 3
        if paths["defect_mask"]:
            _write_png(root / paths["defect_mask"], images.defect_mask)
            files += 1
        if paths["frame"]:
            _write_jpeg(root / paths["frame"], images.frame)
            files += 1
        extra = {"defect_mask": paths["defect_mask"], "frame": paths["frame"],
                 "frame_corners": [float(v) for v in images.corners.reshape(-1)],
                 "severity": spec.severity, "lookalike": bool(spec.lookalikes),
                 "lookalike_types": ",".join(spec.lookalikes)}
        types = format_defect_types(spec.defect_types)
        if spec.kind == "query":
            queries.append(QueryRecord(
                capture_id=cid, item_identifier=identity.identifier,
                item_material=identity.material, defect=spec.defective,
                major_defect=spec.severity == "major", defect_types=spec.defect_types,
                query_image=paths["image"], query_crop=paths["crop"], query_mask=paths["mask"],
                extra=extra))
        else:
            references.append(ReferenceRecord(
                item_identifier=identity.identifier, reference_image=paths["image"],
                reference_crop=paths["crop"], reference_mask=paths["mask"],
                extra={"capture_id": cid, "item_material": identity.material,
                       "defect": spec.defective, "defect_types": types, **extra}))
    return _ItemResult(index, queries, references, files)


def _init_worker() -> None:
    cv2.setNumThreads(1)


def generate_dataset(out_dir: Path | str, items: int, seed: int,
                     progress: Callable[[int, int], None] | None = None,
                     workers: int | None = None, write_frames: bool = True) -> SynthSummary:
    """Render ``items`` items into ``out_dir`` in the Kaputt layout; same seed, same bytes."""
    from engines import dataset as kaputt   # write_split is looked up at call time

    started = time.monotonic()
    root = Path(out_dir)
    split_of = assign_splits(items, seed)
    for sub in SUBDIRS:
        (root / sub).mkdir(parents=True, exist_ok=True)
    workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
    jobs = [(str(root), seed, index, write_frames) for index in range(items)]
    results: list[_ItemResult] = []
    if progress:
        progress(0, items)
    if workers == 1 or items == 1:
        _init_worker()
        for job in jobs:
            results.append(_render_item(job))
            if progress:
                progress(len(results), items)
    else:
        context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        with context.Pool(min(workers, items), initializer=_init_worker) as pool:
            for result in pool.imap(_render_item, jobs):
                results.append(result)
                if progress:
                    progress(len(results), items)

    summary = SynthSummary(root=root)
    for split in SPLITS:
        chosen = [r for r in results if split_of[r.index] == split]
        queries = [q for r in chosen for q in r.queries]
        references = [ref for r in chosen for ref in r.references]
        kaputt.write_split(root, split, queries, references)
        summary.items[split] = len(chosen)
        summary.queries[split] = len(queries)
        summary.defective_queries[split] = sum(q.defect for q in queries)
        summary.references[split] = len(references)
        summary.defective_references[split] = sum(bool(r.extra["defect"]) for r in references)
    summary.files_written = sum(r.files_written for r in results) + 2 * len(SPLITS) + 1
    summary.seconds = time.monotonic() - started
    (root / MARKER_FILE).write_text(json.dumps(
        {"generator": "training.synth", "items": items, "seed": seed,
         "write_frames": write_frames}, indent=2) + "\n")
    return summary
