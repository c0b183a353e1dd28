"""Training the item segmenter: checkpoints every epoch, resumes, exports ONNX + manifest."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from engines.manifest import InputSpec, OutputSpec
from engines.preprocess import IMAGENET_MEAN, IMAGENET_STD, to_tensor
from training.checkpoint import load_checkpoint, save_checkpoint
from training.device import pick_device
from training.onnx_export import export_onnx, write_model_manifest
from training.segmenter.data import load_split_arrays
from training.unet import UNet

log = logging.getLogger("training.segmenter")
Progress = Callable[[int, int, str], None]

INPUT_NAME = "image"
OUTPUT_NAME = "item_logits"


@dataclass(frozen=True)
class SegmenterOptions:
    size: int = 256
    base: int = 16
    depth: int = 4
    epochs: int = 30
    batch_size: int = 8
    learning_rate: float = 2e-3
    seed: int = 0
    device: str = "auto"
    name: str = "segmenter"
    version: str = "1"



def augment(images: torch.Tensor, masks: torch.Tensor,
            generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Flips, quarter turns, and colour/brightness changes the enclosure can produce."""
    if torch.rand(1, generator=generator) < 0.5:
        images, masks = images.flip(3), masks.flip(3)
    if torch.rand(1, generator=generator) < 0.5:
        images, masks = images.flip(2), masks.flip(2)
    turns = int(torch.randint(0, 4, (1,), generator=generator))
    images, masks = images.rot90(turns, (2, 3)), masks.rot90(turns, (2, 3))
    count = images.shape[0]
    gain = 1.0 + 0.25 * (torch.rand(count, 1, 1, 1, generator=generator) - 0.5)
    tint = 1.0 + 0.10 * (torch.rand(count, 3, 1, 1, generator=generator) - 0.5)
    shift = 0.3 * (torch.rand(count, 1, 1, 1, generator=generator) - 0.5)
    noise = 0.05 * torch.randn(images.shape, generator=generator)
    return images * gain * tint + shift + noise, masks


def dice_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    probability = torch.sigmoid(logits)
    intersection = (probability * target).sum(dim=(1, 2, 3))
    total = probability.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3))
    return (1.0 - (2.0 * intersection + 1.0) / (total + 1.0)).mean()


def batch_iou(logits: torch.Tensor, target: torch.Tensor) -> np.ndarray:
    predicted = logits > 0
    truth = target > 0.5
    intersection = (predicted & truth).sum(dim=(1, 2, 3)).float()
    union = (predicted | truth).sum(dim=(1, 2, 3)).float().clamp(min=1)
    return (intersection / union).cpu().numpy()


def evaluate(model: UNet, images: np.ndarray, masks: np.ndarray, device: torch.device,
             batch_size: int = 16) -> float:
    model.eval()
    ious = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            x = torch.from_numpy(to_tensor(images[start:start + batch_size])).to(device)
            y = torch.from_numpy(masks[start:start + batch_size, None] / 255.0).float().to(device)
            ious.append(batch_iou(model(x), y))
    model.train()
    return float(np.concatenate(ious).mean()) if ious else float("nan")


def train_segmenter(data: Path, out: Path, options: SegmenterOptions = SegmenterOptions(),
                    progress: Progress | None = None,
                    load_progress: Callable[[int, int], None] | None = None) -> dict:
    """Train (resuming from ``out/segmenter.ckpt`` when present) and export the model."""
    out.mkdir(parents=True, exist_ok=True)
    device = pick_device(options.device)
    torch.manual_seed(options.seed)
    cache_dir = out / "cache"
    train_images, train_masks = load_split_arrays(data, "train", options.size, cache_dir,
                                                  progress=load_progress)
    val_images, val_masks = load_split_arrays(data, "validation", options.size, cache_dir,
                                              include_references=False, progress=load_progress)
    if len(train_images) == 0:
        raise ValueError(f"no training images in {data}")
    log.info("segmenter: %d training images, %d validation images, %s, device %s",
             len(train_images), len(val_images), options.size, device)

    model = UNet(base=options.base, depth=options.depth).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.learning_rate, weight_decay=1e-4)
    steps_per_epoch = max(1, len(train_images) // options.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=options.learning_rate, total_steps=options.epochs * steps_per_epoch)
    checkpoint_path = out / f"{options.name}.ckpt"
    start_epoch, history = 0, []
    state = load_checkpoint(checkpoint_path, asdict(options), device)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, history = state["epoch"], state["history"]
        log.info("segmenter: resuming after epoch %d", start_epoch)

    generator = torch.Generator().manual_seed(options.seed)
    model.train()
    total_steps = options.epochs * steps_per_epoch
    if progress and start_epoch < options.epochs:
        progress(start_epoch * steps_per_epoch, total_steps,
                 f"epoch {start_epoch + 1}/{options.epochs}")
    for epoch in range(start_epoch, options.epochs):
        order_generator = np.random.default_rng(options.seed + epoch)
        order = order_generator.permutation(len(train_images))
        started, losses = time.monotonic(), []
        for step in range(steps_per_epoch):
            index = order[step * options.batch_size:(step + 1) * options.batch_size]
            x = torch.from_numpy(to_tensor(train_images[index]))
            y = torch.from_numpy(train_masks[index, None] / 255.0).float()
            x, y = augment(x, y, generator)
            x, y = x.to(device), y.to(device)
            logits = model(x)
            loss = F.binary_cross_entropy_with_logits(logits, y) + dice_loss(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            if progress:
                progress(epoch * steps_per_epoch + step + 1, total_steps,
                         f"epoch {epoch + 1}/{options.epochs} loss {np.mean(losses):.3f}")
        val_iou = evaluate(model, val_images, val_masks, device)
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)),
                        "val_iou": val_iou, "seconds": time.monotonic() - started})
        log.info("segmenter: epoch %d loss %.4f validation IoU %.4f", epoch + 1,
                 np.mean(losses), val_iou)
        save_checkpoint(checkpoint_path, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "history": history,
            "options": asdict(options)})

    onnx_path = export_onnx(model, torch.zeros(1, 3, options.size, options.size),
                            out / f"{options.name}.onnx", INPUT_NAME, [OUTPUT_NAME])
    write_model_manifest(
        onnx_path, name=options.name, version=options.version, task="segmenter",
        inputs=[InputSpec(name=INPUT_NAME, shape=("N", 3, options.size, options.size),
                          size=(options.size, options.size), mean=IMAGENET_MEAN,
                          std=IMAGENET_STD, colour_order="RGB")],
        outputs=[OutputSpec(name=OUTPUT_NAME, shape=("N", 1, options.size, options.size),
                            meaning="per-pixel item logit; > 0 means item")],
        training_description=f"Kaputt-layout data set at {data}",
        dataset_id=data.name,
        metrics={"validation_iou_at_input_size": history[-1]["val_iou"] if history else 0.0},
        notes=f"UNet base {options.base} depth {options.depth}; {options.epochs} epochs")
    return {"onnx": str(onnx_path), "history": history}
