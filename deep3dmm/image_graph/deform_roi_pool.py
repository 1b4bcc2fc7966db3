"""Deformable RoI pooling (Dai et al., "Deformable Convolutional Networks", ICCV 2017, Sec. 2.2).

RoIAlign-style average pooling whose bins are shifted by learned offsets, normalised by the
RoI size so they do not depend on its scale. Bilinear sampling (zeros outside) is the same
batched ``grid_sample`` as :func:`~deep3dmm.image_graph.deformable.deform_conv2d`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.deformable import _pair, _sample

__all__ = ["DeformRoIPool", "deform_roi_pool"]


def deform_roi_pool(
    x: torch.Tensor,
    rois: torch.Tensor,
    offset: torch.Tensor | None = None,
    *,
    output_size: int | tuple[int, int] = 7,
    spatial_scale: float = 1.0,
    sampling_ratio: int = 2,
    gamma: float = 0.1,
) -> torch.Tensor:
    r"""Deformable RoI average pooling (Dai et al. 2017, Sec. 2.2).

    Each RoI is split into ``oh x ow`` bins; bin (i, j) is shifted by
    :math:`\Delta p_{ij} = \gamma \, \widehat{\Delta p}_{ij} \circ (w, h)` (normalised
    offsets times the RoI size) and averaged over ``sampling_ratio``\ :sup:`2` bilinear samples
    (zero outside the map). Without offsets this is RoIAlign average pooling.

    Args:
        x: feature map.
        rois: boxes ``(batch_index, x1, y1, x2, y2)`` in image coordinates.
        offset: normalised offsets, (dy, dx) per bin; None = zero.
        output_size: bins per side.
        spatial_scale: feature-map pixels per image unit.
        sampling_ratio: samples per bin side.
        gamma: offset scale.

    Shapes:
        x: (B, C, H, W); rois: (R, 5); offset: (R, 2, oh, ow). Returns (R, C, oh, ow).
    """
    oh, ow = _pair(output_size)
    if rois.ndim != 2 or rois.shape[1] != 5:
        raise ConfigError(
            f"deform_roi_pool: rois have shape {tuple(rois.shape)}, expected (R, 5)",
            fix="give rows (batch_index, x1, y1, x2, y2)",
        )
    r = rois.shape[0]
    if offset is not None and tuple(offset.shape) != (r, 2, oh, ow):
        raise ConfigError(
            f"deform_roi_pool: offset has shape {tuple(offset.shape)}, expected ({r}, 2, {oh}, "
            f"{ow})",
            fix="give one normalised (dy, dx) per RoI bin",
        )
    dt = x.dtype
    idx = rois[:, 0].long()
    x1, y1, x2, y2 = (rois[:, i : i + 1, None].to(dt) * spatial_scale for i in range(1, 5))
    rw = (x2 - x1).clamp_min(1.0)  # (R, 1, 1)
    rh = (y2 - y1).clamp_min(1.0)
    s = sampling_ratio
    # Sample positions inside bin (i, j): start + (bin + (t + 0.5) / s) * bin_size.
    fy = (
        torch.arange(oh, device=x.device, dtype=dt)[:, None]
        + (torch.arange(s, device=x.device, dtype=dt)[None, :] + 0.5) / s
    ).reshape(-1)  # (oh*s,)
    fx = (
        torch.arange(ow, device=x.device, dtype=dt)[:, None]
        + (torch.arange(s, device=x.device, dtype=dt)[None, :] + 0.5) / s
    ).reshape(-1)  # (ow*s,)
    py = (y1 + fy[None, :, None] * rh / oh).expand(r, oh * s, ow * s)  # (R, oh*s, ow*s)
    px = (x1 + fx[None, None, :] * rw / ow).expand(r, oh * s, ow * s)
    if offset is not None:
        dy = (gamma * offset[:, 0] * rh).repeat_interleave(s, 1).repeat_interleave(s, 2)
        dx = (gamma * offset[:, 1] * rw).repeat_interleave(s, 1).repeat_interleave(s, 2)
        py, px = py + dy, px + dx
    # As RoIAlign(aligned=False): a continuous coordinate is a pixel index (centres at k).
    vals = _sample(x[idx], py, px)  # (R, C, oh*s, ow*s)
    return F.avg_pool2d(vals, kernel_size=s)


class DeformRoIPool(nn.Module):
    """Deformable RoI pooling with its offset predictor (Dai et al. 2017).

    Plain RoI pooling gives features; an fc layer (initialised to zero) predicts the
    normalised offsets; the features are pooled again at the shifted bins.

    Args:
        channels: feature channels C.
        output_size: bins per side.
        spatial_scale: feature-map pixels per image unit.
        sampling_ratio: samples per bin side.
        gamma: offset scale.

    Shapes:
        x: (B, C, H, W); rois: (R, 5). Returns (R, C, oh, ow).
    """

    def __init__(
        self,
        channels: int,
        output_size: int | tuple[int, int] = 7,
        *,
        spatial_scale: float = 1.0,
        sampling_ratio: int = 2,
        gamma: float = 0.1,
    ) -> None:
        super().__init__()
        self.channels, self.output_size = channels, _pair(output_size)
        self.spatial_scale, self.sampling_ratio, self.gamma = spatial_scale, sampling_ratio, gamma
        oh, ow = self.output_size
        self.offset_fc = nn.Linear(channels * oh * ow, 2 * oh * ow)
        nn.init.zeros_(self.offset_fc.weight)
        nn.init.zeros_(self.offset_fc.bias)

    def forward(self, x: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """Pool, predict offsets, pool again at the shifted bins."""
        kw = dict(
            output_size=self.output_size,
            spatial_scale=self.spatial_scale,
            sampling_ratio=self.sampling_ratio,
            gamma=self.gamma,
        )
        plain = deform_roi_pool(x, rois, **kw)
        offset = self.offset_fc(plain.flatten(1)).reshape(-1, 2, *self.output_size)
        return deform_roi_pool(x, rois, offset, **kw)

    def extra_repr(self) -> str:
        """Key hyperparameters for the repr."""
        return (
            f"channels={self.channels}, output_size={self.output_size}, "
            f"spatial_scale={self.spatial_scale}, sampling_ratio={self.sampling_ratio}, "
            f"gamma={self.gamma}"
        )
