"""A model of any kind from its :class:`~deep3dmm.nn.ModelConfig`, or from a checkpoint."""

from __future__ import annotations

from deep3dmm.nn.autoencoder import MeshAutoencoder
from deep3dmm.nn.config import ModelConfig
from deep3dmm.nn.pca import PCAModel

__all__ = ["build_model", "model_from_config"]


def build_model(hierarchy, config: ModelConfig) -> MeshAutoencoder | PCAModel:
    """The model ``config`` describes on ``hierarchy`` (``pca``: built empty, to be fitted)."""
    if config.kind == "pca":
        return PCAModel(hierarchy.num_vertices[0], config.latent)
    return MeshAutoencoder(hierarchy, config)


def model_from_config(config: dict, hierarchy) -> MeshAutoencoder | PCAModel:
    """Rebuild a model from its stored ``config`` (``kind = "pca"`` or an autoencoder)."""
    if config.get("kind") == "pca":
        return PCAModel.from_config(config)
    return MeshAutoencoder.from_config(config, hierarchy)
