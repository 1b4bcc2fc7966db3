import pytest
import torch
import torch.nn.functional as F

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.stn import SpatialTransformer, tps_grid


@pytest.mark.parametrize("size", [16, 28, 32])
def test_identity_affine_gives_the_input_back_exactly(size):
    torch.manual_seed(0)
    x = torch.rand(3, 2, size, size)
    stn = SpatialTransformer(2, image_size=size)
    out, theta = stn.transform(x)
    assert torch.equal(theta, torch.eye(2, 3).expand(3, 2, 3))
    if size == 32:  # the digits size: bit-exact (F.affine_grid's pixel centres are exact)
        assert torch.equal(out, x)
    else:  # other sizes: affine_grid's linspace rounds the centres by ~1 ulp
        assert torch.allclose(out, x, rtol=0, atol=5e-6)


def test_identity_tps_gives_the_input_back():
    x = torch.rand(2, 1, 24, 24)
    stn = SpatialTransformer(1, image_size=24, transform="tps", grid=4)
    assert torch.allclose(stn(x), x, atol=1e-5)


def test_translation_equals_a_pixel_shift():
    """theta = [I | t] with t = 2 pixels in x reads the input 2 columns to the right."""
    size = 16
    x = torch.rand(1, 1, size, size)
    init = [[1.0, 0.0, 2 * 2 / size], [0.0, 1.0, 0.0]]
    out = SpatialTransformer(1, image_size=size, init=init)(x)
    assert torch.allclose(out[..., : size - 2], x[..., 2:], atol=1e-6)
    assert torch.all(out[..., size - 2 :].abs() < 1e-6)  # zeros read from outside


def test_tps_reproduces_an_affine_map():
    """A thin-plate spline whose control points move affinely is that affine map."""
    control = torch.stack(
        torch.meshgrid(torch.linspace(-1, 1, 3), torch.linspace(-1, 1, 3), indexing="xy"), -1
    ).reshape(-1, 2)
    a = torch.tensor([[0.8, -0.3, 0.1], [0.2, 1.1, -0.05]])
    source = control @ a[:, :2].T + a[:, 2]
    grid = tps_grid(source[None], control, (10, 12))
    ref = F.affine_grid(a[None], [1, 1, 10, 12], align_corners=False)
    assert torch.allclose(grid, ref, atol=1e-5)


def test_gradients_reach_the_localisation_net():
    torch.manual_seed(0)
    stn = SpatialTransformer(1, image_size=16)
    stn(torch.rand(2, 1, 16, 16)).square().sum().backward()
    assert stn.head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "init", [[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]], [[1.0, 2.0, 0.0], [0.5, 1.0, 0.3]]]
)
def test_non_invertible_initialisation_is_refused(init):
    with pytest.raises(ConfigError, match="not invertible"):
        SpatialTransformer(1, image_size=16, init=init)


def test_bad_inputs():
    stn = SpatialTransformer(1, image_size=16)
    with pytest.raises(ConfigError, match=r"expected images \(B, 1, 16, 16\)"):
        stn(torch.rand(1, 1, 20, 20))
    with pytest.raises(ConfigError, match="unknown transform"):
        SpatialTransformer(1, image_size=16, transform="projective")
    with pytest.raises(ConfigError, match="2x3"):
        SpatialTransformer(1, image_size=16, init=[[1.0, 0.0], [0.0, 1.0]])
    assert "transform='tps', grid=3" in repr(SpatialTransformer(1, image_size=16, transform="tps"))
