import pytest
import torch

from deep3dmm.errors import TopologyMismatchError
from deep3dmm.nn import FixedPool


@pytest.mark.parametrize("dtype", [torch.double, torch.float32])  # float32: batched bag sum
@pytest.mark.parametrize("direction", ["down", "up"])
def test_matches_dense_product_forward_and_gradient(small_hierarchy, direction, dtype):
    matrix = getattr(small_hierarchy, direction)[0]
    pool = FixedPool(matrix).to(dtype)
    dense = torch.from_numpy(matrix.toarray()).to(dtype)
    for batch in (3, 2):  # a second batch size rebuilds the per-batch tables
        x = torch.randn(batch, matrix.shape[1], 5, dtype=dtype, requires_grad=True)
        y = pool(x)
        ref = torch.einsum("oi,bic->boc", dense, x)
        torch.testing.assert_close(y, ref)
        w = torch.randn_like(y)
        (g,) = torch.autograd.grad((y * w).sum(), x)
        torch.testing.assert_close(g, torch.einsum("oi,boc->bic", dense, w))


def test_mapping_repr_and_error(small_hierarchy):
    pool = FixedPool(small_hierarchy.down[0])
    dense = pool.mapping().to_dense().numpy()
    assert (dense == small_hierarchy.down[0].toarray()).all()
    assert "in_vertices=162, out_vertices=81" in repr(pool)
    with pytest.raises(TopologyMismatchError, match=r"\(B, 162, C\)"):
        pool(torch.zeros(2, 81, 3))
