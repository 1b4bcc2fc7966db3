"""Run an exported folder: ``load(DIR).encode(meshes)`` / ``.decode(codes)`` without the run.

ONNX folders run through onnxruntime (the ``[export]`` extra); TorchScript folders through
``torch.jit.load``. Nothing of the training code is needed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from deep3dmm.errors import CheckpointError, ConfigError

__all__ = ["ExportedModel", "load"]


class ExportedModel:
    """An exported autoencoder with its template and normalisation.

    Attributes:
        meta: the parsed ``model.json``.
        mean: ``(V, 3)`` float32 normalisation mean (dataset unit).
        std: ``(V, 3)`` float32 normalisation std.
        vertices: ``(V, 3)`` template vertices; ``faces``: ``(F, 3)`` template faces.
        latent_size: the code size; ``to_millimetres``: dataset unit -> mm factor.

    Shapes:
        - ``encode``: ``(B, V, 3)`` -> ``(B, latent)``
        - ``decode``: ``(B, latent)`` -> ``(B, V, 3)``
    """

    def __init__(self, folder: str | os.PathLike):
        from deep3dmm.mesh import read_mesh

        self.folder = Path(folder)
        meta_path = self.folder / "model.json"
        if not meta_path.is_file():
            raise CheckpointError(
                "not an export folder (no model.json)",
                path=self.folder,
                fix="pass a folder written by `deep3dmm export`",
            )
        self.meta = json.loads(meta_path.read_text())
        self.mean = np.load(self.folder / self.meta["normalization"]["mean"])
        self.std = np.load(self.folder / self.meta["normalization"]["std"])
        self.vertices, self.faces = read_mesh(self.folder / self.meta["template"])
        self.latent_size = int(self.meta["latent_size"])
        self.to_millimetres = float(self.meta["to_millimetres"])
        self._runners: dict = {}

    def __repr__(self) -> str:
        return (
            f"ExportedModel({str(self.folder)!r}, format={self.meta['format']!r}, "
            f"parts={sorted(self.meta['parts'])}, latent={self.latent_size}, "
            f"vertices={len(self.mean)})"
        )

    def _run(self, part: str, x: np.ndarray) -> np.ndarray:
        if part not in self.meta["parts"]:
            raise ConfigError(
                f"this export holds no {part} (parts: {sorted(self.meta['parts'])})",
                path=self.folder,
                fix="export again with --part autoencoder",
            )
        if part not in self._runners:
            path = self.folder / self.meta["parts"][part]["file"]
            if self.meta["format"] == "torchscript":
                import torch

                from deep3dmm.export.writer import quiet_deprecations

                with quiet_deprecations():
                    module = torch.jit.load(str(path))
                self._runners[part] = lambda a: module(torch.from_numpy(a)).detach().numpy()
            else:
                try:
                    import onnxruntime as ort
                except ImportError as exc:
                    raise ConfigError(
                        "onnxruntime is not installed", fix="pip install 'deep3dmm[export]'"
                    ) from exc
                session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                name = session.get_inputs()[0].name
                self._runners[part] = lambda a: session.run(None, {name: a})[0]
        return self._runners[part](np.ascontiguousarray(x, dtype=np.float32))

    def encode(self, vertices: np.ndarray, *, normalized: bool = False) -> np.ndarray:
        """Codes ``(B, latent)`` of meshes ``(B, V, 3)`` in the dataset unit.

        Args:
            vertices: the meshes (already normalised when ``normalized``).
            normalized: skip the ``(x - mean) / std`` step.
        """
        vertices = np.asarray(vertices, dtype=np.float32)
        if vertices.ndim != 3 or vertices.shape[1:] != self.mean.shape:
            raise ConfigError(
                f"encode expected meshes (B, {len(self.mean)}, 3), got {vertices.shape}"
            )
        x = vertices if normalized else (vertices - self.mean) / self.std
        return self._run("encoder", x)

    def decode(self, codes: np.ndarray, *, normalized: bool = False) -> np.ndarray:
        """Meshes ``(B, V, 3)`` in the dataset unit (or normalised) from codes ``(B, latent)``."""
        codes = np.asarray(codes, dtype=np.float32)
        if codes.ndim != 2 or codes.shape[1] != self.latent_size:
            raise ConfigError(f"decode expected codes (B, {self.latent_size}), got {codes.shape}")
        out = self._run("decoder", codes)
        return out if normalized else out * self.std + self.mean


def load(folder: str | os.PathLike) -> ExportedModel:
    """Open a folder written by ``deep3dmm export`` (see :class:`ExportedModel`)."""
    return ExportedModel(folder)
