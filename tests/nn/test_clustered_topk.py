"""The clustered top-k search against the dense top-k."""

import copy

import torch

from deep3dmm.nn import AttentionPool, MeshAutoencoder
from deep3dmm.nn.clustered_topk import ClusteredTopK


def dense_sets(q, k, top):
    """Independent reference: top-k column sets of the full score matrix, rows sorted."""
    return (q.t() @ k).topk(top, dim=1).indices.sort(dim=1).values


def unit(x):
    return torch.nn.functional.normalize(x, dim=0)


def attention_like(d, n, seed):
    """Columns like the attention head's keys: a common offset plus random components."""
    g = torch.Generator().manual_seed(seed)
    return unit(torch.rand(d, n, generator=g, dtype=torch.float64) * 0.1 + 0.05)


def test_certified_search_is_exact_while_keys_move():
    q, k = attention_like(6, 300, 0), attention_like(6, 1500, 1)
    search = ClusteredTopK(8, cluster_size=32, probes=4, rebuild=3, certify=True)
    g = torch.Generator().manual_seed(2)
    for step in range(6):
        assert torch.equal(search(q, k).sort(dim=1).values, dense_sets(q, k, 8)), step
        q = unit(q + 0.003 * torch.randn(q.shape, generator=g, dtype=q.dtype))
        k = unit(k + 0.003 * torch.randn(k.shape, generator=g, dtype=k.dtype))
    assert 0.0 <= search.last_certified <= 1.0


def test_approximate_recall_is_measured_and_grows_with_probes():
    q, k = attention_like(21, 400, 3).float(), attention_like(21, 4000, 4).float()
    recalls = []
    for probes in (2, 8, 1000):
        index = ClusteredTopK(8, cluster_size=64, probes=probes)(q, k)
        assert index.shape == (400, 8)
        assert all(len(set(row)) == 8 for row in index.tolist())  # no column twice
        recalls.append(ClusteredTopK.recall(index, q, k))
    assert recalls[0] < recalls[1] < 1.0 and recalls[2] == 1.0  # all probed: exact
    dense = (q.t() @ k).topk(8, dim=1).indices
    assert ClusteredTopK.recall(dense, q, k) == 1.0


def test_merging_the_previous_result_never_loses_recall():
    q, k = attention_like(21, 300, 5).float(), attention_like(21, 3000, 6).float()
    search = ClusteredTopK(8, cluster_size=64, probes=3, rebuild=1)  # new clusters each call
    recalls = [ClusteredTopK.recall(search(q, k), q, k) for _ in range(4)]
    assert all(b >= a for a, b in zip(recalls, recalls[1:], strict=False))
    assert recalls[-1] > recalls[0]


def test_attention_pool_approximate_equals_dense_where_every_cluster_is_probed(small_hierarchy):
    """On a small mesh the clustered search probes every cluster: the same top-k as the dense
    path, also after SGD steps of a whole model (the two models stay identical)."""
    torch.manual_seed(0)
    models = []
    for search in ("exact", "approximate"):
        torch.manual_seed(0)
        model = MeshAutoencoder.build(
            small_hierarchy, conv="spiral", pool="attention", channels=(8, 8), latent=4,
            top_k=(4, 8),
        )  # fmt: skip
        for module in model.modules():
            if isinstance(module, AttentionPool):
                module.approximate = search == "approximate"
                module._clustered = ClusteredTopK(module.top_k, cluster_size=16, probes=1000)
        models.append(model)
    x = torch.randn(3, small_hierarchy.num_vertices[0], 3)
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.5) for m in models]
    for _ in range(4):
        for model, optimizer in zip(models, optimizers, strict=True):
            optimizer.zero_grad()
            (model(x) - x).abs().mean().backward()
            optimizer.step()
        pools = [[m for m in model.modules() if isinstance(m, AttentionPool)] for model in models]
        for exact, approx in zip(*pools, strict=True):
            assert approx.approximate and not exact.approximate
            a = exact.attention()[0].sort(dim=1).values
            b = approx.attention()[0].sort(dim=1).values
            assert torch.equal(a, b)
    torch.testing.assert_close(models[0](x), models[1](x))


def test_auto_choice_and_option(small_hierarchy):
    h = small_hierarchy
    pool = AttentionPool(h.vertices[0], h.vertices[1], h.down[0], top_k=4)
    assert not pool.approximate  # small: exact dense search
    pool = AttentionPool(h.vertices[0], h.vertices[1], h.down[0], top_k=4,
                         topk_search="approximate")  # fmt: skip
    assert pool.approximate and "approximate" in repr(pool)
    y = pool(torch.randn(2, h.num_vertices[0], 5))
    assert y.shape == (2, h.num_vertices[1], 5)


def test_calls_between_searches_rescore_the_candidates():
    """With ``search_every=3`` calls 1, 2 (mod 3) keep the last search's 16 best columns and
    pick the best 8 of them by the current scores; calls 0 (mod 3) search again."""
    q, k = attention_like(21, 200, 7).float(), attention_like(21, 2000, 8).float()
    search = ClusteredTopK(8, cluster_size=64, probes=1000, search_every=3, width=16)  # all
    g = torch.Generator().manual_seed(9)
    for call in range(7):
        index = search(q, k)
        if call % 3 == 0:  # a search probing every cluster: the exact top-k
            assert torch.equal(index, dense_sets(q, k, 8)), call
            candidates = search.candidates.clone()
            assert torch.equal(candidates.sort(dim=1).values, dense_sets(q, k, 16))
        else:  # best 8 of the 16 candidates, scored independently here
            scores = (q.t()[:, None, :] * k.t()[candidates]).sum(2)
            ref = candidates.gather(1, scores.topk(8, dim=1).indices).sort(dim=1).values
            assert torch.equal(index, ref), call
        q = unit(q + 0.01 * torch.randn(q.shape, generator=g))
        k = unit(k + 0.01 * torch.randn(k.shape, generator=g))
    assert search.searches == 3 and search.calls == 7


def test_rescoring_that_keeps_unmoved_rows_equals_topk_of_every_row():
    """Rescoring calls re-pick only the rows whose lowest pick no longer beats every other
    candidate; over a long cycle with drifting keys (some rows change picks on each call,
    most keep them) every call equals the candidates' top-k scored independently here."""
    q, k = attention_like(21, 300, 13).float(), attention_like(21, 3000, 14).float()
    search = ClusteredTopK(8, cluster_size=64, probes=6, search_every=12, width=14)
    g = torch.Generator().manual_seed(15)
    search(q, k)  # the search: candidates of the next 11 calls
    candidates, last = search.candidates.clone(), None
    changed = []
    for call in range(1, 12):
        q = unit(q + 0.0005 * torch.randn(q.shape, generator=g))
        k = unit(k + 0.0005 * torch.randn(k.shape, generator=g))
        index, scores = search(q, k, with_scores=True)
        dense = (q.t()[:, None, :] * k.t()[candidates.long()]).sum(2)  # (R, 14)
        ref = candidates.gather(1, dense.topk(8, dim=1).indices).sort(dim=1).values
        assert torch.equal(index, ref), call
        torch.testing.assert_close(scores, (q.t() @ k).gather(1, index.long()), rtol=0, atol=1e-5)
        if last is not None:
            changed.append(int((index != last).any(1).sum()))
        last = index
    assert search.searches == 1
    assert all(0 < c < 300 // 2 for c in changed[:3]), changed  # rows do move, most do not


def test_certified_search_searches_every_call():
    assert ClusteredTopK(4, certify=True, search_every=5).search_every == 1


def test_scores_returned_with_the_picks_are_their_products_on_every_path():
    """Search calls, rescoring calls and certified calls (rows recomputed densely) all
    return the picks' scores; checked against the dense product at the picks. The picks
    come in int32, ascending within a row."""
    q, k = attention_like(21, 150, 10).float(), attention_like(21, 1500, 11).float()
    g = torch.Generator().manual_seed(12)
    for search in (ClusteredTopK(8, cluster_size=64, probes=4, search_every=3),
                   ClusteredTopK(8, cluster_size=64, probes=2, certify=True)):  # fmt: skip
        for call in range(5):
            index, scores = search(q, k, with_scores=True)
            assert index.dtype == torch.int32 and scores.shape == (150, 8)
            assert bool((index[:, 1:] > index[:, :-1]).all()), call
            dense = (q.t() @ k).gather(1, index.long())  # independent: the full product
            torch.testing.assert_close(scores, dense, rtol=0, atol=1e-5)
            q = unit(q + 0.01 * torch.randn(q.shape, generator=g))
            k = unit(k + 0.01 * torch.randn(k.shape, generator=g))


def _approximate_model(hierarchy, seed=0):
    """A spiral/attention model whose heads use a deliberately weak clustered search (one
    probed cluster of 8 keys, a new search on every 3rd call): its picks depend on the calls
    before, as at scan resolution."""
    torch.manual_seed(seed)
    model = MeshAutoencoder.build(hierarchy, conv="spiral", pool="attention", channels=(8, 8),
                                  latent=4, top_k=(4, 8), topk_search="approximate")  # fmt: skip
    for module in model.modules():
        if isinstance(module, AttentionPool):
            module._clustered = ClusteredTopK(module.top_k, cluster_size=8, probes=1,
                                              search_every=3)  # fmt: skip
    return model


def test_approximate_heads_in_eval_mode_are_a_function_of_the_state(small_hierarchy, tmp_path):
    """After training steps, eval-mode outputs do not change from call to call (the stateful
    search does not run), a state_dict round trip into a fresh model reproduces them (the
    picks are saved), and so does the frozen model; an older state_dict without picks
    still loads (its first eval call searches)."""
    model = _approximate_model(small_hierarchy)
    x = torch.randn(3, small_hierarchy.num_vertices[0], 3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(7):
        optimizer.zero_grad()
        (model(x) - x).abs().mean().backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        outputs = [model(x) for _ in range(7)]
    for out in outputs[1:]:
        assert torch.equal(out, outputs[0])
    state = model.state_dict()
    assert sum(name.endswith(".picks") for name in state) == 4
    torch.save(state, tmp_path / "model.pt")
    loaded = _approximate_model(small_hierarchy, seed=1)
    loaded.load_state_dict(torch.load(tmp_path / "model.pt"))
    loaded.eval()
    with torch.no_grad():
        assert torch.equal(loaded(x), outputs[0])
        torch.testing.assert_close(loaded.freeze_pooling()(x), outputs[0], rtol=0, atol=1e-6)
    older = {k: v for k, v in state.items() if not k.endswith(".picks")}
    again = _approximate_model(small_hierarchy, seed=1)
    again.load_state_dict(older)
    assert again.eval()(x).shape == x.shape


def test_approximate_training_resumes_bit_identical_from_a_state_dict(small_hierarchy):
    """The search's state (call counters, candidates, clusters, last picks) is part of the
    state_dict: a model rebuilt with other weights, loaded mid-cycle (between two searches)
    with the optimizer's state, takes exactly the steps of the run that was not stopped."""
    x = torch.randn(3, small_hierarchy.num_vertices[0], 3)

    def run(model, optimizer, steps):
        for _ in range(steps):
            optimizer.zero_grad()
            (model(x) - x).abs().mean().backward()
            optimizer.step()

    model = _approximate_model(small_hierarchy)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    run(model, optimizer, 4)  # calls 0-3: searches on calls 0 and 3, the next call rescores
    saved = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
    run(model, optimizer, 5)
    resumed = _approximate_model(small_hierarchy, seed=1)
    resumed.load_state_dict(saved[0])
    resumed_optimizer = torch.optim.Adam(resumed.parameters(), lr=1e-2)
    resumed_optimizer.load_state_dict(saved[1])
    run(resumed, resumed_optimizer, 5)
    for (name, a), b in zip(model.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_default_search_is_exact_on_coma_sized_levels_and_approximate_at_scan_size(caplog):
    """``topk_search="auto"`` is the default: a level with more than AUTO_EXACT_SCORES pairs
    (here 10,241 <- 40,962 vertices, 4.2e8) gets the approximate search, the coarser ones the
    exact one, and the model says which levels in one log line."""
    import logging

    from deep3dmm.mesh import MeshHierarchy, shapes
    from deep3dmm.nn.config import AUTO_EXACT_SCORES, ModelConfig

    assert ModelConfig().topk_search == "auto"
    hierarchy = MeshHierarchy.build(shapes.icosphere(6), factors=(4, 4), spiral_length=9)
    with caplog.at_level(logging.INFO, logger="deep3dmm"):
        model = MeshAutoencoder.build(hierarchy, conv="spiral", pool="attention",
                                      channels=(8, 8), latent=4)  # fmt: skip
    pools = [m for m in model.modules() if isinstance(m, AttentionPool)]
    for pool in pools:
        assert pool.approximate == (pool.in_vertices * pool.out_vertices > AUTO_EXACT_SCORES)
    assert sum(p.approximate for p in pools) == 2  # the level-0 down and up mappings
    said = [r.getMessage() for r in caplog.records]
    said = [line for line in said if "approximate clustered search" in line]
    assert len(said) == 1 and "10241<-40962" in said[0] and "40962<-10241" in said[0]
