"""SpiralNet++'s own code (Gong et al., ICCVW 2019) as a benchmark peer, on deep3dmm's hierarchy.

The published code lives in ``../shared/peers/spiralnet_plus`` (MIT; commit 96df4d8) and is
never copied into the project: :func:`load_peer` imports it from there, with a stand-in for
the one import modern installs lack (``torch_scatter.scatter_add``, provided by the same
ATen ``scatter_add_`` kernel torch_scatter uses), in a temporary folder on ``sys.path``.
:func:`peer_autoencoder` builds its ``AE`` on a deep3dmm ``MeshHierarchy`` (the same spirals
and D/U matrices) and copies the weights of a deep3dmm spiral/fixed ``MeshAutoencoder`` into
it, so both compute the same function and their speed ratio compares the implementations.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

_SHIM = '''"""Stand-in for torch_scatter.scatter_add (benchmark only)."""
import torch


def scatter_add(src, index, dim=-1, out=None, dim_size=None):
    dim = dim % src.dim()
    shape = list(src.shape)
    shape[dim] = int(index.max()) + 1 if dim_size is None else dim_size
    view = [1] * src.dim()
    view[dim] = -1
    index = index.view(view).expand_as(src)
    return src.new_zeros(shape).scatter_add_(dim, index, src)
'''


def peer_dir() -> Path | None:
    """``spiralnet_plus/`` under ``$DEEP3DMM_SHARED/peers``, ``<repo>/../shared/peers`` or
    ``/work/shared/peers``; ``None`` when absent."""
    candidates = [Path(os.environ["DEEP3DMM_SHARED"])] if "DEEP3DMM_SHARED" in os.environ else []
    candidates += [ROOT.parent / "shared", Path("/work/shared")]
    for base in candidates:
        path = base / "peers" / "spiralnet_plus"
        if (path / "reconstruction" / "network.py").is_file():
            return path
    return None


_MODULE = None


def load_peer():
    """The peer's ``reconstruction/network.py`` as a module (``AE``, ``Pool``), or ``None``."""
    global _MODULE
    if _MODULE is not None:
        return _MODULE
    path = peer_dir()
    if path is None:
        return None
    shim = Path(tempfile.mkdtemp(prefix="deep3dmm-peer-"))
    (shim / "torch_scatter.py").write_text(_SHIM)
    added = [str(shim), str(path)]
    sys.path[:0] = added
    try:
        if "torch_scatter" not in sys.modules:
            import torch_scatter  # noqa: F401  (the shim, unless a real one is installed)
        spec = importlib.util.spec_from_file_location(
            "spiralnet_plus_network", path / "reconstruction" / "network.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        for entry in added:
            sys.path.remove(entry)
    _MODULE = module
    return module


def _coo(matrix, device) -> torch.Tensor:
    coo = matrix.tocoo()
    index = torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64))
    values = torch.tensor(coo.data, dtype=torch.float32)
    return torch.sparse_coo_tensor(index, values, coo.shape).coalesce().to(device)


def peer_autoencoder(hierarchy, model, device="cpu"):
    """SpiralNet++'s ``AE`` on ``hierarchy`` with the weights of deep3dmm's ``model``.

    Args:
        hierarchy: the ``MeshHierarchy`` ``model`` was built on.
        model: a deep3dmm ``MeshAutoencoder`` with ``conv="spiral"``, ``pool="fixed"``, ELU.

    Returns:
        the peer ``AE`` (same parameters, same outputs), or ``None`` when the peer code is
        absent.
    """
    network = load_peer()
    if network is None:
        return None
    device = torch.device(device)
    channels = list(model.options.channels)
    # one spiral table per convolved level (the coarsest level has none in the peer's AE)
    spirals = [torch.as_tensor(s, dtype=torch.long).to(device) for s in hierarchy.spirals]
    spirals = spirals[: len(channels)]
    down = [_coo(m, device) for m in hierarchy.down]
    up = [_coo(m, device) for m in hierarchy.up]
    peer = network.AE(model.options.in_channels, channels, model.options.latent, spirals,
                      down, up).to(device)  # fmt: skip
    ours = (
        [c.linear for c in model.encoder_convs]
        + [model.to_latent, model.from_latent]
        + [c.linear for c in model.decoder_convs]
        + [model.output_conv.linear]
    )
    theirs = (
        [b.conv.layer for b in peer.en_layers[:-1]]
        + [peer.en_layers[-1], peer.de_layers[0]]
        + [b.conv.layer for b in peer.de_layers[1:-1]]
        + [peer.de_layers[-1].layer]
    )
    with torch.no_grad():
        for src, dst in zip(ours, theirs, strict=True):
            dst.weight.copy_(src.weight)
            dst.bias.copy_(src.bias)
    return peer
