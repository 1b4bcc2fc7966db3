"""The mesh hierarchy every model is built on: levels, D/U matrices, adjacency, Laplacians, spirals.

COMA (Ranjan et al., ECCV 2018) builds levels by quadric edge collapse and maps between
them with a selection matrix ``D`` (down) and barycentric matrix ``U`` (up); spectral
layers use the rescaled Laplacian of each level, spiral layers (Neural3DMM, SpiralNet++)
the spiral indices of each level. Building is deterministic; results are cached under a
content hash of the template and every parameter (diffusion-net style), so a changed
template or parameter can never reuse a stale cache.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from deep3dmm.atomic import atomic_path
from deep3dmm.errors import ConfigError, Deep3DMMError
from deep3dmm.mesh.config import HierarchyConfig
from deep3dmm.mesh.decimation import down_matrix, quadric_decimation
from deep3dmm.mesh.laplacian import scaled_laplacian
from deep3dmm.mesh.spirals import spiral_indices
from deep3dmm.mesh.template import Template, mesh_hash
from deep3dmm.mesh.upsampling import up_matrix

__all__ = ["MeshHierarchy", "HIERARCHY_FORMAT", "default_cache_dir"]

logger = logging.getLogger(__name__)

# Bump when the construction changes: old caches then stop matching.
HIERARCHY_FORMAT = 1
#: Version of the construction (decimation use, D/U, spirals, Laplacians): bump it whenever
#: the same inputs would give another hierarchy, so caches built by older code are not reused.
#: 2: closest points by deep3dmm.mesh.closest_point (U rows that round-off decides may differ).
HIERARCHY_CODE_VERSION = 2
_SPARSE = ("down", "up", "adjacency", "laplacian")


def default_cache_dir() -> Path:
    """``$DEEP3DMM_CACHE/hierarchies`` (default root ``~/.cache/deep3dmm``)."""
    root = os.environ.get("DEEP3DMM_CACHE") or Path.home() / ".cache" / "deep3dmm"
    return Path(root) / "hierarchies"


def _as_template(template: Template | tuple[np.ndarray, np.ndarray]) -> Template:
    if isinstance(template, Template):
        return template
    try:
        vertices, faces = template
    except (TypeError, ValueError):
        raise ConfigError(
            f"expected a Template or a (vertices, faces) tuple, got {type(template).__name__}",
            fix="pass deep3dmm.mesh.Template.load(path)",
        ) from None
    return Template(vertices, faces)


def _config(config: HierarchyConfig | None, options: dict) -> HierarchyConfig:
    """``config`` (default :class:`HierarchyConfig`) with keyword ``options`` replacing fields."""
    if config is not None and not isinstance(config, HierarchyConfig):
        raise ConfigError(
            f"expected a HierarchyConfig, got {type(config).__name__}",
            fix="pass the parameters as keywords (factors=(4, 4, 4, 4)) or a HierarchyConfig",
        )
    if config is None:
        return HierarchyConfig.from_options(options)
    if options:
        return HierarchyConfig.from_options({**config.to_dict(), **options})
    return config


def _decimator_version() -> str:
    """The installed OpenMesh version (the quadric decimator), or "unknown"."""
    from importlib import metadata

    try:
        return metadata.version("openmesh")
    except metadata.PackageNotFoundError:
        return "unknown"


def _content_hash(template: Template, params: dict) -> str:
    """Cache key: template arrays, result-changing params, format, code and decimator versions."""
    key = dict(params)
    if key.get("reference_vertices") != "random":
        key.pop("seed", None)  # nothing random is drawn: the seed cannot change the result
    versions = {"code": HIERARCHY_CODE_VERSION, "openmesh": _decimator_version()}
    return mesh_hash(
        template.vertices,
        template.faces,
        HIERARCHY_FORMAT,
        json.dumps(key, sort_keys=True),
        json.dumps(versions, sort_keys=True),
    )


def _random_references(template: Template, seed: int) -> list[int]:
    """One random vertex per connected component (of the faces' graph, isolated ones skipped)."""
    n_components, labels = connected_components(template.adjacency, directed=False)
    degree = np.diff(template.adjacency.indptr)
    rng = np.random.default_rng(seed)
    picks = []
    for component in range(n_components):
        members = np.flatnonzero((labels == component) & (degree > 0))
        if len(members):
            picks.append(int(rng.choice(members)))
    return picks


class MeshHierarchy:
    """Levels of a template mesh with their mapping matrices and convolution operators.

    Build with :meth:`build` (or :meth:`cached`); the attributes are lists over levels
    ``l = 0 .. num_levels - 1`` (``down``/``up`` over ``l = 0 .. num_levels - 2``).

    Attributes:
        vertices: ``(n_l, 3) float32`` positions; level 0 is the template.
        faces: ``(F_l, 3) int64`` triangles.
        down: ``D_l`` ``(n_{l+1}, n_l)`` float32 CSR, one 1 per row (kept vertices).
        up: ``U_l`` ``(n_l, n_{l+1})`` float32 CSR, barycentric rows summing to 1.
        adjacency: ``(n_l, n_l)`` float32 CSR, symmetric 0/1.
        laplacian: ``(n_l, n_l)`` float32 CSR, ``-D^{-1/2} A D^{-1/2}`` (eigs in [-1, 1]).
        spirals: ``(n_l, L_l)`` LongTensor, column 0 the vertex itself.
        params: the build parameters (per-level lists; JSON-serialisable).
        hash: content hash of the template and the parameters (the cache file name).
        build_seconds: per-level build time in seconds (level 0: its spirals/Laplacian).
    """

    def __init__(
        self,
        *,
        vertices: list[np.ndarray],
        faces: list[np.ndarray],
        down: list[sp.csr_matrix],
        up: list[sp.csr_matrix],
        adjacency: list[sp.csr_matrix],
        laplacian: list[sp.csr_matrix],
        spirals: list[torch.Tensor],
        params: dict,
        hash: str,
        build_seconds: list[float] | None = None,
    ):
        self.vertices = vertices
        self.faces = faces
        self.down = down
        self.up = up
        self.adjacency = adjacency
        self.laplacian = laplacian
        self.spirals = spirals
        self.params = params
        self.hash = hash
        self.build_seconds = build_seconds or [0.0] * len(vertices)

    @property
    def config(self) -> HierarchyConfig:
        """The parameters this hierarchy was built with."""
        return HierarchyConfig.from_params(self.params)

    @property
    def num_levels(self) -> int:
        """Number of levels, ``len(factors) + 1``."""
        return len(self.vertices)

    @property
    def num_vertices(self) -> list[int]:
        """Vertex count of every level."""
        return [len(v) for v in self.vertices]

    @property
    def num_faces(self) -> list[int]:
        """Face count of every level."""
        return [len(f) for f in self.faces]

    def __repr__(self) -> str:
        return (
            f"MeshHierarchy(num_vertices={self.num_vertices}, factors={self.params['factors']}, "
            f"spiral_length={self.params['spiral_length']}, "
            f"spiral_dilation={self.params['spiral_dilation']}, hash={self.hash!r})"
        )

    # ------------------------------------------------------------------ build
    @staticmethod
    def compute_hash(
        template: Template | tuple[np.ndarray, np.ndarray],
        config: HierarchyConfig | None = None,
        **options: object,
    ) -> str:
        """The content hash :meth:`build` would give (the cache key).

        It covers the template arrays, the normalised parameters that change the result
        (``seed`` only with ``reference_vertices="random"``, the one random step), the file
        format, :data:`HIERARCHY_CODE_VERSION` and the installed OpenMesh version (the
        decimator: another version may keep other vertices).
        """
        template = _as_template(template)
        return _content_hash(template, _config(config, options).params(template.num_vertices))

    @classmethod
    def build(
        cls,
        template: Template | tuple[np.ndarray, np.ndarray],
        config: HierarchyConfig | None = None,
        **options: object,
    ) -> MeshHierarchy:
        """Build the hierarchy of a template.

        Args:
            template: a :class:`~deep3dmm.mesh.Template` or a ``(vertices, faces)`` tuple.
            config: the parameters (default :class:`~deep3dmm.mesh.HierarchyConfig`).
            **options: fields of :class:`~deep3dmm.mesh.HierarchyConfig` replacing those of
                ``config`` (``factors=(4, 2), spiral_length=(9, 7, 5)``).

        Raises:
            ConfigError: an unknown or invalid parameter.
        """
        template = _as_template(template)
        params = _config(config, options).params(template.num_vertices)
        digest = _content_hash(template, params)
        start = time.perf_counter()
        kept, coarse_faces = quadric_decimation(
            template.vertices, template.faces, params["factors"]
        )
        vertices, faces = [template.vertices], [template.faces]
        down, up = [], []
        for level, (keep, level_faces) in enumerate(zip(kept, coarse_faces)):
            down.append(down_matrix(keep, len(vertices[level])))
            vertices.append(vertices[level][keep])
            faces.append(level_faces)
            up.append(up_matrix(vertices[level], vertices[level + 1], level_faces, keep))
        decimation_seconds = time.perf_counter() - start

        reference = params["reference_vertices"]
        if reference == "random":
            reference = _random_references(template, params["seed"])
        adjacency, laplacian, spirals, seconds = [], [], [], []
        for level in range(len(vertices)):
            tick = time.perf_counter()
            adjacency.append(Template(vertices[level], faces[level]).adjacency)
            laplacian.append(scaled_laplacian(adjacency[level]))
            level_reference = None
            if reference:
                _, level_reference = cKDTree(vertices[level]).query(
                    template.vertices[np.asarray(reference)]
                )
            spirals.append(
                spiral_indices(
                    vertices[level],
                    faces[level],
                    length=params["spiral_length"][level],
                    dilation=params["spiral_dilation"][level],
                    reference_vertices=level_reference,
                )
            )
            seconds.append(time.perf_counter() - tick)
        seconds[0] += decimation_seconds
        hierarchy = cls(
            vertices=vertices,
            faces=faces,
            down=down,
            up=up,
            adjacency=adjacency,
            laplacian=laplacian,
            spirals=spirals,
            params=params,
            hash=digest,
            build_seconds=seconds,
        )
        logger.info("built mesh hierarchy %s in %.2f s", hierarchy.num_vertices, sum(seconds))
        return hierarchy

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike) -> None:
        """Write the hierarchy to one ``.npz`` file, atomically."""
        arrays: dict[str, np.ndarray] = {
            "format": np.array(HIERARCHY_FORMAT),
            "hash": np.array(self.hash),
            "params": np.array(json.dumps(self.params, sort_keys=True)),
            "num_levels": np.array(self.num_levels),
            "build_seconds": np.asarray(self.build_seconds, dtype=np.float64),
        }
        for level in range(self.num_levels):
            arrays[f"vertices_{level}"] = self.vertices[level]
            arrays[f"faces_{level}"] = self.faces[level]
            arrays[f"spirals_{level}"] = self.spirals[level].numpy()
        for name in _SPARSE:
            for level, matrix in enumerate(getattr(self, name)):
                arrays[f"{name}_{level}_data"] = matrix.data
                arrays[f"{name}_{level}_indices"] = matrix.indices
                arrays[f"{name}_{level}_indptr"] = matrix.indptr
                arrays[f"{name}_{level}_shape"] = np.asarray(matrix.shape)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> MeshHierarchy:
        """Read a hierarchy written by :meth:`save`.

        Raises:
            Deep3DMMError: the file is missing, not a hierarchy, corrupt or of another format.
        """
        path = Path(path)
        fix = "rebuild it with `deep3dmm hierarchy TEMPLATE --out FILE`"
        if not path.is_file():
            raise Deep3DMMError("hierarchy file not found", path=path, fix=fix)
        try:
            with np.load(path, allow_pickle=False) as data:
                version = int(data["format"])
                if version != HIERARCHY_FORMAT:
                    raise Deep3DMMError(
                        f"hierarchy format {version}, this deep3dmm reads {HIERARCHY_FORMAT}",
                        path=path,
                        fix=fix,
                    )
                num_levels = int(data["num_levels"])
                fields: dict = {name: [] for name in _SPARSE}
                for name in _SPARSE:
                    count = num_levels - 1 if name in ("down", "up") else num_levels
                    for level in range(count):
                        key = f"{name}_{level}"
                        fields[name].append(
                            sp.csr_matrix(
                                (
                                    data[f"{key}_data"],
                                    data[f"{key}_indices"],
                                    data[f"{key}_indptr"],
                                ),
                                shape=tuple(int(s) for s in data[f"{key}_shape"]),
                            )
                        )
                return cls(
                    vertices=[data[f"vertices_{level}"] for level in range(num_levels)],
                    faces=[data[f"faces_{level}"] for level in range(num_levels)],
                    spirals=[
                        torch.from_numpy(data[f"spirals_{level}"]) for level in range(num_levels)
                    ],
                    params=json.loads(str(data["params"])),
                    hash=str(data["hash"]),
                    build_seconds=data["build_seconds"].tolist(),
                    **fields,
                )
        except Deep3DMMError:
            raise
        except Exception as exc:  # zip/npz/key/value errors: all mean an unreadable file
            raise Deep3DMMError(
                f"not a readable mesh hierarchy ({type(exc).__name__}: {exc})", path=path, fix=fix
            ) from exc

    @classmethod
    def cached(
        cls,
        template: Template | tuple[np.ndarray, np.ndarray],
        config: HierarchyConfig | None = None,
        *,
        cache_dir: str | os.PathLike | None = None,
        **options: object,
    ) -> MeshHierarchy:
        """Load the hierarchy from ``cache_dir/<hash>.npz``, or build and save it there.

        The file name is the content hash of the template's vertices and faces and every
        (normalised) parameter, so any change builds a new file. An unreadable cache
        file is rebuilt.

        Args:
            template: a :class:`~deep3dmm.mesh.Template` or ``(vertices, faces)``.
            config: the parameters (default :class:`~deep3dmm.mesh.HierarchyConfig`).
            cache_dir: default :func:`default_cache_dir` (``$DEEP3DMM_CACHE/hierarchies``).
            **options: fields replacing those of ``config``, as in :meth:`build`.
        """
        template = _as_template(template)
        config = _config(config, options)
        digest = cls.compute_hash(template, config)
        path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        path = path / f"{digest}.npz"
        if path.is_file():
            try:
                hierarchy = cls.load(path)
                if hierarchy.hash == digest:
                    logger.debug("loaded mesh hierarchy from %s", path)
                    return hierarchy
                logger.warning("cache file %s holds hash %s: rebuilding", path, hierarchy.hash)
            except Deep3DMMError as exc:
                logger.warning("unreadable hierarchy cache (%s): rebuilding", exc)
        hierarchy = cls.build(template, config)
        hierarchy.save(path)
        logger.info("cached mesh hierarchy at %s", path)
        return hierarchy

    # ------------------------------------------------------------------ summary
    def table(self) -> list[str]:
        """Per-level summary lines: vertices, faces, D/U non-zeros, spiral shape, seconds."""
        lines = [
            f"{'level':>5} {'vertices':>8} {'faces':>6} {'D nnz':>6} {'U nnz':>6} "
            f"{'spiral':>8} {'seconds':>7}"
        ]
        for level in range(self.num_levels):
            d_nnz = self.down[level].nnz if level < self.num_levels - 1 else "-"
            u_nnz = self.up[level].nnz if level < self.num_levels - 1 else "-"
            length = self.spirals[level].shape[1]
            dilation = self.params["spiral_dilation"][level]
            lines.append(
                f"{level:>5} {self.num_vertices[level]:>8} {self.num_faces[level]:>6} "
                f"{d_nnz:>6} {u_nnz:>6} {f'{length}x{dilation}':>8} "
                f"{self.build_seconds[level]:>7.3f}"
            )
        return lines
