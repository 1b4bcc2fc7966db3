"""Image models that reason over keypoint graphs: a classifier and an autoencoder.

Both share one encoder (:class:`KeypointGraphEncoder`)::

    image (B, C_in, H, W) -> CNN stage 1 -> f1 (B, w1, H/2, W/2) -> score head -> keypoints
                          -> CNN stage 2 -> f2 (B, w2, H/4, W/4) -> cnn_to_graph (gathered at
                             the rescaled keypoints, times their scores; + (row, col) / size)
                          -> graph (B, n, w2 + 2), adjacency (B, n, n) -> GCN | GAT | DiffPool

- :class:`KeypointGraphClassifier`: encoder -> mean node pooling -> MLP -> logits.
- :class:`KeypointGraphAutoencoder`: encoder (GCN) -> graph_to_cnn onto the H/4 grid ->
  upsampling CNN -> image in [0, 1]; losses: MSE and the confidence-weighted MSE (per-pixel
  squared error weighted by the keypoint score map upsampled to the image).

Shapes:
    - images ``(B, C_in, H, W)``; logits ``(B, num_classes)``; reconstructions like images.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.backbone import ConvStage
from deep3dmm.image_graph.diffpool import DenseDiffPool
from deep3dmm.image_graph.gat import GATLayer
from deep3dmm.image_graph.gcn import GCNLayer
from deep3dmm.image_graph.interconnect import ADJACENCY, cnn_to_graph, graph_to_cnn
from deep3dmm.image_graph.keypoints import (
    CoordinateRegression,
    GlobalCompatibility,
    KeypointSelector,
    KeypointSet,
    MaxPoolNMS,
    TopKAttention,
)

__all__ = [
    "KEYPOINT_METHODS",
    "GRAPH_METHODS",
    "make_selector",
    "KeypointGraphEncoder",
    "KeypointGraphClassifier",
    "KeypointGraphAutoencoder",
    "reconstruction_loss",
]

KEYPOINT_METHODS = ("topk", "maxpool", "regress", "compat")
GRAPH_METHODS = ("gcn", "gat", "diffpool")


def make_selector(method: str, in_channels: int, *, window: int = 4) -> KeypointSelector:
    """A keypoint selector by name; ``window`` is the NMS window or regression cell."""
    if method == "topk":
        return TopKAttention(in_channels)
    if method == "maxpool":
        return MaxPoolNMS(in_channels, window=window)
    if method == "regress":
        return CoordinateRegression(in_channels, cell=window)
    if method == "compat":
        return GlobalCompatibility(in_channels)
    raise ConfigError(
        f"unknown keypoint method {method!r}", fix=f"choose one of {', '.join(KEYPOINT_METHODS)}"
    )


class KeypointGraphEncoder(nn.Module):
    """CNN -> keypoints -> graph -> a stack of graph layers.

    Args:
        in_channels: image channels.
        image_size: image side (divisible by 4).
        widths: channels of the two CNN stages ``(w1, w2)``.
        keypoints: ``"topk"``, ``"maxpool"``, ``"regress"`` or ``"compat"``.
        num_keypoints: graph size ``n``.
        window: NMS window / regression cell on the score map (``H/2`` pixels).
        graph: ``"gcn"``, ``"gat"`` or ``"diffpool"``.
        hidden: node channels of the graph layers.
        layers: number of graph layers; with DiffPool the second is the pooling block and
            the rest run on the pooled graph (use 3: with 2, a mean readout over the clusters
            equals ``sum(Z) / K`` whatever the assignment).
        heads: GAT heads (hidden layers concatenate ``hidden / heads`` per head).
        clusters: DiffPool clusters.
        adjacency: adjacency builder name (see ``interconnect.ADJACENCY``).
    """

    def __init__(
        self,
        in_channels: int = 1,
        *,
        image_size: int = 32,
        widths: Sequence[int] = (32, 64),
        keypoints: str = "maxpool",
        num_keypoints: int = 16,
        window: int = 4,
        graph: str = "gcn",
        hidden: int = 64,
        layers: int = 2,
        heads: int = 4,
        clusters: int = 4,
        adjacency: str = "inverse_distance",
    ):
        super().__init__()
        if image_size % 4:
            raise ConfigError(f"image_size must be divisible by 4, got {image_size}")
        if graph not in GRAPH_METHODS:
            raise ConfigError(
                f"unknown graph method {graph!r}", fix=f"choose one of {', '.join(GRAPH_METHODS)}"
            )
        if adjacency not in ADJACENCY:
            raise ConfigError(
                f"unknown adjacency {adjacency!r}", fix=f"choose one of {sorted(ADJACENCY)}"
            )
        if layers < 1 or (graph == "diffpool" and layers < 2):
            raise ConfigError(f"need at least {2 if graph == 'diffpool' else 1} graph layers")
        if graph == "gat" and hidden % heads:
            raise ConfigError(f"GAT: hidden={hidden} is not divisible by heads={heads}")
        w1, w2 = widths
        self.image_size = image_size
        self.keypoints_method = keypoints
        self.num_keypoints = num_keypoints
        self.graph = graph
        self.adjacency = adjacency
        self.hidden = hidden
        self.stage1 = ConvStage(in_channels, w1)
        self.stage2 = ConvStage(w1, w2)
        self.selector = make_selector(keypoints, w1, window=window)
        node_in = w2 + 2
        self.layers = nn.ModuleList()
        self.pool: DenseDiffPool | None = None
        dims = [node_in] + [hidden] * layers
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            if graph == "gat":
                self.layers.append(GATLayer(a, b // heads, heads=heads))
            elif graph == "diffpool" and i == 1:
                self.pool = DenseDiffPool(a, b, clusters)
                self.layers.append(nn.Identity())
            else:
                self.layers.append(GCNLayer(a, b))

    def select(self, images: torch.Tensor) -> tuple[torch.Tensor, KeypointSet]:
        """Stage-1 features ``(B, w1, H/2, W/2)`` and the keypoints chosen on them."""
        f1 = self.stage1(images)
        return f1, self.selector(f1, self.num_keypoints)

    def forward(
        self, images: torch.Tensor
    ) -> tuple[torch.Tensor, KeypointSet, torch.Tensor, torch.Tensor]:
        """``(nodes (B, n', hidden), keypoints, f2, auxiliary loss)``.

        ``n' = n`` except after DiffPool (``clusters``).
        """
        f1, kp = self.select(images)
        f2 = self.stage2(f1)
        nodes, adj = cnn_to_graph(f2, kp, adjacency=self.adjacency)
        size = torch.tensor(kp.size, dtype=nodes.dtype, device=nodes.device)
        x = torch.cat((nodes, kp.coords / size - 0.5), dim=-1)  # (B, n, w2 + 2)
        aux = x.new_zeros(())
        for layer in self.layers:
            if isinstance(layer, nn.Identity):
                x, adj, aux = self.pool(x, adj)
            else:
                x = F.relu(layer(x, adj))
        return x, kp, f2, aux


class _KeypointGraphModel(nn.Module):
    """What the classifier and the autoencoder share: their encoder's keypoints and repr."""

    encoder: KeypointGraphEncoder

    def keypoints(self, images: torch.Tensor) -> KeypointSet:
        """The keypoints the model selects (on the ``H/2`` score-map grid)."""
        return self.encoder.select(images)[1]

    def extra_repr(self) -> str:
        """Key hyperparameters for ``repr``."""
        e = self.encoder
        return (
            f"keypoints={e.keypoints_method!r}, num_keypoints={e.num_keypoints}, "
            f"graph={e.graph!r}, adjacency={e.adjacency!r}"
        )


class KeypointGraphClassifier(_KeypointGraphModel):
    """CNN backbone -> keypoints -> graph -> GCN/GAT/DiffPool -> mean pool -> MLP.

    Args:
        num_classes: output classes.
        in_channels: image channels.
        dropout: dropout before the last linear layer.
        aux_weight: weight of DiffPool's link + entropy loss in :meth:`training_loss`
            (at 1.0 the entropy term collapses every node into one cluster on digits).
        **encoder: keyword options of :class:`KeypointGraphEncoder`.
    """

    def __init__(
        self,
        num_classes: int = 10,
        *,
        in_channels: int = 1,
        dropout: float = 0.1,
        aux_weight: float = 0.1,
        **encoder,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.aux_weight = aux_weight
        self.encoder = KeypointGraphEncoder(in_channels, **encoder)
        hidden = self.encoder.hidden
        # Normalise after the readout, not per node: a DiffPool cluster that receives
        # (almost) no nodes is a near-zero vector that a per-node LayerNorm would blow up.
        self.norm = nn.LayerNorm(hidden)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),
        )

    def forward_with_aux(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, num_classes)`` and the auxiliary (DiffPool) loss."""
        nodes, _, _, aux = self.encoder(images)
        return self.mlp(self.norm(nodes.mean(dim=1))), aux

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)``."""
        return self.forward_with_aux(images)[0]

    def training_loss(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy plus ``aux_weight`` times the auxiliary loss."""
        logits, aux = self.forward_with_aux(images)
        return F.cross_entropy(logits, labels) + self.aux_weight * aux

    def extra_repr(self) -> str:
        """Key hyperparameters for ``repr``."""
        shared = super().extra_repr()
        return f"num_classes={self.num_classes}, {shared}, aux_weight={self.aux_weight}"


def reconstruction_loss(
    images: torch.Tensor,
    reconstruction: torch.Tensor,
    score_map: torch.Tensor | None = None,
    *,
    weighted: bool = False,
) -> torch.Tensor:
    """MSE, or the confidence-weighted MSE ``sum_p w_p (x_p - y_p)^2`` per image, averaged.

    The weights ``w`` are the score map bilinearly upsampled to the image and normalised to
    sum to 1 per image; they are detached, so the score head cannot lower the loss by moving
    its mass onto easy pixels (it learns through the score-weighted node features).
    """
    err = (reconstruction - images).pow(2).mean(dim=1, keepdim=True)  # (B, 1, H, W)
    if not weighted:
        return err.mean()
    if score_map is None:
        raise ConfigError("weighted reconstruction loss needs the keypoint score map")
    w = F.interpolate(
        score_map.detach(), size=images.shape[-2:], mode="bilinear", align_corners=False
    ).clamp(min=0)
    w = w / w.flatten(1).sum(1).clamp(min=1e-12)[:, None, None, None]
    return (w * err).flatten(1).sum(1).mean()


class KeypointGraphAutoencoder(_KeypointGraphModel):
    """Encoder (GCN) -> graph_to_cnn -> upsampling CNN -> image.

    Args:
        in_channels: image channels.
        **encoder: keyword options of :class:`KeypointGraphEncoder` (``graph`` must not be
            ``"diffpool"``: pooled clusters have no position to scatter back to).
    """

    def __init__(self, *, in_channels: int = 1, **encoder):
        super().__init__()
        if encoder.get("graph") == "diffpool":
            raise ConfigError(
                "KeypointGraphAutoencoder: graph='diffpool' cannot be scattered back to pixels",
                fix="use graph='gcn' or 'gat'",
            )
        self.encoder = KeypointGraphEncoder(in_channels, **encoder)
        hidden = self.encoder.hidden
        self.norm = nn.LayerNorm(hidden)
        self.decoder = nn.Sequential(
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(hidden, hidden // 2, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(hidden // 2, hidden // 2, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden // 2, in_channels, 3, padding=1),
            nn.Sigmoid(),
        )

    def forward_with_keypoints(self, images: torch.Tensor) -> tuple[torch.Tensor, KeypointSet]:
        """Reconstruction ``(B, C_in, H, W)`` and the keypoints used."""
        nodes, kp, f2, _ = self.encoder(images)
        grid = graph_to_cnn(self.norm(nodes), kp, tuple(f2.shape[-2:]))  # (B, hidden, H/4, W/4)
        return self.decoder(grid), kp

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``(B, C_in, H, W)`` in [0, 1]."""
        return self.forward_with_keypoints(images)[0]

    def training_loss(self, images: torch.Tensor, *, weighted: bool = False) -> torch.Tensor:
        """MSE or confidence-weighted MSE of the reconstruction."""
        recon, kp = self.forward_with_keypoints(images)
        return reconstruction_loss(images, recon, kp.score_map, weighted=weighted)
