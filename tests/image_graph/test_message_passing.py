import pytest
import torch

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.message_passing import (
    GraphNetworkBlock,
    TimeAwareMessagePassing,
    scatter_aggregate,
)


def _loop_aggregate(src, index, n, reduce):
    out = torch.zeros(n, src.shape[1], dtype=src.dtype)
    for i in range(n):
        rows = src[index == i]
        if len(rows):
            out[i] = {"sum": rows.sum(0), "mean": rows.mean(0), "max": rows.max(0).values}[reduce]
    return out


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_scatter_aggregate_matches_loop(reduce):
    torch.manual_seed(0)
    src = torch.randn(40, 3, dtype=torch.float64)
    index = torch.randint(0, 7, (40,))
    index[index == 6] = 5  # node 6 has no incoming edge -> zeros
    out = scatter_aggregate(src, index, 8, reduce)
    torch.testing.assert_close(out, _loop_aggregate(src, index, 8, reduce))
    assert torch.all(out[6:] == 0)


def test_sum_aggregation_equals_dense_adjacency_product():
    torch.manual_seed(1)
    src_nodes, dst = torch.randint(0, 6, (2, 30))
    vals = torch.randn(30, 4, dtype=torch.float64)
    dense = torch.zeros(6, 30, dtype=torch.float64)
    dense[dst, torch.arange(30)] = 1.0
    torch.testing.assert_close(scatter_aggregate(vals, dst, 6, "sum"), dense @ vals)


def test_bad_aggregation_and_edge_index():
    with pytest.raises(ConfigError, match="aggregation must be one of"):
        scatter_aggregate(torch.zeros(2, 1), torch.zeros(2, dtype=torch.long), 2, "median")
    block = GraphNetworkBlock(3, 2)
    x, e = torch.zeros(4, 3), torch.zeros(2, 2)
    with pytest.raises(ConfigError, match="shaped \\(2, E\\)"):
        block(x, torch.zeros(3, 2, dtype=torch.long), e)
    with pytest.raises(ConfigError, match="has 4 nodes"):
        block(x, torch.tensor([[0, 1], [2, 4]]), e)


def _graph(seed=2, n=7, m=20):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g, dtype=torch.float64)
    ei = torch.randint(0, n, (2, m), generator=g)
    ea = torch.randn(m, 3, generator=g, dtype=torch.float64)
    return x, ei, ea


@pytest.mark.parametrize("aggregation", ["sum", "mean", "max"])
def test_gn_block_permutation_equivariance(aggregation):
    torch.manual_seed(3)
    block = GraphNetworkBlock(
        5, 3, global_dim=2, hidden=16, aggregation=aggregation, initial_edges=True
    ).double()
    x, ei, ea = _graph()
    u = torch.randn(1, 2, dtype=torch.float64)
    h, e, u2 = block(x, ei, ea, edge_attr0=ea, u=u)
    # Relabel nodes and shuffle the edge order: outputs permute the same way.
    perm = torch.randperm(7)
    inv = torch.argsort(perm)
    eperm = torch.randperm(ei.shape[1])
    h_p, e_p, u_p = block(x[perm], inv[ei[:, eperm]], ea[eperm], edge_attr0=ea[eperm], u=u)
    torch.testing.assert_close(h_p, h[perm])
    torch.testing.assert_close(e_p, e[eperm])
    torch.testing.assert_close(u_p, u2)


def test_gn_block_direction_convention_and_loop_reference():
    torch.manual_seed(4)
    block = GraphNetworkBlock(5, 3, hidden=8, aggregation="mean").double()
    x, ei, ea = _graph(5)
    h, e, _ = block(x, ei, ea)
    # Loop reference: e'_ij = phi_e([h_i (target), h_j (source), e_ij]); node i averages its
    # incoming (target == i) edges.
    for k in range(ei.shape[1]):
        j, i = ei[:, k]
        ref = block.edge_mlp(torch.cat([x[i], x[j], ea[k]]))
        torch.testing.assert_close(e[k], ref)
    for i in range(7):
        inc = e[ei[1] == i]
        agg = inc.mean(0) if len(inc) else torch.zeros(3, dtype=torch.float64)
        torch.testing.assert_close(h[i], block.node_mlp(torch.cat([x[i], agg])))
    assert "aggregation='mean'" in repr(block)


def test_gn_block_batched_graphs_equal_separate_runs():
    torch.manual_seed(5)
    block = GraphNetworkBlock(5, 3, global_dim=4, hidden=8).double()
    (x1, ei1, ea1), (x2, ei2, ea2) = _graph(6, 5, 9), _graph(7, 4, 6)
    u = torch.randn(2, 4, dtype=torch.float64)
    h1, e1, u1 = block(x1, ei1, ea1, u=u[:1])
    h2, e2, u2 = block(x2, ei2, ea2, u=u[1:])
    x = torch.cat([x1, x2])
    ei = torch.cat([ei1, ei2 + 5], dim=1)
    batch = torch.tensor([0] * 5 + [1] * 4)
    h, e, uu = block(x, ei, torch.cat([ea1, ea2]), u=u, batch=batch)
    torch.testing.assert_close(h, torch.cat([h1, h2]))
    torch.testing.assert_close(e, torch.cat([e1, e2]))
    torch.testing.assert_close(uu, torch.cat([u1, u2]))


def test_time_aware_separates_past_and_future():
    torch.manual_seed(6)
    net = TimeAwareMessagePassing(
        4, 3, node_dim=8, edge_dim=6, hidden=16, steps=3, loss_steps=2
    ).double()
    # Chain 0 -> 1 -> 2 (earlier -> later).
    x = torch.randn(3, 4, dtype=torch.float64)
    ei = torch.tensor([[0, 1], [1, 2]])
    ea = torch.randn(2, 3, dtype=torch.float64)
    logits = net(x, ei, ea)
    assert logits.shape == (3, 2)
    # Reference for node update of step 1 by hand.
    h = net.node_encoder(x)
    e0 = net.edge_encoder(ea)
    e = net.edge_mlp(torch.cat([h[[0, 1]], h[[1, 2]], e0, e0], dim=1))
    zero = torch.zeros(8, dtype=torch.float64)
    m_past = net.past_mlp(torch.cat([h[[1, 2]], e], dim=1))  # messages into nodes 1, 2
    m_fut = net.future_mlp(torch.cat([h[[0, 1]], e], dim=1))  # messages into nodes 0, 1
    node_in = torch.stack(
        [
            torch.cat([zero, m_fut[0]]),
            torch.cat([m_past[0], m_fut[1]]),
            torch.cat([m_past[1], zero]),
        ]
    )
    h1 = net.node_mlp(node_in)
    e1 = net.edge_mlp(torch.cat([h1[[0, 1]], h1[[1, 2]], e, e0], dim=1))
    torch.testing.assert_close(logits[1], net.classifier(e1)[:, 0])
    # The loss sums the BCE of the last two steps.
    labels = torch.tensor([1.0, 0.0], dtype=torch.float64)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    ref = bce(logits[1], labels) + bce(logits[2], labels)
    torch.testing.assert_close(net.loss(logits, labels), ref)
    # Gradients reach every part.
    net.loss(logits, labels).backward()
    assert all(p.grad is not None for p in net.parameters())
    assert "time_aware=True" in repr(net)
