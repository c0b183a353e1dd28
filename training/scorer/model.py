"""The supervised defect scorer: EfficientNet-Lite0 + a small FPN heatmap + pooled heads.

Two parts:

- ``FrozenTrunk``: the ImageNet backbone from the stem through stage 5 (stride 16),
  never trained. Its stride-16 output (112 channels) is exported as ``features``: generic
  ImageNet patch features for the reference comparison, untouched by defect training.
  Freezing it also regularises a small training set and makes training cheap: the trunk
  is run once per (augmented) image and its outputs cached (see ``training.scorer.data``).
- ``ScorerTop``: stages 6–7 and the 1280-channel head (fine-tuned from ImageNet), an
  FPN-style merge of the stride-8/16/32 features into a stride-8 ``heatmap``, and one
  linear layer giving the logits of any, major and the seven defect types from three
  pooled vectors: the global average of the head (the whole tray), the average of the
  stride-8 features weighted by the heatmap (a small defect is not averaged away), and a
  soft maximum of the heatmap logits (multiple-instance evidence: one hot spot suffices,
  which is also how the heatmap learns when a data set has no defect masks).

``DefectScorer`` chains the two and returns the exported outputs (``OUTPUT_NAMES``).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from engines.taxonomy import DEFECT_TYPES
from training.efficientnet_lite import (HEAD_CHANNELS, LITE0_STAGES, EfficientNetLite0,
                                        stage_block_ranges)

OUTPUT_NAMES: tuple[str, ...] = ("p_any", "p_major", "p_types", "heatmap", "features")
HEATMAP_STRIDE = 8
FEATURE_STRIDE = 16
INPUT_MULTIPLE = 32
# Stage indices (0-based): the trunk ends at stage 5 (stride 16).
STRIDE8_STAGE, STRIDE16_STAGE = 2, 4
STRIDE8_CHANNELS = LITE0_STAGES[STRIDE8_STAGE].out_channels
FEATURE_CHANNELS = LITE0_STAGES[STRIDE16_STAGE].out_channels
STRIDE32_CHANNELS = LITE0_STAGES[-1].out_channels
CLASS_OUTPUTS = 2 + len(DEFECT_TYPES)   # any, major, then one per defect type
# Sharpness of the soft maximum over heatmap logits (small = mean, large = max).
SOFT_MAX_SHARPNESS = 4.0
# Heatmap bias at start: sigmoid(-4) ≈ 0.02, since defects cover few pixels.
HEATMAP_PRIOR_LOGIT = -4.0


def soft_max_pool(logits: torch.Tensor, sharpness: float = SOFT_MAX_SHARPNESS) -> torch.Tensor:
    """Log-mean-exp over space (N×1×h×w → N×1): between the mean and the max, stable."""
    flat = logits.flatten(1)
    peak = flat.max(dim=1, keepdim=True).values.detach()
    spread = torch.exp(sharpness * (flat - peak)).mean(dim=1, keepdim=True)
    return peak + torch.log(spread) / sharpness


def _conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class FrozenTrunk(nn.Module):
    """ImageNet EfficientNet-Lite0 from the stem through stage 5; always in eval mode."""

    def __init__(self, backbone: EfficientNetLite0) -> None:
        super().__init__()
        ranges = stage_block_ranges()
        self.stem_conv = copy.deepcopy(backbone._conv_stem)
        self.stem_bn = copy.deepcopy(backbone._bn0)
        self.blocks = nn.ModuleList(copy.deepcopy(backbone._blocks[i])
                                    for stage in ranges[:STRIDE16_STAGE + 1] for i in stage)
        self.stride8_end = ranges[STRIDE8_STAGE][-1] + 1   # blocks before this give stride 8
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "FrozenTrunk":
        return super().train(False)   # keeps the ImageNet batch-norm statistics

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(stride-8 features N×40, stride-16 features N×112)."""
        x = F.relu6(self.stem_bn(self.stem_conv(image)))
        for block in self.blocks[:self.stride8_end]:
            x = block(x)
        stride8 = x
        for block in self.blocks[self.stride8_end:]:
            x = block(x)
        return stride8, x


class ScorerTop(nn.Module):
    """The trained part: stride-8/16 trunk features → (class logits N×9, heatmap logits)."""

    def __init__(self, backbone: EfficientNetLite0, fpn_channels: int = 64,
                 dropout: float = 0.2) -> None:
        super().__init__()
        ranges = stage_block_ranges()
        self.blocks = nn.ModuleList(copy.deepcopy(backbone._blocks[i])
                                    for stage in ranges[STRIDE16_STAGE + 1:] for i in stage)
        self.head_conv = copy.deepcopy(backbone._conv_head)
        self.head_bn = copy.deepcopy(backbone._bn1)
        self.lateral8 = nn.Conv2d(STRIDE8_CHANNELS, fpn_channels, 1)
        self.lateral16 = nn.Conv2d(FEATURE_CHANNELS, fpn_channels, 1)
        self.lateral32 = nn.Conv2d(STRIDE32_CHANNELS, fpn_channels, 1)
        self.heatmap_body = nn.Sequential(_conv_bn_relu(fpn_channels, fpn_channels),
                                          _conv_bn_relu(fpn_channels, fpn_channels))
        self.heatmap_logit = nn.Conv2d(fpn_channels, 1, 1)
        nn.init.constant_(self.heatmap_logit.bias, HEATMAP_PRIOR_LOGIT)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(HEAD_CHANNELS + fpn_channels + 1, CLASS_OUTPUTS)
        with torch.no_grad():  # start with the heatmap evidence feeding P(any)
            self.classifier.weight[0, -1] = 1.0

    def forward(self, stride8: torch.Tensor, stride16: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        stride32 = stride16
        for block in self.blocks:
            stride32 = block(stride32)
        merged = (self.lateral8(stride8)
                  + F.interpolate(self.lateral16(stride16), scale_factor=2.0, mode="bilinear",
                                  align_corners=False)
                  + F.interpolate(self.lateral32(stride32), scale_factor=4.0, mode="bilinear",
                                  align_corners=False))
        body = self.heatmap_body(merged)
        heat_logit = self.heatmap_logit(body)

        global_pool = F.relu6(self.head_bn(self.head_conv(stride32))).mean(dim=(2, 3))
        heat = torch.sigmoid(heat_logit)
        weights = heat / (heat.sum(dim=(2, 3), keepdim=True) + 1e-6)
        weighted_pool = (body * weights).sum(dim=(2, 3))
        evidence = soft_max_pool(heat_logit)
        logits = self.classifier(torch.cat(
            [self.dropout(global_pool), self.dropout(weighted_pool), evidence], dim=1))
        return logits, heat_logit


class DefectScorer(nn.Module):
    """Tray image (N×3×H×W, H and W multiples of 32) → the five exported outputs."""

    def __init__(self, backbone: EfficientNetLite0, fpn_channels: int = 64,
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.trunk = FrozenTrunk(backbone)
        self.top = ScorerTop(backbone, fpn_channels, dropout)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        stride8, stride16 = self.trunk(image)
        logits, heat_logit = self.top(stride8, stride16)
        probabilities = torch.sigmoid(logits)
        return (probabilities[:, 0:1], probabilities[:, 1:2], probabilities[:, 2:],
                torch.sigmoid(heat_logit), stride16)
