import numpy as np
import pytest
import torch

from deep3dmm.analysis.receptive import mapping_matrices, receptive_fields
from deep3dmm.errors import ConfigError


def _rows_by_forward(module, rows):
    """Independent reference: pool the identity features, P @ I = P."""
    eye = torch.eye(module.in_vertices)[None]  # (1, V_in, V_in)
    with torch.no_grad():
        return module(eye)[0].double().numpy()[rows]


@pytest.mark.parametrize("direction", ["down", "up"])
@pytest.mark.parametrize("level", [0, 1])
def test_weights_equal_matrix_rows(run, level, direction):
    h = run.hierarchy
    steps = len(h.down)
    n_out = h.num_vertices[level + 1] if direction == "down" else h.num_vertices[level]
    outputs = [0, n_out // 2, n_out - 1]
    field = receptive_fields(run.model, h, level=level, direction=direction, vertices=outputs)
    fixed = (h.down if direction == "down" else h.up)[level]
    np.testing.assert_allclose(field.fixed, fixed[outputs].toarray(), atol=1e-7)
    module = (
        run.model.down_pools[level]
        if direction == "down"
        else run.model.up_pools[steps - 1 - level]
    )
    np.testing.assert_allclose(field.learned, _rows_by_forward(module, outputs), atol=1e-5)
    src = level if direction == "down" else level + 1
    assert field.input_vertices.shape == (h.num_vertices[src], 3)
    assert field.fixed.shape == (3, h.num_vertices[src])
    np.testing.assert_allclose(field.learned.sum(1), 1.0, atol=1e-5)  # rows of P sum to 1


def test_bad_arguments(run):
    with pytest.raises(ConfigError, match="level 2 is out of range"):
        mapping_matrices(run.model, run.hierarchy, level=2, direction="down")
    with pytest.raises(ConfigError, match="direction"):
        mapping_matrices(run.model, run.hierarchy, level=0, direction="sideways")
    n = run.hierarchy.num_vertices[1]
    with pytest.raises(ConfigError, match=f"output vertex {n} is out of range"):
        receptive_fields(run.model, run.hierarchy, level=0, direction="down", vertices=[n])
