"""The 2D part: images become graphs of keypoints, graph networks reason over them.

Part 1: backbone, keypoint selection, CNN <-> graph interconnects, adjacency builders,
graph layers (GCN, GAT, DenseDiffPool, GraphProjection), keypoint-graph models, datasets
and the training loop.
"""

from deep3dmm.image_graph.backbone import ConvStage, SmallCNN
from deep3dmm.image_graph.datasets import ImageSplit, load_digits

__all__ = [
    "ConvStage",
    "ImageSplit",
    "SmallCNN",
    "load_digits",
]
