"""The 2D part: images become graphs of keypoints, graph networks reason over them.

Part 1: backbone, keypoint selection, CNN <-> graph interconnects, adjacency builders,
graph layers (GCN, GAT, DenseDiffPool, GraphProjection), keypoint-graph models, datasets
and the training loop.
"""

from deep3dmm.image_graph.adjacency import (
    dense_to_edge_index,
    edge_index_to_dense,
    feature_similarity,
    gaussian_kernel,
    inverse_distance,
    knn_adjacency,
    row_normalize,
    symmetric_normalize,
)
from deep3dmm.image_graph.backbone import ConvStage, SmallCNN
from deep3dmm.image_graph.datasets import ImageSplit, load_digits
from deep3dmm.image_graph.diffpool import DenseDiffPool, dense_diff_pool
from deep3dmm.image_graph.gat import GATLayer
from deep3dmm.image_graph.gcn import GCNLayer
from deep3dmm.image_graph.graph_projection import GraphProjection
from deep3dmm.image_graph.interconnect import cnn_to_graph, gather_at, graph_to_cnn, rescale_coords
from deep3dmm.image_graph.keypoints import (
    AttentionHead,
    CoordinateRegression,
    GlobalCompatibility,
    KeypointSelector,
    KeypointSet,
    MaxPoolNMS,
    TopKAttention,
)

__all__ = [
    "AttentionHead",
    "ConvStage",
    "CoordinateRegression",
    "DenseDiffPool",
    "GATLayer",
    "GCNLayer",
    "GlobalCompatibility",
    "GraphProjection",
    "ImageSplit",
    "KeypointSelector",
    "KeypointSet",
    "MaxPoolNMS",
    "SmallCNN",
    "TopKAttention",
    "cnn_to_graph",
    "dense_diff_pool",
    "dense_to_edge_index",
    "edge_index_to_dense",
    "feature_similarity",
    "gather_at",
    "gaussian_kernel",
    "graph_to_cnn",
    "inverse_distance",
    "knn_adjacency",
    "load_digits",
    "rescale_coords",
    "row_normalize",
    "symmetric_normalize",
]
