import torch

from deep3dmm.nn.sparse import learned_spmm, sampled_dot


def random_pattern(rows, cols, per_row, seed):
    """CSR arrays with ``per_row`` distinct columns per row, in random order."""
    g = torch.Generator().manual_seed(seed)
    col = torch.stack([torch.randperm(cols, generator=g)[:per_row] for _ in range(rows)])
    return torch.arange(0, rows * per_row + 1, per_row), col.reshape(-1)


def test_sampled_dot_matches_dense_products_and_their_gradients():
    crow, col = random_pattern(7, 11, 4, seed=0)
    a = torch.randn(7, 5, dtype=torch.double, requires_grad=True)
    b = torch.randn(11, 5, dtype=torch.double, requires_grad=True)
    rows = torch.arange(7).repeat_interleave(4)
    dense = (a @ b.t())[rows, col]  # independent reference: the full product, then picked
    torch.testing.assert_close(sampled_dot(crow, col, a, b), dense)
    assert torch.autograd.gradcheck(lambda a, b: sampled_dot(crow, col, a, b), (a, b))


def test_learned_spmm_gradients_with_repeated_columns():
    """A row holding a column twice adds both entries; value and input gradients hold."""
    crow = torch.tensor([0, 3, 5])
    col = torch.tensor([2, 0, 2, 1, 1])
    values = torch.randn(5, dtype=torch.double, requires_grad=True)
    x = torch.randn(3, 4, dtype=torch.double, requires_grad=True)
    parts = [(torch.tensor([0, 2, 3]), torch.tensor([2, 0, 1])), (torch.tensor([0, 1, 2]),
             torch.tensor([2, 1]))]  # fmt: skip
    order = torch.tensor([0, 1, 3, 2, 4])  # cat(part values)[order] = entry order

    def dense(values):
        return torch.zeros(2, 3, dtype=torch.double).index_put(
            (torch.tensor([0, 0, 0, 1, 1]), col), values, accumulate=True
        )

    y = learned_spmm(crow, col, values, (2, 3), x, parts=parts, order=order)
    torch.testing.assert_close(y, dense(values) @ x)
    assert torch.autograd.gradcheck(
        lambda v, x: learned_spmm(crow, col, v, (2, 3), x, parts=parts, order=order), (values, x)
    )
