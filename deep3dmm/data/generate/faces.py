r"""Faces like COMA: subjects x named expressions, each neutral -> peak -> neutral.

COMA (Ranjan et al., "Generating 3D faces using Convolutional Mesh Autoencoders",
ECCV 2018) holds 12 extreme expression sequences of 12 subjects, rigidly aligned
(heads face one way, no global head motion). Here a subject is an anny head with
sampled adult phenotypes and face-only local shape changes; an expression is a set of
units, anny's facial actions (ARKit-style blendshapes) and the jaw bone, each with a
peak weight. Subject :math:`s` performs expression :math:`e` as

.. math:: X_{s,e}(t) = \mathrm{LBS}\Big(N_s + \sum_{a} w_{s,e,a}(t)\, \mathrm{DT}_s(d_a),
    \ \theta_{jaw} = w_{s,e,jaw}(t)\Big)

- :math:`\mathrm{DT}_s(d_a)`: the template's displacement of unit :math:`a` carried onto
  the subject's neutral face :math:`N_s` by deformation gradients in the subject's local
  frames (:mod:`~deep3dmm.data.generate.transfer`): the deformation depends on the face;
- the jaw opens by rotating anny's jaw bone (skinned: an arc, not a straight line);
- :math:`w_{s,e,a}(t) = p_{s,e,a}\, c(t; \text{onset, peak, offset}_{s,e,a})`: every unit
  has its own activation curve (:mod:`~deep3dmm.data.generate.timing`), so a sequence is
  a curve in shape space, not one direction scaled; its peak :math:`p_{s,e,a}` is the
  expression's weight x :data:`EXPRESSION_GAIN` x the subject's intensity for the
  expression x the subject's habitual gain for the unit x a left/right asymmetry,
  capped (:data:`MAX_WEIGHT`, :data:`MAX_JAW`); a left unit lags or leads its right twin.

Every curve is 0 at the first and the last frame: sequences start and end at the
subject's neutral face. The mesh is anny's head without its separate eyeball and
tongue parts: one connected surface (scalp, face, ears, neck) of 4,200 vertices, like
a COMA/FLAME face without eyeballs.
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
from deep3dmm.data.generate.transfer import DeformationTransfer
from deep3dmm.data.prepared import PreparedDataset
from deep3dmm.mesh.template import Template

__all__ = [
    "FACE_EXPRESSIONS",
    "FACE_LOCAL_CHANGES",
    "face_mesher",
    "face_template",
    "make_faces",
]

# Peak unit weights per expression: anny facial actions (ARKit-style blendshapes) and
# "jaw", the jaw bone's opening in radians (skinned: the chin swings on an arc). The
# first 12 carry COMA's sequence names (approximations of what the COMA subjects
# performed, as strong as theirs); the rest are extra. Negative weights reverse a unit
# (cheeks sucked in).
FACE_EXPRESSIONS: dict[str, dict[str, float]] = {
    "bareteeth": {
        "mouthStretchLeft": 1.0, "mouthStretchRight": 1.0,
        "mouthUpperUpLeft": 1.0, "mouthUpperUpRight": 1.0,
        "mouthLowerDownLeft": 1.0, "mouthLowerDownRight": 1.0,
        "mouthDimpleLeft": 0.6, "mouthDimpleRight": 0.6,
        "noseSneerLeft": 0.4, "noseSneerRight": 0.4, "jaw": 0.16,
    },
    "cheeks_in": {
        "mouthPucker": 0.6, "mouthFunnel": 0.4, "mouthRollLower": 0.3, "cheekPuff": -0.5,
    },
    "eyebrow": {
        "browInnerUp": 1.0, "browOuterUpLeft": 1.0, "browOuterUpRight": 1.0,
        "eyeWideLeft": 0.7, "eyeWideRight": 0.7,
    },
    "high_smile": {
        "mouthSmileLeft": 1.0, "mouthSmileRight": 1.0,
        "cheekSquintLeft": 0.6, "cheekSquintRight": 0.6,
        "eyeSquintLeft": 0.3, "eyeSquintRight": 0.3,
        "mouthUpperUpLeft": 0.4, "mouthUpperUpRight": 0.4, "jaw": 0.08,
    },
    "lips_back": {
        "mouthStretchLeft": 1.0, "mouthStretchRight": 1.0,
        "mouthPressLeft": 0.3, "mouthPressRight": 0.3,
        "mouthDimpleLeft": 0.8, "mouthDimpleRight": 0.8,
        "mouthRollLower": 0.2, "mouthRollUpper": 0.2,
        "mouthSmileLeft": 0.4, "mouthSmileRight": 0.4, "jaw": 0.07,
    },
    "lips_up": {
        "mouthUpperUpLeft": 1.0, "mouthUpperUpRight": 1.0,
        "noseSneerLeft": 1.0, "noseSneerRight": 1.0, "mouthShrugUpper": 1.0,
        "mouthRollUpper": -0.4, "cheekSquintLeft": 0.5, "cheekSquintRight": 0.5, "jaw": 0.15,
        "mouthStretchLeft": 0.3, "mouthStretchRight": 0.3,
    },
    "mouth_down": {
        "mouthFrownLeft": 1.0, "mouthFrownRight": 1.0, "mouthShrugLower": 0.6,
        "mouthLowerDownLeft": 0.5, "mouthLowerDownRight": 0.5,
        "browDownLeft": 0.4, "browDownRight": 0.4,
    },
    "mouth_extreme": {
        "jaw": 0.26, "jawOpen": 0.35,
        "mouthStretchLeft": 0.6, "mouthStretchRight": 0.6,
        "mouthLowerDownLeft": 0.6, "mouthLowerDownRight": 0.6,
        "browInnerUp": 0.6, "eyeWideLeft": 0.8, "eyeWideRight": 0.8,
    },
    "mouth_middle": {"mouthFunnel": 0.7, "mouthPucker": 0.3, "jaw": 0.1},
    "mouth_open": {
        "jaw": 0.18, "jawOpen": 0.25, "mouthLowerDownLeft": 0.4, "mouthLowerDownRight": 0.4,
    },
    "mouth_side": {"mouthLeft": 0.8, "jawLeft": 0.6},
    "mouth_up": {
        "mouthShrugLower": 0.7, "mouthShrugUpper": 0.6,
        "mouthFrownLeft": 0.3, "mouthFrownRight": 0.3,
    },
    "kiss": {"mouthPucker": 1.0, "mouthClose": 0.2},
    "cheek_puff": {"cheekPuff": 1.0, "mouthClose": 0.3},
    "blink": {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0},
    "jaw_right": {"jawRight": 0.8, "mouthRight": 0.4, "jaw": 0.04},
}  # fmt: skip
JAW = "jaw"
EYE_UNITS = ("eye", "cheekSquint")

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

# Per subject style: intensity of each expression, habitual gain of each unit
# (log-normal), left/right asymmetry of an expression, lag of a left unit behind its twin.
INTENSITY = (0.85, 1.25)
UNIT_GAIN_SIGMA = 0.35
ASYMMETRY = 0.2
SIDE_LAG = 0.05
# A jaw opens with a lateral deviation: yaw = JAW_DEVIATION-sized share of the opening.
JAW_DEVIATION = 0.25
# Units of one expression start within 15 % of the sequence of each other and hold their
# peak for 10-30 % of it (COMA's first-component residual is 16-17 %, not 40 %).
KEY_TIMES = {"onset": (0.05, 0.2), "rise": (0.12, 0.3), "hold": (0.1, 0.3), "fall": (0.12, 0.3)}
# COMA's subjects perform extreme expressions: anny's ARKit-style units at full weight move
# a face about half as far as COMA's registered sequences, so blendshape units are scaled.
EXPRESSION_GAIN = 1.7
# Caps on a performed unit's peak (blendshape weight; jaw opening in radians): beyond
# them lips fold through each other.
MAX_WEIGHT = 1.7
MAX_JAW = 0.3
# Eyelid and cheek-squint units stay within anny's range (beyond it the lower eyelid
# folds into the upper one).
MAX_EYE_WEIGHT = 1.0


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


def expression_units(names: list[str], labels: list[str]) -> list[str]:
    """The units the named expressions use: facial actions in anny's order, then ``jaw``."""
    used = {unit for name in names for unit in FACE_EXPRESSIONS[name]}
    return [label for label in labels if label in used] + ([JAW] if JAW in used else [])


def twin(unit: str) -> str | None:
    """The other side of a bilateral unit (``mouthSmileLeft`` <-> ``mouthSmileRight``)."""
    for a, b in (("Left", "Right"), ("Right", "Left")):
        if unit.endswith(a):
            return unit[: -len(a)] + b
    return None


def sample_style(
    rng: np.random.Generator, subjects: int, names: list[str], units: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each subject's way of performing each expression.

    Returns:
        ``(S, E, K)`` peak weights per unit (the expression's weights x intensity x the
        subject's habitual unit gain x left/right asymmetry) and ``(S, E, K, 4)`` key times
        (a bilateral unit's left side lags or leads its right side by a few percent) and
        ``(S, E)`` the jaw's lateral deviation (yaw over opening).
    """
    k = len(units)
    peaks = np.zeros((len(names), k))  # (E, K)
    for e, name in enumerate(names):
        for unit, weight in FACE_EXPRESSIONS[name].items():
            peaks[e, units.index(unit)] = weight * (1.0 if unit == JAW else EXPRESSION_GAIN)
    intensity = rng.uniform(*INTENSITY, (subjects, len(names)))  # (S, E)
    habit = np.exp(rng.normal(0.0, UNIT_GAIN_SIGMA, (subjects, 1, k)))  # (S, 1, K)
    asymmetry = np.clip(rng.normal(0.0, ASYMMETRY, (subjects, len(names))), -0.4, 0.4)
    side = np.array([1.0 if u.endswith("Left") else -1.0 if u.endswith("Right") else 0.0
                     for u in units])  # fmt: skip
    gains = intensity[..., None] * habit * (1.0 + asymmetry[..., None] * side)  # (S, E, K)
    keys = sample_key_times(rng, (subjects, len(names), k), **KEY_TIMES)  # (S, E, K, 4)
    lag = rng.normal(0.0, SIDE_LAG, (subjects, len(names), k))
    for i, unit in enumerate(units):  # a left unit follows its right twin, shifted
        other = twin(unit)
        if unit.endswith("Left") and other in units:
            shifted = keys[:, :, units.index(other)] + lag[:, :, i, None]
            keys[:, :, i] = np.clip(shifted, 0.02, 0.98)
    cap = np.array(
        [
            MAX_JAW if unit == JAW else MAX_EYE_WEIGHT if unit.startswith(EYE_UNITS) else MAX_WEIGHT
            for unit in units
        ]
    )  # (K,)
    deviation = rng.normal(0.0, JAW_DEVIATION, (subjects, len(names)))  # (S, E)
    return np.clip(peaks[None] * gains, -cap, cap), keys, deviation


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
    names, mesher, rng, phenotypes, local = start_sequences(
        FACE_EXPRESSIONS,
        "face expressions",
        face_mesher,
        subjects=subjects,
        sequences=sequences,
        frames=frames,
        seed=seed,
        scale=LOCAL_CHANGE_SCALE,
        ranges=PHENOTYPE_RANGES,
    )  # phenotypes (S, P), local changes (S, L)
    labels = mesher.facial_action_labels
    units = expression_units(names, labels)
    shapes = [u for u in units if u != JAW]  # blendshape units, transferred per subject
    peaks, keys, deviation = sample_style(rng, subjects, names, units)  # (S,E,K), (S,E,K,4)
    weights = activation(np.linspace(0.0, 1.0, frames), keys) * peaks[..., None]  # (S,E,K,T)
    fields = _transferred_fields(mesher, phenotypes, local, shapes)  # (S, K_shape, 3V)
    jaw_bone = mesher.bone_labels.index("jaw")
    s_idx, e_idx, f_idx, rows = subject_grid(subjects, names, frames, part="head")

    def batch(indices: np.ndarray) -> np.ndarray:
        s, e, f = s_idx[indices], e_idx[indices], f_idx[indices]
        w = weights[s, e, :, f]  # (b, K)
        offsets = np.zeros((len(indices), fields.shape[-1]))  # (b, 3V)
        for subject in np.unique(s):  # one product per subject in the batch
            mine = s == subject
            offsets[mine] = w[mine, : len(shapes)] @ fields[subject]
        rotations = np.broadcast_to(np.eye(3), (len(indices), len(mesher.bone_labels), 3, 3))
        rotations = rotations.copy()
        if JAW in units:
            opening = np.zeros((len(indices), 3))
            opening[:, 0] = w[:, units.index(JAW)]  # about the model's x axis (left)
            opening[:, 2] = opening[:, 0] * deviation[s, e]  # about its z axis (up)
            rotations[:, jaw_bone] = rotation_matrices(opening)
        offsets = offsets.reshape(len(indices), -1, 3)
        return mesher(phenotypes[s], local[s], None, rotations, offsets=offsets)

    return write_sequences(
        out_dir,
        "anny-faces",
        face_template,
        Plan(rows, batch),
        subjects=subjects,
        names=names,
        frames=frames,
        seed=seed,
        batch_size=batch_size,
        desc="faces",
        timing="per unit onset/peak/offset, smoothstep ramps",
        intensity=INTENSITY,
        unit_gain_sigma=UNIT_GAIN_SIGMA,
        max_weight=MAX_WEIGHT,
        max_jaw=MAX_JAW,
        max_eye_weight=MAX_EYE_WEIGHT,
        asymmetry=ASYMMETRY,
        expression_gain=EXPRESSION_GAIN,
        side_lag=SIDE_LAG,
        jaw_deviation=JAW_DEVIATION,
        key_times=KEY_TIMES,
        transfer="deformation gradients in the subject's local frames",
        local_change_scale=LOCAL_CHANGE_SCALE,
        phenotype_ranges={**ADULT_PHENOTYPES, **PHENOTYPE_RANGES},
        frame="y up, looking along +z, template bounding box centred at the origin",
    )


def _transferred_fields(
    mesher: AnnyMesher, phenotypes: np.ndarray, local: np.ndarray, units: list[str]
) -> np.ndarray:
    """Each blendshape unit's displacement carried onto each subject's neutral face.

    The template's unit displacements (anny, average adult, model frame) go through
    :class:`~deep3dmm.data.generate.transfer.DeformationTransfer` onto every subject,
    with the vertices no unit moves held fixed.

    Returns:
        ``(S, K, 3V)`` float64 displacements in the model's frame.
    """
    labels = mesher.facial_action_labels
    template = mesher(mesher.neutral_phenotypes(), raw=True)[0].astype(np.float64)  # (V, 3)
    actions = np.zeros((len(units), len(labels)), dtype=np.float32)
    actions[np.arange(len(units)), [labels.index(u) for u in units]] = 1.0
    basis = mesher(mesher.neutral_phenotypes(len(units)), None, actions, raw=True) - template
    fixed = np.linalg.norm(basis, axis=-1).max(axis=0) < 1e-7  # (V,)
    neutral = mesher(phenotypes, local, raw=True)  # (S, V, 3)
    fields = np.empty((len(phenotypes), len(units), basis.shape[1] * 3))
    for s, face in enumerate(neutral):  # one sparse factorisation per subject
        transfer = DeformationTransfer(template, face, mesher.faces, fixed=fixed)
        fields[s] = transfer(basis).reshape(len(units), -1)
    return fields
