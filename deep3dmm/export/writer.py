"""Write a trained run as a self-describing ONNX or TorchScript folder.

Layout of ``OUT``::

    OUT/encoder.onnx       (B, V, 3) normalised meshes -> (B, latent)      [part encoder]
    OUT/decoder.onnx       (B, latent) -> (B, V, 3) normalised meshes      [part decoder]
    OUT/autoencoder.onnx   (B, V, 3) -> (B, V, 3), normalised              [part autoencoder]
    OUT/template.ply       the template mesh (dataset unit)
    OUT/mean.npy, std.npy  (V, 3) float32 normalisation of the training split
    OUT/model.json         names, shapes, units, latent size, versions, run and checkpoint ids,
                           and the parity measured at export time

(``.pt`` TorchScript files instead of ``.onnx`` with ``--format torchscript``.) A mesh in the
dataset unit is ``output * std + mean``; ``to_millimetres`` in ``model.json`` converts it to mm.
``--part autoencoder`` writes all three models, so the folder can encode and decode.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from deep3dmm.atomic import atomic_dir
from deep3dmm.errors import ConfigError
from deep3dmm.export.exportable import DENSE_MAX, Part, exportable

__all__ = ["EXPORT_FORMAT_VERSION", "FORMATS", "OPSET", "PARTS", "ExportResult", "export_run"]

log = logging.getLogger(__name__)

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
PARTS = ("encoder", "decoder", "autoencoder")
OPSET = 17
EXPORT_FORMAT_VERSION = 1
PARITY_BATCHES = (1, 7)
_NAMES = {
    "encoder": ("vertices", "latent"),
    "decoder": ("latent", "vertices"),
    "autoencoder": ("vertices", "reconstruction"),
}


@dataclass
class ExportResult:
    """What :func:`export_run` wrote.

    Attributes:
        out_dir: the export folder.
        files: the model files written.
        parity: ``{part: {batch: max abs diff}}`` exported vs PyTorch, normalised units
            (``None`` for ONNX when onnxruntime is not installed).
    """

    out_dir: Path
    files: list[Path] = field(default_factory=list)
    parity: dict | None = None


@contextlib.contextmanager
def quiet_deprecations():
    """Hide torch's deprecation notices of ``torch.jit`` and the TorchScript-based exporter.

    Both are chosen on purpose (they need no extra package and give static graphs); the
    tests would catch their removal.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def check_choice(format: str, part: str) -> None:
    """Raise :class:`ConfigError` for an unknown format or part."""
    if format not in FORMATS:
        raise ConfigError(
            f"unknown export format {format!r}", fix=f"use one of {', '.join(FORMATS)}"
        )
    if part not in PARTS:
        raise ConfigError(f"unknown export part {part!r}", fix=f"use one of {', '.join(PARTS)}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _io(part: str, num_vertices: int, latent: int) -> dict:
    """Input / output names and shapes of one exported part."""
    mesh = {
        "shape": ["batch", num_vertices, 3],
        "dtype": "float32",
        "units": "normalised: (vertices - mean) / std, vertices in the dataset unit",
    }
    code = {"shape": ["batch", latent], "dtype": "float32", "units": "latent code"}
    specs = {"vertices": mesh, "reconstruction": mesh, "latent": code}
    source, target = _NAMES[part]
    return {
        "inputs": [{"name": source, **specs[source]}],
        "outputs": [{"name": target, **specs[target]}],
    }


def _example(part: str, batch: int, num_vertices: int, latent: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(batch)
    shape = (batch, latent) if part == "decoder" else (batch, num_vertices, 3)
    return torch.randn(shape, generator=generator)


def _write_model(module: Part, path: Path, fmt: str, example: torch.Tensor) -> None:
    source, target = _NAMES[module.part]
    if fmt == "torchscript":
        with quiet_deprecations():
            torch.jit.save(torch.jit.script(module), str(path))
        return
    with quiet_deprecations():
        torch.onnx.export(
            module,
            (example,),
            str(path),
            dynamo=False,  # the TorchScript-based exporter: no onnxscript needed, static graph
            opset_version=OPSET,
            input_names=[source],
            output_names=[target],
            dynamic_axes={source: {0: "batch"}, target: {0: "batch"}},
            do_constant_folding=True,
        )


def _runner(path: Path, fmt: str):
    """A function running the saved file (``None`` when onnxruntime is missing)."""
    if fmt == "torchscript":
        with quiet_deprecations():
            scripted = torch.jit.load(str(path))
        return lambda x: scripted(torch.from_numpy(x)).numpy()
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})[0]


@torch.no_grad()
def _parity(model, part: str, run_file, num_vertices: int, latent: int) -> dict:
    """Max abs difference of the saved file vs the live model, per batch size."""
    reference = {"encoder": model.encode, "decoder": model.decode, "autoencoder": model}[part]
    out = {}
    for batch in PARITY_BATCHES:
        x = _example(part, batch, num_vertices, latent)
        expected = reference(x).numpy()
        out[str(batch)] = float(np.abs(run_file(x.numpy()) - expected).max())
    return out


def export_model(
    model,
    hierarchy,
    out_dir: str | os.PathLike,
    *,
    format: str = "onnx",
    part: str = "autoencoder",
    mean: np.ndarray,
    std: np.ndarray,
    faces: np.ndarray,
    template: np.ndarray,
    unit: str = "m",
    metadata: dict | None = None,
    check: bool = True,
    dense_max: int = DENSE_MAX,
) -> ExportResult:
    """Export a :class:`~deep3dmm.nn.MeshAutoencoder` into a self-describing folder.

    Args:
        model: the live autoencoder (left untouched; a frozen copy is exported).
        hierarchy: its ``MeshHierarchy``.
        out_dir: the folder to write (replaced atomically when it exists).
        format: ``"onnx"`` or ``"torchscript"``.
        part: ``"encoder"``, ``"decoder"`` or ``"autoencoder"`` (all three models).
        mean: ``(V, 3)`` normalisation mean (dataset unit).
        std: ``(V, 3)`` normalisation std.
        faces: ``(F, 3)`` template faces.
        template: ``(V, 3)`` template vertices (dataset unit).
        unit: the dataset unit (``"m"``, ``"cm"``, ``"mm"``).
        metadata: extra ``model.json`` entries (run and checkpoint ids).
        check: measure parity with the live model (batch 1 and 7) into ``model.json``.
        dense_max: see :meth:`ExportableAutoencoder.from_model`.
    """
    from deep3dmm import __version__
    from deep3dmm.mesh import write_mesh
    from deep3dmm.mesh.template import UNITS

    check_choice(format, part)
    if unit not in UNITS:
        raise ConfigError(f"unknown unit {unit!r}", fix=f"use one of {sorted(UNITS)}")
    model = model.cpu().float().eval()
    net = exportable(model, hierarchy, dense_max=dense_max)
    num_vertices, latent = int(np.asarray(mean).shape[0]), net.latent_size
    parts = PARTS if part == "autoencoder" else (part,)
    suffix = FORMATS[format]
    result = ExportResult(out_dir=Path(out_dir), parity={} if check else None)
    meta = {
        "format": format,
        "export_format_version": EXPORT_FORMAT_VERSION,
        "deep3dmm_version": __version__,
        "torch_version": torch.__version__,
        **({"opset": OPSET} if format == "onnx" else {}),
        **(metadata or {}),
        "model": model.config,
        "latent_size": latent,
        "num_vertices": num_vertices,
        "unit": unit,
        "to_millimetres": UNITS[unit] * 1000.0,
        "template": "template.ply",
        "normalization": {
            "mean": "mean.npy",
            "std": "std.npy",
            "formula": "vertices (dataset unit) = output * std + mean; "
            "input = (vertices - mean) / std",
        },
        "parts": {},
    }
    with atomic_dir(out_dir) as tmp:
        for name in parts:
            path = tmp / f"{name}{suffix}"
            module = Part(net, name).eval()
            with torch.no_grad():
                _write_model(module, path, format, _example(name, 2, num_vertices, latent))
            meta["parts"][name] = {"file": path.name, **_io(name, num_vertices, latent)}
            result.files.append(result.out_dir / path.name)
            if check:
                runner = _runner(path, format)
                if runner is None:
                    log.warning("onnxruntime is not installed: parity not measured")
                    result.parity = None
                    check = False
                else:
                    result.parity[name] = _parity(model, name, runner, num_vertices, latent)
        meta["parity_max_abs_diff"] = result.parity
        np.save(tmp / "mean.npy", np.asarray(mean, dtype=np.float32))
        np.save(tmp / "std.npy", np.asarray(std, dtype=np.float32))
        write_mesh(tmp / "template.ply", np.asarray(template, np.float32), faces)
        (tmp / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
    return result


def export_run(
    run_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    format: str = "onnx",
    part: str = "autoencoder",
    checkpoint: str = "best",
    check: bool = True,
) -> ExportResult:
    """Export a run folder's checkpoint (see the module docstring for the layout).

    Raises:
        ConfigError: unknown format or part.
        CheckpointError: not a run folder, or the checkpoint is missing or damaged.
    """
    from deep3dmm.train import RunFiles, load_run

    check_choice(format, part)
    run = load_run(run_dir, checkpoint=checkpoint)
    files = RunFiles(Path(run_dir))
    state = run.checkpoint
    metadata = {
        "run": {"name": run.run_dir.resolve().name, "path": str(run.run_dir.resolve())},
        "checkpoint": {
            "name": checkpoint,
            "epoch": state.get("epoch"),
            "sha256": _sha256(getattr(files, checkpoint)),
            "hierarchy_hash": run.hierarchy.hash,
            "template_hash": state.get("data", {}).get("template_hash"),
        },
    }
    return export_model(
        run.model,
        run.hierarchy,
        out_dir,
        format=format,
        part=part,
        mean=run.normalization.mean,
        std=run.normalization.std,
        faces=run.hierarchy.faces[0],
        template=run.hierarchy.vertices[0],
        unit=state.get("data", {}).get("unit", "m"),
        metadata=metadata,
        check=check,
    )
