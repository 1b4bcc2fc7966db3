"""Synthetic multi-object tracking as edge classification on a detection graph.

The runnable example of :class:`~deep3dmm.image_graph.message_passing.TimeAwareMessagePassing`
(Brasó & Leal-Taixé, CVPR 2020): constant-velocity boxes with positional jitter, dropped
detections (occlusions) and false positives; every detection carries an appearance vector
drawn around its identity's mean. Detections become nodes; edges join detections up to
``max_gap`` frames apart (earlier -> later) whose centres are close enough; an edge is
*active* when both ends belong to one identity and are consecutive detections of it. The
network classifies edges; precision/recall of the active edges measure tracking quality.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.message_passing import TimeAwareMessagePassing

__all__ = [
    "DetectionGraph",
    "Detections",
    "detection_graph",
    "edge_precision_recall",
    "synthetic_detections",
    "train_edge_classifier",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Detections:
    """Detections of one sequence.

    Shapes:
        frame: (N,) int64; box: (N, 4) float32 ``(cx, cy, w, h)``; appearance: (N, D)
        float32; identity: (N,) int64, -1 for false positives.
    """

    frame: torch.Tensor
    box: torch.Tensor
    appearance: torch.Tensor
    identity: torch.Tensor

    def __len__(self) -> int:
        return len(self.frame)


def synthetic_detections(
    *,
    num_objects: int = 14,
    num_frames: int = 30,
    appearance_dim: int = 8,
    scene_size: float = 60.0,
    jitter: float = 1.0,
    drop_rate: float = 0.15,
    false_positive_rate: float = 1.5,
    appearance_noise: float = 1.5,
    seed: int = 0,
) -> Detections:
    """Constant-velocity boxes observed with jitter, drops and false positives.

    Args:
        num_objects: identities, each visible for the whole sequence (when not dropped).
        num_frames: frames T.
        appearance_dim: appearance vector width D.
        scene_size: side of the square scene (positions wrap nowhere; boxes may leave it).
        jitter: std of the positional noise, scene units.
        drop_rate: probability that a detection is missing (occlusion / missed detection).
        false_positive_rate: mean number of false detections per frame (Poisson).
        appearance_noise: std of the appearance noise around the identity mean (the
            identity means are standard normal).
        seed: random seed.
    """
    if num_objects < 1 or num_frames < 2:
        raise ConfigError(
            f"synthetic_detections: need num_objects >= 1 and num_frames >= 2, got "
            f"{num_objects}, {num_frames}"
        )
    rng = np.random.default_rng(seed)
    start = rng.uniform(0.2, 0.8, (num_objects, 2)) * scene_size
    velocity = rng.uniform(-1.5, 1.5, (num_objects, 2))
    size = rng.uniform(6.0, 14.0, (num_objects, 2))
    means = rng.normal(size=(num_objects, appearance_dim))
    t = np.arange(num_frames)
    centre = start[None] + t[:, None, None] * velocity[None]  # (T, K, 2)
    centre = centre + rng.normal(scale=jitter, size=centre.shape)
    keep = rng.random((num_frames, num_objects)) >= drop_rate
    frames, ids = np.nonzero(keep)  # sorted by frame
    box = np.concatenate(
        [centre[frames, ids], size[ids] * rng.uniform(0.95, 1.05, (len(ids), 2))], 1
    )
    app = means[ids] + rng.normal(scale=appearance_noise, size=(len(ids), appearance_dim))
    n_fp = rng.poisson(false_positive_rate, num_frames)
    fp_frame = np.repeat(t, n_fp)
    fp_box = np.concatenate(
        [rng.uniform(0, scene_size, (len(fp_frame), 2)), rng.uniform(6, 14, (len(fp_frame), 2))], 1
    )
    fp_app = rng.normal(size=(len(fp_frame), appearance_dim)) * np.sqrt(1 + appearance_noise**2)
    frame = np.concatenate([frames, fp_frame])
    order = np.argsort(frame, kind="stable")
    return Detections(
        frame=torch.from_numpy(frame[order]).long(),
        box=torch.from_numpy(np.concatenate([box, fp_box])[order]).float(),
        appearance=torch.from_numpy(np.concatenate([app, fp_app])[order]).float(),
        identity=torch.from_numpy(
            np.concatenate([ids, -np.ones(len(fp_frame), int)])[order]
        ).long(),
    )


@dataclass(frozen=True)
class DetectionGraph:
    """Detection graph of one sequence.

    Shapes:
        x: (N, D) node features (appearance); edge_index: (2, E) earlier -> later;
        edge_attr: (E, 6) ``(dx/h, dy/h, log w ratio, log h ratio, frame gap, appearance
        distance)``; labels: (E,) float 1 for active edges.
    """

    x: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    labels: torch.Tensor


def detection_graph(
    dets: Detections, *, max_gap: int = 3, max_distance: float = 6.0
) -> DetectionGraph:
    """Join close detections up to ``max_gap`` frames apart; label consecutive same-id pairs.

    Edges join detections ``1..max_gap`` frames apart whose centres are within
    ``max_distance`` scene units per frame of gap.

    Shapes:
        see :class:`DetectionGraph`.
    """
    f, box, app, ident = dets.frame, dets.box, dets.appearance, dets.identity
    gap = f[None, :] - f[:, None]  # (N, N): frame[j] - frame[i]
    dist = torch.cdist(box[:, :2], box[:, :2])
    ok = (gap >= 1) & (gap <= max_gap) & (dist <= max_distance * gap.clamp_min(1))
    src, dst = ok.nonzero(as_tuple=True)
    # Next detection of each identity: sort by (identity, frame) and look one ahead.
    order = torch.argsort(ident * (int(f.max()) + 1) + f)
    nxt = torch.full_like(ident, -1)
    same = ident[order[:-1]] == ident[order[1:]]
    nxt[order[:-1][same]] = order[1:][same]
    labels = ((ident[src] >= 0) & (nxt[src] == dst)).float()
    h = 0.5 * (box[src, 3] + box[dst, 3])
    attr = torch.stack(
        [
            (box[dst, 0] - box[src, 0]) / h,
            (box[dst, 1] - box[src, 1]) / h,
            torch.log(box[dst, 2] / box[src, 2]),
            torch.log(box[dst, 3] / box[src, 3]),
            gap[src, dst].float(),
            (app[src] - app[dst]).norm(dim=1),
        ],
        dim=1,
    )
    return DetectionGraph(app, torch.stack([src, dst]), attr, labels)


def edge_precision_recall(
    logits: torch.Tensor, labels: torch.Tensor, *, threshold: float = 0.0
) -> tuple[float, float]:
    """Precision and recall of the edges with ``logits > threshold`` (logit 0 = p 0.5)."""
    pred = logits > threshold
    truth = labels > 0.5
    tp = int((pred & truth).sum())
    precision = tp / max(int(pred.sum()), 1)
    recall = tp / max(int(truth.sum()), 1)
    return precision, recall


def train_edge_classifier(
    graphs: list[DetectionGraph],
    *,
    steps: int = 400,
    lr: float = 3e-3,
    time_aware: bool = True,
    mp_steps: int = 6,
    seed: int = 0,
    progress: bool = True,
) -> TimeAwareMessagePassing:
    """Train a :class:`TimeAwareMessagePassing` edge classifier, one graph per step (cycled).

    Positive edges are up-weighted by the negative/positive ratio of the training graphs.
    """
    if not graphs or steps < 1:
        raise ConfigError(
            f"train_edge_classifier: need >= 1 graph and >= 1 step, got {len(graphs)} graphs, "
            f"{steps} steps",
            fix="pass training graphs and a positive number of steps",
        )
    torch.manual_seed(seed)
    g0 = graphs[0]
    model = TimeAwareMessagePassing(
        g0.x.shape[1],
        g0.edge_attr.shape[1],
        steps=mp_steps,
        loss_steps=mp_steps // 2,
        time_aware=time_aware,
    )
    labels = torch.cat([g.labels for g in graphs])
    pos_weight = float((1 - labels).sum() / labels.sum().clamp_min(1))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    bar = tqdm(range(steps), desc="train edge classifier", disable=None if progress else True)
    for step in bar:
        g = graphs[step % len(graphs)]
        loss = model.loss(model(g.x, g.edge_index, g.edge_attr), g.labels, pos_weight=pos_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    log.info("trained edge classifier: final loss %.4f", loss.item())
    return model.eval()
