"""Package namespaces that import their modules on first use (PEP 562).

``import deep3dmm`` or ``from deep3dmm.train.config import RunConfig`` then loads no torch,
trimesh or matplotlib: the command line answers ``--help`` at once, and each name still
resolves to the same object as an eager import would give.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, namespace: dict[str, Any], exports: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``exports`` maps name -> module.

    A name not in ``exports`` may be a submodule (``deep3dmm.mesh.shapes``). A resolved name
    is stored in ``namespace`` (the package's globals), so the lookup runs once.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is not None:
            value = getattr(importlib.import_module(module), name)
        else:
            try:
                value = importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as exc:
                if exc.name != f"{package}.{name}":
                    raise
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
