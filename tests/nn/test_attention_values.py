"""The fused attention entries against the same map written as separate autograd steps."""

import pytest
import torch

from deep3dmm.nn.attention_values import mapping_values


def reference(scores, prior, c0, c1, normalize):
    """Independent reference: clamp, normalise, scale and concatenate, autograd throughout."""
    positive = scores.clamp_min(0.0)
    if normalize == "l1":
        weights = positive / positive.sum(1, keepdim=True).clamp_min(1e-12)
    else:
        weights = torch.softmax(positive, dim=1)
    if prior is None:
        return (weights * c1).reshape(-1)
    return torch.cat([prior * c0, weights * c1], 1).reshape(-1)


@pytest.mark.parametrize("normalize", ["l1", "softmax"])
@pytest.mark.parametrize("with_prior", [True, False])
def test_values_and_gradients_equal_the_autograd_composition(normalize, with_prior):
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(7, 5, generator=g, dtype=torch.double) * 2 - 0.5
    scores[2] = -torch.rand(5, generator=g, dtype=torch.double)  # a row with no positive score
    scores[3, 1] = 0.0  # an exact zero (clamp passes its gradient)
    prior = torch.rand(7, 3, generator=g, dtype=torch.double) if with_prior else None
    weight = torch.tensor([0.7, 0.4], dtype=torch.double, requires_grad=True)
    scores.requires_grad_(True)

    def both(fn):
        c0, c1 = weight[0] / weight.sum(), weight[1] / weight.sum()
        return fn(scores, prior, c0, c1, normalize)

    ours, theirs = both(mapping_values), both(reference)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-15)
    probe = torch.randn(ours.shape, generator=g, dtype=torch.double)
    got = torch.autograd.grad((ours * probe).sum(), (scores, weight))
    want = torch.autograd.grad((theirs * probe).sum(), (scores, weight))
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    scores_t = (scores.detach() + 0.3).requires_grad_(True)  # away from the clamp's kink
    assert torch.autograd.gradcheck(
        lambda s, w: mapping_values(s, prior, w[0] / w.sum(), w[1] / w.sum(), normalize),
        (scores_t, weight),
    )
