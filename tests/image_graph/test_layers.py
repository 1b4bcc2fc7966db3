import pytest
import torch
import torch.nn.functional as F

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.adjacency import knn_adjacency
from deep3dmm.image_graph.diffpool import DenseDiffPool, dense_diff_pool
from deep3dmm.image_graph.gat import GATLayer
from deep3dmm.image_graph.gcn import GCNLayer
from deep3dmm.image_graph.graph_projection import GraphProjection


def _graph(b=3, n=6, c=5, seed=0):
    torch.manual_seed(seed)
    return torch.randn(b, n, c), knn_adjacency(torch.rand(b, n, 2), k=2) * torch.rand(b, n, n)


def _grads_ok(module, *inputs):
    for p in module.parameters():
        p.grad = None
    for t in inputs:
        t.grad = None
    return module


def test_gcn_matches_dense_formula_and_batched_equals_single():
    x, a = _graph()
    a = (a + a.transpose(1, 2)) / 2
    layer = GCNLayer(5, 4)
    out = layer(x, a)
    assert out.shape == (3, 6, 4)
    for k in range(3):
        a_hat = a[k] + torch.eye(6)
        d = torch.diag(a_hat.sum(1) ** -0.5)
        ref = d @ a_hat @ d @ x[k] @ layer.linear.weight.T + layer.bias
        torch.testing.assert_close(out[k], ref)
        torch.testing.assert_close(layer(x[k : k + 1], a[k : k + 1])[0], out[k])
    x.requires_grad_(True)
    layer(x, a).sum().backward()
    assert x.grad.abs().sum() > 0 and layer.linear.weight.grad.abs().sum() > 0
    assert "normalize=True" in repr(layer)
    with pytest.raises(ConfigError, match=r"expected x \(B, n, 5\)"):
        layer(torch.randn(3, 6, 4), a)
    with pytest.raises(ConfigError, match="does not match"):
        layer(x, a[:, :5, :5])


def _gat_reference(layer, x, a):
    """Per graph, per head, per node: the GAT formula with explicit neighbour lists."""
    b, n, _ = x.shape
    heads, f = layer.heads, layer.out_channels
    h = (x @ layer.linear.weight.T).view(b, n, heads, f)
    out = torch.zeros(b, n, heads, f)
    att = torch.zeros(b, heads, n, n)
    for g in range(b):
        for k in range(heads):
            for i in range(n):
                nbrs = [j for j in range(n) if a[g, i, j] != 0 or j == i]
                e = torch.stack(
                    [
                        F.leaky_relu(
                            layer.att_src[k] @ h[g, i, k] + layer.att_dst[k] @ h[g, j, k], 0.2
                        )
                        for j in nbrs
                    ]
                )
                alpha = torch.softmax(e, 0)
                att[g, k, i, nbrs] = alpha
                out[g, i, k] = (alpha[:, None] * h[g, nbrs, k]).sum(0)
    return out, att


@pytest.mark.parametrize("concat", [True, False])
def test_gat_matches_reference_and_attention_rows_sum_to_one(concat):
    x, a = _graph()
    layer = GATLayer(5, 3, heads=2, concat=concat)
    out, att = layer(x, a, return_attention=True)
    ref, ref_att = _gat_reference(layer, x, a)
    ref = ref.reshape(3, 6, 6) if concat else ref.mean(2)
    assert out.shape == ((3, 6, 6) if concat else (3, 6, 3))
    torch.testing.assert_close(out, ref + layer.bias)
    torch.testing.assert_close(att, ref_att)
    torch.testing.assert_close(att.sum(-1), torch.ones(3, 2, 6))
    assert (att[(a == 0)[:, None].expand_as(att) & ~torch.eye(6, dtype=torch.bool)] == 0).all()
    x.requires_grad_(True)
    layer(x, a).sum().backward()
    assert x.grad.abs().sum() > 0 and layer.att_src.grad.abs().sum() > 0
    assert "heads=2" in repr(layer)


def test_dense_diff_pool_matches_formula_and_preserves_mass():
    x, a = _graph(b=2, n=7, c=4)
    logits = torch.randn(2, 7, 3)
    px, pa, link, ent = dense_diff_pool(x, a, logits)
    s = torch.softmax(logits, -1)
    for k in range(2):
        torch.testing.assert_close(px[k], s[k].T @ x[k])
        torch.testing.assert_close(pa[k], s[k].T @ a[k] @ s[k])
    # rows of S sum to 1, so pooling preserves the total edge weight and feature sums
    torch.testing.assert_close(pa.sum((1, 2)), a.sum((1, 2)))
    torch.testing.assert_close(px.sum(1), x.sum(1))
    ref_link = torch.sqrt(((a - s @ s.transpose(1, 2)) ** 2).sum()) / a.numel()
    ref_ent = -(s * s.log()).sum(-1).mean()
    torch.testing.assert_close(link, ref_link)
    torch.testing.assert_close(ent, ref_ent)
    # hard one-hot assignment: zero entropy
    *_, ent_hard = dense_diff_pool(
        x, a, torch.eye(3)[torch.tensor([0, 1, 2, 0, 1, 2, 0])].expand(2, 7, 3) * 1e4
    )
    assert ent_hard.item() < 1e-6


def test_dense_diff_pool_module_shapes_and_gradients():
    x, a = _graph(b=2, n=7, c=4)
    pool = DenseDiffPool(4, 6, 3)
    x.requires_grad_(True)
    px, pa, aux = pool(x, a)
    assert px.shape == (2, 3, 6) and pa.shape == (2, 3, 3) and aux.dim() == 0
    assert pool.assignment.shape == (2, 7, 3)
    (px.sum() + pa.sum() + aux).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in pool.parameters())
    assert "num_clusters=3" in repr(pool)


def test_graph_projection_matches_per_pixel_reference():
    torch.manual_seed(0)
    layer = GraphProjection(3, num_nodes=4).eval()
    x = torch.randn(2, 3, 4, 5)
    q, z = layer.project(x)
    assert q.shape == (2, 20, 4) and z.shape == (2, 4, 3)
    torch.testing.assert_close(q.sum(-1), torch.ones(2, 20))
    sigma = layer.log_sigma.exp()
    for b in range(2):
        pixels = [x[b, :, i, j] for i in range(4) for j in range(5)]
        for p, xp in enumerate(pixels):
            logits = torch.stack(
                [-0.5 * (((xp - layer.anchors[v]) / sigma[v]) ** 2).sum() for v in range(4)]
            )
            torch.testing.assert_close(q[b, p], torch.softmax(logits, 0))
        for v in range(4):
            num = sum(
                q[b, p, v] * (xp - layer.anchors[v]) / sigma[v] for p, xp in enumerate(pixels)
            )
            torch.testing.assert_close(z[b, v], num / (q[b, :, v].sum() + 1e-6))
    # forward = x + BN(conv1x1(q @ relu(GCN(z, relu(z z^T)))))
    sim = torch.relu(z @ z.transpose(1, 2)) * (1 - torch.eye(4))
    zz = torch.relu(layer.gcn(z, sim))
    back = (q @ zz).transpose(1, 2).reshape_as(x)
    torch.testing.assert_close(layer(x), x + layer.bn(layer.out(back)))


def test_graph_projection_shapes_and_gradients():
    torch.manual_seed(0)
    layer = GraphProjection(4, num_nodes=3)
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    out = layer(x)
    assert out.shape == x.shape
    out.pow(2).sum().backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in layer.parameters())
    with pytest.raises(ConfigError, match=r"expected x \(B, 4, H, W\)"):
        layer(torch.randn(1, 3, 4, 4))
