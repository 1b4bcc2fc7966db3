"""The hierarchy schema: every parameter of :meth:`~deep3dmm.mesh.MeshHierarchy.build`.

:class:`HierarchyConfig` is used by ``MeshHierarchy.build`` / ``cached``, by the
``deep3dmm hierarchy`` command (its flags are generated from it) and by training
(``RunConfig.hierarchy``). :meth:`HierarchyConfig.params` gives the normalised, per-level
parameter dict that the hierarchy stores and hashes. This module imports no torch.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

from deep3dmm import schema
from deep3dmm.errors import ConfigError

__all__ = ["HierarchyConfig"]

option = schema.option


@dataclass(frozen=True)
class HierarchyConfig:
    """Decimation and spiral parameters of a mesh hierarchy.

    Args:
        factors: decimation factor per coarser level; level ``l + 1`` has
            ``ceil(n_l / factors[l])`` vertices (COMA: 4, 4, 4, 4).
        spiral_length: spiral length ``L`` (one int, or one per level; SpiralNet++: 9).
        spiral_dilation: spiral dilation ``d`` (one int, or one per level).
        reference_vertices: Neural3DMM-style spiral starts: template vertex indices (e.g.
            one per connected component), ``"random"`` (one per component, drawn with
            ``seed``) or ``None`` (SpiralNet++ style). Coarser levels use the vertex nearest
            to each reference position.
        seed: seed of ``reference_vertices="random"``; the rest of the construction is
            deterministic.
    """

    factors: tuple[int, ...] = option((4, 4, 4, 4), "decimation factor per level", metavar="F")
    spiral_length: int | tuple[int, ...] = option(
        9, "spiral length L: one value, or one per level", metavar="L"
    )
    spiral_dilation: int | tuple[int, ...] = option(
        1, "spiral dilation: one value, or one per level", metavar="D"
    )
    reference_vertices: tuple[int, ...] | str | None = option(
        None,
        "Neural3DMM-style spiral starts: template vertex indices, or 'random'",
        metavar="V",
        takes="vertex indices or 'random'",
        words=("random",),
    )
    seed: int = option(0, "seed of --reference-vertices random")

    def __post_init__(self):
        schema.check_fields(self)
        if not self.factors or any(int(f) < 1 for f in self.factors):
            raise ConfigError(
                f"factors must be integers >= 1, got {list(self.factors)}", fix="e.g. 4 4 4 4"
            )
        for name in ("spiral_length", "spiral_dilation"):
            self._per_level(name)
        reference = self.reference_vertices
        if isinstance(reference, str) and reference != "random":
            raise ConfigError(
                f"reference_vertices must be None, 'random' or vertex indices, got {reference!r}",
                fix="use reference_vertices='random' or a list of template vertex indices",
            )

    @property
    def num_levels(self) -> int:
        """Levels of the hierarchy, ``len(factors) + 1``."""
        return len(self.factors) + 1

    def _per_level(self, name: str) -> list[int]:
        """One int per level from an int or a sequence of ``num_levels`` ints (each >= 1)."""
        value = getattr(self, name)
        values = [int(value)] * self.num_levels if isinstance(value, int) else list(value)
        if len(values) != self.num_levels or min(values) < 1:
            raise ConfigError(
                f"{name} must be one int >= 1 or {self.num_levels} of them (one per level), "
                f"got {value!r}",
                fix=f"pass e.g. {name}=9 or a list of {self.num_levels} values",
            )
        return [int(v) for v in values]

    def params(self, num_vertices: int | None = None) -> dict[str, Any]:
        """The normalised parameters (per-level lists), as stored in and hashed with a hierarchy.

        Args:
            num_vertices: the template's vertex count, to check ``reference_vertices``.

        Raises:
            ConfigError: a reference vertex outside the template.
        """
        reference = self.reference_vertices
        if isinstance(reference, tuple):
            reference = [int(r) for r in reference]
            bad = [r for r in reference if num_vertices is not None and not 0 <= r < num_vertices]
            if bad:
                raise ConfigError(
                    f"reference vertices {bad} outside [0, {num_vertices})",
                    fix="give vertex indices of the template",
                )
        return {
            "factors": [int(f) for f in self.factors],
            "spiral_length": self._per_level("spiral_length"),
            "spiral_dilation": self._per_level("spiral_dilation"),
            "reference_vertices": reference,
            "seed": int(self.seed),
        }

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> HierarchyConfig:
        """The configuration of a stored hierarchy (``MeshHierarchy.params``)."""

        def compact(values):  # one value when every level has it
            values = [int(v) for v in values]
            return values[0] if len(set(values)) == 1 else tuple(values)

        reference = params.get("reference_vertices")
        return cls(
            factors=tuple(params["factors"]),
            spiral_length=compact(params["spiral_length"]),
            spiral_dilation=compact(params["spiral_dilation"]),
            reference_vertices=tuple(reference) if isinstance(reference, list) else reference,
            seed=int(params.get("seed", 0)),
        )

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> HierarchyConfig:
        """From ``MeshHierarchy.build`` keyword arguments (lists, numpy ints accepted)."""
        values = {}
        for key, value in options.items():
            if isinstance(value, numbers.Integral):
                value = int(value)
            elif not isinstance(value, str) and value is not None:
                value = tuple(int(v) for v in _iterable(value))
            values[key] = value
        return schema.from_dict(
            cls, values, section="hierarchy", noun="hierarchy parameter", qualify=False
        )

    def replace(self, **changes: Any) -> HierarchyConfig:
        """A copy with ``changes`` (checked; unknown parameters are errors)."""
        return schema.replace(self, "hierarchy", **changes) if changes else self

    def to_dict(self) -> dict[str, Any]:
        """The parameters as plain values (``None`` left out, tuples as lists)."""
        return schema.to_dict(self)


def _iterable(value: Any) -> Any:
    try:
        iter(value)
    except TypeError:
        return [value]
    return value
