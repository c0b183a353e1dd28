"""Fit the score fusion on the validation split and write ``fusion.yaml``.

Each validation query is scored by the supervised model (and the item scorer on its item
crop, when one is given) and, when its item has references, by the reference comparison. The logistic fusion (``engines.fusion``) is then
fitted by Newton's method (IRLS, plain numpy) with a small L2 penalty. Every query with
references enters twice — once with its reference score and once as if it had none — so
the no-reference branch is fitted on all queries and calibrated on its own, and a station
item without a gallery gets a calibrated score too.

    .venv/bin/python -m training.fusion_fit --data /work/data/seg300 \
        --scorer engines/models/scorer.onnx --out engines/models/fusion.yaml
"""

from __future__ import annotations

import argparse
import datetime as _dt
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from engines.dataset import read_split
from engines.fusion import FEATURE_NAMES, ITEM_FEATURES, FusionModel, ItemScore, save_fusion
from engines.inspection import CaptureInput, Inspector, ReferenceImage
from engines.manifest import load_manifest, manifest_path_for
from engines.preprocess import read_mask, read_rgb
from engines.reference import (REFERENCE_READ_REDUCTION, ComparisonSettings, PatchSettings,
                               ReferenceFeatureCache, default_reference_cache_dir)
from engines.runtime import load_model
from engines.scoring import (DEFAULT_ITEM_SECOND_SIZE, DEFAULT_ITEM_SIZE, DEFAULT_ITEM_VIEWS,
                             DEFAULT_VIEWS, VIEW_CHOICES, SupervisedScorer)

logger = logging.getLogger("training.fusion_fit")
DEFAULT_L2 = 1.0


@dataclass(frozen=True)
class ScoredQuery:
    """One query's labels and scores; ``reference_score`` None when it has no references."""

    capture_id: str
    defect: bool
    major_defect: bool
    defect_types: tuple[str, ...]
    lookalike: bool
    p_any: float
    p_major: float
    p_types: tuple[float, ...]
    reference_score: float | None
    defective_references: int = 0
    item_p_any: float | None = None      # the item scorer's, when one scored the query
    item_p_major: float | None = None

    @property
    def item(self) -> ItemScore | None:
        if self.item_p_any is None or self.item_p_major is None:
            return None
        return ItemScore(self.item_p_any, self.item_p_major)


# ---------------------------------------------------------------- fitting


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float = DEFAULT_L2,
                 iterations: int = 100, tolerance: float = 1e-9) -> tuple[float, np.ndarray]:
    """(intercept, coefficients) maximising the L2-penalised log-likelihood (intercept
    unpenalised) by Newton's method; converges in a handful of steps."""
    x = np.column_stack([np.ones(len(features)), np.asarray(features, np.float64)])
    y = np.asarray(labels, np.float64)
    if not (0 < y.sum() < len(y)):
        raise ValueError("fitting needs both defective and non-defective queries")
    penalty = np.full(x.shape[1], float(l2))
    penalty[0] = 0.0
    weights = np.zeros(x.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(x @ weights)))
        gradient = x.T @ (y - p) - penalty * weights
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty) + 1e-9 * np.eye(x.shape[1])
        step = np.linalg.solve(hessian, gradient)
        weights += step
        if np.abs(step).max() < tolerance:
            break
    return float(weights[0]), weights[1:]


def fusion_rows(queries: Sequence[ScoredQuery], model: FusionModel,
                names: Sequence[str] = FEATURE_NAMES) -> tuple[np.ndarray, np.ndarray]:
    """Feature matrix (columns ``names``) and labels: each query without references, plus
    once with them."""
    rows, labels = [], []
    for query in queries:
        variants = [None] + ([query.reference_score] if query.reference_score is not None else [])
        for reference_score in variants:
            values = model.features(query.p_any, query.p_major, reference_score, query.item)
            rows.append([values[name] for name in names])
            labels.append(query.defect)
    return np.asarray(rows, np.float64), np.asarray(labels, bool)


def fit_fusion(queries: Sequence[ScoredQuery], provenance: dict, l2: float = DEFAULT_L2
               ) -> FusionModel:
    """The fusion model fitted on scored validation queries. The item features are fitted
    only when every query has an item score (else they would copy the tray's logits)."""
    reference_scores = np.array([q.reference_score for q in queries if q.reference_score is not None])
    centre = float(np.median(reference_scores)) if len(reference_scores) else 0.0
    scale = float(np.std(reference_scores)) if len(reference_scores) > 1 else 1.0
    scaffold = FusionModel(0.0, {}, centre, scale if scale > 1e-6 else 1.0)
    with_items = bool(queries) and all(q.item is not None for q in queries)
    names = [n for n in FEATURE_NAMES if with_items or n not in ITEM_FEATURES]
    features, labels = fusion_rows(queries, scaffold, names)
    intercept, coefficients = fit_logistic(features, labels, l2)
    return FusionModel(intercept, dict(zip(names, map(float, coefficients))),
                       scaffold.reference_centre, scaffold.reference_scale,
                       provenance={**provenance, "fitted_rows": int(len(labels)),
                                   "fitted_defective_rows": int(labels.sum()), "l2": l2})


# ---------------------------------------------------------------- scoring a data set


def score_split(data: Path, split: str, scorer: SupervisedScorer, cache: ReferenceFeatureCache,
                comparison: ComparisonSettings = ComparisonSettings(), supervised: bool = True,
                progress: Callable[[int, int], None] | None = None,
                item_scorer: SupervisedScorer | None = None) -> list[ScoredQuery]:
    """Supervised (tray, and item crop with ``item_scorer``) and reference scores of every
    query of a split (reference banks cached)."""
    dataset = read_split(data, split, check_files=False)

    # Queries at full size when an item scorer looks at their item crop, as the station's
    # 2048² tray; references at REFERENCE_READ_REDUCTION.
    query_reduction = 1 if item_scorer is not None else REFERENCE_READ_REDUCTION

    inspector = Inspector(scorer, cache, comparison=comparison, supervised=supervised,
                          item_scorer=item_scorer)
    scored: list[ScoredQuery] = []
    if progress and dataset.queries:
        progress(0, len(dataset.queries))
    for index, query in enumerate(dataset.queries):
        image = read_rgb(str(dataset.path(query.query_image)), query_reduction)
        mask = read_mask(str(dataset.path(query.query_mask)), query_reduction)
        references = dataset.references_for(query.item_identifier)
        result = inspector.inspect(CaptureInput(image, mask, [
            ReferenceImage.from_files(dataset.path(r.reference_image),
                                      dataset.path(r.reference_mask), REFERENCE_READ_REDUCTION)
            for r in references]))
        p_any, p_major, p_types = result.p_any, result.p_major, tuple(result.p_types.values())
        reference_score = result.reference_score
        scored.append(ScoredQuery(
            capture_id=query.capture_id, defect=query.defect, major_defect=query.major_defect,
            defect_types=query.defect_types, lookalike=bool(query.extra.get("lookalike", False)),
            p_any=p_any, p_major=p_major, p_types=p_types, reference_score=reference_score,
            defective_references=sum(bool(r.extra.get("defect", False)) for r in references),
            item_p_any=result.item.p_any if result.item else None,
            item_p_major=result.item.p_major if result.item else None))
        if progress:
            progress(index + 1, len(dataset.queries))
    return scored


def open_scorer(onnx_path: Path, threads: int = 2, views: int = DEFAULT_VIEWS,
                size: int | None = None, second_size: int = 0) -> tuple[SupervisedScorer, str]:
    """A CPU scorer session and the model's sha256 (part of the reference cache key);
    ``views``, ``size`` and ``second_size`` as the station scores (``models.score_views``,
    ``score_resolution``; the item scorer's ``item_score_*`` settings)."""
    manifest = load_manifest(manifest_path_for(onnx_path))
    session = load_model(onnx_path, manifest, runtime="onnxruntime", threads=threads)
    return (SupervisedScorer(session, size=size, views=views, second_size=second_size),
            manifest.sha256)


ITEM_SCORER_FILE = "item_scorer.onnx"


def add_item_scorer_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--item-scorer", default=None,
                        help=f"item-crop scorer ONNX (default: {ITEM_SCORER_FILE} beside "
                             "--scorer when there is one; 'none' = tray scorer only)")
    parser.add_argument("--item-views", type=int, choices=VIEW_CHOICES, default=DEFAULT_ITEM_VIEWS,
                        help="test-time views of the item crop, as models.item_score_views")
    parser.add_argument("--item-size", type=int, default=DEFAULT_ITEM_SIZE,
                        help="side the item crop is resized to, as models.item_score_resolution")
    parser.add_argument("--item-second-size", type=int, default=DEFAULT_ITEM_SECOND_SIZE,
                        help="one more look at the item crop at this size (0 = none), as "
                             "models.item_score_second_resolution")


def open_item_scorer(args: argparse.Namespace) -> tuple[SupervisedScorer | None, str | None]:
    """The item scorer the arguments name (None, None without one)."""
    if args.item_scorer == "none":
        return None, None
    if args.item_scorer is None:
        path = Path(args.scorer).with_name(ITEM_SCORER_FILE)
        if not path.is_file():
            return None, None
    else:
        path = Path(args.item_scorer)
    return open_scorer(path, views=args.item_views, size=args.item_size,
                       second_size=args.item_second_size)


def item_scoring_provenance(item_scorer: SupervisedScorer | None,
                            item_sha: str | None) -> dict[str, Any]:
    """How the item crop was scored for the fit, as the fusion's provenance records it; the
    station compares it with its own settings (``station_app.replay.setup``)."""
    if item_scorer is None:
        return {}
    return {"item_scorer_sha256": item_sha, "item_views": item_scorer.views,
            "item_resolution": item_scorer.size,
            "item_second_resolution": item_scorer.second_size}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--scorer", type=Path, default=Path("engines/models/scorer.onnx"))
    parser.add_argument("--out", type=Path, default=Path("engines/models/fusion.yaml"))
    parser.add_argument("--cache", type=Path, default=default_reference_cache_dir())
    parser.add_argument("--split", default="validation")
    parser.add_argument("--l2", type=float, default=DEFAULT_L2)
    parser.add_argument("--views", type=int, choices=VIEW_CHOICES, default=DEFAULT_VIEWS,
                        help="test-time views, as the station's models.score_views")
    add_item_scorer_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    scorer, model_sha = open_scorer(args.scorer, views=args.views)
    item_scorer, item_sha = open_item_scorer(args)
    cache = ReferenceFeatureCache(args.cache, model_sha, PatchSettings())
    queries = score_split(args.data, args.split, scorer, cache, item_scorer=item_scorer)
    model = fit_fusion(queries, {
        "data_set": str(args.data), "split": args.split, "scorer_sha256": model_sha,
        **item_scoring_provenance(item_scorer, item_sha),
        "patch_settings": cache.settings.key_text(), "comparison": repr(ComparisonSettings()),
        "views": args.views, "resolution": scorer.size,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}, args.l2)
    save_fusion(model, args.out)
    logger.info("fusion written to %s: %s", args.out, model.to_dict()["coefficients"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
