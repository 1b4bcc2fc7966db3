"""The default faces dataset: generated once into a cache, reused by ``deep3dmm train``.

Size: 10 subjects x 12 COMA-named expressions x 10 frames = 1,200 meshes of 4,200
vertices (60 MB). Ten subjects leave nine for training under the identity split; twelve
expressions match COMA's protocol (extrapolation holds one out); ten frames per sequence
give the interpolation split (every tenth row) intermediate expressions to test on. It
generates in about a minute once anny's cache exists (one deformation-transfer
factorisation per subject), and a small autoencoder sees enough variety in a few epochs
on two CPU cores.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from deep3dmm.data.generate.common import GENERATOR_VERSION, anny_version
from deep3dmm.data.generate.faces import make_faces
from deep3dmm.data.prepared import PreparedDataset
from deep3dmm.errors import DatasetError

__all__ = ["DEFAULT_FACES", "cache_root", "default_faces_dataset"]

logger = logging.getLogger(__name__)

DEFAULT_FACES = {"subjects": 10, "sequences": 12, "frames": 10, "seed": 0}


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache root: ``cache_dir``, else ``$DEEP3DMM_CACHE``, else ``~/.cache/deep3dmm``."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("DEEP3DMM_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "deep3dmm"


def default_faces_path(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the default faces dataset lives: keyed by its parameters and the versions."""
    key = json.dumps(
        {**DEFAULT_FACES, "generator": GENERATOR_VERSION, "anny": anny_version()}, sort_keys=True
    )
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
    return cache_root(cache_dir) / "datasets" / f"faces-default-{digest}"


def default_faces_dataset(cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of the default faces dataset, generating it (atomically) on first use.

    Args:
        cache_dir: the cache root (default ``$DEEP3DMM_CACHE`` or ``~/.cache/deep3dmm``);
            the dataset goes to ``<root>/datasets/faces-default-<hash>``, the hash covering
            :data:`DEFAULT_FACES`, the generator version and the anny version.

    Returns:
        The prepared-dataset folder.
    """
    path = default_faces_path(cache_dir)
    if path.is_dir():
        try:
            PreparedDataset(path)
            return path
        except DatasetError as exc:  # a damaged cache is regenerated, never reused
            logger.warning("regenerating the default faces dataset: %s", exc)
    logger.info("generating the default faces dataset into %s (once)", path)
    make_faces(path, **DEFAULT_FACES)
    return path
