r"""ICT-FaceKit light face model -> a sampled registered-face dataset.

Li et al., "Learning Formation of Physically-Based Face Attributes", CVPR 2020
(github ICT-VGL/ICT-FaceKit).

The model is linear (unit: centimetres)::

    face = neutral + sum_m a_m * id_modes[m] + sum_j w_j * expr[j]

with identity weights :math:`a_m \sim N(0, s^2)` and expression (ARKit blendshape) weights
:math:`w_j \in [0, 1]`. The importer samples ``identities`` subjects and ``sequences``
expression sequences shared by all subjects (like COMA's expressions): sequence ``s``
activates ``active`` blendshapes (sparse), each following a smooth bump
:math:`w(t) = A \sin^2(\pi (t - t_0) / d)` on its window (0 outside), with the onset
:math:`t_0`, duration :math:`d` and amplitude :math:`A` jittered per subject. Everything
follows from ``seed``.

Sources: an ``.npz`` with keys neutral (V, 3), id_modes (M, V, 3), expr (J, V, 3), tri
(F, 3), expr_names (J,) (as in ../shared/data/ict_face/), or the ``FaceXModel`` folder of
ICT-FaceKit (generic_neutral_mesh.obj, identity000.obj ..., one OBJ per expression named
in vertex_indices.json; modes are the differences to the neutral mesh).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from deep3dmm.data.importers.reading import read_chunks, resolve_workers
from deep3dmm.data.prepared import IndexRow, PreparedDataset, PreparedDatasetWriter
from deep3dmm.errors import ConfigError, DatasetError
from deep3dmm.mesh.io import read_mesh
from deep3dmm.mesh.template import Template

__all__ = ["import_ict", "load_ict_model", "expression_weights"]

logger = logging.getLogger(__name__)

KEYS = ("neutral", "id_modes", "expr", "tri", "expr_names")


def _load_npz(path: Path) -> dict:
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in KEYS if k not in data]
            if missing:
                raise DatasetError(
                    f"missing keys {', '.join(missing)}",
                    path=path,
                    fix=f"an ICT model .npz holds {', '.join(KEYS)}",
                )
            model = {k: data[k] for k in KEYS}
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read the .npz ({exc})", path=path) from exc
    model["tri"] = model["tri"].astype(np.int64)
    model["expr_names"] = [str(n) for n in model["expr_names"]]
    return model


def _expression_names(config_path: Path) -> list[str]:
    """The ``expressions`` list of ICT-FaceKit's ``vertex_indices.json``.

    Raises:
        DatasetError: not JSON, no ``expressions`` list of strings.
    """
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DatasetError(f"unreadable JSON ({exc})", path=config_path) from exc
    names = config.get("expressions") if isinstance(config, dict) else None
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise DatasetError(
            "no 'expressions' list of names",
            path=config_path,
            fix="use the vertex_indices.json of ICT-FaceKit's FaceXModel folder",
        )
    return names


def _inside(folder: Path, name: str, source: Path) -> Path:
    """``folder / name``, refusing a name (read from ``source``) that leaves ``folder``.

    Raises:
        DatasetError: an absolute path, a path separator or ``..`` in ``name``.
    """
    path = folder / name
    if (
        Path(name).is_absolute()
        or Path(name).name != name
        or name in (".", "..")
        or "\\" in name
    ):  # (a plain name: files that are symlinks, as git-annex makes, still resolve)
        raise DatasetError(
            f"file name {name!r} leaves the folder {folder}",
            path=source,
            fix="expression names must be plain file names (no '/', '\\' or '..')",
        )
    return path


def _load_facex(folder: Path, workers: int | None) -> dict:
    config_path = folder / "vertex_indices.json"
    neutral_path = folder / "generic_neutral_mesh.obj"
    for path in (config_path, neutral_path):
        if not path.is_file():
            raise DatasetError(
                f"missing {path.name}",
                path=folder,
                fix="pass the FaceXModel folder of ICT-FaceKit or an ICT .npz",
            )
    names = _expression_names(config_path)
    identities = []
    while (folder / f"identity{len(identities):03d}.obj").is_file():
        identities.append(folder / f"identity{len(identities):03d}.obj")
    neutral, faces = read_mesh(neutral_path)
    template = Template(neutral, faces, name="ict", unit="cm")
    paths = identities + [_inside(folder, f"{n}.obj", config_path) for n in names]
    chunks = [paths[i : i + 8] for i in range(0, len(paths), 8)]
    blocks = []
    with tqdm(total=len(paths), unit="mesh", desc="read FaceXModel", disable=None) as bar:
        for number, (vertices, status) in enumerate(read_chunks(chunks, template, workers)):
            for offset, bad in enumerate(status):
                if bad is not None:  # a broken model file is fatal: modes must all exist
                    raise DatasetError(bad[1], path=chunks[number][offset], fix="re-download it")
            blocks.append(vertices)
            bar.update(len(status))
    shapes = np.concatenate(blocks) - neutral  # (M + J, V, 3) deltas
    return {
        "neutral": neutral,
        "id_modes": shapes[: len(identities)],
        "expr": shapes[len(identities) :],
        "tri": faces,
        "expr_names": names,
    }


def load_ict_model(src: str | os.PathLike, *, workers: int | None = None) -> dict:
    """The ICT model arrays from an ``.npz`` or a ``FaceXModel`` folder (see module docs)."""
    src = Path(src)
    if src.is_file() and src.suffix == ".npz":
        model = _load_npz(src)
    elif src.is_dir():
        model = _load_facex(src, workers)
    else:
        raise DatasetError(
            "ICT model not found", path=src, fix="pass the FaceXModel folder or an ICT .npz"
        )
    v = len(model["neutral"])
    if model["id_modes"].shape[1:] != (v, 3) or model["expr"].shape[1:] != (v, 3):
        raise DatasetError(
            f"model arrays disagree: neutral {model['neutral'].shape}, id_modes "
            f"{model['id_modes'].shape}, expr {model['expr'].shape}",
            path=src,
        )
    if len(model["expr_names"]) != len(model["expr"]):
        raise DatasetError("expr_names and expr have different lengths", path=src)
    return model


def expression_weights(
    rng: np.random.Generator,
    *,
    identities: int,
    sequences: int,
    frames: int,
    num_expressions: int,
    active: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth sparse expression weight trajectories.

    Returns:
        ``(weights (I, S, T, J) float32 in [0, 1], chosen (S, active) int64)``: sequence
        ``s`` activates blendshapes ``chosen[s]``; every other weight is 0.
    """
    if not 1 <= active <= num_expressions:
        raise ConfigError(f"active must be in [1, {num_expressions}], got {active}")
    chosen = np.stack(
        [np.sort(rng.choice(num_expressions, active, replace=False)) for _ in range(sequences)]
    )  # (S, k)
    base = rng.uniform(0.5, 1.0, (1, sequences, active))
    amplitude = np.clip(base * rng.uniform(0.8, 1.2, (identities, sequences, active)), 0, 1)
    onset = rng.uniform(0.0, 0.3, (identities, sequences, active))
    duration = rng.uniform(0.5, 0.7, (identities, sequences, active))
    t = np.linspace(0.0, 1.0, frames)[None, None, :, None]  # (1, 1, T, 1)
    phase = np.clip((t - onset[:, :, None]) / duration[:, :, None], 0.0, 1.0)  # (I, S, T, k)
    bump = amplitude[:, :, None] * np.sin(np.pi * phase) ** 2  # (I, S, T, k)
    weights = np.zeros((identities, sequences, frames, num_expressions), dtype=np.float32)
    np.put_along_axis(weights, np.broadcast_to(chosen[None, :, None, :], bump.shape), bump, axis=-1)
    return weights, chosen


def import_ict(
    src: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    skip_bad: bool = False,
    workers: int | None = None,
    identities: int = 10,
    sequences: int = 12,
    frames: int = 40,
    active: int = 3,
    identity_scale: float = 1.0,
    keep_vertices: int | None = None,
    seed: int = 0,
) -> PreparedDataset:
    """Sample an ICT-FaceKit dataset: ``identities`` x ``sequences`` x ``frames`` faces (cm).

    Args:
        src: an ICT ``.npz`` or the ``FaceXModel`` folder.
        out_dir: the prepared dataset folder to write.
        skip_bad: must be False (sampled meshes are valid by construction).
        workers: reader processes for the FaceXModel OBJ files.
        identities: subjects to sample (``id000``, ...).
        sequences: expression sequences, shared by all subjects.
        frames: frames per sequence.
        active: blendshapes active per sequence (sparsity).
        identity_scale: std of the identity weights (1 = the model's prior).
        keep_vertices: keep only the first n vertices (and the faces among them), e.g.
            9409 for the face region of the full FaceXModel head.
        seed: random seed; the same seed gives the same dataset.
    """
    if skip_bad:
        raise ConfigError(
            "skip_bad (--skip-bad) does not apply to the ict importer: it samples meshes from "
            "a model, so there are no bad files to skip",
            fix="drop --skip-bad",
        )
    for name, value in (("identities", identities), ("sequences", sequences), ("frames", frames)):
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")
    model = load_ict_model(src, workers=resolve_workers(workers))
    neutral, id_modes, expr, faces = (model[k] for k in ("neutral", "id_modes", "expr", "tri"))
    if keep_vertices is not None:
        if not 3 <= keep_vertices <= len(neutral):
            raise ConfigError(f"keep_vertices must be in [3, {len(neutral)}], got {keep_vertices}")
        faces = faces[(faces < keep_vertices).all(axis=1)]
        neutral, id_modes, expr = (a[..., :keep_vertices, :] for a in (neutral, id_modes, expr))
    template = Template(neutral, faces, name="ict", unit="cm")
    v = template.num_vertices
    rng = np.random.default_rng(seed)
    alpha = rng.normal(0.0, identity_scale, (identities, len(id_modes)))  # (I, M)
    weights, chosen = expression_weights(
        rng,
        identities=identities,
        sequences=sequences,
        frames=frames,
        num_expressions=len(expr),
        active=active,
    )  # (I, S, T, J)
    names = [
        f"{s:02d}_" + "+".join(model["expr_names"][j] for j in chosen[s]) for s in range(sequences)
    ]
    id_shapes = neutral + np.einsum("im,mvc->ivc", alpha, id_modes, optimize=True)  # (I, V, 3)
    expr_flat = np.asarray(expr, dtype=np.float32).reshape(len(expr), v * 3)  # (J, V*3)
    params = {
        "src": os.fspath(Path(src).resolve()),
        "identities": identities,
        "sequences": sequences,
        "frames": frames,
        "active": active,
        "identity_scale": identity_scale,
        "keep_vertices": keep_vertices,
        "seed": seed,
        "sequence_blendshapes": {
            n: [model["expr_names"][j] for j in chosen[s]] for s, n in enumerate(names)
        },
    }
    total = identities * sequences * frames
    with (
        PreparedDatasetWriter(
            out_dir, template, total, source="ict", unit="cm", params=params
        ) as w,
        tqdm(total=total, unit="mesh", desc="sample ict", disable=None) as bar,
    ):
        for i in range(identities):  # one batched product per subject: (S*T, J) @ (J, V*3)
            displacement = weights[i].reshape(sequences * frames, -1) @ expr_flat
            meshes = id_shapes[i] + displacement.reshape(sequences * frames, v, 3)
            rows = [
                IndexRow(f"id{i:03d}", names[s], t, Path(src).name)
                for s in range(sequences)
                for t in range(frames)
            ]
            w.add(meshes.astype(np.float32), rows)
            bar.update(len(rows))
    return PreparedDataset(out_dir)
