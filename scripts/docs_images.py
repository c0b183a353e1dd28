"""Write the README's sample images from a synthetic data set.

    .venv/bin/python scripts/docs_images.py DATASET_ROOT docs/

Three small JPEGs: a camera frame, a tray crop with a defect (defect outlined), and an
item crop beside one of its references.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from engines.dataset import read_split


def fit(image: np.ndarray, width: int) -> np.ndarray:
    scale = width / image.shape[1]
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def colour_distance(path_a: Path, path_b: Path) -> float:
    histograms = []
    for path in (path_a, path_b):
        image = cv2.imread(str(path), cv2.IMREAD_REDUCED_COLOR_4)
        histogram = cv2.calcHist([image], [0, 1, 2], None, [8, 8, 8], [0, 256] * 3)
        histograms.append(cv2.normalize(histogram, None).flatten())
    return float(cv2.compareHist(histograms[0], histograms[1], cv2.HISTCMP_BHATTACHARYYA))


def main(root: Path, out: Path) -> None:
    split = read_split(root, "train")
    defective = [q for q in split.queries if q.defect and q.extra.get("defect_mask")
                 and q.extra.get("frame")]
    query = max(defective, key=lambda q: (q.major_defect, len(q.defect_types)))
    out.mkdir(parents=True, exist_ok=True)
    frame = cv2.imread(str(root / query.extra["frame"]))
    cv2.imwrite(str(out / "sample-frame.jpg"), fit(frame, 800), [cv2.IMWRITE_JPEG_QUALITY, 85])

    tray = cv2.imread(str(root / query.query_image))
    defect_mask = cv2.imread(str(root / query.extra["defect_mask"]), cv2.IMREAD_GRAYSCALE)
    contours, _ = cv2.findContours(defect_mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(tray, contours, -1, (0, 0, 255), 8)
    cv2.imwrite(str(out / "sample-tray-defect.jpg"), fit(tray, 600),
                [cv2.IMWRITE_JPEG_QUALITY, 85])

    # The good query and reference that look most alike (same side up, most likely).
    pairs = [(q, r) for q in split.queries if not q.defect
             for r in split.references_for(q.item_identifier)]
    pick, reference = min(pairs, key=lambda pair: colour_distance(
        root / pair[0].query_crop, root / pair[1].reference_crop))
    crops = [cv2.resize(cv2.imread(str(root / path)), (400, 400), interpolation=cv2.INTER_AREA)
             for path in (pick.query_crop, reference.reference_crop)]
    gap = np.full((400, 12, 3), 255, np.uint8)
    cv2.imwrite(str(out / "sample-item-and-reference.jpg"), np.hstack([crops[0], gap, crops[1]]),
                [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote samples of {query.capture_id} ({','.join(query.defect_types)}) and "
          f"{pick.capture_id} with {reference.extra.get('capture_id', 'its reference')} to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
