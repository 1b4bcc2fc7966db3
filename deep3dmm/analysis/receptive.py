r"""Receptive fields of the mapping matrices between hierarchy levels.

A pooling step computes :math:`y = P x` with :math:`P` of shape
``(V_out, V_in)``; the receptive field of output vertex :math:`i` is row
:math:`P_{i,:}`: the weights of the input vertices that feed it. The fixed
matrices of COMA (D: one surviving vertex per row; U: barycentric weights of the
coarse triangle) are compared with the learned attention mapping of Deep3DMM
(Chen & Kim, CVPR 2021, Fig. 5), :math:`P = (w_0 M + w_1 A_{att}) / (w_0 + w_1)`.

Levels and directions follow the hierarchy: ``down`` at level ``l`` maps level ``l``
(``V_in = n_l``) to ``l + 1``; ``up`` at level ``l`` maps level ``l + 1`` to ``l``
(``V_in = n_{l+1}``). Weights are painted on the input level's mesh.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from deep3dmm.errors import ConfigError

__all__ = ["ReceptiveField", "check_level", "mapping_matrices", "receptive_fields"]


def _to_scipy(matrix) -> sp.csr_matrix:
    """A torch sparse (COO or CSR) tensor or scipy matrix as float64 scipy CSR."""
    if sp.issparse(matrix):
        return sp.csr_matrix(matrix, dtype=np.float64)
    coo = matrix.detach().cpu().to_sparse_coo().coalesce()
    rows, cols = coo.indices().numpy()
    return sp.csr_matrix(
        (coo.values().double().numpy(), (rows, cols)), shape=tuple(coo.shape), dtype=np.float64
    )


def check_level(hierarchy, level: int, direction: str) -> None:
    """Raise :class:`ConfigError` unless ``(level, direction)`` is a pooling step."""
    steps = len(hierarchy.down)
    if direction not in ("down", "up"):
        raise ConfigError(f"direction must be 'down' or 'up', got {direction!r}")
    if not 0 <= int(level) < steps:
        raise ConfigError(
            f"level {level} is out of range: the hierarchy has {steps} pooling steps "
            f"({list(hierarchy.num_vertices)} vertices)",
            fix=f"pass --level from 0 to {steps - 1}",
        )


def mapping_matrices(
    model, hierarchy, *, level: int, direction: str
) -> tuple[sp.csr_matrix, sp.csr_matrix | None]:
    """The fixed matrix (D or U) and the model's mapping ``P`` for one pooling step.

    Args:
        model: a :class:`~deep3dmm.nn.MeshAutoencoder` built on ``hierarchy``.
        hierarchy: its :class:`~deep3dmm.mesh.MeshHierarchy`.
        level: pooling step (0 = between the template and the first coarser level).
        direction: "down" or "up".

    Returns:
        ``(fixed, learned)``, both ``(V_out, V_in)`` float64 CSR; ``learned`` is ``None``
        when the model pools with the fixed matrix at this step.

    Raises:
        ConfigError: unknown direction or a level outside the hierarchy.
    """
    from deep3dmm.nn import AttentionPool

    check_level(hierarchy, level, direction)
    steps = len(hierarchy.down)
    if direction == "down":
        fixed, module = hierarchy.down[level], model.down_pools[level]
    else:  # decoder pools run from the coarsest step
        fixed, module = hierarchy.up[level], model.up_pools[steps - 1 - level]
    learned = _to_scipy(module.mapping()) if isinstance(module, AttentionPool) else None
    return _to_scipy(fixed), learned


@dataclass
class ReceptiveField:
    """Rows of the mapping matrices for chosen output vertices.

    Attributes:
        level, direction: the pooling step.
        outputs: ``(k,)`` chosen output vertices (of the output level).
        output_positions: ``(k, 3)`` their positions on the output level.
        input_vertices: ``(V_in, 3)`` the input level's mesh ...
        input_faces: ``(F_in, 3)`` ... on which the weights are painted.
        fixed: ``(k, V_in)`` rows of D or U.
        learned: ``(k, V_in)`` rows of the learned ``P``, or ``None`` for fixed pooling.
    """

    level: int
    direction: str
    outputs: np.ndarray
    output_positions: np.ndarray
    input_vertices: np.ndarray
    input_faces: np.ndarray
    fixed: np.ndarray
    learned: np.ndarray | None


def receptive_fields(
    model, hierarchy, *, level: int, direction: str, vertices: Sequence[int]
) -> ReceptiveField:
    """The receptive fields of ``vertices`` (output vertices) at one pooling step.

    Raises:
        ConfigError: bad level / direction, no vertices, or a vertex out of range.
    """
    fixed, learned = mapping_matrices(model, hierarchy, level=level, direction=direction)
    src, dst = (level, level + 1) if direction == "down" else (level + 1, level)
    outputs = np.asarray(list(vertices), dtype=np.int64)
    count = fixed.shape[0]
    if len(outputs) == 0:
        raise ConfigError("no output vertices given", fix="pass --vertices 0 10 20")
    bad = outputs[(outputs < 0) | (outputs >= count)]
    if len(bad):
        raise ConfigError(
            f"output vertex {int(bad[0])} is out of range: level {dst} has {count} vertices",
            fix=f"pass vertices from 0 to {count - 1}",
        )
    return ReceptiveField(
        level=int(level),
        direction=direction,
        outputs=outputs,
        output_positions=np.asarray(hierarchy.vertices[dst])[outputs],
        input_vertices=np.asarray(hierarchy.vertices[src]),
        input_faces=np.asarray(hierarchy.faces[src]),
        fixed=fixed[outputs].toarray(),
        learned=None if learned is None else learned[outputs].toarray(),
    )
