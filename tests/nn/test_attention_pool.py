import copy

import numpy as np
import pytest
import torch

from deep3dmm.errors import ConfigError, TopologyMismatchError
from deep3dmm.nn import AttentionPool, FixedPool


def make_pool(h, direction="up", **kwargs):
    """Up: level 1 -> level 0 (81 -> 162); down: level 0 -> level 1."""
    if direction == "up":
        args = (h.vertices[1], h.vertices[0], h.up[0])
    else:
        args = (h.vertices[0], h.vertices[1], h.down[0])
    kwargs.setdefault("top_k", 8)
    return AttentionPool(*args, **kwargs)


@pytest.mark.parametrize("direction", ["up", "down"])
@pytest.mark.parametrize("normalize", ["l1", "softmax"])
def test_rows_sum_to_one_and_topk_pattern(small_hierarchy, direction, normalize):
    torch.manual_seed(0)
    pool = make_pool(small_hierarchy, direction, normalize=normalize, top_k=5)
    prior = (small_hierarchy.up if direction == "up" else small_hierarchy.down)[0]
    np.testing.assert_allclose(np.asarray(prior.sum(1)).ravel(), 1.0, atol=1e-6)
    p = pool.mapping().to_dense()
    torch.testing.assert_close(p.sum(1), torch.ones(p.shape[0]), atol=1e-6, rtol=0)
    index, weights = pool.attention()
    assert index.shape == weights.shape == (p.shape[0], 5)
    columns = index.sort(dim=1).values
    assert (columns[:, 1:] > columns[:, :-1]).all()  # exactly k distinct learned columns per row
    torch.testing.assert_close(weights.sum(1), torch.ones(p.shape[0]))
    # the learned indices are the true top-k of the clamped cosine scores (dense reference)
    q = torch.nn.functional.normalize(pool.queries, dim=0)
    k = torch.nn.functional.normalize(pool.keys, dim=0)
    scores = (q.t() @ k).detach()
    kth = scores.topk(5, dim=1).values[:, -1:]
    assert (scores.gather(1, index) >= kth - 1e-6).all()
    # support of P = prior's non-zeros union the learned ones, nothing else
    support = torch.zeros_like(p, dtype=torch.bool)
    support[torch.from_numpy(prior.toarray() != 0)] = True
    support.scatter_(1, index, True)
    assert ((p != 0) <= support).all()
    assert ((p != 0).sum(1) <= 5 + torch.from_numpy(np.diff(prior.indptr))).all()


def test_padded_rows_keep_the_matrix_and_never_repeat_a_column():
    import scipy.sparse as sp

    from deep3dmm.nn.attention_pool import _padded_rows
    from deep3dmm.nn.sparse import csr_parts

    dense = np.array([[0, 0.5, 0, 0.5], [1, 0, 0, 0], [0.2, 0.3, 0, 0.5], [0, 0, 0, 1]])
    crow, col, val = csr_parts(sp.csr_matrix(dense))
    columns, values = _padded_rows(crow, col, val)
    assert columns.shape == values.shape == (4, 3)
    assert ((columns >= 0) & (columns < 4)).all()
    assert all(len(set(row)) == 3 for row in columns.tolist())
    rebuilt = torch.zeros(4, 4, dtype=values.dtype).scatter_add_(1, columns, values)
    torch.testing.assert_close(rebuilt, torch.from_numpy(dense).float())


def test_forward_matches_dense_mapping_and_gradients_reach_parameters(small_hierarchy):
    torch.manual_seed(1)
    pool = make_pool(small_hierarchy, "up", top_k=6)
    x = torch.randn(3, small_hierarchy.num_vertices[1], 4, requires_grad=True)
    y = pool(x)
    dense = pool.mapping().to_dense()
    torch.testing.assert_close(y, torch.einsum("oi,bic->boc", dense, x), atol=1e-6, rtol=1e-5)
    (y**2).sum().backward()
    for name in ("keys", "queries", "weight"):
        grad = getattr(pool, name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    torch.testing.assert_close(
        x.grad, torch.einsum("oi,boc->bic", dense, 2 * y), atol=1e-5, rtol=1e-5
    )


@pytest.mark.parametrize("top_k", [4, 1000])
@pytest.mark.parametrize("mode", ["fused", "learned"])
def test_gradients_match_dense_autograd_reference(small_hierarchy, top_k, mode):
    """Sparse value/input gradients equal autograd through a dense P built from A.

    ``top_k=1000`` is clamped to all input vertices, so every prior entry is duplicated.
    """
    torch.manual_seed(2)
    h = small_hierarchy
    pool = AttentionPool(h.vertices[2], h.vertices[1], h.up[1], top_k=top_k, mode=mode).double()
    x = torch.randn(2, h.num_vertices[2], 3, dtype=torch.double, requires_grad=True)
    w = torch.randn(2, h.num_vertices[1], 3, dtype=torch.double)
    (pool(x) * w).sum().backward()
    names = ("keys", "queries", "weight") if mode == "fused" else ("keys", "queries")
    assert hasattr(pool, "weight") == (mode == "fused")
    fast = [getattr(pool, n).grad.clone() for n in names] + [x.grad.clone()]
    pool.zero_grad()
    x.grad = None
    index, weights = pool.attention()
    c0, c1 = pool._coefficients()
    prior = torch.from_numpy(h.up[1].toarray()).double()
    learned = torch.zeros_like(prior).scatter(1, index, weights)
    dense = c0 * prior + c1 * learned
    (torch.einsum("oi,bic->boc", dense, x) * w).sum().backward()
    slow = [getattr(pool, n).grad for n in names] + [x.grad]
    for name, a, b in zip(names + ("x",), fast, slow):
        torch.testing.assert_close(a, b, msg=name)


@pytest.mark.parametrize("normalize", ["l1", "softmax"])
def test_attention_weights_and_gradients_match_dense_reference(small_hierarchy, normalize):
    """A from a dense (V_out, V_in) clamped-cosine matrix, top-k by a dense sort."""
    torch.manual_seed(4)
    h = small_hierarchy
    pool = AttentionPool(
        h.vertices[1], h.vertices[0], h.up[0], top_k=6, normalize=normalize
    ).double()
    index, weights = pool.attention()
    probe = torch.randn_like(weights)
    grads = torch.autograd.grad((weights * probe).sum(), (pool.keys, pool.queries))
    q = pool.queries / pool.queries.norm(dim=0, keepdim=True)
    k = pool.keys / pool.keys.norm(dim=0, keepdim=True)
    scores = q.t() @ k  # (V_out, V_in)
    ref_index = scores.detach().argsort(dim=1, descending=True)[:, :6].sort(dim=1).values
    assert torch.equal(index.sort(dim=1).values, ref_index)
    picked = scores.gather(1, index).clamp_min(0)
    ref = picked / picked.sum(1, keepdim=True) if normalize == "l1" else picked.softmax(1)
    torch.testing.assert_close(weights, ref)
    ref_grads = torch.autograd.grad((ref * probe).sum(), (pool.keys, pool.queries))
    for a, b in zip(grads, ref_grads):
        torch.testing.assert_close(a, b)


def test_freeze_keeps_outputs_and_drops_parameters(small_hierarchy):
    torch.manual_seed(3)
    pool = make_pool(small_hierarchy, "up", top_k=8)
    x = torch.randn(4, small_hierarchy.num_vertices[1], 5)
    before = pool(x).detach()
    pool.freeze()
    assert pool.frozen and list(pool.parameters()) == []
    torch.testing.assert_close(pool(x), before, atol=1e-6, rtol=0)
    state = pool.state_dict()
    assert not any(k in state for k in ("keys", "queries", "weight"))
    # loads into another frozen pool with a different (random) mapping and nnz
    torch.manual_seed(99)
    other = make_pool(small_hierarchy, "up", top_k=8)
    other.freeze()
    other.load_state_dict(state)
    torch.testing.assert_close(other(x), before, atol=1e-6, rtol=0)


@pytest.mark.parametrize("direction", ["up", "down"])
def test_prior_weight_one_frozen_equals_fixed_pool_exactly(small_hierarchy, direction):
    pool = make_pool(small_hierarchy, direction, prior_weight=1.0)
    pool.freeze()
    prior = (small_hierarchy.up if direction == "up" else small_hierarchy.down)[0]
    fixed = FixedPool(prior)
    x = torch.randn(3, prior.shape[1], 6)
    assert torch.equal(pool(x), fixed(x))


def test_modes_learned_and_prior(small_hierarchy):
    x = torch.randn(2, small_hierarchy.num_vertices[1], 3)
    learned = make_pool(small_hierarchy, "up", mode="learned", top_k=3)
    p = learned.mapping().to_dense()
    assert ((p != 0).sum(1) == 3).all()
    torch.testing.assert_close(p.sum(1), torch.ones(p.shape[0]))
    prior_only = make_pool(small_hierarchy, "up", mode="prior")
    assert list(prior_only.parameters()) == []
    torch.testing.assert_close(prior_only(x), FixedPool(small_hierarchy.up[0])(x))
    no_prior = AttentionPool(
        small_hierarchy.vertices[1], small_hierarchy.vertices[0], None, top_k=3, mode="learned"
    )
    assert no_prior(x).shape == (2, small_hierarchy.num_vertices[0], 3)


def test_top_k_clamped_to_input_vertices_and_init(small_hierarchy):
    h = small_hierarchy
    pool = AttentionPool(h.vertices[2], h.vertices[1], h.up[1], top_k=1000)
    assert pool.top_k == h.num_vertices[2]
    assert pool.keys.shape == (21, h.num_vertices[2]) and pool.queries.shape == (
        21,
        h.num_vertices[1],
    )
    torch.testing.assert_close(pool.weight.data, torch.tensor([0.8, 0.2]))
    assert (pool.keys[3:] >= 0).all() and (pool.keys[3:] < 0.1 + 0.01).all()
    # first three rows: standardised positions x 0.1 plus noise in [0, 0.01)
    v = h.vertices[2].astype(np.float64)
    expected = torch.from_numpy(((v - v.mean(0)) / v.std(0) * 0.1).T).float()
    diff = pool.keys[:3].detach() - expected
    assert (diff >= 0).all() and (diff < 0.01).all()
    assert "top_k=41" in repr(pool) and "dim=21" in repr(pool)


def test_errors(small_hierarchy):
    h = small_hierarchy
    with pytest.raises(ConfigError, match="mode must be one of"):
        make_pool(h, mode="bogus")
    with pytest.raises(ConfigError, match="normalize must be one of"):
        make_pool(h, normalize="l2")
    with pytest.raises(ConfigError, match="dim must be >= 3"):
        make_pool(h, dim=2)
    with pytest.raises(ConfigError, match="needs the fixed prior"):
        AttentionPool(h.vertices[1], h.vertices[0], None, top_k=3)
    with pytest.raises(ConfigError, match="prior has shape"):
        AttentionPool(h.vertices[1], h.vertices[0], h.down[0], top_k=3)
    with pytest.raises(TopologyMismatchError, match=r"\(B, 81, C\)"):
        make_pool(h)(torch.zeros(1, 162, 3))


def test_topk_stays_exact_while_training_moves_keys_and_queries(small_hierarchy):
    """After the first step the pool reuses its candidates; the top-k must stay exact."""
    torch.manual_seed(5)
    pool = make_pool(small_hierarchy, "up", top_k=6)
    optimizer = torch.optim.SGD(pool.parameters(), lr=0.5)
    x = torch.randn(2, small_hierarchy.num_vertices[1], 3)
    for _ in range(8):
        optimizer.zero_grad()
        (pool(x) ** 2).sum().backward()
        optimizer.step()
        index, _ = pool.attention()
        q = torch.nn.functional.normalize(pool.queries, dim=0)
        k = torch.nn.functional.normalize(pool.keys, dim=0)
        ref = (q.t() @ k).topk(6, dim=1).indices.sort(dim=1).values
        assert torch.equal(index.sort(dim=1).values, ref)
    assert pool._candidates is not None  # the reuse path ran


def test_prepared_mapping_is_the_forward_mapping_and_used_once(small_hierarchy):
    """prepare() computes the next forward's mapping ahead: same output and gradients as
    computing it in the forward; the forward drops it, and discard() drops an unused one."""
    from deep3dmm.nn import MeshAutoencoder

    torch.manual_seed(0)
    model = MeshAutoencoder.build(small_hierarchy, conv="spiral", pool="attention",
                                  channels=(8, 16), latent=6, top_k=(4, 8))  # fmt: skip
    x = torch.randn(3, small_hierarchy.num_vertices[0], 3)
    pool = model.down_pools[0]

    def output_and_grads(prepare):
        model.zero_grad()
        if prepare:
            pool.prepare()
            assert pool._prepared is not None
        y = pool(torch.tanh(x @ torch.ones(3, 8)))
        assert pool._prepared is None  # consumed
        (y * torch.arange(y.numel()).view_as(y)).sum().backward()
        return y.detach(), pool.keys.grad.clone(), pool.queries.grad.clone()

    for a, b in zip(output_and_grads(True), output_and_grads(False), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    pool.prepare()
    pool.discard()
    assert pool._prepared is None
    model(x).sum().backward()  # the model prepares every head and leaves none behind
    assert all(getattr(m, "_prepared", None) is None for m in model.modules())


@pytest.mark.parametrize("channels", [5, 64])  # 11 entries per row: vertex-major / batched path
def test_frozen_product_both_paths_equal_the_dense_mapping(small_hierarchy, channels):
    """A frozen up-mapping's product (the batched bag sum when the mapping is sparse enough
    for the channel count, else vertex-major) equals the dense matrix, values and gradient."""
    torch.manual_seed(4)
    pool = make_pool(small_hierarchy, "up", top_k=8)
    pool.freeze()
    dense = pool.mapping().to_dense()  # (V_out, V_in)
    x = torch.randn(3, small_hierarchy.num_vertices[1], channels, requires_grad=True)
    y = pool(x)
    want = torch.einsum("oi,bic->boc", dense, x)
    torch.testing.assert_close(y, want, atol=1e-5, rtol=1e-5)
    probe = torch.randn_like(y)
    (got,) = torch.autograd.grad((y * probe).sum(), x)
    (ref,) = torch.autograd.grad((want * probe).sum(), x)
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    assert ("_batched_csr" in pool.__dict__) == (channels == 64)


def test_eval_mapping_is_computed_once_while_the_parameters_stay(small_hierarchy, monkeypatch):
    """Under no_grad in eval mode the learned mapping is reused from call to call (equal
    outputs, one computation); an optimizer step or a state_dict load recomputes it; with
    gradients or in training mode it is computed on every call."""
    from deep3dmm.nn import MeshAutoencoder

    torch.manual_seed(0)
    model = MeshAutoencoder.build(small_hierarchy, conv="spiral", pool="attention",
                                  channels=(8, 8), latent=4, top_k=(4, 8))  # fmt: skip
    x = torch.randn(2, small_hierarchy.num_vertices[0], 3)
    computed = []
    original = AttentionPool._learned_csr
    monkeypatch.setattr(AttentionPool, "_learned_csr",
                        lambda self, *a: computed.append(self) or original(self, *a))  # fmt: skip
    pools = sum(isinstance(m, AttentionPool) for m in model.modules())
    model.eval()
    with torch.no_grad():
        first = model(x)
        assert len(computed) == pools
        assert torch.equal(model(x), first) and len(computed) == pools  # reused
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    (model(x) - x).abs().mean().backward()
    optimizer.step()
    model.eval()
    computed.clear()
    with torch.no_grad():
        stepped = model(x)
        assert len(computed) == pools and not torch.equal(stepped, first)
        model.load_state_dict(copy.deepcopy(model.state_dict()))  # in-place copies
        assert torch.equal(model(x), stepped) and len(computed) == 2 * pools
    model(x).sum().backward()  # gradients wanted: computed again, with the graph
    assert len(computed) == 3 * pools and model.down_pools[0].keys.grad is not None
