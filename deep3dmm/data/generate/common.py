r"""Shared machinery of the anny-based generators: model loading, sampling, batching, writing.

The generators build registered-mesh datasets from `anny
<https://github.com/naver/anny>`_ (Brégier et al., "Human Mesh Modeling for Anny
Body", ECCV 2026; Apache-2.0 code, CC0 MakeHuman data). A mesh is

.. math::

    M(\beta, \delta, \alpha, \theta) = \mathrm{LBS}\big(T + B_P(\beta) + B_L \delta
        + B_F \alpha,\ \theta\big)\, R^\top + o

with phenotypes :math:`\beta` (gender, age, ...), local shape changes :math:`\delta`,
facial actions :math:`\alpha`, bone rotations :math:`\theta`, linear blend skinning,
and a fixed rigid map (:math:`R`, :math:`o`) into the dataset frame (y up, looking
along +z, like COMA and DFAUST). A dataset is the product subjects x sequences x frames:
subjects fix :math:`(\beta, \delta)`, sequences move :math:`(\alpha, \theta)` from
neutral to a peak and back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from tqdm.auto import tqdm

from deep3dmm.data.prepared import IndexRow, PreparedDataset, PreparedDatasetWriter
from deep3dmm.errors import ConfigError
from deep3dmm.mesh.template import Template

__all__ = [
    "ADULT_PHENOTYPES",
    "AnnyMesher",
    "GENERATOR_VERSION",
    "Plan",
    "Cast",
    "anny_version",
    "generator_params",
    "load_anny",
    "rotation_matrices",
    "sample_local_changes",
    "sample_phenotypes",
    "sample_subjects",
    "select_sequences",
    "start_sequences",
    "subject_grid",
    "write_plan",
    "write_sequences",
]

logger = logging.getLogger(__name__)

# Bumped whenever generated meshes change for the same parameters (keys the default cache).
GENERATOR_VERSION = 4

# Plausible adult ranges of anny's phenotypes (all in [0, 1]). Age anchors are
# newborn -1/3, baby 0, child 1/3, young 2/3, old 1: [0.6, 0.95] is ~ 20 to 75 years.
# Gender is bimodal (mostly male or mostly female); race weights are Dirichlet samples.
ADULT_PHENOTYPES = {
    "age": (0.6, 0.95),
    "muscle": (0.3, 0.75),
    "weight": (0.3, 0.7),
    "height": (0.25, 0.85),
    "proportions": (0.3, 0.7),
    "cupsize": (0.3, 0.7),
    "firmness": (0.3, 0.7),
}

# anny meshes are z up and look along -y; datasets are y up and look along +z.
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def anny_version() -> str:
    """Installed anny version (part of every dataset's parameters)."""
    import anny

    return anny.__version__


@contextlib.contextmanager
def _anny_cache_lock():
    """Hold an exclusive lock on anny's cache folder while a model is built or loaded.

    anny writes its cache files in place; two processes building the same model at once
    (parallel tests, two commands) could read a half-written file. POSIX only (elsewhere
    a no-op).
    """
    try:
        import fcntl

        from anny.paths import get_anny_cache_path
    except ImportError:
        yield
        return
    folder = Path(get_anny_cache_path())
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".deep3dmm.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@lru_cache(maxsize=8)
def load_anny(kind: str, local_changes: tuple[str, ...]):
    """The anny model of one kind, float32, linear blend skinning, in eval mode.

    The first use of a configuration builds anny's cache under ``~/.cache/anny``
    (``ANNY_CACHE_DIR``): the first model parses the MakeHuman assets (shared), each further
    one builds its own part (times: docs/data.md); a file lock serialises builds.

    Args:
        kind: ``"head"``, ``"hand"`` (right hand) or ``"body"``.
        local_changes: anny local-change labels the model exposes.
    """
    import anny
    from anny.models.model_data import RigConfig

    common = dict(
        local_changes=list(local_changes),
        phenotypes="all",
        skinning_method="lbs",
        pose_parameterization="local-ref",
    )
    if kind == "head":
        # makehuman head rig without the eye and tongue bones (their meshes are dropped).
        rig = "makehuman-head-noeyes-notongue"
        config = dict(rig=rig, topology="head-noeyes-notongue", facial_actions="all")
    elif kind == "hand":
        rig = RigConfig(base_rig="anny", root_identity_orientation=False, subtree_root="wrist.R")
        config = dict(rig=rig, topology="hand.R")
    elif kind == "body":
        config = dict(rig="anny", topology="anny-noeyes-notongue")
    else:
        raise ConfigError(f"unknown anny model kind {kind!r}", fix="use head, hand or body")
    logger.info("loading the anny %s model (its first use builds a cache: 1-2 min)", kind)
    start = time.perf_counter()
    with (
        _anny_cache_lock(),
        warnings.catch_warnings(),
        open(os.devnull, "w") as devnull,
        contextlib.redirect_stdout(devnull),
    ):
        warnings.simplefilter("ignore")
        model = anny.Anny(**config, **common)
    model = model.to(torch.float32).eval()
    logger.info("anny %s model ready in %.1f s", kind, time.perf_counter() - start)
    return model


def rotation_matrices(axis_angles: np.ndarray) -> np.ndarray:
    """Rodrigues' formula: rotation matrices of axis-angle vectors.

    Args:
        axis_angles: ``(..., 3)`` rotation vectors (radians).

    Returns:
        ``(..., 3, 3)`` rotation matrices.
    """
    axis_angles = np.asarray(axis_angles, dtype=np.float64)
    angle = np.linalg.norm(axis_angles, axis=-1)[..., None, None]
    safe = np.where(angle > 1e-12, angle, 1.0)
    k = axis_angles / safe[..., 0]
    zero = np.zeros_like(k[..., 0])
    skew = np.stack(
        [
            np.stack([zero, -k[..., 2], k[..., 1]], -1),
            np.stack([k[..., 2], zero, -k[..., 0]], -1),
            np.stack([-k[..., 1], k[..., 0], zero], -1),
        ],
        -2,
    )
    eye = np.broadcast_to(np.eye(3), skew.shape)
    return eye + np.sin(angle) * skew + (1.0 - np.cos(angle)) * (skew @ skew)


def sample_phenotypes(
    rng: np.random.Generator,
    count: int,
    labels: Sequence[str],
    *,
    ranges: dict[str, tuple[float, float]] | None = None,
) -> np.ndarray:
    """Phenotypes of ``count`` adults, in the order of ``labels`` (anny's phenotype labels).

    Args:
        rng: the random generator (consumed in a fixed order: deterministic per seed).
        count: number of subjects.
        labels: anny's phenotype labels (the output columns).
        ranges: overrides of :data:`ADULT_PHENOTYPES` (e.g. a narrower height for heads,
            since anny scales the head with the body height).

    Returns:
        ``(count, len(labels))`` float32 values in [0, 1].
    """
    bounds = {**ADULT_PHENOTYPES, **(ranges or {})}
    values = {name: rng.uniform(low, high, count) for name, (low, high) in bounds.items()}
    female = rng.random(count) < 0.5
    values["gender"] = np.where(female, rng.uniform(0.8, 1.0, count), rng.uniform(0.0, 0.2, count))
    race = rng.dirichlet(np.full(3, 0.7), count)
    values.update(african=race[:, 0], asian=race[:, 1], caucasian=race[:, 2])
    return np.stack([values[name] for name in labels], axis=1).astype(np.float32)


def sample_local_changes(
    rng: np.random.Generator, count: int, labels: Sequence[str], *, scale: float
) -> np.ndarray:
    """Local shape changes in [-1, 1], left/right pairs nearly symmetric.

    A left label (``l-...``) takes its right twin's value plus a small asymmetry, so
    faces, hands and bodies stay plausibly symmetric.

    Returns:
        ``(count, len(labels))`` float32.
    """
    values = np.clip(rng.normal(0.0, scale, (count, len(labels))), -1.0, 1.0)
    for i, label in enumerate(labels):
        if label.startswith("l-") and "r-" + label[2:] in labels:
            twin = labels.index("r-" + label[2:])
            values[:, i] = np.clip(values[:, twin] + rng.normal(0, 0.1 * scale, count), -1, 1)
    return values.astype(np.float32)


def _model_labels(kind: str, what: str) -> property:
    """A property: a copy of the anny model's ``<kind>_labels`` list (``what`` they name)."""
    name = f"{kind}_labels"
    return property(
        lambda self: list(getattr(self.model, name)),
        doc=f"Anny {kind.replace('_', '-')} labels, {what}.",
    )


class AnnyMesher:
    """Batched anny forward pass mapped to a dataset's frame (and vertex subset).

    Args:
        model: an ``anny.Anny`` model (see :func:`load_anny`).
        keep: ``(V,)`` model vertex indices kept, in order (None: all).
        rotation: ``(3, 3)`` rotation into the dataset frame.
        offset: ``(3,)`` translation applied after the rotation.
        pose_parameterization: how ``rotations`` are read (anny's ``"local-ref"``:
            world-aligned axes at each joint, or ``"local-bone"``: each bone's own axes).
    """

    def __init__(
        self,
        model,
        *,
        keep: np.ndarray | None = None,
        rotation: np.ndarray = Z_UP_TO_Y_UP,
        offset: np.ndarray | None = None,
        pose_parameterization: str = "local-ref",
    ):
        self.model = model
        self.pose_parameterization = pose_parameterization
        faces = model.get_triangular_faces().cpu().numpy().astype(np.int64)  # (F_model, 3)
        n_model = model.template_vertices.shape[0]
        if keep is None:
            keep = np.arange(n_model)
        keep = np.asarray(keep, dtype=np.int64)
        remap = np.full(n_model, -1, dtype=np.int64)
        remap[keep] = np.arange(len(keep))
        faces = remap[faces]
        self.faces = faces[(faces >= 0).all(axis=1)]  # (F, 3)
        self.keep = keep  # (V,)
        self.rotation = np.asarray(rotation, dtype=np.float64)
        self.offset = np.zeros(3) if offset is None else np.asarray(offset, dtype=np.float64)

    phenotype_labels = _model_labels("phenotype", "the columns of ``phenotypes``")
    local_change_labels = _model_labels("local_change", "the columns of ``local_changes``")
    facial_action_labels = _model_labels("facial_action", "the columns of ``facial_actions``")
    bone_labels = _model_labels("bone", "the second axis of ``rotations``")

    def __repr__(self) -> str:
        return (
            f"AnnyMesher(vertices={len(self.keep)}, faces={len(self.faces)}, "
            f"bones={len(self.bone_labels)}, local_changes={len(self.local_change_labels)}, "
            f"facial_actions={len(self.facial_action_labels)})"
        )

    @torch.no_grad()
    def __call__(
        self,
        phenotypes: np.ndarray,
        local_changes: np.ndarray | None = None,
        facial_actions: np.ndarray | None = None,
        rotations: np.ndarray | None = None,
        *,
        offsets: np.ndarray | None = None,
        raw: bool = False,
    ) -> np.ndarray:
        r"""Vertices of a batch of meshes, one forward pass.

        Args:
            phenotypes: ``(B, P)`` in the order of :attr:`phenotype_labels`.
            local_changes: ``(B, L)`` or None (all zero).
            facial_actions: ``(B, A)`` or None (all zero).
            rotations: ``(B, J, 3, 3)`` bone rotations relative to the parent (in the
                axes of :attr:`pose_parameterization`) or None (rest pose).
            offsets: ``(B, V, 3)`` displacements of the kept vertices in the model's own
                frame, added to the rest shape before skinning (a transferred expression),
                or None. Linear blend skinning is linear in the rest vertices, so they are
                skinned by the per-vertex blend of bone transforms
                :math:`\sum_k w_{vk} A_{b_{vk}}` (:math:`A_b` = posed times inverse rest
                pose of bone b, rotation part).
            raw: return the model's own frame (no rotation/offset; for placement).

        Returns:
            ``(B, V, 3)`` float32 vertices in the dataset frame (metres).
        """
        batch = len(phenotypes)
        as_tensor = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
        pose = torch.eye(4).repeat(batch, len(self.bone_labels), 1, 1)  # (B, J, 4, 4)
        if rotations is not None:
            pose[:, :, :3, :3] = as_tensor(rotations)
        output = self.model(
            pose_parameters=pose,
            phenotype_kwargs=as_tensor(phenotypes),
            local_changes_kwargs=None if local_changes is None else as_tensor(local_changes),
            facial_actions=None if facial_actions is None else as_tensor(facial_actions),
            pose_parameterization=self.pose_parameterization,
        )
        keep = torch.as_tensor(self.keep)
        vertices = output["vertices"][:, keep].double().numpy()  # (B, V, 3)
        if offsets is not None:
            relative = output["bone_poses"] @ torch.linalg.inv(output["rest_bone_poses"])
            bones = self.model.vertex_bone_indices[keep]  # (V, K)
            weights = self.model.vertex_bone_weights[keep]  # (V, K)
            blend = (weights[None, ..., None, None] * relative[:, bones, :3, :3]).sum(2)
            vertices += torch.einsum("bvij,bvj->bvi", blend, as_tensor(offsets)).double().numpy()
        if raw:
            return vertices.astype(np.float32)
        return (vertices @ self.rotation.T + self.offset).astype(np.float32)

    def neutral_phenotypes(self, count: int = 1) -> np.ndarray:
        """Every phenotype at 0.5 (anny's average adult), ``(count, P)``."""
        return np.full((count, len(self.phenotype_labels)), 0.5, dtype=np.float32)

    def template(self, *, name: str) -> Template:
        """The dataset template: average phenotype, no local change, no expression, rest pose."""
        vertices = self(self.neutral_phenotypes())[0]
        return Template(vertices, self.faces, name=name, unit="m")


@dataclass(frozen=True)
class Plan:
    """What to generate: one index row per mesh and a function that builds a batch.

    Attributes:
        rows: index rows in dataset order (subject, sequence, frame sorted).
        batch: ``batch(indices (b,) int64) -> (b, V, 3) float32`` vertices of those rows.
    """

    rows: list[IndexRow]
    batch: Callable[[np.ndarray], np.ndarray]


def sample_subjects(
    mesher: AnnyMesher,
    rng: np.random.Generator,
    count: int,
    *,
    scale: float,
    ranges: dict[str, tuple[float, float]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Identities of ``count`` subjects: phenotypes, then local changes (in that rng order).

    Args:
        mesher: gives the phenotype and local-change labels (the output columns).
        rng: the random generator.
        count: number of subjects S.
        scale: standard deviation of the local changes (see :func:`sample_local_changes`).
        ranges: phenotype range overrides (see :func:`sample_phenotypes`).

    Returns:
        ``(S, P)`` phenotypes and ``(S, L)`` local changes, float32.
    """
    phenotypes = sample_phenotypes(rng, count, mesher.phenotype_labels, ranges=ranges)
    local = sample_local_changes(rng, count, mesher.local_change_labels, scale=scale)
    return phenotypes, local


def subject_grid(
    subjects: int, names: Sequence[str], frames: int, *, part: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[IndexRow]]:
    """The product subjects x sequences x frames: mesh n is (subject s, sequence q, frame f).

    Args:
        subjects: number of subjects S (named ``subject000``, ...).
        names: sequence names (Q).
        frames: frames per sequence T.
        part: anny model kind in each row's source (``anny:<part>/<sequence>/<frame>``).

    Returns:
        ``(N,)`` subject, sequence and frame indices in C order (N = S Q T) and the N
        index rows.
    """
    s_idx, q_idx, f_idx = (a.ravel() for a in np.indices((subjects, len(names), frames)))
    subject_names = [f"subject{s:03d}" for s in range(subjects)]
    rows = [
        IndexRow(subject_names[s], names[q], int(f), f"anny:{part}/{names[q]}/{f}")
        for s, q, f in zip(s_idx.tolist(), q_idx.tolist(), f_idx.tolist())
    ]
    return s_idx, q_idx, f_idx, rows


def generator_params(
    generator: str, *, subjects: int, names: list[str], frames: int, seed: int, **extra
) -> dict:
    """A generated dataset's parameters: generator, versions, counts and seed, then ``extra``."""
    return {
        "generator": generator,
        "generator_version": GENERATOR_VERSION,
        "anny_version": anny_version(),
        "subjects": subjects,
        "sequences": names,
        "frames": frames,
        "seed": seed,
        **extra,
    }


def write_plan(
    out_dir: str | os.PathLike,
    template: Template,
    plan: Plan,
    *,
    params: dict,
    batch_size: int,
    desc: str,
) -> PreparedDataset:
    """Generate the plan in batches of ``batch_size`` and write a prepared dataset (metres).

    The dataset's source is ``params["generator"]``. Shows a tqdm bar in meshes and logs
    the speed (meshes/s).
    """
    source = params["generator"]
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    total = len(plan.rows)
    start = time.perf_counter()
    with (
        PreparedDatasetWriter(
            out_dir, template, total, source=source, unit="m", params=params
        ) as writer,
        tqdm(total=total, desc=desc, unit="mesh", disable=None) as bar,
    ):
        for first in range(0, total, batch_size):
            indices = np.arange(first, min(first + batch_size, total), dtype=np.int64)
            writer.add(plan.batch(indices), plan.rows[first : indices[-1] + 1])
            bar.update(len(indices))
    seconds = time.perf_counter() - start
    logger.info(
        "wrote %d meshes to %s in %.1f s (%.0f meshes/s)", total, out_dir, seconds, total / seconds
    )
    return PreparedDataset(out_dir)


class Cast(NamedTuple):
    """The start of every generator (:func:`start_sequences`).

    Attributes:
        names: the sequence names (Q).
        mesher: the anny mesher of the dataset.
        rng: the random generator, already used for the subjects' identities.
        phenotypes: ``(S, P)`` per subject.
        local: ``(S, L)`` local changes per subject.
    """

    names: list[str]
    mesher: AnnyMesher
    rng: np.random.Generator
    phenotypes: np.ndarray
    local: np.ndarray


def start_sequences(
    catalogue: Sequence[str],
    what: str,
    mesher: Callable[[], AnnyMesher],
    *,
    subjects: int,
    sequences: int,
    frames: int,
    seed: int,
    scale: float,
    ranges: dict[str, tuple[float, float]] | None = None,
) -> Cast:
    """Check the counts and pick the sequences, build the mesher, seed the random generator
    and draw the subjects' identities (:func:`sample_subjects`), in that order.
    """  # noqa: D205
    names = select_sequences(catalogue, what, subjects=subjects, sequences=sequences, frames=frames)
    built = mesher()
    rng = np.random.default_rng(seed)
    phenotypes, local = sample_subjects(built, rng, subjects, scale=scale, ranges=ranges)
    return Cast(names, built, rng, phenotypes, local)


def write_sequences(
    out_dir: str | os.PathLike,
    generator: str,
    template: Callable[[], Template],
    plan: Plan,
    *,
    subjects: int,
    names: list[str],
    frames: int,
    seed: int,
    batch_size: int,
    desc: str,
    **extra,
) -> PreparedDataset:
    """:func:`write_plan` of a generator's plan, with its :func:`generator_params`."""
    params = generator_params(
        generator, subjects=subjects, names=names, frames=frames, seed=seed, **extra
    )
    return write_plan(out_dir, template(), plan, params=params, batch_size=batch_size, desc=desc)


def check_counts(**counts: int) -> None:
    """Raise a :class:`ConfigError` unless every count is a positive integer (frames >= 2)."""
    for name, value in counts.items():
        minimum = 2 if name == "frames" else 1
        if int(value) != value or value < minimum:
            raise ConfigError(
                f"{name} must be an integer >= {minimum}, got {value!r}",
                fix=f"pass --{name} {max(minimum, 2)} or more",
            )


def select_sequences(
    catalogue: Sequence[str], what: str, *, subjects: int, sequences: int, frames: int
) -> list[str]:
    """Check the counts (:func:`check_counts`), then the first ``sequences`` of ``catalogue``."""
    check_counts(subjects=subjects, sequences=sequences, frames=frames)
    return pick(list(catalogue), sequences, what)


def pick(names: Sequence[str], count: int, what: str) -> list[str]:
    """The first ``count`` of ``names`` (ConfigError when there are fewer)."""
    if count > len(names):
        raise ConfigError(
            f"only {len(names)} {what} are defined, {count} were asked for",
            fix=f"pass --sequences {len(names)} or fewer ({', '.join(names)})",
        )
    return list(names[:count])
