import pytest
import torch

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.backbone import SmallCNN


def test_shapes_and_gradients():
    torch.manual_seed(0)
    model = SmallCNN(1, 5, (8, 16), image_size=16)
    x = torch.rand(3, 1, 16, 16)
    assert model.feature_maps(x, stage=0).shape == (3, 8, 8, 8)
    assert model.feature_maps(x).shape == (3, 16, 4, 4)
    assert model.features(x).shape == (3, model.feature_dim) == (3, 16)
    logits = model(x)
    assert logits.shape == (3, 5)
    logits.sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert model.stage_size(0) == 8 and model.stage_size() == 4


def test_features_are_the_pooled_last_stage_and_head_input():
    torch.manual_seed(0)
    model = SmallCNN(1, 3, (4, 8), image_size=8).eval()
    x = torch.rand(2, 1, 8, 8)
    feats = model.features(x)
    torch.testing.assert_close(feats, model.feature_maps(x).mean(dim=(2, 3)))
    torch.testing.assert_close(model(x), model.head(feats))


def test_batched_equals_per_sample_in_eval():
    torch.manual_seed(0)
    model = SmallCNN(1, 4, (4, 8), image_size=8).eval()
    x = torch.rand(3, 1, 8, 8)
    torch.testing.assert_close(model(x), torch.cat([model(x[i : i + 1]) for i in range(3)]))


def test_repr_and_bad_input():
    model = SmallCNN(1, 10, (4, 8), image_size=8)
    assert "widths=(4, 8)" in repr(model) and "num_classes=10" in repr(model)
    with pytest.raises(ConfigError, match="not divisible"):
        SmallCNN(image_size=30)
    with pytest.raises(ConfigError, match=r"expected images \(B, 1, H, W\)"):
        model(torch.rand(2, 3, 8, 8))
