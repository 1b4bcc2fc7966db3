r"""Graph-based sequential active learning: UncertainGCN and CoreGCN, with random and CoreSet.

Paper: Caramalau, Bhattarai & Kim, "Sequential Graph Convolutional Network for Active
Learning", CVPR 2021. CoreSet: Sener & Savarese, ICLR 2018 (greedy k-center).

Each cycle: train the learner (a :class:`~deep3dmm.image_graph.backbone.SmallCNN`) on the
labelled set, embed a random unlabelled subset plus every labelled sample, build the
sampler graph on L2-normalised features :math:`F`

.. math::
    S = F F^\top - I, \qquad A = D^{-1} S + I, \quad D = \mathrm{diag}(S \mathbf 1)

train a two-layer GCN :math:`s = \sigma(A\,\mathrm{drop}(\mathrm{relu}(A F W_1)) W_2)`
to tell labelled (1) from unlabelled (0) nodes with

.. math::
    \mathcal L = -\frac{1}{n_l}\sum_{i \in l} \log s_i
                 - \frac{\lambda}{n_u}\sum_{i \in u} \log(1 - s_i), \quad \lambda = 1.2

and pick the next ``budget`` samples:

- ``uncertaingcn``: the unlabelled nodes whose score is closest to the margin (0.1);
- ``coregcn``: greedy k-center on the first-layer GCN features, labelled nodes as centres;
- ``coreset``: greedy k-center on the learner features; ``random``: uniform.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from deep3dmm.atomic import atomic_write_text
from deep3dmm.errors import ConfigError, DatasetError
from deep3dmm.image_graph.adjacency import row_normalize
from deep3dmm.image_graph.backbone import SmallCNN
from deep3dmm.image_graph.datasets import ImageSplit, load_digits
from deep3dmm.image_graph.train import evaluate_accuracy, fit_classifier, predict

__all__ = [
    "ACTIVE_METHODS",
    "ActiveResult",
    "SamplerGCN",
    "kcenter_greedy",
    "load_active_results",
    "run_active_learning",
    "sampler_adjacency",
    "sampler_loss",
    "train_sampler",
    "uncertainty_select",
]

log = logging.getLogger(__name__)

ACTIVE_METHODS = ("uncertaingcn", "coregcn", "random", "coreset")


def sampler_adjacency(features: torch.Tensor) -> torch.Tensor:
    """``A = row_normalise(F F^T - I) + I`` on L2-normalised features.

    Rows of ``S`` with a non-positive sum (impossible for the non-negative features of a
    ReLU network) are left at zero by :func:`~deep3dmm.image_graph.adjacency.row_normalize`.

    Shapes:
        features: (N, D) -> (N, N).
    """
    f = F.normalize(features, dim=1)
    eye = torch.eye(len(f), dtype=f.dtype, device=f.device)
    return row_normalize((f @ f.T - eye)[None], add_self_loops=False)[0] + eye


class SamplerGCN(nn.Module):
    """Two-layer GCN scoring how "labelled-like" each node is.

    Args:
        in_dim: feature width D.
        hidden: hidden width.
        dropout: dropout after the first layer.

    Shapes:
        x: (N, D); adjacency: (N, N) -> scores (N,) in (0, 1), first-layer features
        (N, hidden).
    """

    def __init__(self, in_dim: int, *, hidden: int = 128, dropout: float = 0.3) -> None:
        super().__init__()
        self.in_dim, self.hidden, self.dropout = in_dim, hidden, dropout
        self.gc1 = nn.Linear(in_dim, hidden)
        self.gc2 = nn.Linear(hidden, 1)

    def forward(
        self, x: torch.Tensor, adjacency: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scores and first-layer features."""
        h = F.relu(adjacency @ self.gc1(x))
        out = adjacency @ self.gc2(F.dropout(h, self.dropout, self.training))
        return torch.sigmoid(out[:, 0]), h

    def extra_repr(self) -> str:
        """Key hyperparameters for the repr."""
        return f"in_dim={self.in_dim}, hidden={self.hidden}, dropout={self.dropout}"


def sampler_loss(
    scores: torch.Tensor, labelled: torch.Tensor, *, lam: float = 1.2, eps: float = 1e-7
) -> torch.Tensor:
    """``-mean log s(labelled) - lam * mean log(1 - s(unlabelled))``.

    Shapes:
        scores: (N,); labelled: (N,) bool.
    """
    s = scores.clamp(eps, 1 - eps)
    return -torch.log(s[labelled]).mean() - lam * torch.log(1 - s[~labelled]).mean()


def train_sampler(
    features: torch.Tensor,
    labelled: torch.Tensor,
    *,
    steps: int = 200,
    lr: float = 1e-3,
    weight_decay: float = 5e-4,
    lam: float = 1.2,
    hidden: int = 128,
    dropout: float = 0.3,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Train a :class:`SamplerGCN` on the sampler graph; return its eval-mode outputs.

    Shapes:
        features: (N, D); labelled: (N,) bool -> scores (N,), first-layer features (N, hidden).
    """
    torch.manual_seed(seed)
    adjacency = sampler_adjacency(features)
    gcn = SamplerGCN(features.shape[1], hidden=hidden, dropout=dropout)
    opt = torch.optim.Adam(gcn.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        scores, _ = gcn(features, adjacency)
        loss = sampler_loss(scores, labelled, lam=lam)
        opt.zero_grad()
        loss.backward()
        opt.step()
    gcn.eval()
    with torch.no_grad():
        return gcn(features, adjacency)


def kcenter_greedy(features: torch.Tensor, centres: torch.Tensor, budget: int) -> torch.Tensor:
    """Greedy k-center: repeatedly take the point farthest from every centre chosen so far.

    Args:
        features: points.
        centres: initial centres (e.g. the labelled nodes); may be all False.
        budget: points to pick (among the non-centres).

    Shapes:
        features: (N, D); centres: (N,) bool -> picked indices (budget,).
    """
    n = len(features)
    if budget > int((~centres).sum()):
        raise ConfigError(
            f"kcenter_greedy: budget {budget} exceeds the {int((~centres).sum())} candidates",
            fix="lower the budget or enlarge the unlabelled subset",
        )
    if centres.any():
        dist = torch.cdist(features, features[centres]).min(dim=1).values  # (N,)
    else:
        dist = torch.full((n,), float("inf"), dtype=features.dtype)
    dist = dist.masked_fill(centres, -1.0)
    picked = []
    for _ in range(budget):
        i = int(torch.argmax(dist))
        picked.append(i)
        dist = torch.minimum(dist, (features - features[i]).norm(dim=1))
        dist[i] = -1.0
    return torch.tensor(picked, dtype=torch.long)


def uncertainty_select(
    scores: torch.Tensor, candidates: torch.Tensor, budget: int, *, margin: float = 0.1
) -> torch.Tensor:
    """The ``budget`` candidate nodes whose score is closest to ``margin`` (UncertainGCN).

    Shapes:
        scores: (N,); candidates: (N,) bool -> indices (budget,).
    """
    gap = (scores - margin).abs().masked_fill(~candidates, float("inf"))
    return torch.argsort(gap, stable=True)[:budget]


@dataclass
class ActiveResult:
    """Accuracy per cycle of one active-learning run (saved as JSON)."""

    method: str
    seed: int
    labelled: list[int] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    config: dict = field(default_factory=dict)

    def save(self, path: str | os.PathLike) -> None:
        """Write the result as JSON, atomically."""
        atomic_write_text(path, json.dumps(asdict(self), indent=2) + "\n")


def load_active_results(directory: str | os.PathLike) -> list[ActiveResult]:
    """Every ``active_*.json`` in ``directory`` (sorted by name)."""
    paths = sorted(
        p for p in os.listdir(directory) if p.startswith("active_") and p.endswith(".json")
    )
    if not paths:
        raise DatasetError(
            "no active_*.json results",
            path=directory,
            fix="run `python examples/image_graph/active_demo.py run` first",
        )
    results = []
    for p in paths:
        with open(os.path.join(directory, p)) as fh:
            results.append(ActiveResult(**json.load(fh)))
    return results


def run_active_learning(
    method: str,
    *,
    cycles: int = 5,
    budget: int = 50,
    initial: int = 50,
    subset: int = 500,
    epochs: int = 40,
    image_size: int = 16,
    widths: tuple[int, ...] = (16, 32, 64),
    sampler_steps: int = 200,
    seed: int = 0,
    data: tuple[ImageSplit, ImageSplit] | None = None,
    progress: bool = True,
) -> ActiveResult:
    """The full active-learning loop on digits (or ``data``); test accuracy per cycle.

    Each cycle trains a fresh learner on the labelled set (``epochs`` epochs, Adam 1e-3) and
    records its test accuracy; all but the last cycle then label ``budget`` more samples
    chosen by ``method`` from a random unlabelled ``subset``.
    """
    if method not in ACTIVE_METHODS:
        raise ConfigError(
            f"unknown active-learning method {method!r}", fix=f"choose one of {ACTIVE_METHODS}"
        )
    train, test = data if data is not None else load_digits(image_size, seed=0)
    if initial + budget * (cycles - 1) > len(train):
        raise ConfigError(
            f"active learning: {initial} + {cycles - 1} x {budget} labels exceed the "
            f"{len(train)} training images",
            fix="lower --initial, --budget or --cycles",
        )
    rng = np.random.default_rng(seed)
    labelled = np.zeros(len(train), dtype=bool)
    labelled[rng.choice(len(train), initial, replace=False)] = True
    config = dict(
        cycles=cycles,
        budget=budget,
        initial=initial,
        subset=subset,
        epochs=epochs,
        image_size=image_size,
        widths=list(widths),
        sampler_steps=sampler_steps,
    )
    result = ActiveResult(method, seed, config=config)
    for cycle in tqdm(range(cycles), desc=f"active {method}", disable=None if progress else True):
        torch.manual_seed(seed * 1000 + cycle)
        learner = SmallCNN(1, 10, widths, image_size=train.images.shape[-1])
        idx = torch.from_numpy(np.flatnonzero(labelled))
        fit_classifier(
            learner,
            ImageSplit(train.images[idx], train.labels[idx]),
            test,
            epochs=epochs,
            batch_size=32,
            seed=seed + cycle,
            progress=False,
        )
        acc = evaluate_accuracy(learner, test)
        result.labelled.append(int(labelled.sum()))
        result.accuracy.append(acc)
        log.info(
            "%s seed %d cycle %d: %d labelled, test accuracy %.4f",
            method,
            seed,
            cycle,
            labelled.sum(),
            acc,
        )
        if cycle == cycles - 1:
            break
        pool = np.flatnonzero(~labelled)
        pool = rng.choice(pool, min(subset, len(pool)), replace=False)
        if method == "random":
            labelled[pool[:budget]] = True
            continue
        nodes = np.concatenate([pool, np.flatnonzero(labelled)])  # unlabelled first
        is_lab = torch.zeros(len(nodes), dtype=torch.bool)
        is_lab[len(pool) :] = True
        feats = predict(learner, train.images[torch.from_numpy(nodes)], fn=learner.features)
        if method == "coreset":
            pick = kcenter_greedy(feats, is_lab, budget)
        else:
            scores, hidden = train_sampler(feats, is_lab, steps=sampler_steps, seed=seed + cycle)
            if method == "uncertaingcn":
                pick = uncertainty_select(scores, ~is_lab, budget)
            else:
                pick = kcenter_greedy(hidden, is_lab, budget)
        labelled[nodes[pick.numpy()]] = True
    return result
