r"""Set-to-set measures of sample quality: MMD, coverage and 1-NN accuracy.

Achlioptas et al. (ICML 2018) for MMD and coverage, Lopez-Paz & Oquab (ICLR 2017) and
Yang et al. (PointFlow, ICCV 2019) for the 1-nearest-neighbour two-sample test. Meshes
share one topology, so the distance between two meshes is the metric of the package, the
mean per-vertex Euclidean distance (in mm after ``scale``):

.. math:: d(a, b) = \frac1V \sum_{v} \lVert a_v - b_v \rVert_2

With samples :math:`S` and reference meshes :math:`R` (the test split):

- minimum matching distance :math:`\mathrm{MMD} = \frac1{|R|} \sum_{r} \min_{s} d(r, s)`
  (fidelity: lower is better);
- coverage :math:`\mathrm{COV} = |\{\arg\min_{r} d(r, s) : s \in S\}| / |R|` (diversity:
  the share of reference meshes that are some sample's nearest; higher is better);
- 1-NN accuracy: the leave-one-out 1-nearest-neighbour classifier of :math:`S \cup R`
  (label: sample or reference); 50 % when the two sets are indistinguishable, 100 % when
  they are apart (and below 50 % when samples copy the reference meshes).

A flattened ``torch.cdist`` would give the root of the summed squared distances, not the
mean of the per-vertex distances; :func:`vertex_distance_matrix` computes the latter in
chunks so memory stays bounded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from deep3dmm.errors import ConfigError

__all__ = ["SetMeasures", "set_measures", "vertex_distance_matrix"]


def vertex_distance_matrix(
    a: np.ndarray | torch.Tensor,
    b: np.ndarray | torch.Tensor,
    *,
    scale: float = 1.0,
    max_bytes: int = 256 * 2**20,
) -> np.ndarray:
    """Mean per-vertex Euclidean distance between every mesh of ``a`` and every mesh of ``b``.

    Args:
        a: ``(N, V, 3)`` meshes.
        b: ``(M, V, 3)`` meshes of the same topology.
        scale: factor on every distance (``dataset.to_millimetres`` for mm).
        max_bytes: memory of one ``(n, m, V, 3)`` difference block.

    Returns:
        ``(N, M)`` float64 distances.

    Raises:
        ConfigError: the two sets are not meshes of one vertex count.
    """
    a = torch.as_tensor(np.asarray(a), dtype=torch.float64)
    b = torch.as_tensor(np.asarray(b), dtype=torch.float64)
    if a.ndim != 3 or b.ndim != 3 or a.shape[1:] != b.shape[1:] or a.shape[2] != 3:
        raise ConfigError(
            f"vertex_distance_matrix needs (N, V, 3) and (M, V, 3) meshes, got "
            f"{tuple(a.shape)} and {tuple(b.shape)}"
        )
    per_pair = a.shape[1] * 3 * 8  # bytes of one (V, 3) float64 difference
    cols = max(1, min(len(b), max_bytes // per_pair))
    rows = max(1, max_bytes // (per_pair * cols))
    out = torch.empty(len(a), len(b), dtype=torch.float64)
    for i in range(0, len(a), rows):
        for j in range(0, len(b), cols):
            diff = a[i : i + rows, None] - b[None, j : j + cols]  # (n, m, V, 3)
            out[i : i + rows, j : j + cols] = diff.square().sum(-1).sqrt().mean(-1)
    return (out * float(scale)).numpy()


@dataclass(frozen=True)
class SetMeasures:
    """Sample quality against a reference set (distances in the unit of ``scale``, e.g. mm).

    Attributes:
        mmd: minimum matching distance (mean over reference meshes of the nearest sample).
        coverage: share of reference meshes that are the nearest of some sample, in [0, 1].
        nna: leave-one-out 1-NN accuracy on samples vs reference, in [0, 1] (0.5 is ideal).
        num_samples: ``|S|``.
        num_reference: ``|R|``.
    """

    mmd: float
    coverage: float
    nna: float
    num_samples: int
    num_reference: int

    def to_dict(self) -> dict:
        """Plain values (JSON)."""
        return asdict(self)


def set_measures(
    samples: np.ndarray,
    reference: np.ndarray,
    *,
    scale: float = 1.0,
    max_bytes: int = 256 * 2**20,
) -> SetMeasures:
    """MMD, coverage and 1-NN accuracy of ``samples`` against ``reference``.

    ``samples`` ``(S, V, 3)`` and ``reference`` ``(R, V, 3)`` share one topology (see the
    module docstring; ties go to the lowest index).

    Raises:
        ConfigError: an empty set or meshes of different shapes.
    """
    if len(samples) == 0 or len(reference) == 0:
        raise ConfigError(
            f"set measures need samples and reference meshes, got {len(samples)} and "
            f"{len(reference)}"
        )
    both = np.concatenate([np.asarray(samples), np.asarray(reference)])  # (S + R, V, 3)
    dist = vertex_distance_matrix(both, both, scale=scale, max_bytes=max_bytes)
    n_s = len(samples)
    cross = dist[n_s:, :n_s]  # (R, S): reference x samples
    mmd = float(cross.min(axis=1).mean())
    coverage = len(np.unique(cross.argmin(axis=0))) / len(reference)
    np.fill_diagonal(dist, np.inf)  # leave one out
    is_sample = np.arange(len(both)) < n_s
    nna = float(np.mean(is_sample[dist.argmin(axis=1)] == is_sample))
    return SetMeasures(mmd, float(coverage), nna, n_s, len(reference))
