"""Optional dependencies: importing one that is missing names the extra that installs it."""

from __future__ import annotations

import importlib
from types import ModuleType

from deep3dmm.errors import MissingDependencyError

__all__ = ["EXTRAS", "MissingDependencyError", "require", "missing_dependency_error"]

#: Top-level module -> (pip package, deep3dmm extra that installs it).
EXTRAS: dict[str, tuple[str, str]] = {
    "sklearn": ("scikit-learn", "image"),
    "nltk": ("nltk", "image"),
}


def missing_dependency_error(module: str, *, feature: str | None = None) -> MissingDependencyError:
    """The error for a missing ``module`` (a top-level name such as ``"sklearn"``)."""
    top = module.split(".")[0]
    package, extra = EXTRAS.get(top, (top, None))
    command = f"pip install 'deep3dmm[{extra}]'" if extra else f"pip install {package}"
    needed = f" needed for {feature}" if feature else ""
    return MissingDependencyError(
        f"the optional dependency {package} (module {top}){needed} is not installed",
        fix=f"run {command}",
    )


def require(module: str, *, feature: str | None = None) -> ModuleType:
    """Import ``module``; a missing one raises :class:`MissingDependencyError`.

    Raises:
        MissingDependencyError: the module (or a package it needs) is not installed.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise missing_dependency_error(exc.name or module, feature=feature) from exc
