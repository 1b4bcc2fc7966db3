r"""Bodies like DFAUST: subjects x named motions, each from the rest pose and back.

DFAUST (Bogo et al., "Dynamic FAUST: Registering Human Bodies in Motion", CVPR 2017)
holds 10 subjects performing 14 motions, registered to one body topology. Here a
subject is anny's full body (13,348 vertices, without eyeballs and tongue) with
sampled adult phenotypes and torso/limb local changes; a motion is a sum of key poses,
each scaled by a time profile that is 0 at both ends of the sequence:

.. math:: \theta_{s,m}(t) = \lambda_{s,m} \sum_k p_k(t)\, \theta_{m,k},\qquad
    p_k(0) = p_k(1) = 0

(axis-angle per joint, anny's ``local-ref`` parameterisation: rotation axes are world
axes x = the body's left, y = back, z = up). Joint angles stay in natural ranges
(knees <= 115 degrees, shoulders <= 110 degrees of abduction). Each mesh is placed
with its lowest point on the floor (y = 0) plus the hop height of jumping motions,
like DFAUST's per-frame global placement; the body looks along +z with y up.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from deep3dmm.data.generate.common import (
    ADULT_PHENOTYPES,
    Z_UP_TO_Y_UP,
    AnnyMesher,
    Plan,
    generator_params,
    load_anny,
    rotation_matrices,
    sample_subjects,
    select_sequences,
    subject_grid,
    write_plan,
)
from deep3dmm.data.prepared import PreparedDataset
from deep3dmm.mesh.template import Template

__all__ = [
    "BODY_LOCAL_CHANGES",
    "BODY_MOTIONS",
    "body_mesher",
    "body_template",
    "make_bodies",
]

Profile = Callable[[np.ndarray], np.ndarray]


def once(t: np.ndarray) -> np.ndarray:
    """One repetition: rest -> peak -> rest."""
    return np.sin(np.pi * t) ** 2


def twice(t: np.ndarray) -> np.ndarray:
    """Two repetitions."""
    return np.sin(2 * np.pi * t) ** 2


def first_half(t: np.ndarray) -> np.ndarray:
    """One repetition in the first half, rest in the second."""
    return np.where(t < 0.5, np.sin(2 * np.pi * t) ** 2, 0.0)


def second_half(t: np.ndarray) -> np.ndarray:
    """Rest in the first half, one repetition in the second."""
    return np.where(t >= 0.5, np.sin(2 * np.pi * t) ** 2, 0.0)


def swing(t: np.ndarray) -> np.ndarray:
    """A signed swing -1..1 under a rest -> rest envelope (twists, sways)."""
    return np.sin(2 * np.pi * t) * np.sin(np.pi * t)


def _both(bone: str, left: tuple, right: tuple | None = None) -> dict:
    """A rotation of the left bone and its mirror image (x-axis mirror) on the right."""
    if right is None:
        right = (left[0], -left[1], -left[2])
    return {f"{bone}.L": left, f"{bone}.R": right}


_SQUAT = {
    **_both("upperleg01", (-1.25, 0.0, 0.0)),
    **_both("lowerleg01", (2.0, 0.0, 0.0)),
    **_both("foot", (-0.75, 0.0, 0.0)),
    "spine03": (0.15, 0.0, 0.0),
    "spine02": (0.15, 0.0, 0.0),
    **_both("upperarm01", (-1.2, 0.0, 0.0)),
}

# motion name -> list of (key pose {bone: axis-angle}, time profile), and a hop height (m).
BODY_MOTIONS: dict[str, tuple[list[tuple[dict, Profile]], float]] = {
    "arm_raise": ([(_both("upperarm01", (0.0, -1.45, 0.0)), once)], 0.0),
    "squat": ([(_SQUAT, once)], 0.0),
    "twist": (
        [({f"spine0{i}": (0.0, 0.0, 0.22) for i in range(1, 5)}, swing)],
        0.0,
    ),
    "jumping_jacks": (
        [
            (
                {
                    **_both("upperarm01", (0.0, -1.5, 0.0)),
                    **_both("upperleg01", (0.0, -0.3, 0.0)),
                    **_both("foot", (0.0, 0.3, 0.0)),
                },
                twice,
            )
        ],
        0.08,
    ),
    "knees": (
        [
            (
                {
                    "upperleg01.L": (-1.2, 0.0, 0.0),
                    "lowerleg01.L": (1.6, 0.0, 0.0),
                    "foot.L": (-0.3, 0.0, 0.0),
                },
                first_half,
            ),
            (
                {
                    "upperleg01.R": (-1.2, 0.0, 0.0),
                    "lowerleg01.R": (1.6, 0.0, 0.0),
                    "foot.R": (-0.3, 0.0, 0.0),
                },
                second_half,
            ),
        ],
        0.0,
    ),
    "punching": (
        [
            (
                {
                    "upperarm01.L": (-0.8, 0.0, 0.0),
                    "lowerarm01.L": (-0.2, 0.0, 0.0),
                    "spine03": (0.0, 0.0, -0.25),
                },
                first_half,
            ),
            (
                {
                    "upperarm01.R": (-0.8, 0.0, 0.0),
                    "lowerarm01.R": (-0.2, 0.0, 0.0),
                    "spine03": (0.0, 0.0, 0.25),
                },
                second_half,
            ),
        ],
        0.0,
    ),
    "arms_forward": ([(_both("upperarm01", (-0.8, 0.0, 0.0)), once)], 0.0),
    "hips": (
        [
            (
                {
                    **_both("upperleg01", (0.0, 0.15, 0.0), (0.0, 0.15, 0.0)),
                    **_both("foot", (0.0, -0.15, 0.0), (0.0, -0.15, 0.0)),
                    "spine05": (0.0, -0.15, 0.0),
                },
                swing,
            )
        ],
        0.0,
    ),
}

# anny local changes of torso and limbs (symmetric "measure" labels; no face, no hands).
BODY_LOCAL_CHANGES: tuple[str, ...] = (
    "torso-scale-horiz-incr",
    "torso-scale-depth-incr",
    "measure-shoulder-dist-incr",
    "measure-waist-circ-incr",
    "measure-hips-circ-incr",
    "hip-scale-horiz-incr",
    "buttocks-volume-incr",
    "measure-neck-height-incr",
    "upperlegs-height-incr",
    "lowerlegs-height-incr",
    "measure-upperarm-length-incr",
    "measure-lowerarm-length-incr",
    "measure-thigh-circ-incr",
    "measure-calf-circ-incr",
    "measure-upperarm-circ-incr",
    "stomach-pregnant-incr",
)
LOCAL_CHANGE_SCALE = 0.3


def body_mesher() -> AnnyMesher:
    """The body mesher: anny's body without eyeballs and tongue, y up, looking along +z."""
    return AnnyMesher(load_anny("body", BODY_LOCAL_CHANGES), rotation=Z_UP_TO_Y_UP)


def body_template() -> Template:
    """The bodies template (average adult, rest pose, feet on y = 0): meshes/anny_body.ply."""
    template = body_mesher().template(name="anny_body")
    template.vertices[:, 1] -= template.vertices[:, 1].min()
    return template


def motion_rotation_vectors(
    names: list[str], bone_labels: list[str], t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Axis-angle poses of the named motions over normalised time.

    Args:
        names: motion names (keys of :data:`BODY_MOTIONS`).
        bone_labels: anny bone labels (J).
        t: ``(T,)`` times in [0, 1].

    Returns:
        ``(M, T, J, 3)`` rotation vectors and ``(M, T)`` hop heights in metres.
    """
    vectors = np.zeros((len(names), len(t), len(bone_labels), 3))
    hops = np.zeros((len(names), len(t)))
    for m, name in enumerate(names):
        keys, hop = BODY_MOTIONS[name]
        for pose, profile in keys:
            weight = profile(t)  # (T,)
            for bone, vector in pose.items():
                vectors[m, :, bone_labels.index(bone)] += weight[:, None] * np.asarray(vector)
            if hop:
                hops[m] = np.maximum(hops[m], hop * np.sin(np.pi * weight) ** 2)
    return vectors, hops


def make_bodies(
    out_dir: str | os.PathLike,
    *,
    subjects: int = 8,
    sequences: int = 8,
    frames: int = 12,
    seed: int = 0,
    batch_size: int = 32,
) -> PreparedDataset:
    """Generate a DFAUST-like bodies dataset (metres) into ``out_dir``.

    Args:
        out_dir: the prepared-dataset folder (written atomically).
        subjects: number of sampled bodies.
        sequences: number of motions, the first of :data:`BODY_MOTIONS`.
        frames: frames per motion (>= 2; the first and last are the rest pose).
        seed: seeds every random draw: equal seeds give equal datasets.
        batch_size: meshes per anny forward pass.

    Returns:
        The written :class:`~deep3dmm.data.PreparedDataset`, rows sorted by subject,
        motion, frame.
    """
    names = select_sequences(
        BODY_MOTIONS, "body motions", subjects=subjects, sequences=sequences, frames=frames
    )
    mesher = body_mesher()
    rng = np.random.default_rng(seed)
    phenotypes, local = sample_subjects(
        mesher, rng, subjects, scale=LOCAL_CHANGE_SCALE
    )  # (S, P), (S, L)
    vectors, hops = motion_rotation_vectors(
        names, mesher.bone_labels, np.linspace(0.0, 1.0, frames)
    )  # (M, T, J, 3), (M, T)
    intensity = rng.uniform(0.8, 1.0, (subjects, len(names)))  # (S, M)
    s_idx, m_idx, f_idx, rows = subject_grid(subjects, names, frames, part="body")

    def batch(indices: np.ndarray) -> np.ndarray:
        s, m, f = s_idx[indices], m_idx[indices], f_idx[indices]
        rotations = rotation_matrices(intensity[s, m][:, None, None] * vectors[m, f])
        vertices = mesher(phenotypes[s], local[s], None, rotations)  # (b, V, 3)
        floor = vertices[..., 1].min(axis=1) - hops[m, f]  # (b,)
        vertices[..., 1] -= floor[:, None].astype(np.float32)
        return vertices

    params = generator_params(
        "anny-bodies",
        subjects=subjects,
        names=names,
        frames=frames,
        seed=seed,
        local_change_scale=LOCAL_CHANGE_SCALE,
        phenotype_ranges=ADULT_PHENOTYPES,
        frame="y up, looking along +z, lowest point on the floor y = 0 (+ hop height)",
    )
    return write_plan(
        out_dir,
        body_template(),
        Plan(rows, batch),
        params=params,
        batch_size=batch_size,
        desc="bodies",
    )
