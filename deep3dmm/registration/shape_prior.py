r"""A linear shape prior for registration: fit a PCA model of registered meshes to a scan.

Non-rigid ICP matches every template vertex to its *nearest* scan point, so vertices may
slide along the surface and the result lies on the scan with the wrong correspondence.
A statistical model of the template's training meshes has no such freedom: its vertices
move together. With :math:`X(u) = \bar X + \sum_k u_k B_k` (``B_k`` the principal
components times their standard deviation, so :math:`u \sim \mathcal N(0, I)`) and a
small rigid correction :math:`(\omega, \tau)` of the model in the scan's frame, each
Gauss-Newton step minimises

.. math::
    \frac{1}{\sigma^2}\Big[\sum_i w_i\, (m_i^\top(Y_i - p_i))^2
    + \sum_j w_j\, (n_j^\top(Y_{i(j)} - q_j))^2
    + \lambda_l \sum_l \lVert Y_l - p_l \rVert^2\Big] + \lVert u \rVert^2,
    \qquad Y = X(u) + \omega \times X + \tau,

point-to-plane in both directions: model vertex -> nearest scan point ``p_i`` (scan
normal ``m_i``), scan point ``q_j`` -> nearest model vertex (model normal ``n_j``),
trimmed (pairs farther than ``trim`` times the median distance are dropped), plus
landmarks. The system is ``K + 6`` unknowns, solved in closed form.

:func:`refine_along_normals` then moves each vertex along its own normal only (a smooth
offset field, :math:`\min_d \sum_i w_i (d_i - o_i)^2 + \mu \lVert L d \rVert^2`, ``L`` the
graph Laplacian, ``o_i`` the point-to-plane offset to the scan): the surface detail the
model lacks is added without any tangential sliding.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from deep3dmm.errors import ConfigError

__all__ = [
    "ShapePrior",
    "deform_to_scan",
    "fit_prior_to_scan",
    "load_shape_prior",
    "point_normals",
    "refine_along_normals",
    "vertex_normals",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShapePrior:
    """A linear (PCA) model of meshes on the template's topology.

    Attributes:
        mean: ``(V, 3)`` mean mesh (dataset unit).
        basis: ``(K, V, 3)`` principal components times their standard deviation.
        unit: the dataset unit.
    """

    mean: np.ndarray
    basis: np.ndarray
    unit: str = "m"

    @property
    def num_vertices(self) -> int:
        """``V``."""
        return int(self.mean.shape[0])

    @property
    def components(self) -> int:
        """``K``."""
        return int(self.basis.shape[0])

    def shape(self, u: np.ndarray) -> np.ndarray:
        """``(V, 3)`` mesh of the whitened coefficients ``u`` ``(K,)``."""
        return self.mean + np.tensordot(u, self.basis, axes=1)

    @classmethod
    def from_meshes(
        cls, vertices: np.ndarray, *, components: int = 64, unit: str = "m"
    ) -> ShapePrior:
        """PCA of registered meshes ``(N, V, 3)`` keeping ``components`` components."""
        x = np.asarray(vertices, np.float64)
        if x.ndim != 3 or x.shape[2] != 3 or len(x) < 2:
            raise ConfigError(f"a shape prior needs meshes (N >= 2, V, 3), got {x.shape}")
        mean = x.mean(axis=0)
        centred = (x - mean).reshape(len(x), -1)  # (N, 3V)
        # the SVD through the (N, N) Gram matrix: N is much smaller than 3V
        eigval, eigvec = np.linalg.eigh(centred @ centred.T)
        order = np.argsort(eigval)[::-1]
        singular = np.sqrt(np.clip(eigval[order], 0.0, None))
        k = min(int(components), int(np.sum(singular > singular[0] * 1e-6)))
        vt = (eigvec[:, order[:k]].T @ centred) / singular[:k, None]  # (k, 3V) unit rows
        std = singular[:k] / np.sqrt(len(x) - 1)
        basis = (vt * std[:, None]).reshape(k, *mean.shape)
        return cls(mean=mean, basis=basis, unit=unit)

    @classmethod
    def from_dataset(
        cls, dataset, *, rows: np.ndarray | None = None, components: int = 64, limit: int = 2000
    ) -> ShapePrior:
        """PCA of a prepared dataset's rows (default: the train split of the default protocol).

        Args:
            dataset: a :class:`~deep3dmm.data.PreparedDataset`.
            rows: the rows to use; default the ``interpolation`` train split (test rows
                never enter the prior).
            components: components kept.
            limit: at most this many rows (evenly strided) enter the SVD.
        """
        from deep3dmm.data.splits import make_split, strided_rows

        if rows is None:
            rows = make_split(dataset).train
        rows = np.asarray(rows, np.int64)
        if len(rows) > limit:
            rows = strided_rows(rows, limit)
        meshes = np.asarray(dataset.vertices[np.sort(rows)], np.float64)
        return cls.from_meshes(meshes, components=components, unit=dataset.unit)


def load_shape_prior(path, *, components: int = 64) -> ShapePrior:
    """A shape prior from a run folder (its dataset's train split) or a prepared dataset.

    Raises:
        ConfigError: neither a run nor a prepared dataset.
    """
    from pathlib import Path

    from deep3dmm.data import PreparedDataset

    path = Path(path)
    if (path / "checkpoint.pt").is_file():
        from deep3dmm.train import load_run

        run = load_run(path)
        return ShapePrior.from_dataset(
            run.open_dataset(), rows=np.asarray(run.split["train"]), components=components
        )
    if (path / "meta.json").is_file():
        return ShapePrior.from_dataset(PreparedDataset(path), components=components)
    raise ConfigError(
        f"{path} is neither a run folder nor a prepared dataset",
        fix="pass a folder written by `deep3dmm train` or `deep3dmm data ...`",
    )


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``(V, 3)`` area-weighted unit vertex normals (vectorised scatter-add)."""
    corners = vertices[faces]  # (F, 3, 3)
    face_n = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals = np.zeros_like(vertices)
    np.add.at(normals, faces.reshape(-1), np.repeat(face_n, 3, axis=0))
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def point_normals(points: np.ndarray, faces: np.ndarray | None, normals=None, *, k: int = 12):
    """``(P, 3)`` unit normals of a scan: its vertex normals (mesh), its own, or local PCA.

    For a point cloud without normals, the normal of each point is the least-variance
    direction of its ``k`` nearest neighbours (unoriented: every use here is sign-free).
    """
    from scipy.spatial import cKDTree

    if faces is not None and len(faces):
        return vertex_normals(np.asarray(points, np.float64), np.asarray(faces))
    if normals is not None:
        return np.asarray(normals, np.float64)
    _, idx = cKDTree(points).query(points, k=min(k, len(points)))
    near = points[idx] - points[idx].mean(axis=1, keepdims=True)  # (P, k, 3)
    _, vectors = np.linalg.eigh(np.einsum("pki,pkj->pij", near, near))
    return vectors[:, :, 0]


def _skew_rows(points: np.ndarray) -> np.ndarray:
    """``(V, 3, 3)`` matrices ``-[x]_x`` so that ``-[x]_x @ w = w x x`` (rotation Jacobian)."""
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    zero = np.zeros_like(x)
    return np.stack(
        [
            np.stack([zero, z, -y], axis=1),
            np.stack([-z, zero, x], axis=1),
            np.stack([y, -x, zero], axis=1),
        ],
        axis=1,
    )


def _rotation(w: np.ndarray) -> np.ndarray:
    """Rodrigues: axis-angle ``(3,)`` -> ``(3, 3)``."""
    angle = float(np.linalg.norm(w))
    if angle < 1e-12:
        return np.eye(3)
    k = w / angle
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


def fit_prior_to_scan(
    prior: ShapePrior,
    faces: np.ndarray,
    points: np.ndarray,
    normals: np.ndarray,
    *,
    start: np.ndarray | None = None,
    landmark_matrix=None,
    landmarks: np.ndarray | None = None,
    landmark_weight: float = 1.0,
    sigma: float = 1e-3,
    iterations: int = 20,
    trim: float = 3.0,
    two_sided: bool = True,
    tolerance: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Fit the prior (coefficients + a rigid correction) to a scan in the model's frame.

    Args:
        prior: the shape model.
        faces: ``(F, 3)`` template triangles (for the model's normals).
        points: ``(P, 3)`` scan points, already brought to the model's frame.
        normals: ``(P, 3)`` unit scan normals.
        start: ``(V, 3)`` a first guess of the mesh (e.g. a non-rigid ICP result); its
            projection onto the model starts the fit. Default: the mean.
        landmark_matrix: sparse ``(L, V)`` landmark interpolation, or ``None``.
        landmarks: ``(L, 3)`` the scan's landmarks in the model's frame.
        landmark_weight: weight of a landmark relative to one point pair.
        sigma: residual scale (dataset unit) against the unit prior on ``u``.
        iterations: Gauss-Newton steps (correspondences refreshed each step).
        trim: drop pairs farther than ``trim`` x the median pair distance.
        two_sided: also match scan points to the model (off for partial scans, whose
            missing part has no scan points: then only model -> scan pairs within the
            trimmed distance count).
        tolerance: stop when the largest vertex update is below this fraction of sigma.

    Returns:
        ``(vertices (V, 3), u (K,), iterations run)``.
    """
    from scipy.spatial import cKDTree

    k = prior.components
    basis = prior.basis.transpose(1, 2, 0)  # (V, 3, K)
    if start is None:
        u = np.zeros(k)
    else:
        flat = prior.basis.reshape(k, -1)
        u = np.linalg.lstsq(flat.T, (np.asarray(start) - prior.mean).reshape(-1), rcond=None)[0]
    rotation, translation = np.eye(3), np.zeros(3)
    tree = cKDTree(points)
    use_landmarks = landmark_matrix is not None and landmarks is not None
    done = 0
    current = prior.shape(u)
    for step_number in range(1, iterations + 1):
        done = step_number
        shape = prior.shape(u)
        current = shape @ rotation.T + translation
        jac = np.concatenate(  # (V, 3, K + 6): d vertex / d (u, w, t)
            [
                np.einsum("ij,vjk->vik", rotation, basis),
                _skew_rows(current - current.mean(axis=0)),
                np.broadcast_to(np.eye(3), (len(current), 3, 3)),
            ],
            axis=2,
        )
        rows, rhs = [], []
        # model vertex -> nearest scan point, point-to-plane with the scan normal
        dist, idx = tree.query(current)
        keep = dist <= trim * np.median(dist)
        m = normals[idx[keep]]
        rows.append(np.einsum("vc,vck->vk", m, jac[keep]))
        rhs.append(np.einsum("vc,vc->v", m, points[idx[keep]] - current[keep]))
        if two_sided:
            model_n = vertex_normals(current, faces)
            dist2, near = cKDTree(current).query(points)
            keep2 = dist2 <= trim * np.median(dist2)
            n = model_n[near[keep2]]
            rows.append(np.einsum("pc,pck->pk", n, jac[near[keep2]]))
            rhs.append(np.einsum("pc,pc->p", n, points[keep2] - current[near[keep2]]))
        a = np.concatenate(rows) / sigma
        b = np.concatenate(rhs) / sigma
        if use_landmarks:
            lj = np.asarray((landmark_matrix @ jac.reshape(len(current), -1)).reshape(-1, 3, k + 6))
            lr = landmarks - landmark_matrix @ current
            scale = np.sqrt(landmark_weight) / sigma
            a = np.concatenate([a, lj.reshape(-1, k + 6) * scale])
            b = np.concatenate([b, lr.reshape(-1) * scale])
        normal = a.T @ a
        normal[np.arange(k), np.arange(k)] += 1.0  # the N(0, I) prior on u
        step = np.linalg.solve(normal, a.T @ b - np.concatenate([u, np.zeros(6)]))
        u = u + step[:k]
        rotation = _rotation(step[k : k + 3]) @ rotation
        centre = current.mean(axis=0)
        # the rotation acted about the centroid: fold it into the translation
        translation = _rotation(step[k : k + 3]) @ (translation - centre) + centre + step[k + 3 :]
        moved = prior.shape(u) @ rotation.T + translation
        if np.abs(moved - current).max() < tolerance * sigma:
            current = moved
            break
        current = moved
    return current, u, done


def _laplacian(num_vertices: int, faces: np.ndarray):
    """Sparse uniform graph Laplacian ``(V, V)``: ``I - D^{-1} A``."""
    import scipy.sparse as sp

    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])
    adj = sp.csr_matrix(
        (np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(num_vertices, num_vertices)
    )
    adj.data[:] = 1.0
    degree = np.asarray(adj.sum(axis=1)).reshape(-1)
    return sp.identity(num_vertices) - sp.diags(1.0 / np.maximum(degree, 1)) @ adj


def refine_along_normals(
    vertices: np.ndarray,
    faces: np.ndarray,
    points: np.ndarray,
    normals: np.ndarray,
    *,
    smoothness: float = 10.0,
    max_offset: float | None = None,
    iterations: int = 2,
) -> np.ndarray:
    """Move each vertex along its normal onto the scan (smooth offsets, no sliding).

    Args:
        vertices: ``(V, 3)`` mesh close to the scan.
        faces: ``(F, 3)`` triangles.
        points: ``(P, 3)`` scan points, same frame.
        normals: ``(P, 3)`` unit scan normals.
        smoothness: ``mu``, weight of the Laplacian of the offset field.
        max_offset: vertices whose nearest scan point is farther than this get no data
            term (holes, cropped parts); default 3 x the median distance.
        iterations: re-match and solve this many times.

    Returns:
        ``(V, 3)`` refined vertices.
    """
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve
    from scipy.spatial import cKDTree

    tree = cKDTree(points)
    lap = _laplacian(len(vertices), faces)
    system_reg = smoothness * (lap.T @ lap)
    out = np.asarray(vertices, np.float64).copy()
    for _ in range(iterations):
        n = vertex_normals(out, faces)
        dist, idx = tree.query(out)
        limit = max_offset if max_offset is not None else 3.0 * np.median(dist)
        m = normals[idx]
        along = np.einsum("vc,vc->v", m, n)  # cos between the normals
        offset = np.einsum("vc,vc->v", m, points[idx] - out) / np.where(
            np.abs(along) > 0.3, along, np.inf
        )
        weight = ((dist <= limit) & (np.abs(along) > 0.3)).astype(np.float64)
        system = sp.diags(weight) + system_reg
        d = spsolve(system.tocsc(), weight * offset)
        out = out + d[:, None] * n
    return out


def deform_to_scan(
    vertices: np.ndarray,
    faces: np.ndarray,
    points: np.ndarray,
    normals: np.ndarray,
    *,
    landmark_matrix=None,
    landmarks: np.ndarray | None = None,
    landmark_weight: float = 1.0,
    smoothness: float = 1.0,
    iterations: int = 5,
    trim: float = 3.0,
) -> np.ndarray:
    r"""A smooth 3D displacement field onto the scan: point-to-plane data, landmarks, bi-Laplacian.

    .. math::
        \min_D \sum_i w_i (m_i^\top (X_i + D_i - p_i))^2 + \lambda_l \sum_l \lVert (M(X + D))_l
        - q_l \rVert^2 + \mu \lVert L D \rVert^2

    Only landmarks and smoothness move vertices along the surface; the data term pulls
    along the scan normal, so no vertex slides to its nearest scan point.

    Returns:
        ``(V, 3)`` deformed vertices.
    """
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve
    from scipy.spatial import cKDTree

    v = len(vertices)
    tree = cKDTree(points)
    lap = _laplacian(v, faces)
    reg = smoothness * (lap.T @ lap)
    reg3 = sp.kron(reg, sp.identity(3), format="csr")  # (3V, 3V), xyz interleaved
    base = np.asarray(vertices, np.float64)
    d = np.zeros_like(base)
    rows = np.repeat(np.arange(v), 3)
    cols = np.arange(3 * v)
    for _ in range(iterations):
        cur = base + d
        dist, idx = tree.query(cur)
        keep = (dist <= trim * np.median(dist)).astype(np.float64)
        m = normals[idx]  # (V, 3)
        # row i of the data Jacobian: m_i^T acting on D_i (one row per vertex, 3 columns)
        a = sp.csr_matrix((m.reshape(-1), (rows, cols)), shape=(v, 3 * v))
        r = np.einsum("vc,vc->v", m, points[idx] - base)  # target of m_i^T D_i
        system = a.T @ sp.diags(keep) @ a + reg3
        rhs = a.T @ (keep * r)
        if landmark_matrix is not None and landmarks is not None:
            lm3 = sp.kron(landmark_matrix, sp.identity(3), format="csr")  # (3L, 3V)
            target = (landmarks - landmark_matrix @ base).reshape(-1)
            system = system + landmark_weight * (lm3.T @ lm3)
            rhs = rhs + landmark_weight * (lm3.T @ target)
        d = spsolve(system.tocsc(), rhs).reshape(v, 3)
    return base + d
