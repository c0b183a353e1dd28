"""Scores of one split by every scorer — reference alone, supervised alone (tray, item crop),
both supervised without references, fused — per query.

    .venv/bin/python -m training.evaluate_scorers --data /work/data/seg300 --split test \
        --scorer engines/models/scorer.onnx --fusion engines/models/fusion.yaml --out RUN

Writes ``RUN/scores.csv``: labels (defect, major, types, look-alike, number of defective
references) and the scores, so the paper's Table 2 can be computed per scorer, per
defect type and for look-alikes. The metrics live in ``calibration`` which ``training``
may not import (tests/test_import_rules.py); the table belongs in ``station_app``.
``--reference-only`` skips the supervised heads (for a model file that is not trained:
its ``features`` come from the frozen trunk and are final).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path
from typing import Callable, Sequence

from engines.fusion import FusionModel, load_fusion
from engines.scoring import DEFAULT_VIEWS, VIEW_CHOICES
from engines.reference import (ComparisonSettings, PatchSettings, ReferenceFeatureCache,
                               default_reference_cache_dir)
from training.fusion_fit import (ScoredQuery, add_item_scorer_arguments, open_item_scorer,
                                 open_scorer, score_split)

SCORE_COLUMNS = ("capture_id", "defect", "major_defect", "defect_types", "lookalike",
                 "defective_references", "p_any", "p_major", "item_p_any", "item_p_major",
                 "reference_score", "fused", "fused_without_references")


def write_scores(path: Path, queries: Sequence[ScoredQuery], fusion: FusionModel | None) -> Path:
    """One row per query with its labels and every scorer's score (empty when absent)."""
    def number(value: float | None) -> str:
        return "" if value is None or not math.isfinite(value) else f"{value:.6f}"
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SCORE_COLUMNS)
        for q in queries:
            supervised = math.isfinite(q.p_any)
            fused = (fusion.probability(q.p_any, q.p_major, q.reference_score, q.item)
                     if fusion and supervised else None)
            alone = (fusion.probability(q.p_any, q.p_major, None, q.item)
                     if fusion and supervised else None)
            writer.writerow([q.capture_id, int(q.defect), int(q.major_defect),
                             ",".join(q.defect_types), int(q.lookalike), q.defective_references,
                             number(q.p_any), number(q.p_major), number(q.item_p_any),
                             number(q.item_p_major), number(q.reference_score),
                             number(fused), number(alone)])
    return path


def main(argv: Sequence[str] | None = None,
         progress: Callable[[int, int], None] | None = None) -> int:
    """Command line; ``progress(done, total)`` replaces the plain counter on stderr."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--scorer", type=Path, default=Path("engines/models/scorer.onnx"))
    parser.add_argument("--fusion", type=Path, default=Path("engines/models/fusion.yaml"))
    parser.add_argument("--reference-only", action="store_true",
                        help="skip the supervised scores (e.g. with an untrained model file)")
    parser.add_argument("--cache", type=Path, default=default_reference_cache_dir())
    parser.add_argument("--out", type=Path, default=Path("runs/evaluate-scorers"))
    parser.add_argument("--views", type=int, choices=VIEW_CHOICES, default=DEFAULT_VIEWS)
    parser.add_argument("--size", type=int, default=None, help="scoring size (default: trained)")
    add_item_scorer_arguments(parser)
    args = parser.parse_args(argv)
    scorer, model_sha = open_scorer(args.scorer, views=args.views, size=args.size)
    item_scorer = None if args.reference_only else open_item_scorer(args)[0]
    cache = ReferenceFeatureCache(args.cache, model_sha, PatchSettings())
    def counter(done: int, total: int) -> None:
        if done == total or done % 25 == 0:
            print(f"scoring {args.split}: {done}/{total}", file=sys.stderr, flush=True)
    queries = score_split(args.data, args.split, scorer, cache, ComparisonSettings(),
                          supervised=not args.reference_only, progress=progress or counter,
                          item_scorer=item_scorer)
    fusion = None
    if not args.reference_only:
        fusion = load_fusion(args.fusion) if args.fusion.is_file() else FusionModel.supervised_only()
    args.out.mkdir(parents=True, exist_ok=True)
    path = write_scores(args.out / "scores.csv", queries, fusion)
    print(f"{len(queries)} queries scored (scorer sha256 {model_sha[:12]}): {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
