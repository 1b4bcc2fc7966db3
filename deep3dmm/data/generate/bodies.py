r"""Bodies like DFAUST: subjects x named motions, each from the rest pose and back.

DFAUST (Bogo et al., "Dynamic FAUST: Registering Human Bodies in Motion", CVPR 2017)
holds 10 subjects performing 14 motions, registered to one body topology. Here a
subject is anny's full body (13,348 vertices, without eyeballs and tongue) with
sampled adult phenotypes and torso/limb local changes; a motion is a sum of key poses,
each scaled by a time profile that is 0 at both ends of the sequence:

.. math:: \theta_{s,m,j}(t) = \lambda_{s,m,j} \sum_k p_k\big(\tau_{s,m,j}(t)\big)\,
    \theta_{m,k,j},\qquad p_k(0) = p_k(1) = 0

with a per subject style: each joint runs the profile in its own time window
:math:`\tau_{s,m,j}(t) = \mathrm{clip}((t - a) / (b - a))` (joints start and stop at
different times, so a motion is a curve, not one pose scaled), and an intensity
:math:`\lambda` per motion and body side (left and right limbs move unequally).

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
    load_anny,
    rotation_matrices,
    start_sequences,
    subject_grid,
    write_sequences,
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
# Per subject style: each bone runs its motion in its own time window (start, end), the
# motion's intensity, and a per side factor (<= 1 keeps the tested joint ranges).
BONE_START = (0.0, 0.15)
BONE_END = (0.85, 1.0)
INTENSITY = (0.75, 1.0)
SIDE_INTENSITY = (0.8, 1.0)


def body_mesher() -> AnnyMesher:
    """The body mesher: anny's body without eyeballs and tongue, y up, looking along +z."""
    return AnnyMesher(load_anny("body", BODY_LOCAL_CHANGES), rotation=Z_UP_TO_Y_UP)


def body_template() -> Template:
    """The bodies template (average adult, rest pose, feet on y = 0): meshes/anny_body.ply."""
    template = body_mesher().template(name="anny_body")
    template.vertices[:, 1] -= template.vertices[:, 1].min()
    return template


def motion_rotation_vectors(
    names: list[str], bone_labels: list[str], t: np.ndarray, windows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Axis-angle poses of the named motions over normalised time.

    Args:
        names: motion names (keys of :data:`BODY_MOTIONS`).
        bone_labels: anny bone labels (J).
        t: ``(T,)`` times in [0, 1].
        windows: ``(..., M, J, 2)`` each bone's own time window (start, end) in [0, 1]:
            the bone runs its motion's profile at ``clip((t - start) / (end - start))``,
            so joints start and finish at different times; None: all ``(0, 1)``.

    Returns:
        ``(..., M, T, J, 3)`` rotation vectors and ``(M, T)`` hop heights in metres.
    """
    if windows is None:
        windows = np.broadcast_to(np.array([0.0, 1.0]), (len(names), len(bone_labels), 2))
    lead = windows.shape[:-3]
    vectors = np.zeros((*lead, len(names), len(t), len(bone_labels), 3))
    hops = np.zeros((len(names), len(t)))
    for m, name in enumerate(names):
        keys, hop = BODY_MOTIONS[name]
        for pose, profile in keys:
            for bone, vector in pose.items():
                j = bone_labels.index(bone)
                start, end = windows[..., m, j, 0, None], windows[..., m, j, 1, None]
                weight = profile(np.clip((t - start) / (end - start), 0.0, 1.0))  # (..., T)
                vectors[..., m, :, j, :] += weight[..., None] * np.asarray(vector)
            if hop:
                weight = profile(t)
                hops[m] = np.maximum(hops[m], hop * np.sin(np.pi * weight) ** 2)
    return vectors, hops


def sample_style(
    rng: np.random.Generator, subjects: int, motions: int, bone_labels: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Each subject's way of performing each motion.

    Returns:
        ``(S, M, J, 2)`` per bone time windows (start in ``BONE_START``, end in
        ``BONE_END``: joints start and stop at their own times) and ``(S, M, J)``
        intensities (a per motion intensity times a per side factor: left and right
        limbs move unequally).
    """
    shape = (subjects, motions, len(bone_labels))
    windows = np.stack([rng.uniform(*BONE_START, shape), rng.uniform(*BONE_END, shape)], -1)
    intensity = rng.uniform(*INTENSITY, (subjects, motions, 1))
    sides = rng.uniform(*SIDE_INTENSITY, (subjects, motions, 3))  # left, right, centre
    side = np.array([0 if b.endswith(".L") else 1 if b.endswith(".R") else 2 for b in bone_labels])
    return windows, intensity * sides[..., side]


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
    names, mesher, rng, phenotypes, local = start_sequences(
        BODY_MOTIONS,
        "body motions",
        body_mesher,
        subjects=subjects,
        sequences=sequences,
        frames=frames,
        seed=seed,
        scale=LOCAL_CHANGE_SCALE,
    )  # phenotypes (S, P), local changes (S, L)
    windows, intensity = sample_style(rng, subjects, len(names), mesher.bone_labels)
    vectors, hops = motion_rotation_vectors(
        names, mesher.bone_labels, np.linspace(0.0, 1.0, frames), windows
    )  # (S, M, T, J, 3), (M, T)
    vectors *= intensity[:, :, None, :, None]
    s_idx, m_idx, f_idx, rows = subject_grid(subjects, names, frames, part="body")

    def batch(indices: np.ndarray) -> np.ndarray:
        s, m, f = s_idx[indices], m_idx[indices], f_idx[indices]
        rotations = rotation_matrices(vectors[s, m, f])  # (b, J, 3, 3)
        vertices = mesher(phenotypes[s], local[s], None, rotations)  # (b, V, 3)
        floor = vertices[..., 1].min(axis=1) - hops[m, f]  # (b,)
        vertices[..., 1] -= floor[:, None].astype(np.float32)
        return vertices

    return write_sequences(
        out_dir,
        "anny-bodies",
        body_template,
        Plan(rows, batch),
        subjects=subjects,
        names=names,
        frames=frames,
        seed=seed,
        batch_size=batch_size,
        desc="bodies",
        local_change_scale=LOCAL_CHANGE_SCALE,
        bone_start=BONE_START,
        bone_end=BONE_END,
        intensity=INTENSITY,
        side_intensity=SIDE_INTENSITY,
        phenotype_ranges=ADULT_PHENOTYPES,
        frame="y up, looking along +z, lowest point on the floor y = 0 (+ hop height)",
    )
