import numpy as np
import pytest
from PIL import Image

from deep3dmm.errors import ConfigError
from deep3dmm.mesh import shapes
from deep3dmm.viz.figures import parse_views, reconstruction_figure, strip_figure, strip_to_gif
from deep3dmm.viz.render import append_colorbar


def _not_blank(path, size):
    image = np.asarray(Image.open(path).convert("RGB")).astype(np.int64)
    assert image.shape[:2] == (size[1], size[0])
    drawn = (image.sum(-1) < 3 * 250).mean()  # non-white pixels
    assert 0.02 < drawn < 0.9
    return image


def test_reconstruction_figure_small_png(tmp_path):
    vertices, faces = shapes.icosphere(2)
    recon = vertices * 1.01
    errors = np.linspace(0.0, 8.0, len(vertices))  # mm; above max_mm saturates
    path = reconstruction_figure(
        faces, vertices[None], recon[None], errors[None], tmp_path / "r.png",
        max_mm=4.0, views="front,side", panel_size=64,
    )  # fmt: skip
    image = _not_blank(path, (6 * 64 + 110, 64))
    heat = image[:, 2 * 64 : 3 * 64]  # the error panel is coloured, the input is not
    assert np.abs(heat[..., 0] - heat[..., 2]).max() > 100
    with pytest.raises(ConfigError, match="unknown view"):
        parse_views("front,back")


def test_strip_and_gif(tmp_path):
    vertices, faces = shapes.icosphere(1)
    meshes = np.stack([vertices * (1 + 0.2 * k) for k in range(4)])
    strip = strip_figure(meshes, faces, tmp_path / "s.png", panel_size=48)
    _not_blank(strip, (4 * 48, 48))
    gif = Image.open(strip_to_gif(strip, 4, tmp_path / "s.gif"))
    assert gif.n_frames == 6 and gif.size == (48, 48)  # 0 1 2 3 2 1


def test_colorbar_strip_height():
    image = np.full((150, 40, 3), 255, np.uint8)
    out = append_colorbar(image, clim=(0, 5), cmap="turbo", label="error (mm)", width=90)
    assert out.shape == (150, 130, 3)
    assert (out[:, 40:] < 200).any()  # the bar and its ticks are drawn
