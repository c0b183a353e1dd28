"""``station-app train segmenter|scorer``: train on a Kaputt-layout data set, export ONNX."""

from __future__ import annotations

import argparse
from pathlib import Path

from station_app.commands import add_common_options
from station_app.errors import StationError
from station_app.progress import ProgressBar


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a model on a data set and export ONNX with its manifest",
        description="Train a model on a data set in the Kaputt layout; checkpoints every "
                    "epoch and resumes from the checkpoint in --out after an interruption. "
                    "Needs the 'train' extra (torch).")
    parser.add_argument("model", choices=("segmenter", "scorer"), help="which model to train")
    parser.add_argument("--data", type=Path, required=True, help="data-set root")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder: ONNX, manifest, checkpoint")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default: segmenter 30, scorer 14)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--size", type=int, default=None,
                        help="model input size in pixels (default: segmenter 256, scorer 512)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--extra-train", type=Path, action="append", default=[], metavar="DIR",
                        help="scorer: another data set whose train split is added to --data's "
                             "(repeatable); validation and test stay --data's")
    parser.add_argument("--region", choices=("tray", "item"), default="tray",
                        help="scorer: learn from the whole tray (the station's scorer) or the "
                             "item crop (its item scorer, named item_scorer unless --name)")
    parser.add_argument("--name", default=None,
                        help="scorer: model name for the ONNX file and manifest (default: "
                             "scorer, or item_scorer with --region item)")
    parser.add_argument("--cache", type=Path, default=None, metavar="DIR",
                        help="scorer: folder for the prepared images and trunk features "
                             "(default OUT/cache); give the seeds of one ensemble the same "
                             "folder and the trunk pass runs once")
    add_common_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not (args.data / "query-train.parquet").is_file():
        raise StationError(f"{args.data} has no query-train.parquet; write a data set with "
                           "'station-app synth' or point --data at a Kaputt-layout root")
    if args.model == "scorer":
        return run_scorer(args)
    if args.extra_train:
        raise StationError("--extra-train is for the scorer; the segmenter trains on --data")
    if args.region != "tray" or args.name or args.cache:
        raise StationError("--region, --name and --cache are for the scorer; the segmenter has "
                           "one input and no cache")
    try:
        from training.segmenter.train import SegmenterOptions, train_segmenter
    except ImportError as error:
        raise StationError(f"training needs the 'train' extra ({error}); run "
                           "'.venv/bin/pip install -e .[train]'") from error
    options = SegmenterOptions(size=args.size or 256, epochs=args.epochs or 30,
                               batch_size=args.batch_size, seed=args.seed, device=args.device)
    bar = ProgressBar("train segmenter")
    result = train_segmenter(args.data, args.out, options,
                             progress=lambda done, total, note: bar(done, total, note),
                             load_progress=ProgressBar("load images"))
    last = result["history"][-1] if result["history"] else {}
    print(f"wrote {result['onnx']} (validation IoU at input size "
          f"{last.get('val_iou', float('nan')):.4f})")
    return 0


def run_scorer(args: argparse.Namespace) -> int:
    try:
        from training.scorer.train import ScorerOptions, train_scorer
    except ImportError as error:
        raise StationError(f"training needs the 'train' extra ({error}); run "
                           "'.venv/bin/pip install -e .[train]'") from error
    defaults = ScorerOptions()
    size = args.size or defaults.size
    if size % 32:
        raise StationError(f"--size {size}: the scorer needs a multiple of 32")
    name = args.name or ("item_scorer" if args.region == "item" else "scorer")
    options = ScorerOptions(size=size, epochs=args.epochs or defaults.epochs,
                            batch_size=args.batch_size, seed=args.seed, device=args.device,
                            region=args.region, name=name)
    bar = ProgressBar("train scorer")
    for extra in args.extra_train:
        if not (extra / "query-train.parquet").is_file():
            raise StationError(f"--extra-train {extra} has no query-train.parquet")
    result = train_scorer(args.data, args.out, options,
                          progress=lambda done, total, note: bar(done, total, note),
                          load_progress=ProgressBar("prepare images"),
                          trunk_progress=ProgressBar("trunk features"),
                          extra_train=args.extra_train, cache_dir=args.cache)
    metrics = result["metrics"]
    print(f"wrote {result['onnx']} ({result['training_samples']} training images, best epoch {metrics['best_epoch']:.0f}, validation AP_any "
          f"{metrics.get('validation_ap_any', float('nan')):.4f}, test AP_any "
          f"{metrics.get('test_ap_any', float('nan')):.4f})")
    return 0
