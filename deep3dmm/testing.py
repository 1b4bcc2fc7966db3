"""Reference implementations for tests and the benchmark's correctness column.

:class:`NaiveReference` runs a :class:`~deep3dmm.nn.MeshAutoencoder`'s parameters the way the
original research code runs them (Neural3DMM-style spiral gathers, dense D/U, PyG-style
Chebyshev on a per-call batch graph, the dense attention of the Deep3DMM release). It is an
oracle for the outputs and gradients, written independently of the package's fast paths; it
is not a speed yardstick (the benchmark compares with SpiralNet++'s own code for that).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NaiveReference"]


class NaiveReference(nn.Module):
    """A ``MeshAutoencoder`` run the way the original research code runs it (same parameters).

    - spiral conv as Neural3DMM (Bouritsas et al. 2019): per call, build a batch index
      ``arange(B).repeat`` and the flattened ``(B, V, L)`` spiral index, gather with advanced
      indexing ``x[batch_index, spiral_index]`` and apply the Linear;
    - Chebyshev conv as the PyTorch COMA ports on PyTorch Geometric's ``ChebConv``: the batch
      is one block-diagonal graph whose edge index (B copies, offset) and sparse Laplacian
      are rebuilt on every call; one sparse product per recursion step, one dense mix per term;
    - pooling with dense ``D``/``U`` matrices and ``torch.matmul`` (Neural3DMM);
    - attention pooling as the Deep3DMM release: the dense score matrix ``Q^T K``, top-k mask,
      L1 normalisation and the dense fused ``P`` applied with ``torch.matmul``.

    Args:
        model: the :class:`~deep3dmm.nn.MeshAutoencoder` whose parameters are used.
    """

    def __init__(self, model):
        super().__init__()
        from deep3dmm.nn import AttentionPool, ChebConv, FixedPool, SpiralConv
        from deep3dmm.nn.sparse import csr_from_buffers

        self.model = model
        self.dense: dict[int, torch.Tensor] = {}
        self.laplacian: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for module in model.modules():
            if isinstance(module, FixedPool):
                self.dense[id(module)] = csr_from_buffers(module, "matrix").to_dense()
            elif isinstance(module, AttentionPool):
                name = "frozen" if module.frozen else "prior"
                if module.frozen or module.has_prior:
                    self.dense[id(module)] = csr_from_buffers(module, name).to_dense()
            elif isinstance(module, ChebConv):
                coo = csr_from_buffers(module, "laplacian").to_sparse_coo().coalesce()
                self.laplacian[id(module)] = (coo.indices(), coo.values())
        self._spiral, self._cheb = SpiralConv, ChebConv

    def conv(self, module, x):
        """A spiral or Chebyshev layer on ``x`` (B, V, C_in) -> (B, V, C_out), the naive way."""
        if isinstance(module, self._spiral):
            b, v, c = x.shape
            length = module.spiral_length
            spiral_adj = module.spirals.unsqueeze(0).expand(b, v, length)  # (B, V, L)
            spiral_index = spiral_adj.reshape(-1)
            batch_index = (
                torch.arange(b, device=x.device).view(-1, 1).repeat(1, v * length).view(-1)
            )
            gathered = x[batch_index, spiral_index, :].view(b * v, length * c)
            return module.linear(gathered).view(b, v, -1)
        b, v, c = x.shape  # Chebyshev, PyG style on the batch graph
        index, values = self.laplacian[id(module)]
        offsets = torch.arange(b, device=x.device) * v
        batch_index = (index.unsqueeze(1) + offsets.view(1, -1, 1)).reshape(2, -1)
        lap = torch.sparse_coo_tensor(
            batch_index, values.repeat(b), (b * v, b * v), check_invariants=False
        ).coalesce()
        tx0 = x.reshape(b * v, c)
        out = tx0 @ module.weight[0]
        if module.K > 1:
            tx1 = torch.sparse.mm(lap, tx0)
            out = out + tx1 @ module.weight[1]
            for k in range(2, module.K):
                tx2 = 2.0 * torch.sparse.mm(lap, tx1) - tx0
                out = out + tx2 @ module.weight[k]
                tx0, tx1 = tx1, tx2
        if module.bias is not None:
            out = out + module.bias
        return out.view(b, v, -1)

    def pool(self, module, x):
        """A pooling layer on ``x`` (B, V_in, C) -> (B, V_out, C) with dense matrices."""
        from deep3dmm.nn import AttentionPool

        if not isinstance(module, AttentionPool) or module.frozen or module.mode == "prior":
            return torch.matmul(self.dense[id(module)], x)  # (V_out, V_in) @ (B, V_in, C)
        keys = F.normalize(module.keys, dim=0)  # (d, V_in)
        queries = F.normalize(module.queries, dim=0)  # (d, V_out)
        scores = (queries.t() @ keys).clamp_min(0.0)  # (V_out, V_in), dense
        top = scores.topk(module.top_k, dim=1)
        att = torch.zeros_like(scores).scatter(1, top.indices, top.values)
        att = att / att.sum(1, keepdim=True).clamp_min(1e-12)
        if module.mode == "fused":
            w = module.weight / module.weight.sum()
            att = w[0] * self.dense[id(module)] + w[1] * att
        return torch.matmul(att, x)

    def forward(self, x):
        """Reconstruct ``x`` (B, V_0, 3) with the model's parameters."""
        m = self.model
        for conv, pool in zip(m.encoder_convs, m.down_pools):
            x = self.pool(pool, m.activation(self.conv(conv, x)))
        z = m.to_latent(x.reshape(x.shape[0], -1))
        x = m.from_latent(z).view(z.shape[0], *m.bottleneck)
        for pool, conv in zip(m.up_pools, m.decoder_convs):
            x = m.activation(self.conv(conv, self.pool(pool, x)))
        return self.conv(m.output_conv, x)
