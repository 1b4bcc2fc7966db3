"""Embedded realistic datasets generated with anny: faces (~COMA), bodies (~DFAUST), hands.

Each generator writes a prepared dataset (metres) of subjects x sequences x frames,
every sequence going from neutral to a peak and back. See docs/data.md ("Generated data").
"""

from deep3dmm.data.generate.bodies import BODY_MOTIONS, make_bodies
from deep3dmm.data.generate.checks import inside_vertices, winding_numbers
from deep3dmm.data.generate.default import DEFAULT_FACES, cache_root, default_faces_dataset
from deep3dmm.data.generate.faces import FACE_EXPRESSIONS, make_faces
from deep3dmm.data.generate.hands import HAND_POSES, make_hands
from deep3dmm.data.generate.preview import render_preview
from deep3dmm.data.generate.templates import bundled_template, write_templates

GENERATORS = {"faces": make_faces, "bodies": make_bodies, "hands": make_hands}

__all__ = [
    "bundled_template",
    "write_templates",
    "BODY_MOTIONS",
    "DEFAULT_FACES",
    "FACE_EXPRESSIONS",
    "GENERATORS",
    "HAND_POSES",
    "cache_root",
    "default_faces_dataset",
    "inside_vertices",
    "make_bodies",
    "make_faces",
    "make_hands",
    "render_preview",
    "winding_numbers",
]
