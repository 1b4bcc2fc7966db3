r"""Faces like COMA: subjects x named expressions, each neutral -> peak -> neutral.

COMA (Ranjan et al., "Generating 3D faces using Convolutional Mesh Autoencoders",
ECCV 2018) holds 12 extreme expression sequences of 12 subjects, rigidly aligned
(heads face one way, no global head motion). Here a subject is an anny head with
sampled adult phenotypes and face-only local shape changes; an expression is a set
of peak facial-action weights (ARKit-style blendshapes, including the jaw),
scaled per frame by :func:`~deep3dmm.data.generate.common.envelope` so that every
sequence starts and ends at the subject's neutral face:

.. math:: \alpha_{s,e}(t) = \sin^2(\pi t)\, \lambda_{s,e}\, \alpha_e^{peak},
    \quad t \in [0, 1]

with a per subject and expression intensity :math:`\lambda_{s,e} \in [0.75, 1]`.
The mesh is anny's head without its separate eyeball and tongue parts: one
connected surface (scalp, face, ears, neck) of 4,200 vertices, like a COMA/FLAME
face without eyeballs.
"""

from __future__ import annotations

import os

import numpy as np

from deep3dmm.data.generate.common import (
    ADULT_PHENOTYPES,
    AnnyMesher,
    Plan,
    envelope,
    generator_params,
    load_anny,
    sample_subjects,
    select_sequences,
    subject_grid,
    write_plan,
)
from deep3dmm.data.prepared import PreparedDataset
from deep3dmm.mesh.template import Template

__all__ = [
    "FACE_EXPRESSIONS",
    "FACE_LOCAL_CHANGES",
    "face_mesher",
    "face_template",
    "make_faces",
]

# Peak facial-action weights per expression. The first 12 carry COMA's sequence names
# (approximations of what the COMA subjects performed); the rest are extra.
FACE_EXPRESSIONS: dict[str, dict[str, float]] = {
    "bareteeth": {
        "mouthStretchLeft": 0.6,
        "mouthStretchRight": 0.6,
        "mouthUpperUpLeft": 0.7,
        "mouthUpperUpRight": 0.7,
        "mouthLowerDownLeft": 0.7,
        "mouthLowerDownRight": 0.7,
        "jawOpen": 0.1,
    },
    "cheeks_in": {"mouthPucker": 0.6, "mouthFunnel": 0.3, "mouthRollLower": 0.3},
    "eyebrow": {
        "browInnerUp": 1.0,
        "browOuterUpLeft": 0.9,
        "browOuterUpRight": 0.9,
        "eyeWideLeft": 0.4,
        "eyeWideRight": 0.4,
    },
    "high_smile": {
        "mouthSmileLeft": 1.0,
        "mouthSmileRight": 1.0,
        "cheekSquintLeft": 0.6,
        "cheekSquintRight": 0.6,
        "eyeSquintLeft": 0.4,
        "eyeSquintRight": 0.4,
        "jawOpen": 0.15,
    },
    "lips_back": {
        "mouthStretchLeft": 0.8,
        "mouthStretchRight": 0.8,
        "mouthPressLeft": 0.5,
        "mouthPressRight": 0.5,
        "mouthRollLower": 0.3,
        "mouthRollUpper": 0.3,
    },
    "lips_up": {
        "mouthUpperUpLeft": 0.8,
        "mouthUpperUpRight": 0.8,
        "noseSneerLeft": 0.5,
        "noseSneerRight": 0.5,
        "mouthShrugUpper": 0.4,
    },
    "mouth_down": {
        "mouthFrownLeft": 1.0,
        "mouthFrownRight": 1.0,
        "mouthShrugLower": 0.4,
        "browDownLeft": 0.3,
        "browDownRight": 0.3,
    },
    "mouth_extreme": {
        "jawOpen": 1.0,
        "mouthStretchLeft": 0.4,
        "mouthStretchRight": 0.4,
        "mouthLowerDownLeft": 0.5,
        "mouthLowerDownRight": 0.5,
        "browInnerUp": 0.5,
        "eyeWideLeft": 0.6,
        "eyeWideRight": 0.6,
    },
    "mouth_middle": {"mouthFunnel": 0.8, "jawOpen": 0.2},
    "mouth_open": {"jawOpen": 0.7, "mouthLowerDownLeft": 0.3, "mouthLowerDownRight": 0.3},
    "mouth_side": {"mouthLeft": 0.9, "jawLeft": 0.4},
    "mouth_up": {
        "mouthShrugLower": 0.8,
        "mouthShrugUpper": 0.4,
        "mouthPressLeft": 0.4,
        "mouthPressRight": 0.4,
    },
    "kiss": {"mouthPucker": 1.0, "mouthClose": 0.2},
    "cheek_puff": {"cheekPuff": 1.0, "mouthClose": 0.3},
    "blink": {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0},
    "jaw_right": {"jawRight": 0.8, "mouthRight": 0.4},
}

# anny local changes that act on the face (cheeks, chin, brows, eyes, forehead, mouth,
# nose, head shape, ears); no neck, torso or limb labels, no rigid head translation.
FACE_LOCAL_CHANGES: tuple[str, ...] = (
    "l-cheek-trans-up", "r-cheek-trans-up", "l-cheek-volume-incr", "r-cheek-volume-incr",
    "l-cheek-inner-incr", "r-cheek-inner-incr", "l-cheek-bones-incr", "r-cheek-bones-incr",
    "chin-jaw-drop-incr", "chin-height-incr", "chin-prominent-incr", "chin-bones-incr",
    "chin-width-incr", "chin-cleft-incr", "chin-prognathism-incr",
    "eyebrows-angle-up", "eyebrows-trans-up", "eyebrows-trans-forward",
    "l-eye-scale-incr", "r-eye-scale-incr", "l-eye-trans-up", "r-eye-trans-up",
    "l-eye-trans-out", "r-eye-trans-out", "l-eye-bag-incr", "r-eye-bag-incr",
    "l-eye-eyefold-up", "r-eye-eyefold-up", "l-eye-epicanthus-out", "r-eye-epicanthus-out",
    "l-eye-corner1-up", "r-eye-corner1-up", "l-eye-height2-incr", "r-eye-height2-incr",
    "forehead-temple-incr", "forehead-trans-forward", "forehead-scale-vert-incr",
    "mouth-scale-horiz-incr", "mouth-scale-vert-incr", "mouth-trans-forward",
    "mouth-lowerlip-volume-incr", "mouth-upperlip-volume-incr", "mouth-lowerlip-height-incr",
    "mouth-upperlip-height-incr", "mouth-cupidsbow-incr", "mouth-angles-up",
    "mouth-philtrum-volume-incr", "mouth-laugh-lines-out",
    "nose-scale-horiz-incr", "nose-scale-vert-incr", "nose-scale-depth-incr",
    "nose-trans-up", "nose-trans-forward", "nose-hump-incr", "nose-point-width-incr",
    "nose-nostrils-width-incr", "nose-curve-convex", "nose-point-up", "nose-flaring-incr",
    "nose-volume-incr",
    "head-scale-vert-incr", "head-scale-horiz-incr", "head-scale-depth-incr", "head-fat-incr",
    "head-back-scale-depth-incr", "head-age-incr",
    "l-ear-scale-incr", "r-ear-scale-incr", "l-ear-lobe-incr", "r-ear-lobe-incr",
    "l-ear-flap-incr", "r-ear-flap-incr", "l-ear-rot-forward", "r-ear-rot-forward",
)  # fmt: skip

# anny scales heads and hands with the body height: a narrower height range keeps head
# breadth within about +-8% (adult 5th-95th percentiles) instead of +-15%.
PHENOTYPE_RANGES = {"height": (0.35, 0.7)}
LOCAL_CHANGE_SCALE = 0.35


def face_mesher() -> AnnyMesher:
    """The face mesher: anny head (no eyeballs, no tongue), y up, looking along +z.

    The dataset frame is centred on the template's bounding box (same offset for
    every mesh: no per-mesh alignment, the heads never move rigidly).
    """
    mesher = AnnyMesher(load_anny("head", FACE_LOCAL_CHANGES))
    vertices = mesher(mesher.neutral_phenotypes())[0]
    mesher.offset = -0.5 * (vertices.min(axis=0) + vertices.max(axis=0)).astype(np.float64)
    return mesher


def face_template() -> Template:
    """The faces template (average adult, neutral expression), as in meshes/anny_face.ply."""
    return face_mesher().template(name="anny_face")


def make_faces(
    out_dir: str | os.PathLike,
    *,
    subjects: int = 10,
    sequences: int = 12,
    frames: int = 10,
    seed: int = 0,
    batch_size: int = 64,
) -> PreparedDataset:
    """Generate a COMA-like faces dataset (metres) into ``out_dir``.

    Args:
        out_dir: the prepared-dataset folder (written atomically).
        subjects: number of sampled identities.
        sequences: number of expressions, the first of :data:`FACE_EXPRESSIONS`.
        frames: frames per sequence (>= 2; the first and last are neutral).
        seed: seeds every random draw: equal seeds give equal datasets.
        batch_size: meshes per anny forward pass.

    Returns:
        The written :class:`~deep3dmm.data.PreparedDataset`; rows are sorted by
        subject, expression, frame. ``subjects * sequences * frames`` meshes.
    """
    names = select_sequences(
        FACE_EXPRESSIONS, "face expressions", subjects=subjects, sequences=sequences, frames=frames
    )
    mesher = face_mesher()
    rng = np.random.default_rng(seed)
    phenotypes, local = sample_subjects(
        mesher, rng, subjects, scale=LOCAL_CHANGE_SCALE, ranges=PHENOTYPE_RANGES
    )  # (S, P), (S, L)
    labels = mesher.facial_action_labels
    peaks = np.zeros((len(names), len(labels)), dtype=np.float32)  # (E, A)
    for e, name in enumerate(names):
        for action, weight in FACE_EXPRESSIONS[name].items():
            peaks[e, labels.index(action)] = weight
    intensity = rng.uniform(0.75, 1.0, (subjects, len(names))).astype(np.float32)  # (S, E)
    weights = envelope(frames).astype(np.float32)  # (T,)
    s_idx, e_idx, f_idx, rows = subject_grid(subjects, names, frames, part="head")

    def batch(indices: np.ndarray) -> np.ndarray:
        s, e, f = s_idx[indices], e_idx[indices], f_idx[indices]
        actions = (weights[f] * intensity[s, e])[:, None] * peaks[e]  # (b, A)
        return mesher(phenotypes[s], local[s], actions)

    params = generator_params(
        "anny-faces",
        subjects=subjects,
        names=names,
        frames=frames,
        seed=seed,
        envelope="sin^2(pi t)",
        local_change_scale=LOCAL_CHANGE_SCALE,
        phenotype_ranges={**ADULT_PHENOTYPES, **PHENOTYPE_RANGES},
        frame="y up, looking along +z, template bounding box centred at the origin",
    )
    return write_plan(
        out_dir,
        face_template(),
        Plan(rows, batch),
        params=params,
        batch_size=batch_size,
        desc="faces",
    )
