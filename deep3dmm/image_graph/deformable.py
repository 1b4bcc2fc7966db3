r"""Deformable convolution (DCNv1 / modulated DCNv2), pure PyTorch.

Papers: Dai et al., "Deformable Convolutional Networks", ICCV 2017 (DCNv1; its deformable
RoI pooling is in :mod:`deep3dmm.image_graph.deform_roi_pool`); Zhu et al., "Deformable
ConvNets v2: More Deformable, Better Results", CVPR 2019 (modulation masks).

.. math::
    y(p_0) = \sum_{k=1}^{K} w_k \, m_k \, x(p_0 + p_k + \Delta p_k)

where :math:`p_k` runs over the (dilated) kernel grid, :math:`\Delta p_k` are learned
fractional offsets, :math:`m_k \in [0, 1]` the DCNv2 modulation (1 for DCNv1) and
:math:`x(\cdot)` is bilinear interpolation with zeros outside the image. Sampling is done
with one batched :func:`torch.nn.functional.grid_sample` over every kernel tap; the taps are
then contracted with the weights by one ``einsum`` (no loops over batch items or pixels).

Offsets follow the torchvision layout: channel ``2 * (g * K + k)`` is the row (y) offset and
``2 * (g * K + k) + 1`` the column (x) offset of kernel tap ``k`` in offset group ``g``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.backbone import SmallCNN

__all__ = ["DeformConv2d", "deform_conv2d", "deformable_small_cnn"]


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def _sample(x: torch.Tensor, py: torch.Tensor, px: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample ``x`` at pixel coordinates, zero outside.

    Shapes:
        x: (N, C, H, W); py, px: (N, P, Q) pixel rows/columns (pixel centres at integers).
        Returns (N, C, P, Q).
    """
    h, w = x.shape[-2:]
    # align_corners=False maps pixel centre p to (2p + 1) / size - 1; valid for size 1 too.
    grid = torch.stack(((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), dim=-1)  # (N, P, Q, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Deformable 2D convolution (modulated when ``mask`` is given).

    Conv groups are ``in_channels // weight.shape[1]``; offset groups are
    ``offset.shape[1] // (2 * kh * kw)``.

    Args:
        x: input feature map.
        offset: sampling offsets in pixels (torchvision layout, see the module docstring).
        weight: kernel as in :class:`torch.nn.Conv2d`.
        bias: optional bias.
        stride: as in :func:`torch.nn.functional.conv2d`.
        padding: as in :func:`torch.nn.functional.conv2d` (zeros).
        dilation: as in :func:`torch.nn.functional.conv2d`.
        mask: optional DCNv2 modulation, one scalar per tap and offset group.

    Shapes:
        x: (B, C_in, H, W); offset: (B, 2 * G_off * kh * kw, H_out, W_out);
        weight: (C_out, C_in / groups, kh, kw); bias: (C_out,);
        mask: (B, G_off * kh * kw, H_out, W_out). Returns (B, C_out, H_out, W_out).
    """
    sh, sw = _pair(stride)
    ph, pw = _pair(padding)
    dh, dw = _pair(dilation)
    b, c_in, h, w = x.shape
    c_out, c_per_group, kh, kw = weight.shape
    taps = kh * kw
    if c_in % c_per_group:
        raise ConfigError(
            f"deform_conv2d: input has {c_in} channels, not a multiple of weight.shape[1]="
            f"{c_per_group}",
            fix="use weight shaped (out_channels, in_channels // groups, kh, kw)",
        )
    groups = c_in // c_per_group
    h_out = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    w_out = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if offset.shape[0] != b or offset.shape[2:] != (h_out, w_out) or offset.shape[1] % (2 * taps):
        raise ConfigError(
            f"deform_conv2d: offset has shape {tuple(offset.shape)}, expected "
            f"({b}, 2 * offset_groups * {taps}, {h_out}, {w_out})",
            fix="predict offsets with a conv that has the same stride/padding/dilation",
        )
    off_groups = offset.shape[1] // (2 * taps)
    if c_in % off_groups:
        raise ConfigError(
            f"deform_conv2d: {c_in} input channels are not divisible by {off_groups} offset groups",
            fix="choose offset_groups dividing in_channels",
        )
    if mask is not None and tuple(mask.shape) != (b, off_groups * taps, h_out, w_out):
        raise ConfigError(
            f"deform_conv2d: mask has shape {tuple(mask.shape)}, expected "
            f"({b}, {off_groups * taps}, {h_out}, {w_out})",
            fix="predict one modulation scalar per kernel tap and offset group",
        )

    # Regular sampling grid p_0 + p_k in input pixel coordinates.
    dev, dt = x.device, x.dtype
    base_y = (torch.arange(h_out, device=dev, dtype=dt) * sh - ph)[None, :, None]  # (1, Ho, 1)
    base_x = (torch.arange(w_out, device=dev, dtype=dt) * sw - pw)[None, None, :]  # (1, 1, Wo)
    tap_y = (torch.arange(kh, device=dev, dtype=dt) * dh).repeat_interleave(kw)  # (K,)
    tap_x = (torch.arange(kw, device=dev, dtype=dt) * dw).repeat(kh)  # (K,)
    off = offset.reshape(b * off_groups, taps, 2, h_out, w_out)
    py = base_y + tap_y[:, None, None] + off[:, :, 0]  # (B*G, K, Ho, Wo)
    px = base_x + tap_x[:, None, None] + off[:, :, 1]
    xg = x.reshape(b * off_groups, c_in // off_groups, h, w)
    cols = _sample(xg, py.reshape(-1, taps * h_out, w_out), px.reshape(-1, taps * h_out, w_out))
    cols = cols.reshape(b, off_groups, c_in // off_groups, taps, h_out * w_out)
    if mask is not None:
        cols = cols * mask.reshape(b, off_groups, 1, taps, h_out * w_out)
    cols = cols.reshape(b, groups, c_per_group, taps, h_out * w_out)  # (B, g, C/g, K, L)
    wg = weight.reshape(groups, c_out // groups, c_per_group, taps)
    out = torch.einsum("bgckl,gock->bgol", cols, wg).reshape(b, c_out, h_out, w_out)
    if bias is not None:
        out = out + bias[None, :, None, None]
    return out


class DeformConv2d(nn.Module):
    """Deformable convolution layer with its own offset (and mask) predictor.

    The offset/mask conv has the layer's kernel, stride, padding and dilation and starts at
    zero, so a fresh layer equals :class:`torch.nn.Conv2d` (DCNv2 masks start at
    sigmoid(0) = 0.5 and are scaled by 2, so they also start at 1).

    Args:
        in_channels: input channels C_in.
        out_channels: output channels C_out.
        kernel_size: kernel size.
        stride: conv stride.
        padding: zero padding.
        dilation: kernel dilation.
        groups: conv groups (as in :class:`torch.nn.Conv2d`).
        offset_groups: channel groups sharing one offset field.
        modulated: DCNv2 modulation masks when True.
        bias: learn a bias.

    Shapes:
        x: (B, C_in, H, W) -> (B, C_out, H_out, W_out), H_out as for ``nn.Conv2d``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] = 3,
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        *,
        offset_groups: int = 1,
        modulated: bool = False,
        bias: bool = True,
    ) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups or in_channels % offset_groups:
            raise ConfigError(
                f"DeformConv2d: in_channels={in_channels}, out_channels={out_channels} must be "
                f"divisible by groups={groups} (and in_channels by offset_groups={offset_groups})",
                fix="choose groups/offset_groups that divide the channel counts",
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride, self.padding, self.dilation = _pair(stride), _pair(padding), _pair(dilation)
        self.groups, self.offset_groups, self.modulated = groups, offset_groups, modulated
        kh, kw = self.kernel_size
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, kh, kw))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        n_pred = offset_groups * kh * kw * (3 if modulated else 2)
        self.offset_conv = nn.Conv2d(
            in_channels, n_pred, self.kernel_size, self.stride, self.padding, self.dilation
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Kaiming-uniform kernel as ``nn.Conv2d``; zero offset/mask predictor."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0].numel()
            nn.init.uniform_(self.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        nn.init.zeros_(self.offset_conv.weight)
        nn.init.zeros_(self.offset_conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Predict offsets (and masks) from ``x`` and apply :func:`deform_conv2d`."""
        pred = self.offset_conv(x)
        n_off = 2 * self.offset_groups * self.kernel_size[0] * self.kernel_size[1]
        offset = pred[:, :n_off]
        mask = 2 * torch.sigmoid(pred[:, n_off:]) if self.modulated else None
        return deform_conv2d(
            x,
            offset,
            self.weight,
            self.bias,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            mask=mask,
        )

    def extra_repr(self) -> str:
        """Key hyperparameters for the repr."""
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"groups={self.groups}, offset_groups={self.offset_groups}, "
            f"modulated={self.modulated}"
        )


def deformable_small_cnn(
    *,
    deformable_stages: int = 2,
    modulated: bool = False,
    widths: tuple[int, ...] = (16, 32, 64),
    image_size: int = 32,
    num_classes: int = 10,
) -> SmallCNN:
    """A :class:`SmallCNN` whose last ``deformable_stages`` convs are :class:`DeformConv2d`.

    The offsets start at zero, so the network starts as the plain :class:`SmallCNN`.
    """
    if not 0 <= deformable_stages <= len(widths):
        raise ConfigError(
            f"deformable_stages={deformable_stages} must be in [0, {len(widths)}]",
            fix="choose how many of the CNN's stages become deformable",
        )
    model = SmallCNN(1, num_classes, widths, image_size=image_size)
    for stage in list(model.stages)[len(widths) - deformable_stages :]:
        conv: nn.Conv2d = stage[0]
        stage[0] = DeformConv2d(
            conv.in_channels, conv.out_channels, 3, padding=1, modulated=modulated, bias=False
        )
    return model
