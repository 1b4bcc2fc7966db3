"""Presets are ModelConfig instances; neural3dmm is its own model (not SpiralNet++ twice)."""

import torch

from deep3dmm.mesh import MeshHierarchy, shapes
from deep3dmm.nn import PRESET_HIERARCHY, PRESETS, ModelConfig, build_preset
from deep3dmm.train.config import RunConfig


def test_every_preset_is_a_model_config_and_its_own_name():
    for name, config in PRESETS.items():
        assert isinstance(config, ModelConfig) and config.preset == name
    pairs = [(a, b) for a in PRESETS for b in PRESETS if a < b]
    assert all(PRESETS[a] != PRESETS[b] for a, b in pairs)


def test_neural3dmm_uses_reference_vertex_spirals_and_its_channels():
    ours, plus = PRESETS["neural3dmm"], PRESETS["spiralnet++"]
    assert ours.channels == (16, 32, 64, 128) and plus.channels == (32, 32, 32, 64)
    hierarchy = PRESET_HIERARCHY["neural3dmm"]
    assert hierarchy.reference_vertices == "random"
    assert hierarchy.spiral_length == (19, 19, 7, 7, 7)
    assert PRESET_HIERARCHY["spiralnet++"].reference_vertices is None
    # A run naming the preset (and no hierarchy options) trains on its hierarchy.
    run = RunConfig().replace(model={"preset": "neural3dmm"})
    assert run.hierarchy == hierarchy and run.model == ours
    custom = RunConfig().replace(model={"preset": "neural3dmm"}, hierarchy={"factors": [4, 4]})
    assert custom.hierarchy.factors == (4, 4) and custom.hierarchy.reference_vertices is None


def test_neural3dmm_builds_and_runs():
    config = PRESET_HIERARCHY["neural3dmm"].replace(factors=(4, 4), spiral_length=(19, 7, 7))
    h = MeshHierarchy.build(shapes.icosphere(3), config)
    assert [s.shape[1] for s in h.spirals] == [19, 7, 7]
    plain = MeshHierarchy.build(shapes.icosphere(3), factors=(4, 4), spiral_length=(19, 7, 7))
    assert not torch.equal(h.spirals[0], plain.spirals[0])  # rotated to the references
    model = build_preset("neural3dmm", h, channels=(16, 32))
    assert model(torch.randn(2, 642, 3)).shape == (2, 642, 3)
