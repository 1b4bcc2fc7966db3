r"""Hands like SynHand5M: subjects x finger-pose sequences, each open -> pose -> open.

SynHand5M (Malik et al., "DeepHPS: End-to-end Estimation of 3D Hand Pose and Shape by
Learning from Synthetic Depth", 3DV 2018) renders one hand model with varied shape and
articulation. Here a subject is anny's right hand (1,609 vertices) with sampled adult
phenotypes and hand-only local changes (finger length, hand scale, finger diameter and
spacing, wrist; thick and close-set fingers capped so curled fingers do not collide); a
sequence moves the finger joints from the rest pose to a named peak
pose and back:

.. math:: \theta_{s,q,j}(t) = c_{s,q,j}(t)\, (\theta_{q,j}^{peak} + \epsilon_{s,j})

(axis-angle per joint in each bone's own axes: x flexes, z spreads) with a small per
subject joint offset :math:`\epsilon_s` (0.04 rad) and an activation curve per finger
(:func:`finger_curves`): its own onset, peak and offset, intensity in [0.7, 1], and the
middle and tip joints lagging the base joint. Skinning makes the motion non-linear and
dependent on the subject's bones. Peak angles are kept below the point where linear
blend skinning would push finger tips into the palm (checked with winding numbers, see
:mod:`deep3dmm.data.generate.checks`). The wrist stays fixed (no global motion); the
dataset frame has the fingers along +y and the palm facing +z.
"""

from __future__ import annotations

import os

import numpy as np

from deep3dmm.data.generate.common import (
    ADULT_PHENOTYPES,
    AnnyMesher,
    Plan,
    load_anny,
    rotation_matrices,
    start_sequences,
    subject_grid,
    write_sequences,
)
from deep3dmm.data.generate.timing import activation, sample_key_times
from deep3dmm.data.prepared import PreparedDataset
from deep3dmm.mesh.template import Template

__all__ = [
    "HAND_LOCAL_CHANGES",
    "HAND_POSES",
    "hand_mesher",
    "hand_template",
    "make_hands",
]

_FINGERS = ("2", "3", "4", "5")


def _fingers(mcp: float, pip: float, dip: float, which=_FINGERS, spread=None) -> dict:
    """Flexion (x) of the three joints of fingers 2-5, optional spread (z) at the base."""
    pose = {}
    for f in which:
        pose[f"finger{f}-1.R"] = (mcp, 0.0, 0.0 if spread is None else spread[f])
        pose[f"finger{f}-2.R"] = (pip, 0.0, 0.0)
        pose[f"finger{f}-3.R"] = (dip, 0.0, 0.0)
    return pose


def _thumb(base: float, middle: float, tip: float) -> dict:
    """Flexion of the three thumb joints (positive: towards the palm)."""
    return {"finger1-1.R": (base, 0, 0), "finger1-2.R": (middle, 0, 0), "finger1-3.R": (tip, 0, 0)}


# Peak joint rotations (radians, axis-angle in each bone's axes) per named pose.
HAND_POSES: dict[str, dict[str, tuple[float, float, float]]] = {
    "grasp": {**_fingers(0.6, 0.75, 0.45), **_thumb(0.3, 0.2, 0.2)},
    "point": {
        **_fingers(0.8, 0.95, 0.55, ("3", "4", "5")),
        **_fingers(0.05, 0.05, 0.0, ("2",)),
        **_thumb(0.3, 0.2, 0.2),
    },
    "spread": {
        **_fingers(-0.1, 0.0, 0.0, spread={"2": -0.25, "3": -0.05, "4": 0.15, "5": 0.35}),
        **_thumb(-0.25, 0.0, 0.0),
    },
    "fist": {**_fingers(0.8, 0.95, 0.55), **_thumb(0.3, 0.2, 0.2)},
    "pinch": {
        **_fingers(0.6, 0.65, 0.4, ("2",)),
        **_fingers(0.25, 0.3, 0.15, ("3", "4", "5")),
        **_thumb(0.3, 0.2, 0.2),
    },
    "thumbs_up": {**_fingers(0.8, 0.95, 0.55), **_thumb(-0.1, 0.0, 0.0)},
}

# anny local changes of the right hand (no arm, no rigid hand translation).
HAND_LOCAL_CHANGES: tuple[str, ...] = (
    "r-hand-fingers-length-incr",
    "r-hand-scale-incr",
    "r-hand-fingers-diameter-incr",
    "r-hand-fingers-distance-incr",
    "measure-wrist-circ-incr",
)
# anny scales heads and hands with the body height: a narrower height range keeps head
# breadth within about +-8% (adult 5th-95th percentiles) instead of +-15%.
PHENOTYPE_RANGES = {"height": (0.35, 0.7)}
LOCAL_CHANGE_SCALE = 0.4
# Thick fingers set close together collide with their neighbours when curled: cap both.
LOCAL_CHANGE_LIMITS = {
    "r-hand-fingers-diameter-incr": (-1.0, 0.3),
    "r-hand-fingers-distance-incr": (-0.3, 1.0),
}
JOINT_NOISE = 0.04
# Per subject style: each finger's share of the pose (<= 1 keeps the tested peak angles)
# and how far a finger's middle and tip joints lag its base joint (normalised time).
FINGER_INTENSITY = (0.5, 1.0)
JOINT_LAG = (0.0, 0.06)
# Fingers of one pose start within 15 % of the sequence of each other and hold 10-30 %.
KEY_TIMES = {"onset": (0.05, 0.2), "rise": (0.12, 0.3), "hold": (0.1, 0.3), "fall": (0.12, 0.3)}

# anny's hand: fingers along +y, palm facing -x  ->  fingers along +y, palm facing +z.
HAND_FRAME = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])


def hand_mesher() -> AnnyMesher:
    """The hand mesher: anny's right hand, wrist at the origin, rotations in bone axes."""
    return AnnyMesher(
        load_anny("hand", HAND_LOCAL_CHANGES),
        rotation=HAND_FRAME,
        pose_parameterization="local-bone",
    )


def hand_template() -> Template:
    """The hands template (average adult hand, rest pose), as in meshes/anny_hand.ply."""
    return hand_mesher().template(name="anny_hand")


def peak_rotation_vectors(names: list[str], bone_labels: list[str]) -> np.ndarray:
    """``(Q, J, 3)`` peak axis-angle vectors of the named poses."""
    peaks = np.zeros((len(names), len(bone_labels), 3))
    for q, name in enumerate(names):
        for bone, vector in HAND_POSES[name].items():
            peaks[q, bone_labels.index(bone)] = vector
    return peaks


def finger_curves(
    rng: np.random.Generator, subjects: int, sequences: int, bones: list[str], frames: int
) -> np.ndarray:
    """Each joint's activation over a sequence: per finger onset, peak and offset.

    A finger (thumb, index, ..., little; other bones form a sixth group) gets its own key
    times (:func:`~deep3dmm.data.generate.timing.sample_key_times`) and intensity; its
    second and third joints follow the first with a per sequence lag (a rolling curl).

    Returns:
        ``(S, Q, J, T)`` weights in [0, 1], 0 at the first and the last frame.
    """
    group = np.array([int(b[6]) - 1 if b.startswith("finger") else 5 for b in bones])  # (J,)
    joint = np.array([int(b[8]) - 1 if b.startswith("finger") else 0 for b in bones])  # (J,)
    keys = sample_key_times(rng, (subjects, sequences, 6), **KEY_TIMES)  # (S, Q, 6, 4)
    gain = rng.uniform(*FINGER_INTENSITY, (subjects, sequences, 6))  # (S, Q, 6)
    lag = rng.uniform(*JOINT_LAG, (subjects, sequences))  # (S, Q)
    bone_keys = keys[:, :, group] + (lag[..., None] * joint)[..., None]  # (S, Q, J, 4)
    bone_keys = np.minimum(bone_keys, 0.98)
    curves = activation(np.linspace(0.0, 1.0, frames), bone_keys)  # (S, Q, J, T)
    return curves * gain[:, :, group, None]


def make_hands(
    out_dir: str | os.PathLike,
    *,
    subjects: int = 10,
    sequences: int = 6,
    frames: int = 10,
    seed: int = 0,
    batch_size: int = 128,
) -> PreparedDataset:
    """Generate a SynHand5M-like hands dataset (metres) into ``out_dir``.

    Args:
        out_dir: the prepared-dataset folder (written atomically).
        subjects: number of sampled hands.
        sequences: number of finger poses, the first of :data:`HAND_POSES`.
        frames: frames per sequence (>= 2; the first and last are the rest pose).
        seed: seeds every random draw: equal seeds give equal datasets.
        batch_size: meshes per anny forward pass.

    Returns:
        The written :class:`~deep3dmm.data.PreparedDataset`, rows sorted by subject,
        pose, frame.
    """
    names, mesher, rng, phenotypes, local = start_sequences(
        HAND_POSES,
        "hand poses",
        hand_mesher,
        subjects=subjects,
        sequences=sequences,
        frames=frames,
        seed=seed,
        scale=LOCAL_CHANGE_SCALE,
        ranges=PHENOTYPE_RANGES,
    )  # phenotypes (S, P), local changes (S, L)
    for label, (low, high) in LOCAL_CHANGE_LIMITS.items():
        column = mesher.local_change_labels.index(label)
        local[:, column] = np.clip(local[:, column], low, high)
    bones = mesher.bone_labels
    peaks = peak_rotation_vectors(names, bones)  # (Q, J, 3)
    moving = np.abs(peaks).sum(axis=(0, 2)) > 0  # (J,) only posed joints get noise
    noise = rng.normal(0.0, JOINT_NOISE, (subjects, len(bones), 3)) * moving[None, :, None]
    curves = finger_curves(rng, subjects, len(names), bones, frames)  # (S, Q, J, T)
    s_idx, q_idx, f_idx, rows = subject_grid(subjects, names, frames, part="hand")

    def batch(indices: np.ndarray) -> np.ndarray:
        s, q, f = s_idx[indices], q_idx[indices], f_idx[indices]
        scale = curves[s, q, :, f][..., None]  # (b, J, 1)
        vectors = scale * (peaks[q] + noise[s] * (np.abs(peaks[q]) > 0))  # (b, J, 3)
        return mesher(phenotypes[s], local[s], None, rotation_matrices(vectors))

    return write_sequences(
        out_dir,
        "anny-hands",
        hand_template,
        Plan(rows, batch),
        subjects=subjects,
        names=names,
        frames=frames,
        seed=seed,
        batch_size=batch_size,
        desc="hands",
        timing="per finger onset/peak/offset, base joint leads, smoothstep ramps",
        finger_intensity=FINGER_INTENSITY,
        joint_lag=JOINT_LAG,
        key_times=KEY_TIMES,
        local_change_scale=LOCAL_CHANGE_SCALE,
        local_change_limits=LOCAL_CHANGE_LIMITS,
        phenotype_ranges={**ADULT_PHENOTYPES, **PHENOTYPE_RANGES},
        joint_noise_rad=JOINT_NOISE,
        frame="right hand, wrist at the origin, fingers along +y, palm facing +z",
    )
