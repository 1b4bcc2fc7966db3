r"""General graph-network message passing (Battaglia et al. 2018) and its time-aware variant.

Papers: Battaglia et al., "Relational inductive biases, deep learning, and graph networks",
2018 (the GN block); Brasó & Leal-Taixé, "Learning a Neural Solver for Multiple Object
Tracking", CVPR 2020 (time-aware node update, edge classifier, loss over the last steps).

Edges are given as ``edge_index`` (2, E): row 0 holds the **source** node j, row 1 the
**target** node i; messages flow source -> target and are aggregated at the target.

GN block, one step:

.. math::
    e'_{ij} = \phi_e([h_i, h_j, e_{ij}, e^{(0)}_{ij}, u]), \qquad
    h'_i = \phi_v([h_i, \rho_{j \to i} e'_{ij}, u]), \qquad
    u' = \phi_u([u, \bar h', \bar e'])

with :math:`\rho` an order-invariant aggregation (sum, mean or max). All ops are batched
scatters over the edge list (:func:`scatter_aggregate`); no loops over nodes or edges.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deep3dmm.errors import ConfigError

__all__ = [
    "AGGREGATIONS",
    "GraphNetworkBlock",
    "MLP",
    "TimeAwareMessagePassing",
    "check_edge_index",
    "scatter_aggregate",
]

AGGREGATIONS = ("sum", "mean", "max")


def check_edge_index(edge_index: torch.Tensor, num_nodes: int) -> None:
    """Raise :class:`ConfigError` unless ``edge_index`` is a (2, E) integer tensor of valid ids."""
    if edge_index.ndim != 2 or edge_index.shape[0] != 2 or edge_index.is_floating_point():
        raise ConfigError(
            f"edge_index must be an integer tensor shaped (2, E), got "
            f"{tuple(edge_index.shape)} {edge_index.dtype}",
            fix="stack (source, target) rows: torch.stack([src, dst])",
        )
    if edge_index.numel() and (edge_index.min() < 0 or edge_index.max() >= num_nodes):
        raise ConfigError(
            f"edge_index refers to node {int(edge_index.max())} (or a negative id) but the graph "
            f"has {num_nodes} nodes",
            fix="use node ids in [0, num_nodes)",
        )


def scatter_aggregate(
    src: torch.Tensor, index: torch.Tensor, num_nodes: int, reduce: str = "sum"
) -> torch.Tensor:
    """Aggregate rows of ``src`` into ``num_nodes`` buckets given by ``index``.

    Nodes with no incoming rows get zeros for every reduction.

    Args:
        src: per-edge values.
        index: target node of each row.
        num_nodes: number of output rows N.
        reduce: ``"sum"``, ``"mean"`` or ``"max"``.

    Shapes:
        src: (E, D); index: (E,). Returns (N, D).
    """
    if reduce not in AGGREGATIONS:
        raise ConfigError(
            f"aggregation must be one of {AGGREGATIONS}, got {reduce!r}",
            fix="choose sum, mean or max",
        )
    out = src.new_zeros(num_nodes, src.shape[1])
    idx = index[:, None].expand_as(src)
    if reduce == "sum":
        return out.scatter_add(0, idx, src)
    return out.scatter_reduce(
        0, idx, src, reduce="mean" if reduce == "mean" else "amax", include_self=False
    )


class MLP(nn.Sequential):
    """Linear layers with ReLU between them (none after the last).

    Args:
        in_dim: input width.
        hidden: hidden widths (may be empty for a single linear layer).
        out_dim: output width.
        dropout: dropout after each hidden ReLU.
    """

    def __init__(
        self, in_dim: int, hidden: Sequence[int], out_dim: int, *, dropout: float = 0.0
    ) -> None:
        dims = [in_dim, *hidden, out_dim]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        super().__init__(*layers[: -2 if dropout > 0 else -1])


class GraphNetworkBlock(nn.Module):
    """One graph-network block: edge update, aggregation, node update, optional global update.

    Args:
        node_dim: node feature width (input and output).
        edge_dim: edge feature width (input and output).
        global_dim: global feature width; 0 disables the global attribute.
        hidden: hidden width of the update MLPs.
        aggregation: ``"sum"``, ``"mean"`` or ``"max"`` over incoming edges.
        initial_edges: concatenate the initial edge features e^(0) in the edge update
            (skip connection used by the MOT solver).

    Shapes:
        x: (N, node_dim); edge_index: (2, E); edge_attr: (E, edge_dim);
        edge_attr0: (E, edge_dim) when ``initial_edges``; u: (G, global_dim);
        batch: (N,) graph id of every node (all zeros when None).
        Returns (x', edge_attr', u') with the same shapes (u' None without globals).
    """

    def __init__(
        self,
        node_dim: int,
        edge_dim: int,
        *,
        global_dim: int = 0,
        hidden: int = 64,
        aggregation: str = "sum",
        initial_edges: bool = False,
    ) -> None:
        super().__init__()
        if aggregation not in AGGREGATIONS:
            raise ConfigError(
                f"GraphNetworkBlock: aggregation must be one of {AGGREGATIONS}, got "
                f"{aggregation!r}",
                fix="choose sum, mean or max",
            )
        self.node_dim, self.edge_dim, self.global_dim = node_dim, edge_dim, global_dim
        self.hidden, self.aggregation, self.initial_edges = hidden, aggregation, initial_edges
        e_in = 2 * node_dim + edge_dim * (2 if initial_edges else 1) + global_dim
        self.edge_mlp = MLP(e_in, [hidden], edge_dim)
        self.node_mlp = MLP(node_dim + edge_dim + global_dim, [hidden], node_dim)
        self.global_mlp = (
            MLP(global_dim + node_dim + edge_dim, [hidden], global_dim) if global_dim else None
        )

    def forward(
        self,
        x: torch.Tensor,
        edge_index: torch.Tensor,
        edge_attr: torch.Tensor,
        *,
        edge_attr0: torch.Tensor | None = None,
        u: torch.Tensor | None = None,
        batch: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Apply the edge, node and global updates once."""
        n = x.shape[0]
        check_edge_index(edge_index, n)
        src, dst = edge_index
        if self.initial_edges and edge_attr0 is None:
            raise ConfigError(
                "GraphNetworkBlock(initial_edges=True) needs edge_attr0",
                fix="pass the encoder's edge features as edge_attr0",
            )
        if self.global_dim and u is None:
            raise ConfigError(
                f"GraphNetworkBlock(global_dim={self.global_dim}) needs the global attribute u",
                fix="pass u shaped (num_graphs, global_dim)",
            )
        if batch is None:
            batch = x.new_zeros(n, dtype=torch.long)
        parts = [x[dst], x[src], edge_attr]  # target h_i, source h_j
        if self.initial_edges:
            parts.append(edge_attr0)
        if self.global_dim:
            parts.append(u[batch[dst]])
        e = self.edge_mlp(torch.cat(parts, dim=1))  # (E, edge_dim)
        agg = scatter_aggregate(e, dst, n, self.aggregation)  # (N, edge_dim)
        node_parts = [x, agg] + ([u[batch]] if self.global_dim else [])
        h = self.node_mlp(torch.cat(node_parts, dim=1))  # (N, node_dim)
        u_new = None
        if self.global_dim:
            g = u.shape[0]
            h_mean = scatter_aggregate(h, batch, g, "mean")
            e_mean = scatter_aggregate(e, batch[dst], g, "mean")
            u_new = self.global_mlp(torch.cat([u, h_mean, e_mean], dim=1))
        return h, e, u_new

    def extra_repr(self) -> str:
        """Key hyperparameters for the repr."""
        return (
            f"node_dim={self.node_dim}, edge_dim={self.edge_dim}, global_dim={self.global_dim}, "
            f"hidden={self.hidden}, aggregation={self.aggregation!r}, "
            f"initial_edges={self.initial_edges}"
        )


class TimeAwareMessagePassing(nn.Module):
    r"""Neural MOT solver: time-aware message passing and an edge classifier.

    Nodes are detections, edges join detections in different frames with the **earlier**
    detection as source (row 0) and the later one as target (row 1). After encoders
    (MLPs on the raw node / edge features) the same update runs ``steps`` times:

    .. math::
        e^{(l)}_{ij} = N_e([h_i, h_j, e^{(l-1)}_{ij}, e^{(0)}_{ij}]), \quad
        m_{ij} = N_v([h_i, e^{(l)}_{ij}]),

        h_i \leftarrow N_v^{fut}\big([\textstyle\sum_{j \in past(i)} m_{ij},
        \sum_{j \in fut(i)} m_{ij}]\big)

    (``time_aware=False`` sums past and future messages together, the plain update).
    The classifier MLP gives one logit per edge after each step; the loss is the binary
    cross entropy summed over the last ``loss_steps`` steps.

    Args:
        node_in: raw node feature width.
        edge_in: raw edge feature width.
        node_dim: node embedding width.
        edge_dim: edge embedding width.
        hidden: hidden width of the MLPs.
        steps: message-passing steps (weights shared between steps).
        loss_steps: steps whose classifications enter the loss.
        time_aware: separate past / future aggregation.

    Shapes:
        x: (N, node_in); edge_index: (2, E) earlier -> later; edge_attr: (E, edge_in).
        Returns logits (steps, E).
    """

    def __init__(
        self,
        node_in: int,
        edge_in: int,
        *,
        node_dim: int = 32,
        edge_dim: int = 16,
        hidden: int = 64,
        steps: int = 6,
        loss_steps: int = 3,
        time_aware: bool = True,
    ) -> None:
        super().__init__()
        if not 1 <= loss_steps <= steps:
            raise ConfigError(
                f"TimeAwareMessagePassing: loss_steps={loss_steps} must be in [1, steps={steps}]"
            )
        self.node_in, self.edge_in, self.node_dim, self.edge_dim = (
            node_in,
            edge_in,
            node_dim,
            edge_dim,
        )
        self.steps, self.loss_steps, self.time_aware = steps, loss_steps, time_aware
        self.node_encoder = MLP(node_in, [hidden], node_dim)
        self.edge_encoder = MLP(edge_in, [hidden], edge_dim)
        self.edge_mlp = MLP(2 * node_dim + 2 * edge_dim, [hidden], edge_dim)
        self.past_mlp = MLP(node_dim + edge_dim, [hidden], node_dim)
        self.future_mlp = MLP(node_dim + edge_dim, [hidden], node_dim)
        self.node_mlp = MLP(2 * node_dim if time_aware else node_dim, [hidden], node_dim)
        self.classifier = MLP(edge_dim, [hidden], 1)

    def forward(
        self, x: torch.Tensor, edge_index: torch.Tensor, edge_attr: torch.Tensor
    ) -> torch.Tensor:
        """Edge logits after every message-passing step."""
        n = x.shape[0]
        check_edge_index(edge_index, n)
        past, fut = edge_index  # past node j (earlier), future node i (later)
        h = self.node_encoder(x)
        e0 = e = self.edge_encoder(edge_attr)
        logits = []
        for _ in range(self.steps):
            # Edge update from both endpoints (ordered: earlier, later).
            e = self.edge_mlp(torch.cat([h[past], h[fut], e, e0], dim=1))  # (E, edge_dim)
            # For the later node, the edge brings a message from the past and vice versa.
            m_from_past = self.past_mlp(torch.cat([h[fut], e], dim=1))  # (E, node_dim)
            m_from_future = self.future_mlp(torch.cat([h[past], e], dim=1))
            agg_past = scatter_aggregate(m_from_past, fut, n, "sum")  # (N, node_dim)
            agg_future = scatter_aggregate(m_from_future, past, n, "sum")
            if self.time_aware:
                h = self.node_mlp(torch.cat([agg_past, agg_future], dim=1))
            else:
                h = self.node_mlp(agg_past + agg_future)
            logits.append(self.classifier(e)[:, 0])
        return torch.stack(logits)

    def loss(
        self, logits: torch.Tensor, labels: torch.Tensor, *, pos_weight: float | None = None
    ) -> torch.Tensor:
        """BCE summed over the last ``loss_steps`` steps (``pos_weight`` balances classes).

        Shapes:
            logits: (steps, E); labels: (E,) in {0, 1}.
        """
        last = logits[-self.loss_steps :]
        weight = None if pos_weight is None else torch.tensor(pos_weight, dtype=last.dtype)
        target = labels.to(last.dtype).expand_as(last)
        return (
            nn.functional.binary_cross_entropy_with_logits(
                last, target, pos_weight=weight, reduction="none"
            )
            .mean(dim=1)
            .sum()
        )

    def extra_repr(self) -> str:
        """Key hyperparameters for the repr."""
        return (
            f"node_in={self.node_in}, edge_in={self.edge_in}, node_dim={self.node_dim}, "
            f"edge_dim={self.edge_dim}, steps={self.steps}, loss_steps={self.loss_steps}, "
            f"time_aware={self.time_aware}"
        )
