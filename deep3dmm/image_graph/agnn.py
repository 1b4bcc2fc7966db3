r"""Attentive graph neural network for video object segmentation (Wang et al., ICCV 2019).

The ``T`` frames of a clip are the nodes of a fully connected graph; each node state is a
spatial CNN feature map :math:`h_i \in \mathbb{R}^{P \times C}` (``P = H' W'`` positions).
One message-passing iteration:

.. math::
    E_{ij} = h_i W h_j^\top \in \mathbb{R}^{P \times P}, \qquad
    m_{j \to i} = \operatorname{softmax}_{\text{row}}(E_{ij})\, h_j \quad (j \ne i),
    \qquad m_{i \to i} = \operatorname{conv}(h_i)

    g_{j \to i} = \sigma(\operatorname{GAP}(\operatorname{conv}_g(m_{j \to i}))) \in [0,1]^C,
    \qquad M_i = \sum_j g_{j \to i} \odot m_{j \to i},
    \qquad h_i \leftarrow \operatorname{ConvGRU}(M_i, h_i)

(inter-frame attention over all position pairs, a channel gate on every message including
the self-message, a convolutional GRU update). After ``K`` iterations the readout
``conv([h_i^K, h_i^0])`` gives mask logits per frame, bilinearly upsampled to the input.
``K = 0`` is the per-frame CNN baseline with the same backbone and readout.

``W`` starts at ``I / sqrt(C)``, so the first scores are scaled dot products.

Shapes:
    - videos ``(B, T, C_in, H, W)``; node states ``(B, T, C, H', W')`` with
      ``H' = H / 2^stages``; mask logits ``(B, T, H, W)``.
    - attention (``return_attention``): ``(B, T, T, P, P)``, rows summing to 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.backbone import ConvStage

__all__ = ["AGNN", "ConvGRUCell", "InterFrameAttention", "mask_iou"]


class ConvGRUCell(nn.Module):
    r"""Convolutional GRU cell (the gate layout of :class:`torch.nn.GRUCell`, convs for matmuls).

    .. math::
        r = \sigma(W_{ir} * x + W_{hr} * h),\quad z = \sigma(W_{iz} * x + W_{hz} * h),\quad
        n = \tanh(W_{in} * x + r \odot (W_{hn} * h)),\quad h' = (1 - z) \odot n + z \odot h

    (biases included in each ``W * ``). With ``kernel_size=1`` it is a ``GRUCell`` per pixel.

    Args:
        in_channels: channels of the input ``x``.
        hidden_channels: channels of the state ``h``.
        kernel_size: odd kernel size (same padding).

    Shapes:
        x: (B, C_in, H, W); h: (B, C_h, H, W) -> (B, C_h, H, W).
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size % 2 == 0:
            raise ConfigError(f"ConvGRUCell: kernel_size must be odd, got {kernel_size}")
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.kernel_size = kernel_size
        pad = kernel_size // 2
        self.conv_x = nn.Conv2d(in_channels, 3 * hidden_channels, kernel_size, padding=pad)
        self.conv_h = nn.Conv2d(hidden_channels, 3 * hidden_channels, kernel_size, padding=pad)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One GRU step: the new state ``(B, C_h, H, W)``."""
        xr, xz, xn = self.conv_x(x).chunk(3, dim=1)
        hr, hz, hn = self.conv_h(h).chunk(3, dim=1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return (1 - z) * n + z * h

    def extra_repr(self) -> str:
        """Key hyperparameters for the repr."""
        return f"{self.in_channels}, {self.hidden_channels}, kernel_size={self.kernel_size}"


class InterFrameAttention(nn.Module):
    r"""Messages between every ordered pair of frames by attention over all position pairs.

    :math:`m_{j \to i} = \operatorname{softmax}_{\text{row}}(h_i W h_j^\top) h_j`; the diagonal
    ``j = i`` is left out (the self-message is a separate conv in :class:`AGNN`).

    Args:
        channels: node channels ``C``.

    Shapes:
        h: (B, T, C, H, W) -> messages (B, T_i, T_j, C, H, W) (zero on the diagonal) and,
        with ``return_attention``, attention (B, T_i, T_j, P, P) with ``P = H W``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.weight = nn.Parameter(torch.eye(channels) / math.sqrt(channels))

    def forward(self, h: torch.Tensor, *, return_attention: bool = False):
        """Messages ``(B, T, T, C, H, W)`` (and the attention if asked)."""
        b, t, c, hh, ww = h.shape
        flat = h.flatten(3).transpose(2, 3)  # (B, T, P, C)
        query = flat @ self.weight  # (B, T, P, C)
        scores = torch.einsum("bipc,bjqc->bijpq", query, flat)  # (B, T_i, T_j, P, P)
        attention = scores.softmax(dim=-1)
        messages = torch.einsum("bijpq,bjqc->bijcp", attention, flat)  # (B, T_i, T_j, C, P)
        off_diagonal = 1.0 - torch.eye(t, dtype=h.dtype, device=h.device)
        messages = messages * off_diagonal[None, :, :, None, None]
        messages = messages.reshape(b, t, t, c, hh, ww)
        return (messages, attention) if return_attention else messages

    def extra_repr(self) -> str:
        """Key hyperparameters for the repr."""
        return f"channels={self.channels}"


class AGNN(nn.Module):
    """CNN encoder -> K rounds of attentive message passing between frames -> mask per frame.

    Args:
        in_channels: image channels.
        image_size: frame side (checked on input; divisible by ``2 ** len(widths)``).
        widths: channels of the backbone stages (each halves the resolution); node
            channels ``C = widths[-1]``.
        iterations: message-passing rounds ``K >= 0`` (0: per-frame CNN baseline).

    Shapes:
        videos (B, T, C_in, H, W) -> mask logits (B, T, H, W).
    """

    def __init__(
        self,
        in_channels: int = 3,
        *,
        image_size: int = 32,
        widths: Sequence[int] = (32, 32),
        iterations: int = 3,
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if not isinstance(iterations, int) or iterations < 0:
            raise ConfigError(
                f"AGNN: iterations K must be an integer >= 0, got {iterations!r}",
                fix="use K = 0 for the per-frame baseline or K >= 1 message-passing rounds",
            )
        if not widths or min(widths) < 1:
            raise ConfigError(f"AGNN: widths must be positive, got {widths}")
        if image_size < 2 ** len(widths) or image_size % 2 ** len(widths):
            raise ConfigError(
                f"AGNN: image_size {image_size} is not divisible by 2**{len(widths)}",
                fix=f"use frames whose side is a multiple of {2 ** len(widths)}",
            )
        self.in_channels, self.image_size = in_channels, image_size
        self.widths, self.iterations = widths, iterations
        channels = (in_channels, *widths)
        self.encoder = nn.Sequential(*(ConvStage(a, b) for a, b in zip(channels, channels[1:])))
        c = widths[-1]
        self.attention = InterFrameAttention(c)
        self.self_message = nn.Conv2d(c, c, 3, padding=1)
        self.gate = nn.Conv2d(c, c, 1)
        self.update = ConvGRUCell(c, c)
        self.readout = nn.Sequential(
            nn.Conv2d(2 * c, c, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c, 1, 1)
        )

    def _check(self, videos: torch.Tensor) -> None:
        s = self.image_size
        if videos.dim() != 5 or tuple(videos.shape[2:]) != (self.in_channels, s, s):
            raise ConfigError(
                f"AGNN: expected videos (B, T, {self.in_channels}, {s}, {s}), "
                f"got {tuple(videos.shape)}",
                fix="resize the frames or build the model with their size",
            )

    def step(self, h: torch.Tensor) -> torch.Tensor:
        """One message-passing iteration on node states ``(B, T, C, H', W')``."""
        b, t, c, hh, ww = h.shape
        flat = h.reshape(b * t, c, hh, ww)
        inter = self.attention(h)  # (B, T, T, C, H', W'), zero diagonal
        own = self.self_message(flat).reshape(b, t, c, hh, ww)
        eye = torch.eye(t, dtype=h.dtype, device=h.device)[None, :, :, None, None, None]
        messages = inter + eye * own[:, :, None]  # (B, T_i, T_j, C, H', W')
        gates = torch.sigmoid(self.gate(messages.reshape(-1, c, hh, ww)).mean(dim=(2, 3)))
        gated = messages * gates.reshape(b, t, t, c, 1, 1)
        total = gated.sum(dim=2).reshape(b * t, c, hh, ww)  # M_i
        return self.update(total, flat).reshape(b, t, c, hh, ww)

    def forward(self, videos: torch.Tensor) -> torch.Tensor:
        """Mask logits ``(B, T, H, W)``."""
        self._check(videos)
        b, t = videos.shape[:2]
        h0 = self.encoder(videos.flatten(0, 1))  # (B*T, C, H', W')
        h = h0.reshape(b, t, *h0.shape[1:])
        for _ in range(self.iterations):
            h = self.step(h)
        logits = self.readout(torch.cat((h.flatten(0, 1), h0), dim=1))
        size = videos.shape[-2:]
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits.reshape(b, t, *size)

    def extra_repr(self) -> str:
        """Key hyperparameters for the repr."""
        return (
            f"in_channels={self.in_channels}, image_size={self.image_size}, "
            f"widths={self.widths}, iterations={self.iterations}"
        )


def mask_iou(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """IoU of ``logits > 0`` with binary ``masks`` per frame, ``(...,)`` for ``(..., H, W)``.

    A frame where both are empty counts as IoU 1.
    """
    pred = logits > 0
    truth = masks > 0.5
    inter = (pred & truth).flatten(-2).sum(-1).float()
    union = (pred | truth).flatten(-2).sum(-1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))
