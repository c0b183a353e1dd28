"""Several trained scorer tops on one frozen trunk, exported as one ONNX model.

Tops trained with different seeds (``station-app train scorer --seed``) on the same data
disagree on the hard cases more than on the easy ones, so the mean of their logits ranks
better than any one of them. The trunk is frozen and identical in every member (ImageNet
weights), so it runs once: the ensemble costs one trunk pass plus one pass of each top,
and the exported file has the same inputs and outputs as a single scorer, so the station
needs no change to use it. The tops' large weights are stored as float16 (compute stays
float32) so that two tops weigh about what one did.

    station-app train scorer --region item --seed 0 --cache runs/item-cache --out runs/item0 ...
    station-app train scorer --region item --seed 1 --cache runs/item-cache --out runs/item1 ...
    .venv/bin/python -m training.scorer.ensemble --data DIR --out engines/models/item_scorer.onnx \\
        runs/item0/item_scorer.ckpt runs/item1/item_scorer.ckpt

With one ``--cache`` folder the members share the prepared images and the trunk pass.
Members trained at different sizes combine with ``--size``, the size the ensemble is
served at; validate it there before shipping it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from engines.scoring import INPUT_MULTIPLE
from training.efficientnet_lite import load_imagenet_lite0
from training.onnx_export import store_large_weights_as_float16
from training.scorer.export import export_scorer_onnx
from training.scorer.model import FrozenTrunk, ScorerTop


# Training options members may differ in: what the top learns from and how it is built
# must match; the seed, the schedule's length (each member is its best epoch by
# validation anyway) and the device may not.
MAY_DIFFER = ("seed", "epochs", "device")
# The training size may differ too when the ensemble's serving size is named (``--size``):
# the tops take any multiple of 32; validate the ensemble at that size before shipping it.
SIZE = "size"


class ScorerEnsemble(nn.Module):
    """Tray or crop image → the five scorer outputs, logits averaged over the tops."""

    def __init__(self, trunk: FrozenTrunk, tops: Sequence[ScorerTop]) -> None:
        super().__init__()
        if not tops:
            raise ValueError("an ensemble needs at least one top")
        self.trunk = trunk
        self.tops = nn.ModuleList(tops)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        stride8, stride16 = self.trunk(image)
        outputs = [top(stride8, stride16) for top in self.tops]
        logits = torch.stack([logit for logit, _ in outputs]).mean(dim=0)
        heat_logit = torch.stack([heat for _, heat in outputs]).mean(dim=0)
        probabilities = torch.sigmoid(logits)
        return (probabilities[:, 0:1], probabilities[:, 1:2], probabilities[:, 2:],
                torch.sigmoid(heat_logit), stride16)


def load_members(checkpoints: Sequence[Path], mixed_sizes: bool = False
                 ) -> tuple[ScorerEnsemble, list[dict]]:
    """The ensemble of each checkpoint's best epoch, and the members' training options.

    Members may differ only in ``MAY_DIFFER`` (seed, epochs, device), and in the training
    size with ``mixed_sizes``: tops trained on other data or with another head would be
    averaged into something none of them was validated as."""
    backbone = load_imagenet_lite0()
    may_differ = MAY_DIFFER + ((SIZE,) if mixed_sizes else ())
    tops, options = [], []
    shared = None
    for path in checkpoints:
        state = torch.load(path, map_location="cpu", weights_only=False)
        member = dict(state["options"])
        recipe = {k: v for k, v in member.items() if k not in may_differ}
        if shared is not None and recipe != shared:
            size_hint = ("; members trained at different sizes need --size, the size the "
                         "ensemble is served at"
                         if not mixed_sizes and {**recipe, SIZE: None} == {**shared, SIZE: None}
                         else "")
            allowed = "the seed, epochs, device and size" if mixed_sizes else \
                "the seed, epochs and device"
            raise ValueError(f"{path} was trained with other options than {checkpoints[0]} "
                             f"(only {allowed} may differ{size_hint}): {recipe} vs {shared}")
        shared = recipe
        top = ScorerTop(backbone, member["fpn_channels"])
        top.load_state_dict(state["best"]["state"])
        tops.append(top.eval())
        options.append({**member, "best_epoch": state["best"]["epoch"],
                        "validation_ap_any": float(state["best"]["ap_any"])})
    return ScorerEnsemble(FrozenTrunk(backbone), tops).eval(), options


def main(argv: Sequence[str] | None = None) -> int:
    from training.scorer.train import ScorerOptions, _write_manifest

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoints", type=Path, nargs="+", help="members' <name>.ckpt files")
    parser.add_argument("--out", type=Path, required=True, help="the ensemble's ONNX file")
    parser.add_argument("--version", default="1")
    parser.add_argument("--data", type=Path, required=True,
                        help="data-set root the members were trained on (for the manifest)")
    parser.add_argument("--size", type=int, default=None,
                        help="input size the ensemble is served at (its manifest's size); "
                             "lets members trained at different sizes be combined. Default: "
                             "the members' training size")
    args = parser.parse_args(argv)
    if args.size is not None and (args.size < INPUT_MULTIPLE or args.size % INPUT_MULTIPLE):
        print(f"ensemble: --size {args.size} must be a positive multiple of {INPUT_MULTIPLE}",
              file=sys.stderr)
        return 1
    try:
        ensemble, members = load_members(args.checkpoints, mixed_sizes=args.size is not None)
    except (OSError, KeyError, ValueError) as error:
        print(f"ensemble: {error}", file=sys.stderr)
        return 1
    first = members[0]
    known = ScorerOptions.__dataclass_fields__
    options = ScorerOptions(**{**{k: v for k, v in first.items() if k in known},
                               "name": args.out.stem, "version": args.version,
                               SIZE: args.size or first[SIZE]})
    onnx_path = export_scorer_onnx(ensemble, args.out, options.size)
    store_large_weights_as_float16(onnx_path)
    extra = [Path(p) for p in first.get("extra_train", [])]
    metrics = {f"member{i}_validation_ap_any": m["validation_ap_any"]
               for i, m in enumerate(members)}
    _write_manifest(onnx_path, args.data, options, metrics, extra,
                    ensemble_seeds=[m["seed"] for m in members],
                    ensemble_sizes=[m[SIZE] for m in members])
    print(f"wrote {onnx_path}: {len(members)} tops (seeds "
          f"{', '.join(str(m['seed']) for m in members)}) on one trunk")
    return 0


if __name__ == "__main__":
    sys.exit(main())
