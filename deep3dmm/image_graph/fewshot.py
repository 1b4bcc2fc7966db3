r"""Few-shot learning with graph neural networks and a learned adjacency (Garcia & Bruna, 2018).

Paper: Garcia & Bruna, "Few-Shot Learning with Graph Neural Networks", ICLR 2018.

An episode (n-way, k-shot) is one graph: ``n * k`` labelled support images and ``q``
query images. Node features are a CNN embedding concatenated with the one-hot label
(support) or the uniform distribution 1/n (query). Each layer learns its own adjacency

.. math::
    \tilde A_{ij} = \mathrm{MLP}(|x_i - x_j|), \qquad
    A_{ij} = \frac{\exp \tilde A_{ij}}{\sum_{k \ne i} \exp \tilde A_{ik}}, \quad A_{ii} = 0

and applies the graph convolution over the operator family :math:`\{I, A\}`:
:math:`\mathrm{Gc}(x) = \rho(x \theta_I + A x \theta_A)`; layers are densely connected
(:math:`x^{(k+1)} = [x^{(k)}, \mathrm{Gc}(x^{(k)})]`), and a last graph layer gives the
n-way logits of the query nodes.

Shapes (B episodes, N = n*k + q nodes, D features):
    support images (B, n*k, C, H, W), support labels (B, n*k) in [0, n), query images
    (B, q, C, H, W) -> query logits (B, q, n).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.backbone import SmallCNN
from deep3dmm.image_graph.datasets import ImageSplit
from deep3dmm.image_graph.message_passing import MLP

__all__ = [
    "Episode",
    "EpisodeSampler",
    "FewShotGNN",
    "GraphConvFamily",
    "LearnedAdjacency",
    "evaluate_fewshot",
    "train_fewshot",
]

log = logging.getLogger(__name__)


class LearnedAdjacency(nn.Module):
    """Row-softmax adjacency from an MLP of absolute feature differences, self excluded.

    Args:
        in_dim: node feature width D.
        hidden: hidden width of the MLP.

    Shapes:
        x: (B, N, D) -> A: (B, N, N), rows sum to 1, zero diagonal.
    """

    def __init__(self, in_dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.in_dim, self.hidden = in_dim, hidden
        self.mlp = MLP(in_dim, [hidden, hidden // 2], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Learned adjacency of every episode."""
        diff = (x[:, :, None, :] - x[:, None, :, :]).abs()  # (B, N, N, D)
        scores = self.mlp(diff)[..., 0]  # (B, N, N)
        eye = torch.eye(x.shape[1], dtype=torch.bool, device=x.device)
        return torch.softmax(scores.masked_fill(eye, float("-inf")), dim=-1)

    def extra_repr(self) -> str:
        """Key hyperparameters for the repr."""
        return f"in_dim={self.in_dim}, hidden={self.hidden}"


class GraphConvFamily(nn.Module):
    """Graph convolution over the operator family {I, A}: ``x W_I + (A x) W_A``.

    Args:
        in_dim: input width.
        out_dim: output width.

    Shapes:
        x: (B, N, in_dim); adjacency: (B, N, N) -> (B, N, out_dim).
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.linear = nn.Linear(2 * in_dim, out_dim)

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        """Apply the operator family and the shared linear map."""
        return self.linear(torch.cat([x, adjacency @ x], dim=-1))


class FewShotGNN(nn.Module):
    """CNN embedding + densely connected GNN with learned adjacency (Garcia & Bruna).

    Args:
        n_way: classes per episode n.
        widths: CNN stage widths (the embedding width is the last one).
        image_size: image side.
        hidden: width added by every graph layer.
        layers: graph layers before the classification layer.

    Shapes:
        see the module docstring.
    """

    def __init__(
        self,
        n_way: int,
        *,
        widths: tuple[int, ...] = (32, 64),
        image_size: int = 16,
        hidden: int = 48,
        layers: int = 2,
    ) -> None:
        super().__init__()
        self.n_way, self.hidden, self.layers = n_way, hidden, layers
        self.cnn = SmallCNN(1, n_way, widths, image_size=image_size)
        dim = self.cnn.feature_dim + n_way
        self.adjacency = nn.ModuleList()
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for _ in range(layers):
            self.adjacency.append(LearnedAdjacency(dim))
            self.convs.append(GraphConvFamily(dim, hidden))
            self.norms.append(nn.BatchNorm1d(hidden))
            dim += hidden
        self.last_adjacency = LearnedAdjacency(dim)
        self.classify = GraphConvFamily(dim, n_way)

    def forward(
        self, support: torch.Tensor, support_labels: torch.Tensor, query: torch.Tensor
    ) -> torch.Tensor:
        """Query logits ``(B, q, n)``."""
        b, s = support_labels.shape
        q = query.shape[1]
        images = torch.cat([support, query], dim=1).flatten(0, 1)  # (B*N, C, H, W)
        emb = self.cnn.features(images).reshape(b, s + q, -1)  # (B, N, D)
        onehot = F.one_hot(support_labels, self.n_way).to(emb.dtype)  # (B, s, n)
        uniform = emb.new_full((b, q, self.n_way), 1.0 / self.n_way)
        x = torch.cat([emb, torch.cat([onehot, uniform], dim=1)], dim=-1)  # (B, N, D + n)
        for adjacency, conv, norm in zip(self.adjacency, self.convs, self.norms):
            h = conv(x, adjacency(x))  # (B, N, hidden)
            h = F.leaky_relu(norm(h.flatten(0, 1)).reshape(h.shape), 0.01)
            x = torch.cat([x, h], dim=-1)
        return self.classify(x, self.last_adjacency(x))[:, s:]

    def extra_repr(self) -> str:
        """Key hyperparameters for the repr."""
        return f"n_way={self.n_way}, hidden={self.hidden}, layers={self.layers}"


@dataclass(frozen=True)
class Episode:
    """A batch of episodes (labels relabelled to 0..n-1 per episode).

    Shapes:
        support: (B, n*k, C, H, W); support_labels: (B, n*k); query: (B, q, C, H, W);
        query_labels: (B, q) with q = n * queries_per_class.
    """

    support: torch.Tensor
    support_labels: torch.Tensor
    query: torch.Tensor
    query_labels: torch.Tensor


class EpisodeSampler:
    """Sample n-way k-shot episodes from the given classes of an image split.

    Args:
        split: images and labels.
        classes: the classes episodes are drawn from (at least ``n_way``).
        n_way: classes per episode.
        k_shot: support images per class.
        queries_per_class: query images per class.
        seed: random seed.
    """

    def __init__(
        self,
        split: ImageSplit,
        classes: list[int],
        *,
        n_way: int = 5,
        k_shot: int = 1,
        queries_per_class: int = 1,
        seed: int = 0,
    ) -> None:
        self.split, self.classes = split, list(classes)
        self.n_way, self.k_shot, self.queries = n_way, k_shot, queries_per_class
        labels = split.labels.numpy()
        self.members = {c: np.flatnonzero(labels == c) for c in self.classes}
        if len(self.classes) < n_way:
            raise ConfigError(
                f"EpisodeSampler: {n_way}-way episodes need >= {n_way} classes, got {self.classes}",
                fix="lower n_way or give more classes",
            )
        short = {c: len(m) for c, m in self.members.items() if len(m) < k_shot + queries_per_class}
        if short:
            raise ConfigError(
                f"EpisodeSampler: classes with fewer than k_shot + queries = "
                f"{k_shot + queries_per_class} images: {short}",
                fix="lower k_shot / queries_per_class or use a bigger split",
            )
        self.rng = np.random.default_rng(seed)

    def sample(self, batch: int) -> Episode:
        """``batch`` episodes."""
        n, k, q = self.n_way, self.k_shot, self.queries
        idx = np.empty((batch, n, k + q), dtype=np.int64)
        for e in range(batch):
            chosen = self.rng.choice(self.classes, n, replace=False)
            for j, c in enumerate(chosen):
                idx[e, j] = self.rng.choice(self.members[c], k + q, replace=False)
        images = self.split.images[torch.from_numpy(idx)]  # (B, n, k+q, C, H, W)
        lab = torch.arange(n)[None, :, None]
        return Episode(
            support=images[:, :, :k].flatten(1, 2),
            support_labels=lab.expand(batch, n, k).flatten(1),
            query=images[:, :, k:].flatten(1, 2),
            query_labels=lab.expand(batch, n, q).flatten(1),
        )


def train_fewshot(
    sampler: EpisodeSampler,
    *,
    iterations: int = 600,
    batch: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    progress: bool = True,
    **model_options,
) -> FewShotGNN:
    """Train a :class:`FewShotGNN` on episodes from ``sampler`` with cross-entropy on queries."""
    torch.manual_seed(seed)
    image_size = sampler.split.images.shape[-1]
    model = FewShotGNN(sampler.n_way, image_size=image_size, **model_options)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-6)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, iterations)
    bar = tqdm(
        range(iterations),
        desc=f"{sampler.n_way}-way {sampler.k_shot}-shot",
        disable=None if progress else True,
    )
    for _ in bar:
        ep = sampler.sample(batch)
        logits = model(ep.support, ep.support_labels, ep.query)
        loss = F.cross_entropy(logits.flatten(0, 1), ep.query_labels.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return model.eval()


@torch.no_grad()
def evaluate_fewshot(
    model: FewShotGNN, sampler: EpisodeSampler, *, episodes: int = 1000, batch: int = 100
) -> tuple[float, float]:
    """Mean query accuracy over ``episodes`` episodes and its 95% interval half-width.

    The interval is ``1.96 * std / sqrt(episodes)`` of the per-episode accuracies.
    """
    model.eval()
    accs = []
    for start in range(0, episodes, batch):
        ep = sampler.sample(min(batch, episodes - start))
        pred = model(ep.support, ep.support_labels, ep.query).argmax(-1)
        accs.append((pred == ep.query_labels).float().mean(1))
    acc = torch.cat(accs)
    return acc.mean().item(), 1.96 * acc.std().item() / math.sqrt(len(acc))
