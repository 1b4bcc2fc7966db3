r"""Spatial transformer networks (Jaderberg, Simonyan, Zisserman & Kavukcuoglu, NIPS 2015).

A localisation network looks at the input and regresses the parameters :math:`\theta` of a
warp; a grid generator turns them into sampling positions and a bilinear sampler reads the
input there, so the rest of the network sees a rectified image:

.. math::
    \begin{pmatrix} x^s \\ y^s \end{pmatrix} = A_\theta
    \begin{pmatrix} x^t \\ y^t \\ 1 \end{pmatrix} \quad\text{(affine)},\qquad
    V(x^t, y^t) = \sum_{n,m} U_{nm} \max(0, 1 - |x^s - m|) \max(0, 1 - |y^s - n|)

with target and source coordinates normalised to ``[-1, 1]`` (``align_corners=False``: pixel
centres at ``(2p + 1) / size - 1``), i.e. :func:`torch.nn.functional.affine_grid` and
:func:`torch.nn.functional.grid_sample`. The thin-plate-spline variant regresses the source
positions of a ``g x g`` grid of control points and interpolates them with
:math:`x^s(p) = a_0 + a_1 x + a_2 y + \sum_k w_k\, U(\lVert p - c_k \rVert)`,
:math:`U(r) = r^2 \log r^2` (Bookstein 1989), solved by one precomputed linear map.

The last layer of the localisation net starts at zero weight and a bias equal to the
initial transform (identity by default), so a fresh transformer returns its input; an
initial affine transform whose 2x2 part is singular is refused (it would collapse the image
to a line and the localisation net would get no useful gradient).

Shapes:
    - input ``x``: ``(B, C, H, W)`` with ``H = W = image_size``; output: same shape.
    - affine ``theta``: ``(B, 2, 3)``; TPS ``theta``: ``(B, g * g, 2)`` source control points.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from deep3dmm.errors import ConfigError

__all__ = ["SpatialTransformer", "TRANSFORMS", "tps_grid", "with_transformer"]

TRANSFORMS = ("affine", "tps")


def _control_points(g: int) -> torch.Tensor:
    """``g * g`` control points on a regular grid in ``[-1, 1]^2``, ``(g*g, 2)`` as ``(x, y)``."""
    t = torch.linspace(-1.0, 1.0, g)
    y, x = torch.meshgrid(t, t, indexing="ij")
    return torch.stack((x.reshape(-1), y.reshape(-1)), dim=1)


def _tps_kernel(p: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``U(|p - c|) = r^2 log r^2`` (0 at r = 0), ``(P, K)`` for points ``(P, 2)``, ``(K, 2)``."""
    r2 = (p[:, None, :] - c[None, :, :]).pow(2).sum(-1)
    return r2 * torch.log(r2.clamp_min(1e-12))


def _base_points(h: int, w: int) -> torch.Tensor:
    """Target pixel centres ``(H*W, 2)`` as normalised ``(x, y)`` (``align_corners=False``)."""
    ys = (2 * torch.arange(h, dtype=torch.float64) + 1) / h - 1
    xs = (2 * torch.arange(w, dtype=torch.float64) + 1) / w - 1
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((x.reshape(-1), y.reshape(-1)), dim=1)


def tps_grid(source: torch.Tensor, control: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Sampling grid of the thin-plate spline taking ``control`` points to ``source`` points.

    Args:
        source: where each control point samples from, ``(B, K, 2)`` normalised ``(x, y)``.
        control: the control points in the output, ``(K, 2)``.
        size: output ``(H, W)``.

    Returns:
        grid ``(B, H, W, 2)`` for :func:`torch.nn.functional.grid_sample`.
    """
    h, w = size
    k = control.shape[0]
    c = control.double()
    # System [[U(c, c), 1, c], [(1, c)^T, 0]] [w; a] = [source; 0] (Bookstein 1989).
    lhs = torch.zeros(k + 3, k + 3, dtype=torch.float64)
    lhs[:k, :k] = _tps_kernel(c, c)
    lhs[:k, k] = 1
    lhs[:k, k + 1 :] = c
    lhs[k, :k] = 1
    lhs[k + 1 :, :k] = c.T
    p = _base_points(h, w)
    basis = torch.cat((_tps_kernel(p, c), torch.ones(len(p), 1, dtype=torch.float64), p), 1)
    mapping = (basis @ torch.linalg.inv(lhs))[:, :k]  # (H*W, K): source pts -> sample pts
    mapping = mapping.to(source.dtype).to(source.device)
    return torch.einsum("pk,bkd->bpd", mapping, source).reshape(-1, h, w, 2)


class SpatialTransformer(nn.Module):
    """Localisation net -> affine or TPS warp -> bilinear resampling of the input.

    Args:
        in_channels: channels ``C`` of the input.
        image_size: side of the (square) input; the localisation net needs ``>= 12``.
        transform: ``"affine"`` (6 parameters) or ``"tps"`` (``2 g^2`` parameters).
        grid: TPS control points per side ``g`` (ignored for affine).
        hidden: width of the localisation net's fully connected layer.
        init: initial affine matrix ``(2, 3)`` (default identity); its 2x2 part must be
            invertible. TPS always starts at the identity.

    Shapes:
        x: (B, C, H, W) -> (B, C, H, W); :meth:`transform` also returns ``theta``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        *,
        image_size: int = 32,
        transform: str = "affine",
        grid: int = 3,
        hidden: int = 32,
        init: Sequence[Sequence[float]] | torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if transform not in TRANSFORMS:
            raise ConfigError(
                f"SpatialTransformer: unknown transform {transform!r}",
                fix=f"choose one of {', '.join(TRANSFORMS)}",
            )
        if image_size < 12:
            raise ConfigError(
                f"SpatialTransformer: image_size must be >= 12, got {image_size}",
                fix="use larger images (the localisation net pools twice with 5x5 convs)",
            )
        if transform == "tps" and grid < 2:
            raise ConfigError(f"SpatialTransformer: TPS grid must be >= 2, got {grid}")
        self.in_channels, self.image_size = in_channels, image_size
        self.kind, self.grid = transform, grid
        side = ((image_size - 4) // 2 - 4) // 2
        self.localisation = nn.Sequential(
            nn.Conv2d(in_channels, 8, 5),
            nn.MaxPool2d(2),
            nn.ReLU(inplace=True),
            nn.Conv2d(8, 10, 5),
            nn.MaxPool2d(2),
            nn.ReLU(inplace=True),
            nn.Flatten(),
            nn.Linear(10 * side * side, hidden),
            nn.ReLU(inplace=True),
        )
        if transform == "affine":
            theta0 = torch.eye(2, 3) if init is None else torch.as_tensor(init, dtype=torch.float32)
            if theta0.shape != (2, 3):
                raise ConfigError(
                    f"SpatialTransformer: init must be a 2x3 affine matrix, got shape "
                    f"{tuple(theta0.shape)}"
                )
            det = float(torch.linalg.det(theta0[:, :2].double()))
            if not abs(det) > 1e-6:
                raise ConfigError(
                    f"SpatialTransformer: the initial affine transform is not invertible "
                    f"(det of its 2x2 part = {det:.3g})",
                    fix="start from the identity or another invertible transform",
                )
            bias = theta0.reshape(-1)
        else:
            self.register_buffer("control", _control_points(grid), persistent=False)
            bias = self.control.reshape(-1).clone()
        self.head = nn.Linear(hidden, bias.numel())
        nn.init.zeros_(self.head.weight)
        with torch.no_grad():
            self.head.bias.copy_(bias)

    def _check(self, x: torch.Tensor) -> None:
        expected = (self.in_channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ConfigError(
                f"SpatialTransformer: expected images (B, {expected[0]}, {expected[1]}, "
                f"{expected[2]}), got {tuple(x.shape)}",
                fix="resize the images or build the transformer with their size",
            )

    def grid_from(self, theta: torch.Tensor, size: torch.Size) -> torch.Tensor:
        """Sampling grid ``(B, H, W, 2)`` for parameters ``theta`` and an output ``size``."""
        if self.kind == "affine":
            return F.affine_grid(theta, list(size), align_corners=False)
        return tps_grid(theta, self.control, (size[-2], size[-1]))

    def transform(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rectified images ``(B, C, H, W)`` and the predicted parameters ``theta``."""
        self._check(x)
        params = self.head(self.localisation(x))
        theta = params.view(-1, 2, 3) if self.kind == "affine" else params.view(-1, self.grid**2, 2)
        grid = self.grid_from(theta, x.shape)
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        return out, theta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Rectified images ``(B, C, H, W)``."""
        return self.transform(x)[0]

    def extra_repr(self) -> str:
        """Key hyperparameters for the repr."""
        grid = f", grid={self.grid}" if self.kind == "tps" else ""
        return (
            f"in_channels={self.in_channels}, image_size={self.image_size}, "
            f"transform={self.kind!r}{grid}"
        )


def with_transformer(model: nn.Module, transformer: SpatialTransformer) -> nn.Sequential:
    """``transformer`` in front of any image model: ``nn.Sequential(transformer, model)``."""
    return nn.Sequential(transformer, model)
