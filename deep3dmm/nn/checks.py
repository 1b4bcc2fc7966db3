"""Input checks shared by the mesh layers (convolutions and poolings)."""

from __future__ import annotations

from torch import Tensor

from deep3dmm.errors import TopologyMismatchError

__all__ = ["check_features"]


def check_features(
    x: Tensor, *, layer: str, vertices: int, channels: int | None = None, kind: str = "layer"
) -> None:
    """Raise a :class:`TopologyMismatchError` unless ``x`` has shape ``(B, vertices, channels)``.

    Args:
        x: the features given to the layer.
        layer: the layer's class name (opens the message).
        vertices: the vertex count V of the level the layer was built for.
        channels: the expected channel count C (None: any).
        kind: what the layer is in the fix (``"layer"``, ``"pooling"``).

    Shapes:
        - x: ``(B, V, C)``
    """
    if x.ndim == 3 and x.shape[1] == vertices and (channels is None or x.shape[2] == channels):
        return
    expected = "C" if channels is None else channels
    raise TopologyMismatchError(
        f"{layer} expected input (B, {vertices}, {expected}), received {tuple(x.shape)}",
        fix=f"pass features of the level this {kind} was built for",
    )
