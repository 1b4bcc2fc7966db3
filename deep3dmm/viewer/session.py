r"""The model side of the latent-space viewer: decode codes, encode and reconstruct dataset rows.

Every request the page makes is answered here, in PyTorch, with inputs checked first (a
bad id or code length raises a typed error, which the server turns into HTTP 400).

Sliders move the code along directions of the training latents: one slider per latent
dimension, :math:`z = \bar z + \sum_k s_k \sigma_k e_k`, or, for latents larger than
``max_sliders``, along the principal directions :math:`v_k` of the training codes,
:math:`z = \bar z + \sum_k s_k \sqrt{\lambda_k}\, v_k`, with :math:`s_k \in [-3, 3]`.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from deep3dmm.analysis.inputs import dataset_row
from deep3dmm.analysis.latent import decode, encode
from deep3dmm.errors import ConfigError

__all__ = ["ViewerSession", "slider_basis"]

TRAIN_CODES = 2000  # training meshes encoded for the slider statistics (evenly spaced)
MAX_SLIDERS = 32


def slider_basis(codes: np.ndarray, *, max_sliders: int = MAX_SLIDERS) -> dict:
    """Centre and slider directions of training codes ``(N, latent)``.

    Returns:
        ``{"mode": "dims" | "pca", "center": (latent,), "basis": (S, latent)}``: slider ``k``
        at value ``s`` adds ``s * basis[k]``; rows are orthogonal and one standard deviation
        long (``sigma_k e_k`` or ``sqrt(lambda_k) v_k``).
    """
    codes = np.asarray(codes, dtype=np.float64)
    latent = codes.shape[1]
    center = codes.mean(0)
    if latent <= max_sliders:
        std = codes.std(0) if len(codes) > 1 else np.ones(latent)
        return {"mode": "dims", "center": center, "basis": np.diag(np.where(std > 0, std, 1.0))}
    _, sing, vt = np.linalg.svd(codes - center, full_matrices=False)  # rows of vt: directions
    count = min(max_sliders, len(sing))
    scale = sing[:count] / np.sqrt(max(len(codes), 1))
    return {"mode": "pca", "center": center, "basis": vt[:count] * scale[:, None]}


def _turbo(entries: int = 256) -> list[list[float]]:
    """The colour map of ``render`` heat maps (matplotlib ``turbo``), as RGB rows in [0, 1]."""
    from matplotlib import colormaps

    from deep3dmm.viz.figures import ERROR_CMAP

    return np.round(colormaps[ERROR_CMAP](np.linspace(0, 1, entries))[:, :3], 4).tolist()


class ViewerSession:
    """A loaded run and (optionally) its dataset, answering the viewer's requests.

    Args:
        run: a :class:`~deep3dmm.train.LoadedRun`.
        dataset: its :class:`~deep3dmm.data.PreparedDataset`, or ``None`` (sliders only).
        max_mm: top of the error colour scale in mm (as ``render --max-mm``).
    """

    def __init__(self, run, dataset=None, *, max_mm: float = 5.0):
        if not max_mm > 0:
            raise ConfigError(f"max_mm must be > 0, got {max_mm}", fix="--max-mm 5")
        self.run = run
        self.dataset = dataset
        self.max_mm = float(max_mm)
        self.faces = np.asarray(run.hierarchy.faces[0], dtype=np.int64)
        self.template = np.asarray(run.hierarchy.vertices[0], dtype=np.float32)
        # any model kind (autoencoder, PCA): the code size is what encode returns
        self.latent_size = int(encode(run, self.template[None]).shape[1])
        unit = run.checkpoint.get("data", {}).get("unit", "m")
        self.to_mm = float(dataset.to_millimetres) if dataset is not None else _to_mm(unit)
        self._lock = threading.Lock()  # the model is shared by the server's threads
        self.sliders = slider_basis(self._training_codes())

    def _training_codes(self) -> np.ndarray:
        if self.dataset is None or len(self.run.split.train) == 0:
            return np.zeros((1, self.latent_size))
        from deep3dmm.data.splits import strided_rows

        rows = strided_rows(self.run.split.train, min(TRAIN_CODES, len(self.run.split.train)))
        vertices = np.asarray(self.dataset.vertices[np.sort(rows)], dtype=np.float32)
        with self._lock, torch.no_grad():
            return np.concatenate([encode(self.run, v) for v in np.array_split(vertices, 8)])

    # ------------------------------------------------------------------ requests
    def info(self) -> dict:
        """What the page needs to start: mesh, sliders, units, colour map, dataset size."""
        return {
            "run": self.run.run_dir.name,
            "latent_size": self.latent_size,
            "num_vertices": len(self.template),
            "faces": self.faces.ravel().tolist(),
            "unit": self.run.checkpoint.get("data", {}).get("unit", "m"),
            "to_mm": self.to_mm,
            "max_mm": self.max_mm,
            "sliders": {
                "mode": self.sliders["mode"],
                "center": self.sliders["center"].tolist(),
                "basis": self.sliders["basis"].tolist(),
            },
            "dataset": None if self.dataset is None else {"count": len(self.dataset)},
            "colormap": _turbo(),
        }

    def check_code(self, code) -> np.ndarray:
        """``code`` as a finite ``(latent,)`` float32 array, or :class:`ConfigError`."""
        try:
            array = np.asarray(code, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise ConfigError("code must be a list of numbers") from exc
        if array.shape != (self.latent_size,):
            raise ConfigError(f"code must hold {self.latent_size} numbers, got shape {array.shape}")
        if not np.isfinite(array).all():
            raise ConfigError("code holds non-finite numbers")
        return array

    def _row(self, row):
        if self.dataset is None:
            raise ConfigError("no dataset is open", fix="start the viewer with --data DIR")
        if isinstance(row, bool) or not isinstance(row, (int, str)) or not str(row).isdigit():
            raise ConfigError(f"id must be a dataset row number, got {row!r}")
        return dataset_row(self.dataset, int(row))

    def decode(self, code) -> np.ndarray:
        """The mesh ``(V, 3)`` (dataset unit) decoded from a ``(latent,)`` code."""
        code = self.check_code(code)
        with self._lock:
            return decode(self.run, code[None])[0]

    def encode(self, row) -> dict:
        """The code and label of dataset row ``row``."""
        mesh = self._row(row)
        with self._lock:
            code = encode(self.run, mesh.vertices[None])[0]
        return {"code": code.tolist(), "label": mesh.label}

    def reconstruct(self, row) -> dict:
        """Input, reconstruction and per-vertex error (mm) of dataset row ``row``."""
        mesh = self._row(row)
        with self._lock:
            code = encode(self.run, mesh.vertices[None])
            recon = decode(self.run, code)[0]
        errors = np.linalg.norm(recon.astype(np.float64) - mesh.vertices, axis=1) * self.to_mm
        return {
            "label": mesh.label,
            "code": code[0].tolist(),
            "input": mesh.vertices.ravel().tolist(),
            "vertices": recon.ravel().tolist(),
            "errors_mm": np.round(errors, 5).tolist(),
            "mean_mm": float(errors.mean()),
        }


def _to_mm(unit: str) -> float:
    from deep3dmm.mesh.template import UNITS

    return UNITS.get(unit, 1.0) * 1000.0
