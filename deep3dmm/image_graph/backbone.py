"""A small CNN backbone and the CNN-only classifier baseline built from it.

The backbone is a stack of stages, each ``Conv3x3 -> BatchNorm -> ReLU -> MaxPool2``
(VGG-style, Simonyan & Zisserman 2015, at toy scale), so stage ``s`` halves the
resolution ``s + 1`` times. The keypoint-graph models take an intermediate feature map
(:meth:`SmallCNN.feature_maps`); the baseline classifier global-average-pools the last
stage (:meth:`SmallCNN.features`) and applies one linear layer.

Shapes:
    - input ``x``: ``(B, C_in, H, W)`` with ``H, W`` divisible by ``2 ** len(widths)``
    - :meth:`SmallCNN.feature_maps` (stage ``s``): ``(B, widths[s], H / 2^(s+1), W / 2^(s+1))``
    - :meth:`SmallCNN.features`: ``(B, D)`` with ``D = widths[-1]``
    - :meth:`SmallCNN.forward`: logits ``(B, num_classes)``
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deep3dmm.errors import ConfigError

__all__ = ["ConvStage", "SmallCNN"]


class ConvStage(nn.Sequential):
    """``Conv3x3 -> BatchNorm -> ReLU`` and, with ``pool``, a 2x2 max-pool.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        pool: halve the resolution at the end.
    """

    def __init__(self, in_channels: int, out_channels: int, *, pool: bool = True):
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        ]
        if pool:
            layers.append(nn.MaxPool2d(2))
        super().__init__(*layers)


class SmallCNN(nn.Module):
    """CNN-only image classifier; also the backbone of the keypoint-graph models.

    Args:
        in_channels: image channels (1 for digits).
        num_classes: output classes.
        widths: channels of each stage; each stage halves the resolution.
        image_size: side of the (square) input images, checked to be divisible by
            ``2 ** len(widths)``; used by :meth:`stage_size`.
        dropout: dropout before the linear head (0 disables).
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        widths: Sequence[int] = (32, 64, 128),
        *,
        image_size: int = 32,
        dropout: float = 0.0,
    ):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if not widths or min(widths) < 1:
            raise ConfigError(f"SmallCNN: widths must be positive, got {widths}")
        if image_size % (2 ** len(widths)):
            raise ConfigError(
                f"SmallCNN: image_size {image_size} is not divisible by 2**{len(widths)}",
                fix="choose an image size that is a multiple of "
                f"{2 ** len(widths)} or fewer stages",
            )
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.widths = widths
        self.image_size = image_size
        channels = (in_channels, *widths)
        self.stages = nn.ModuleList(ConvStage(a, b) for a, b in zip(channels[:-1], channels[1:]))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(widths[-1], num_classes)

    @property
    def feature_dim(self) -> int:
        """``D``, the length of :meth:`features` (the last stage's width)."""
        return self.widths[-1]

    def stage_size(self, stage: int = -1) -> int:
        """Side of the feature map after ``stage`` for ``image_size`` inputs."""
        stage = stage % len(self.widths)
        return self.image_size // 2 ** (stage + 1)

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ConfigError(
                f"SmallCNN: expected images (B, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )

    def feature_maps(self, x: torch.Tensor, *, stage: int = -1) -> torch.Tensor:
        """Feature map after ``stage`` (default the last): ``(B, widths[stage], H_s, W_s)``."""
        self._check(x)
        stage = stage % len(self.widths)
        for block in self.stages[: stage + 1]:
            x = block(x)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features: global average pool of the last stage, ``(B, D)``."""
        return self.feature_maps(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(B, num_classes)``."""
        return self.head(self.dropout(self.features(x)))

    def extra_repr(self) -> str:
        """Key hyperparameters for ``repr``."""
        return (
            f"in_channels={self.in_channels}, num_classes={self.num_classes}, "
            f"widths={self.widths}, image_size={self.image_size}"
        )
