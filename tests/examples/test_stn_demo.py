import pytest
import torch

from deep3dmm.image_graph.stn import SpatialTransformer, with_transformer


@pytest.fixture
def build_stn_model(example):
    return example("image_graph/stn_demo").build_stn_model


@pytest.mark.parametrize("name", ["plain", "stn", "dcn1", "dcn2", "stn+dcn1"])
def test_demo_models_classify_digits(name, build_stn_model):
    torch.manual_seed(0)
    model = build_stn_model(name)
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 10)


def test_stn_in_front_of_any_model_starts_as_that_model(build_stn_model):
    torch.manual_seed(0)
    net = build_stn_model("plain").eval()
    x = torch.rand(2, 1, 32, 32)
    both = with_transformer(net, SpatialTransformer(1, image_size=32)).eval()
    assert torch.equal(both(x), net(x))
