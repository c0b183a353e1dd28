"""``station-app evaluate segmenter``: mask IoU of the segmenter on a data-set split."""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import numpy as np

from station_app.commands import add_common_options
from station_app.progress import ProgressBar


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="measure a model on a data-set split",
        description="Measure models on a split of a Kaputt-layout data set. 'segmenter' "
                    "prints the mean item-mask IoU at tray-image resolution, per material. "
                    "'scorers' scores every query with the reference comparison, the "
                    "supervised scorer and their fusion, and prints the paper's Table 2 "
                    "metrics for each, with AP_any per defect type and for look-alikes.")
    parser.add_argument("model", choices=("segmenter", "scorers"))
    parser.add_argument("--data", type=Path, required=True, help="data-set root")
    parser.add_argument("--split", default="test", choices=("train", "validation", "test"))
    parser.add_argument("--onnx", type=Path, help="model file (default: the configured one)")
    parser.add_argument("--limit", type=int, help="only the first N queries (segmenter)")
    parser.add_argument("--out", type=Path, default=Path("runs/evaluate-scorers"),
                        help="where 'scorers' writes scores.csv and table.md")
    add_common_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    return run_scorers(args) if args.model == "scorers" else run_segmenter(args)


def run_scorers(args: argparse.Namespace) -> int:
    from engines.files import write_atomic
    from station_app.config import load_config
    from station_app.errors import StationError
    from station_app.models import model_path
    from station_app.scorer_table import markdown_table, read_scores
    from training import evaluate_scorers  # engines only underneath; no torch

    if not (args.data / f"query-{args.split}.parquet").is_file():
        raise StationError(f"{args.data} has no query-{args.split}.parquet")
    config = load_config(args.config)
    scorer = args.onnx or model_path(config.models, config.models.scorer)
    item_scorer = "none"
    if config.models.item_scorer:
        item_path = model_path(config.models, config.models.item_scorer)
        if not item_path.is_file():
            raise StationError(f"item scorer {item_path} not found; set models.item_scorer: "
                               '"" to evaluate the tray scorer alone')
        item_scorer = str(item_path)
    code = evaluate_scorers.main(["--data", str(args.data), "--split", args.split,
                                  "--scorer", str(scorer),
                                  "--fusion", str(scorer.with_name("fusion.yaml")),
                                  "--views", str(config.models.score_views),
                                  "--size", str(config.models.score_resolution),
                                  "--item-scorer", item_scorer,
                                  "--item-views", str(config.models.item_score_views),
                                  "--item-size", str(config.models.item_score_resolution),
                                  "--item-second-size",
                                  str(config.models.item_score_second_resolution),
                                  "--out", str(args.out)],
                                 progress=ProgressBar(f"score {args.split} split"))
    if code:
        return code
    table = markdown_table(read_scores(args.out / "scores.csv"))
    write_atomic(args.out / "table.md", table + "\n")
    print(table)
    return 0


def run_segmenter(args: argparse.Namespace) -> int:
    from engines.dataset import DatasetError, read_split
    from engines.preprocess import read_mask, read_rgb
    from engines.segmentation import ItemSegmenter, mask_iou
    from station_app.config import load_config
    from station_app.errors import StationError
    from station_app.models import open_model

    config = load_config(args.config)
    try:
        split = read_split(args.data, args.split, check_files=False)
    except (DatasetError, OSError) as error:
        raise StationError(str(error)) from error
    queries = split.queries[:args.limit] if args.limit else split.queries
    if not queries:
        raise StationError(f"the {args.split} split of {args.data} has no queries")
    session = open_model(config.models, config.models.segmenter, args.onnx)
    segmenter = ItemSegmenter(session)
    ious, by_material = [], defaultdict(list)
    bar = ProgressBar(f"evaluate segmenter ({args.split})")
    bar(0, len(queries))
    for index, query in enumerate(queries):
        image = read_rgb(str(split.path(query.query_image)))
        truth = read_mask(str(split.path(query.query_mask)))
        iou = mask_iou(segmenter.segment(image).mask, truth)
        ious.append(iou)
        by_material[query.item_material].append(iou)
        bar(index + 1, len(queries))
    values = np.array(ious)
    print(f"segmenter {session.manifest.name} v{session.manifest.version} on {session.name}, "
          f"{args.split} split of {args.data}: {len(values)} tray images")
    print(f"mean mask IoU {values.mean():.4f}  median {np.median(values):.4f}  "
          f"min {values.min():.4f}  below 0.90: {int(np.sum(values < 0.9))}")
    for material in sorted(by_material):
        material_values = np.array(by_material[material])
        print(f"  {material:<24} {material_values.mean():.4f}  (n={len(material_values)})")
    return 0
