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
from deep3dmm.image_graph.models import (
    KeypointGraphAutoencoder,
    KeypointGraphClassifier,
    KeypointGraphEncoder,
    make_selector,
    reconstruction_loss,
)
from deep3dmm.image_graph.runs import (
    ImageRunConfig,
    build_model,
    load_data,
    load_run,
    summarize_runs,
    train_run,
)
from deep3dmm.image_graph.shapes import load_shapes, make_shapes
from deep3dmm.image_graph.train import (
    evaluate_accuracy,
    evaluate_mse,
    fit,
    fit_autoencoder,
    fit_classifier,
    predict,
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
    "ImageRunConfig",
    "ImageSplit",
    "KeypointGraphAutoencoder",
    "KeypointGraphClassifier",
    "KeypointGraphEncoder",
    "KeypointSelector",
    "KeypointSet",
    "MaxPoolNMS",
    "SmallCNN",
    "TopKAttention",
    "build_model",
    "cnn_to_graph",
    "dense_diff_pool",
    "dense_to_edge_index",
    "edge_index_to_dense",
    "evaluate_accuracy",
    "evaluate_mse",
    "feature_similarity",
    "fit",
    "fit_autoencoder",
    "fit_classifier",
    "gather_at",
    "gaussian_kernel",
    "graph_to_cnn",
    "inverse_distance",
    "knn_adjacency",
    "load_data",
    "load_digits",
    "load_run",
    "load_shapes",
    "make_selector",
    "make_shapes",
    "predict",
    "reconstruction_loss",
    "rescale_coords",
    "row_normalize",
    "summarize_runs",
    "symmetric_normalize",
    "train_run",
]

# Part 2: message passing, tracking, few-shot GNN, deformable convolution, active learning.
from deep3dmm.image_graph.active import (  # noqa: E402
    ACTIVE_METHODS,
    ActiveResult,
    SamplerGCN,
    kcenter_greedy,
    load_active_results,
    run_active_learning,
    sampler_adjacency,
    sampler_loss,
    train_sampler,
    uncertainty_select,
)
from deep3dmm.image_graph.datasets import transformed_digits  # noqa: E402
from deep3dmm.image_graph.deform_roi_pool import DeformRoIPool, deform_roi_pool  # noqa: E402
from deep3dmm.image_graph.deformable import (  # noqa: E402
    DeformConv2d,
    deform_conv2d,
    deformable_small_cnn,
)
from deep3dmm.image_graph.fewshot import (  # noqa: E402
    Episode,
    EpisodeSampler,
    FewShotGNN,
    GraphConvFamily,
    LearnedAdjacency,
    evaluate_fewshot,
    train_fewshot,
)
from deep3dmm.image_graph.message_passing import (  # noqa: E402
    AGGREGATIONS,
    MLP,
    GraphNetworkBlock,
    TimeAwareMessagePassing,
    check_edge_index,
    scatter_aggregate,
)
from deep3dmm.image_graph.tracking import (  # noqa: E402
    DetectionGraph,
    Detections,
    detection_graph,
    edge_precision_recall,
    synthetic_detections,
    train_edge_classifier,
)

__all__ += [
    "ACTIVE_METHODS",
    "AGGREGATIONS",
    "ActiveResult",
    "DeformConv2d",
    "DeformRoIPool",
    "DetectionGraph",
    "Detections",
    "Episode",
    "EpisodeSampler",
    "FewShotGNN",
    "GraphConvFamily",
    "GraphNetworkBlock",
    "LearnedAdjacency",
    "MLP",
    "SamplerGCN",
    "TimeAwareMessagePassing",
    "check_edge_index",
    "deform_conv2d",
    "deform_roi_pool",
    "deformable_small_cnn",
    "detection_graph",
    "edge_precision_recall",
    "evaluate_fewshot",
    "kcenter_greedy",
    "load_active_results",
    "run_active_learning",
    "sampler_adjacency",
    "sampler_loss",
    "scatter_aggregate",
    "synthetic_detections",
    "train_edge_classifier",
    "train_fewshot",
    "train_sampler",
    "transformed_digits",
    "uncertainty_select",
]

# Part 3: attentive GNN over video frames, show-attend-tell captioning, spatial transformers.
from deep3dmm.image_graph.agnn import AGNN, ConvGRUCell, InterFrameAttention, mask_iou  # noqa: E402
from deep3dmm.image_graph.caption_data import CaptionSplit, Vocabulary, make_captions  # noqa: E402
from deep3dmm.image_graph.captioning import (  # noqa: E402
    ATTENTION_MODES,
    DecoderOutput,
    ShowAttendTell,
    bleu_scores,
    reinforce_surrogate,
)
from deep3dmm.image_graph.stn import SpatialTransformer, tps_grid, with_transformer  # noqa: E402
from deep3dmm.image_graph.video_data import VideoSplit, make_videos  # noqa: E402

__all__ += [
    "AGNN",
    "ATTENTION_MODES",
    "CaptionSplit",
    "ConvGRUCell",
    "DecoderOutput",
    "InterFrameAttention",
    "ShowAttendTell",
    "SpatialTransformer",
    "VideoSplit",
    "Vocabulary",
    "bleu_scores",
    "make_captions",
    "make_videos",
    "mask_iou",
    "reinforce_surrogate",
    "tps_grid",
    "with_transformer",
]
