import numpy as np
import pytest
import torch
import torch.nn.functional as F

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.agnn import AGNN, ConvGRUCell, InterFrameAttention, mask_iou
from deep3dmm.image_graph.video_data import make_videos


def test_attention_rows_sum_to_one_and_match_a_loop():
    torch.manual_seed(0)
    att = InterFrameAttention(5)
    with torch.no_grad():
        att.weight.add_(0.3 * torch.randn(5, 5))
    h = torch.randn(2, 3, 5, 2, 3)
    messages, attention = att(h, return_attention=True)
    assert attention.shape == (2, 3, 3, 6, 6)
    assert torch.allclose(attention.sum(-1), torch.ones(2, 3, 3, 6))
    w = att.weight.detach()
    for b in range(2):
        for i in range(3):
            for j in range(3):
                hi = h[b, i].reshape(5, -1).T  # (P, C)
                hj = h[b, j].reshape(5, -1).T
                e = hi @ w @ hj.T  # e_ij = h_i W h_j^T
                a = torch.softmax(e, dim=1)
                assert torch.allclose(attention[b, i, j], a, atol=1e-6)
                ref = torch.zeros(5, 2, 3) if i == j else (a @ hj).T.reshape(5, 2, 3)
                assert torch.allclose(messages[b, i, j], ref, atol=1e-5)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_conv_gru_step_equals_a_hand_computed_step():
    torch.manual_seed(0)
    cell = ConvGRUCell(2, 3, kernel_size=3)
    x, h = torch.randn(1, 2, 4, 5), torch.randn(1, 3, 4, 5)
    out = cell(x, h).detach().numpy()[0]

    def conv(inp, conv_layer):  # explicit 3x3 correlation with zero padding, in numpy
        w = conv_layer.weight.detach().numpy()
        b = conv_layer.bias.detach().numpy()
        pad = np.pad(inp, ((0, 0), (1, 1), (1, 1)))
        res = np.zeros((w.shape[0], 4, 5))
        for o in range(w.shape[0]):
            for r in range(4):
                for c in range(5):
                    res[o, r, c] = (w[o] * pad[:, r : r + 3, c : c + 3]).sum() + b[o]
        return res

    gx = conv(x.numpy()[0], cell.conv_x)
    gh = conv(h.numpy()[0], cell.conv_h)
    r = _sigmoid(gx[0:3] + gh[0:3])
    z = _sigmoid(gx[3:6] + gh[3:6])
    n = np.tanh(gx[6:9] + r * gh[6:9])
    ref = (1 - z) * n + z * h.numpy()[0]
    assert np.allclose(out, ref, atol=1e-5)


def test_conv_gru_1x1_is_torch_gru_cell_per_pixel():
    torch.manual_seed(0)
    cell = ConvGRUCell(4, 6, kernel_size=1)
    gru = torch.nn.GRUCell(4, 6)
    with torch.no_grad():
        gru.weight_ih.copy_(cell.conv_x.weight[:, :, 0, 0])
        gru.weight_hh.copy_(cell.conv_h.weight[:, :, 0, 0])
        gru.bias_ih.copy_(cell.conv_x.bias)
        gru.bias_hh.copy_(cell.conv_h.bias)
    x, h = torch.randn(2, 4, 3, 3), torch.randn(2, 6, 3, 3)
    out = cell(x, h)
    ref = gru(x.permute(0, 2, 3, 1).reshape(-1, 4), h.permute(0, 2, 3, 1).reshape(-1, 6))
    assert torch.allclose(out.permute(0, 2, 3, 1).reshape(-1, 6), ref, atol=1e-6)


def test_agnn_shapes_frame_permutation_and_per_frame_baseline():
    torch.manual_seed(0)
    video = torch.rand(2, 3, 3, 16, 16)
    model = AGNN(image_size=16, widths=(8, 8), iterations=2).eval()
    out = model(video)
    assert out.shape == (2, 3, 16, 16)
    perm = torch.tensor([2, 0, 1])  # a fully connected graph: frames are exchangeable
    assert torch.allclose(model(video[:, perm]), out[:, perm], atol=1e-5)
    base = AGNN(image_size=16, widths=(8, 8), iterations=0).eval()
    single = torch.cat([base(video[:, t : t + 1]) for t in range(3)], 1)
    assert torch.allclose(base(video), single, atol=1e-6)  # K = 0: frames do not interact
    assert not torch.allclose(model(video)[:, :1], model(video[:, :1]), atol=1e-4)


def test_agnn_bad_inputs():
    with pytest.raises(ConfigError, match="K must be an integer >= 0"):
        AGNN(iterations=-1)
    with pytest.raises(ConfigError, match="not divisible"):
        AGNN(image_size=30)
    with pytest.raises(ConfigError, match=r"expected videos \(B, T, 3, 32, 32\)"):
        AGNN(image_size=32)(torch.rand(1, 2, 3, 16, 16))


def test_mask_iou_by_hand():
    logits = torch.full((2, 4, 4), -1.0)
    logits[0, :2, :2] = 1  # 4 pixels predicted
    masks = torch.zeros(2, 4, 4)
    masks[0, :2, :3] = 1  # 6 pixels true, 4 shared
    iou = mask_iou(logits, masks)
    assert torch.allclose(iou, torch.tensor([4 / 6, 1.0]))


def test_videos_object_is_coherent_and_deterministic():
    a = make_videos(6, frames=3, size=24, distractors=2, seed=3)
    b = make_videos(6, frames=3, size=24, distractors=2, seed=3)
    assert torch.equal(a.videos, b.videos) and torch.equal(a.masks, b.masks)
    assert a.videos.shape == (6, 3, 3, 24, 24) and a.masks.shape == (6, 3, 24, 24)
    assert 0 <= a.videos.min() and a.videos.max() <= 1
    assert set(a.masks.unique().tolist()) <= {0.0, 1.0}
    assert (a.masks.flatten(2).sum(-1) > 0).float().mean() > 0.8  # mostly visible
    with pytest.raises(ConfigError):
        make_videos(2, frames=1)


def test_agnn_gradients_flow_through_messages():
    torch.manual_seed(0)
    model = AGNN(image_size=16, widths=(8, 8), iterations=1)
    F.binary_cross_entropy_with_logits(
        model(torch.rand(1, 2, 3, 16, 16)), torch.zeros(1, 2, 16, 16)
    ).backward()
    assert model.attention.weight.grad.abs().sum() > 0
    assert model.gate.weight.grad.abs().sum() > 0
