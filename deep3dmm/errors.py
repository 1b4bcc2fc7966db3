"""Typed errors raised by the library and turned into one clear line by the CLI.

Every error carries the message, optionally the file it concerns and the fix,
so the command line can print ``<file>: <what went wrong>. Fix: <what to do>``. Every error
class of the package is defined here; errors about a value or a shape
(:class:`ConfigError`, :class:`TopologyMismatchError`) are also ``ValueError``.
"""

from __future__ import annotations

import os

__all__ = [
    "Deep3DMMError",
    "MeshFormatError",
    "TopologyMismatchError",
    "DatasetError",
    "CheckpointError",
    "ConfigError",
    "MissingDependencyError",
    "NonFiniteLossError",
    "StaleEvaluationError",
]


class Deep3DMMError(Exception):
    """Base class of every error deep3dmm raises on bad input.

    Args:
        message: what went wrong, in one sentence.
        path: the file or folder concerned, if any.
        fix: what the user can do about it, if known.
    """

    def __init__(
        self, message: str, *, path: str | os.PathLike | None = None, fix: str | None = None
    ):
        self.message = message
        self.path = None if path is None else os.fspath(path)
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        text = self.message if self.path is None else f"{self.path}: {self.message}"
        if self.fix:
            text = f"{text.rstrip('.')}. Fix: {self.fix}"
        return text


class MeshFormatError(Deep3DMMError):
    """A mesh file is missing, empty, corrupt, not a mesh, or holds non-finite values."""


class TopologyMismatchError(Deep3DMMError, ValueError):
    """Vertices or faces do not match the template (registered meshes share one topology)."""


class DatasetError(Deep3DMMError):
    """A dataset folder is missing pieces, inconsistent, or in the wrong layout."""


class CheckpointError(Deep3DMMError):
    """A checkpoint or run directory is missing, corrupt, or belongs to another template/model."""


class ConfigError(Deep3DMMError, ValueError):
    """An option or configuration value is invalid."""


class MissingDependencyError(ConfigError):
    """An optional dependency is not installed (the message names the pip command)."""


class NonFiniteLossError(Deep3DMMError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


class StaleEvaluationError(Deep3DMMError):
    """A stored evaluation does not belong to the run's current checkpoint, dataset or split."""
