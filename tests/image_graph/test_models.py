import pytest
import torch

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.models import (
    GRAPH_METHODS,
    KEYPOINT_METHODS,
    KeypointGraphAutoencoder,
    KeypointGraphClassifier,
    reconstruction_loss,
)
from deep3dmm.image_graph.shapes import make_shapes

SMALL = dict(image_size=16, widths=(4, 8), num_keypoints=6, window=2, hidden=8, heads=2)


@pytest.mark.parametrize("keypoints", KEYPOINT_METHODS)
@pytest.mark.parametrize("graph", GRAPH_METHODS)
def test_classifier_shapes_and_gradients(keypoints, graph):
    torch.manual_seed(0)
    model = KeypointGraphClassifier(3, keypoints=keypoints, graph=graph, **SMALL)
    x = torch.rand(4, 1, 16, 16)
    assert model(x).shape == (4, 3)
    kp = model.keypoints(x)
    assert kp.coords.shape == (4, 6, 2) and kp.size == (8, 8)
    model.training_loss(x, torch.tensor([0, 1, 2, 0])).backward()
    # every parameter learns, the keypoint score head included
    missing = [n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []
    assert f"graph={graph!r}" in repr(model)


def test_classifier_eval_batched_equals_per_sample():
    torch.manual_seed(0)
    model = KeypointGraphClassifier(3, **SMALL).eval()
    x = torch.rand(3, 1, 16, 16)
    torch.testing.assert_close(model(x), torch.cat([model(x[i : i + 1]) for i in range(3)]))


@pytest.mark.parametrize("keypoints", ["maxpool", "regress"])
def test_autoencoder_shapes_gradients_and_losses(keypoints):
    torch.manual_seed(0)
    model = KeypointGraphAutoencoder(keypoints=keypoints, **SMALL)
    x = torch.rand(2, 1, 16, 16)
    recon, kp = model.forward_with_keypoints(x)
    assert recon.shape == x.shape and (recon >= 0).all() and (recon <= 1).all()
    for weighted in (False, True):
        model.zero_grad()
        model.training_loss(x, weighted=weighted).backward()
        missing = [
            n for n, p in model.named_parameters() if p.grad is None or p.grad.abs().sum() == 0
        ]
        assert missing == []
    with pytest.raises(ConfigError, match="diffpool"):
        KeypointGraphAutoencoder(graph="diffpool")


def test_reconstruction_losses_match_direct_formulas():
    torch.manual_seed(0)
    x, y = torch.rand(2, 1, 8, 8), torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(reconstruction_loss(x, y), ((x - y) ** 2).mean())
    # score map at the image resolution: the weights are the normalised score map
    score = torch.rand(2, 1, 8, 8)
    w = score / score.sum(dim=(1, 2, 3), keepdim=True)
    expected = (w * (x - y) ** 2).sum(dim=(1, 2, 3)).mean()
    torch.testing.assert_close(reconstruction_loss(x, y, score, weighted=True), expected)
    # uniform scores make the weighted loss the plain MSE
    torch.testing.assert_close(
        reconstruction_loss(x, y, torch.ones(2, 1, 4, 4), weighted=True), ((x - y) ** 2).mean()
    )
    with pytest.raises(ConfigError, match="needs the keypoint score map"):
        reconstruction_loss(x, y, weighted=True)


def test_bad_options():
    with pytest.raises(ConfigError, match="unknown keypoint method 'sift'"):
        KeypointGraphClassifier(3, keypoints="sift")
    with pytest.raises(ConfigError, match="unknown graph method"):
        KeypointGraphClassifier(3, graph="sage")
    with pytest.raises(ConfigError, match="not divisible by heads"):
        KeypointGraphClassifier(3, graph="gat", hidden=10, heads=4)


def test_classifier_learns_procedural_shapes():
    """A few Adam steps on circles/squares/triangles lower the loss clearly."""
    torch.manual_seed(0)
    data = make_shapes(96, 16, seed=0)
    model = KeypointGraphClassifier(3, **SMALL)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(30):
        idx = torch.arange(step * 32, step * 32 + 32) % 96
        loss = model.training_loss(data.images[idx], data.labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5


def test_training_loss_adds_the_weighted_diffpool_loss():
    torch.manual_seed(0)
    model = KeypointGraphClassifier(3, graph="diffpool", layers=3, aux_weight=0.25, **SMALL)
    model.eval()
    x, y = torch.rand(4, 1, 16, 16), torch.tensor([0, 1, 2, 0])
    logits, aux = model.forward_with_aux(x)
    assert aux.item() > 0
    expected = torch.nn.functional.cross_entropy(logits, y) + 0.25 * aux
    torch.testing.assert_close(model.training_loss(x, y), expected)
    assert "aux_weight=0.25" in repr(model)
