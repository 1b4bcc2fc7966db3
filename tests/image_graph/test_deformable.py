import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.deform_roi_pool import DeformRoIPool, deform_roi_pool
from deep3dmm.image_graph.deformable import DeformConv2d, deform_conv2d


def _bilinear(img, y, x):
    """Loop reference: bilinear value of img (H, W) at (y, x), zero outside."""
    h, w = img.shape
    y0, x0 = math.floor(y), math.floor(x)
    total = 0.0
    for yy, xx in itertools.product((y0, y0 + 1), (x0, x0 + 1)):
        if 0 <= yy < h and 0 <= xx < w:
            total += (1 - abs(y - yy)) * (1 - abs(x - xx)) * float(img[yy, xx])
    return total


def _naive_deform_conv(x, offset, weight, bias, stride, padding, dilation, mask):
    b, c_in, h, w = x.shape
    c_out, cpg, kh, kw = weight.shape
    groups = c_in // cpg
    taps = kh * kw
    og = offset.shape[1] // (2 * taps)
    ho, wo = offset.shape[2:]
    out = torch.zeros(b, c_out, ho, wo, dtype=x.dtype)
    for n, o, i, j in itertools.product(range(b), range(c_out), range(ho), range(wo)):
        g = o // (c_out // groups)
        acc = float(bias[o])
        for ci in range(cpg):
            c = g * cpg + ci
            gg = c // (c_in // og)
            for ki, kj in itertools.product(range(kh), range(kw)):
                k = ki * kw + kj
                y = (
                    i * stride
                    - padding
                    + ki * dilation
                    + float(offset[n, 2 * (gg * taps + k), i, j])
                )
                xx = (
                    j * stride
                    - padding
                    + kj * dilation
                    + float(offset[n, 2 * (gg * taps + k) + 1, i, j])
                )
                m = 1.0 if mask is None else float(mask[n, gg * taps + k, i, j])
                acc += float(weight[o, ci, ki, kj]) * m * _bilinear(x[n, c], y, xx)
        out[n, o, i, j] = acc
    return out


@pytest.mark.parametrize(
    "stride,padding,dilation,groups,offset_groups",
    [(1, 0, 1, 1, 1), (2, 1, 1, 1, 1), (1, 2, 2, 1, 2), (2, 3, 2, 2, 1), (3, 1, 1, 4, 4)],
)
def test_zero_offsets_equal_conv2d(stride, padding, dilation, groups, offset_groups):
    torch.manual_seed(0)
    x = torch.randn(2, 4, 9, 8, dtype=torch.float64)
    w = torch.randn(8, 4 // groups, 3, 2, dtype=torch.float64)
    b = torch.randn(8, dtype=torch.float64)
    ref = F.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, groups=groups)
    off = torch.zeros(2, 2 * offset_groups * 6, *ref.shape[2:], dtype=torch.float64)
    mask = torch.ones(2, offset_groups * 6, *ref.shape[2:], dtype=torch.float64)
    for m in (None, mask):
        out = deform_conv2d(x, off, w, b, stride=stride, padding=padding, dilation=dilation, mask=m)
        torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("dy,dx", [(1, 0), (0, -2), (-1, 3)])
def test_integer_offsets_equal_exact_shift(dy, dx):
    torch.manual_seed(1)
    x = torch.randn(1, 3, 7, 6, dtype=torch.float64)
    w = torch.randn(5, 3, 3, 3, dtype=torch.float64)
    p, m = 1, 5
    big = F.pad(x, (m, m, m, m))
    crop = big[:, :, m - p + dy : m - p + dy + 7 + 2 * p, m - p + dx : m - p + dx + 6 + 2 * p]
    ref = F.conv2d(crop, w, stride=2)
    off = torch.zeros(1, 18, *ref.shape[2:], dtype=torch.float64)
    off[:, 0::2], off[:, 1::2] = dy, dx
    torch.testing.assert_close(deform_conv2d(x, off, w, stride=2, padding=p), ref)


def test_fractional_offsets_match_loop_reference():
    torch.manual_seed(2)
    x = torch.randn(2, 4, 5, 6, dtype=torch.float64)
    w = torch.randn(4, 2, 3, 3, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    off = 1.5 * torch.randn(2, 2 * 2 * 9, 3, 3, dtype=torch.float64)
    mask = torch.rand(2, 2 * 9, 3, 3, dtype=torch.float64)
    out = deform_conv2d(x, off, w, b, stride=2, padding=1, dilation=1, mask=mask)
    ref = _naive_deform_conv(x, off, w, b, 2, 1, 1, mask)
    torch.testing.assert_close(out, ref)


def test_gradcheck_away_from_integer_positions():
    torch.manual_seed(3)
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, dtype=torch.float64, requires_grad=True)
    frac = 0.2 + 0.6 * torch.rand(1, 18, 2, 2, dtype=torch.float64)
    off = (frac + torch.randint(-1, 2, frac.shape)).requires_grad_()
    mask = torch.rand(1, 9, 2, 2, dtype=torch.float64, requires_grad=True)

    def f(x, off, w, b, mask):
        return deform_conv2d(x, off, w, b, padding=0, mask=mask)

    assert torch.autograd.gradcheck(f, (x, off, w, b, mask), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("modulated", [False, True])
def test_fresh_layer_equals_conv2d_and_learns_offsets(modulated):
    torch.manual_seed(4)
    layer = DeformConv2d(4, 6, 3, stride=1, padding=2, dilation=2, groups=2, modulated=modulated)
    conv = torch.nn.Conv2d(4, 6, 3, padding=2, dilation=2, groups=2)
    conv.load_state_dict({"weight": layer.weight, "bias": layer.bias})
    x = torch.randn(3, 4, 8, 8)
    y = layer(x)
    torch.testing.assert_close(y, conv(x), atol=1e-5, rtol=1e-5)
    y.square().sum().backward()
    assert layer.offset_conv.weight.grad.abs().sum() > 0
    assert "modulated=" + str(modulated) in repr(layer)
    assert layer.weight.shape == conv.weight.shape


def test_bad_shapes_raise():
    x = torch.randn(1, 4, 6, 6)
    w = torch.randn(2, 4, 3, 3)
    with pytest.raises(ConfigError, match="offset has shape"):
        deform_conv2d(x, torch.zeros(1, 17, 4, 4), w)
    with pytest.raises(ConfigError, match="mask has shape"):
        deform_conv2d(x, torch.zeros(1, 18, 4, 4), w, mask=torch.ones(1, 8, 4, 4))
    with pytest.raises(ConfigError, match="divisible by groups"):
        DeformConv2d(3, 4, groups=2)


def _naive_roi_pool(x, rois, offset, oh, ow, s, gamma):
    out = torch.zeros(len(rois), x.shape[1], oh, ow, dtype=x.dtype)
    for r, (bi, x1, y1, x2, y2) in enumerate(rois.tolist()):
        rw, rh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
        for c, i, j in itertools.product(range(x.shape[1]), range(oh), range(ow)):
            dy = 0.0 if offset is None else gamma * float(offset[r, 0, i, j]) * rh
            dx = 0.0 if offset is None else gamma * float(offset[r, 1, i, j]) * rw
            vals = [
                _bilinear(
                    x[int(bi), c],
                    y1 + (i + (a + 0.5) / s) * rh / oh + dy,
                    x1 + (j + (t + 0.5) / s) * rw / ow + dx,
                )
                for a in range(s)
                for t in range(s)
            ]
            out[r, c, i, j] = sum(vals) / len(vals)
    return out


def test_deform_roi_pool_matches_loop_reference():
    torch.manual_seed(5)
    x = torch.randn(2, 3, 10, 12, dtype=torch.float64)
    rois = torch.tensor(
        [[0, 1.0, 2.0, 8.0, 7.5], [1, 0.0, 0.0, 11.0, 9.0], [1, 3.3, 2.2, 5.0, 9.0]],
        dtype=torch.float64,
    )
    off = torch.randn(3, 2, 3, 3, dtype=torch.float64)
    for o in (None, off):
        out = deform_roi_pool(x, rois, o, output_size=3, sampling_ratio=2, gamma=0.1)
        torch.testing.assert_close(out, _naive_roi_pool(x, rois, o, 3, 3, 2, 0.1))


def test_uniform_roi_offset_equals_translated_roi():
    torch.manual_seed(6)
    x = torch.randn(1, 2, 16, 16, dtype=torch.float64)
    rois = torch.tensor([[0, 2.0, 3.0, 10.0, 7.0]], dtype=torch.float64)  # w 8, h 4
    off = torch.empty(1, 2, 4, 4, dtype=torch.float64)
    off[:, 0], off[:, 1] = 2.5, -1.25  # dy = 0.1*2.5*4 = 1, dx = 0.1*-1.25*8 = -1
    moved = torch.tensor([[0, 1.0, 4.0, 9.0, 8.0]], dtype=torch.float64)
    torch.testing.assert_close(
        deform_roi_pool(x, rois, off, output_size=4), deform_roi_pool(x, moved, output_size=4)
    )


def test_deform_roi_pool_module():
    torch.manual_seed(7)
    pool = DeformRoIPool(3, 2, spatial_scale=0.5)
    x = torch.randn(2, 3, 8, 8)
    rois = torch.tensor([[0, 0.0, 0.0, 12.0, 10.0], [1, 4.0, 2.0, 14.0, 14.0]])
    y = pool(x, rois)
    torch.testing.assert_close(y, deform_roi_pool(x, rois, output_size=2, spatial_scale=0.5))
    y.sum().backward()
    assert pool.offset_fc.weight.grad.abs().sum() > 0
    assert "output_size=(2, 2)" in repr(pool)
    with pytest.raises(ConfigError, match="expected \\(R, 5\\)"):
        pool(x, rois[:, :4])


def test_transformed_digits_matches_rotation_of_a_point():
    from deep3dmm.image_graph.datasets import ImageSplit, transformed_digits

    img = torch.zeros(1, 1, 33, 33)
    img[0, 0, 16, 26] = 1.0  # a dot right of the centre
    split = ImageSplit(img.repeat(40, 1, 1, 1), torch.zeros(40, dtype=torch.long))
    out = transformed_digits(split, max_rotation=90, scale_range=(1.0, 1.0), seed=0)
    again = transformed_digits(split, max_rotation=90, scale_range=(1.0, 1.0), seed=0)
    assert torch.equal(out.images, again.images)
    # The dot stays at distance ~10 from the centre, at varying angles.
    ys, xs = torch.meshgrid(torch.arange(33.0), torch.arange(33.0), indexing="ij")
    w = out.images[:, 0]
    cy = (w * ys).sum((1, 2)) / w.sum((1, 2))
    cx = (w * xs).sum((1, 2)) / w.sum((1, 2))
    radius = torch.hypot(cy - 16, cx - 16)
    assert torch.all((radius - 10).abs() < 0.6)
    assert (cy - 16).abs().max() > 5  # some really rotated


def test_deformable_small_cnn_starts_as_plain_cnn():
    from deep3dmm.image_graph.backbone import SmallCNN
    from deep3dmm.image_graph.deformable import deformable_small_cnn

    torch.manual_seed(0)
    deform = deformable_small_cnn(deformable_stages=2, widths=(4, 8, 8), image_size=16).eval()
    plain = SmallCNN(1, 10, (4, 8, 8), image_size=16).eval()
    state = {k: v for k, v in deform.state_dict().items() if "offset_conv" not in k}
    plain.load_state_dict(state)
    x = torch.rand(3, 1, 16, 16)
    torch.testing.assert_close(deform(x), plain(x), atol=1e-5, rtol=1e-5)
    assert sum(isinstance(m, DeformConv2d) for m in deform.modules()) == 2
    with pytest.raises(ConfigError, match="deformable_stages"):
        deformable_small_cnn(deformable_stages=4)
