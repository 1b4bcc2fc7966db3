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


def test_sampled_dot_with_known_values_returns_them_and_the_same_gradients():
    crow, col = random_pattern(6, 9, 3, seed=1)
    a = torch.randn(6, 4, dtype=torch.double, requires_grad=True)
    b = torch.randn(9, 4, dtype=torch.double, requires_grad=True)
    known = sampled_dot(crow, col, a, b).detach()
    given = sampled_dot(crow, col, a, b, values=known)
    assert torch.equal(given, known)
    probe = torch.randn(len(col), dtype=torch.double)
    want = torch.autograd.grad((sampled_dot(crow, col, a, b) * probe).sum(), (a, b))
    got = torch.autograd.grad((given * probe).sum(), (a, b))
    for x, y in zip(got, want, strict=True):
        torch.testing.assert_close(x, y)


def test_learned_spmm_blocks_with_repeated_unsorted_columns():
    """Rows [2, 0 | 2] and [1, 0 | 1]: repeats across blocks add up, each has its gradient."""
    crow = torch.tensor([0, 3, 6])
    col = torch.tensor([2, 0, 2, 1, 0, 1])
    values = torch.randn(6, dtype=torch.double, requires_grad=True)
    x = torch.randn(3, 4, dtype=torch.double, requires_grad=True)
    rows = torch.tensor([0, 0, 0, 1, 1, 1])

    def dense(values):  # independent reference: accumulate the entries into a dense matrix
        a = torch.zeros(2, 3, dtype=torch.double)
        return a.index_put((rows, col), values, accumulate=True)

    def fast(values, x):
        return learned_spmm(crow, col, values, (2, 3), x, blocks=(2, 1))

    y = fast(values, x)
    torch.testing.assert_close(y, dense(values) @ x)
    probe = torch.randn(2, 4, dtype=torch.double)
    got = torch.autograd.grad((y * probe).sum(), (values, x))
    want = torch.autograd.grad((dense(values) @ x * probe).sum(), (values, x))
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    assert torch.autograd.gradcheck(fast, (values, x))


def test_spmm_equals_the_dense_product_in_every_dtype_with_empty_and_repeated_rows():
    from deep3dmm.nn.sparse import spmm

    crow, col = random_pattern(30, 40, 5, seed=3)
    crow = torch.cat([crow[:3], crow[2:]])  # row 2 empty: 31 rows
    col = torch.cat([col[:4], col[:1], col[4:]])  # row 0 repeats a column
    crow[1:] += 1  # the repeated entry
    values = torch.randn(len(col), dtype=torch.double)
    rows = torch.repeat_interleave(torch.arange(31), crow[1:] - crow[:-1])
    dense = torch.zeros(31, 40, dtype=torch.double).index_put((rows, col), values, True)
    for dtype in (torch.float32, torch.float64):  # float32: the embedding_bag kernel
        a = torch.sparse_csr_tensor(crow, col, values.to(dtype), (31, 40), check_invariants=False)
        x = torch.randn(40, 300, dtype=dtype)
        got = spmm(a, x)
        assert got.dtype == dtype and got.shape == (31, 300)
        torch.testing.assert_close(got, (dense.to(dtype) @ x))
        torch.testing.assert_close(spmm(a, x.t().contiguous().t()), got)  # strided x


def test_transpose_keeps_row_order_within_columns_on_both_paths():
    """The CPU counting sort (scipy ``tocsc``) and the sorting path give the same ``A^T``:
    each column's entries in row order, repeated columns kept, values moved with them."""
    from deep3dmm.nn.sparse import _transpose

    g = torch.Generator().manual_seed(0)
    rows, cols, width = 40, 13, 5
    col = torch.randint(0, cols, (rows * width,), generator=g)  # repeats within rows
    crow = torch.arange(0, rows * width + 1, width)
    values = torch.randn(rows * width, generator=g, dtype=torch.float64)
    counted = _transpose(crow, col, values, (rows, cols))  # float64 on CPU: scipy
    by_sort = _transpose(crow, col, values.to(torch.bfloat16), (rows, cols))  # the other path
    assert torch.equal(counted.crow_indices(), by_sort.crow_indices())
    assert torch.equal(counted.col_indices(), by_sort.col_indices())
    assert torch.equal(counted.values().to(torch.bfloat16), by_sort.values())
    dense = torch.zeros(rows, cols, dtype=torch.float64)
    dense.index_put_((torch.arange(rows).repeat_interleave(width), col), values, accumulate=True)
    assert torch.allclose(counted.to_dense(), dense.t(), atol=1e-12)
    for c in range(cols):  # row order within each column
        part = counted.col_indices()[counted.crow_indices()[c] : counted.crow_indices()[c + 1]]
        assert torch.equal(part, part.sort().values)


def test_learned_spmm_batched_input_equals_the_dense_product_per_sample():
    """(B, N, C) input: Y_b = A X_b for every sample, values and input gradients as dense."""
    crow, col = random_pattern(6, 9, 3, seed=5)
    values = torch.randn(len(col), dtype=torch.double, requires_grad=True)
    x = torch.randn(4, 9, 5, dtype=torch.double, requires_grad=True)
    rows = torch.arange(6).repeat_interleave(3)

    def dense(values):
        return torch.zeros(6, 9, dtype=torch.double).index_put((rows, col), values, True)

    y = learned_spmm(crow, col, values, (6, 9), x)
    assert y.shape == (4, 6, 5) and y.is_contiguous()
    want = torch.einsum("rn,bnc->brc", dense(values), x)  # independent: dense, per sample
    torch.testing.assert_close(y, want)
    probe = torch.randn(4, 6, 5, dtype=torch.double)
    got = torch.autograd.grad((y * probe).sum(), (values, x))
    ref = torch.autograd.grad((want * probe).sum(), (values, x))
    for a, b in zip(got, ref, strict=True):
        torch.testing.assert_close(a, b)
    assert torch.autograd.gradcheck(lambda v, x: learned_spmm(crow, col, v, (6, 9), x), (values, x))
