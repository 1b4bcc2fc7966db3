"""The mesh autoencoder: (spiral | Chebyshev) convolutions x (fixed | attention) pooling."""

from __future__ import annotations

import numpy as np
from torch import Tensor, nn

from deep3dmm.errors import CheckpointError, ConfigError, TopologyMismatchError
from deep3dmm.nn.attention_pool import ATTENTION_MODES, NORMALIZATIONS, AttentionPool
from deep3dmm.nn.cheb_conv import ChebConv
from deep3dmm.nn.fixed_pool import FixedPool
from deep3dmm.nn.spiral_conv import SpiralConv

__all__ = ["MeshAutoencoder", "ACTIVATIONS", "CONVS", "POOLS"]

CONVS = ("spiral", "cheb")
POOLS = ("fixed", "attention")
ACTIVATIONS = {
    "elu": nn.ELU,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "identity": nn.Identity,
}
CONFIG_VERSION = 1
_DEFAULTS = dict(
    conv="spiral",
    pool="fixed",
    latent=16,
    channels=(32, 32, 32, 64),
    activation="elu",
    down_att=True,
    up_att=True,
    top_k=(8, 32),
    K=6,
    attention_dim=21,
    prior_weight=0.8,
    attention_mode="fused",
    attention_normalize="l1",
    in_channels=3,
)


def _options(kwargs: dict) -> dict:
    unknown = sorted(set(kwargs) - set(_DEFAULTS))
    if unknown:
        raise ConfigError(
            f"MeshAutoencoder.build: unknown option(s) {unknown}",
            fix=f"use only {sorted(_DEFAULTS)}",
        )
    opts = {**_DEFAULTS, **kwargs}
    if opts["conv"] not in CONVS:
        raise ConfigError(f"MeshAutoencoder: conv must be one of {CONVS}, got {opts['conv']!r}")
    if opts["pool"] not in POOLS:
        raise ConfigError(f"MeshAutoencoder: pool must be one of {POOLS}, got {opts['pool']!r}")
    if opts["activation"] not in ACTIVATIONS:
        raise ConfigError(
            f"MeshAutoencoder: activation must be one of {sorted(ACTIVATIONS)}, "
            f"got {opts['activation']!r}"
        )
    if opts["attention_mode"] not in ATTENTION_MODES:
        raise ConfigError(
            f"MeshAutoencoder: attention_mode must be one of {ATTENTION_MODES}, "
            f"got {opts['attention_mode']!r}"
        )
    if opts["attention_normalize"] not in NORMALIZATIONS:
        raise ConfigError(
            f"MeshAutoencoder: attention_normalize must be one of {NORMALIZATIONS}, "
            f"got {opts['attention_normalize']!r}"
        )
    opts["channels"] = [int(c) for c in opts["channels"]]
    opts["top_k"] = [int(k) for k in opts["top_k"]]
    if len(opts["top_k"]) != 2:
        raise ConfigError(f"MeshAutoencoder: top_k must be (down, up), got {opts['top_k']}")
    if any(c < 1 for c in opts["channels"]) or int(opts["latent"]) < 1:
        raise ConfigError(
            f"MeshAutoencoder: channels and latent must be positive, got "
            f"{opts['channels']} and {opts['latent']}"
        )
    for key in ("latent", "K", "attention_dim", "in_channels"):
        opts[key] = int(opts[key])
    opts["prior_weight"] = float(opts["prior_weight"])
    opts["down_att"], opts["up_att"] = bool(opts["down_att"]), bool(opts["up_att"])
    return opts


class MeshAutoencoder(nn.Module):
    r"""Convolutional mesh autoencoder over a fixed-topology mesh hierarchy.

    The COMA (Ranjan et al., ECCV 2018), Neural3DMM (Bouritsas et al., ICCV 2019) and
    SpiralNet++ (Gong et al., ICCVW 2019) architecture, with the pooling optionally replaced
    by the learned attention aggregation of Deep3DMM (Chen & Kim, CVPR 2021):

    - encoder, for each level ``l``: conv (``C_{l-1} -> C_l``) -> activation -> pool down to
      level ``l+1``; flatten; linear to the latent code;
    - decoder, mirrored: linear; for each level from the coarsest: pool up -> conv ->
      activation; a final conv to 3 channels without activation.

    Build it with :meth:`build` (or :func:`deep3dmm.nn.build_preset`); :attr:`config` records
    every option plus the hierarchy's hash so :meth:`from_config` rebuilds it for a checkpoint.

    Args:
        hierarchy: a ``deep3dmm.mesh.MeshHierarchy`` (vertices, down/up, Laplacians, spirals).
        **options: see :meth:`build`.

    Shapes:
        - input ``x``: ``(B, V_0, 3)``; latent ``z``: ``(B, latent)``; output ``(B, V_0, 3)``.
    """

    def __init__(self, hierarchy, **options):
        super().__init__()
        opts = _options(options)
        num_vertices = [int(n) for n in hierarchy.num_vertices]
        steps = len(hierarchy.down)
        channels = opts["channels"]
        if len(channels) != steps:
            raise ConfigError(
                f"MeshAutoencoder: {len(channels)} channel sizes for a hierarchy with {steps} "
                f"pooling steps ({num_vertices} vertices)",
                fix=f"pass channels with {steps} entries, or build the hierarchy with "
                f"{len(channels)} factors",
            )
        self.num_vertices = num_vertices
        self.opts = opts
        self.frozen = False
        self._hash = str(hierarchy.hash)

        act = ACTIVATIONS[opts["activation"]]
        mean = np.asarray(hierarchy.vertices[0], dtype=np.float64).mean(0)
        std = np.asarray(hierarchy.vertices[0], dtype=np.float64).std(0)

        def conv(level: int, c_in: int, c_out: int) -> nn.Module:
            if opts["conv"] == "spiral":
                return SpiralConv(c_in, c_out, hierarchy.spirals[level])
            return ChebConv(c_in, c_out, hierarchy.laplacian[level], K=opts["K"])

        def pool(level: int, down: bool) -> nn.Module:
            src, dst = (level, level + 1) if down else (level + 1, level)
            matrix = hierarchy.down[level] if down else hierarchy.up[level]
            use_att = opts["pool"] == "attention" and (opts["down_att"] if down else opts["up_att"])
            if not use_att:
                return FixedPool(matrix)
            return AttentionPool(
                hierarchy.vertices[src],
                hierarchy.vertices[dst],
                matrix,
                top_k=opts["top_k"][0 if down else 1],
                dim=opts["attention_dim"],
                prior_weight=opts["prior_weight"],
                mode=opts["attention_mode"],
                normalize=opts["attention_normalize"],
                mean=mean,
                std=std,
            )

        self.encoder_convs = nn.ModuleList()
        self.down_pools = nn.ModuleList()
        c_in = opts["in_channels"]
        for level in range(steps):
            self.encoder_convs.append(conv(level, c_in, channels[level]))
            self.down_pools.append(pool(level, down=True))
            c_in = channels[level]
        self.bottleneck = (num_vertices[steps], channels[-1])
        flat = num_vertices[steps] * channels[-1]
        self.to_latent = nn.Linear(flat, opts["latent"])
        self.from_latent = nn.Linear(opts["latent"], flat)
        self.up_pools = nn.ModuleList()
        self.decoder_convs = nn.ModuleList()
        for level in reversed(range(steps)):
            c_in = channels[-1] if level == steps - 1 else channels[level + 1]
            self.up_pools.append(pool(level, down=False))
            self.decoder_convs.append(conv(level, c_in, channels[level]))
        self.output_conv = conv(0, channels[0], opts["in_channels"])
        self.activation = act()

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(
        cls,
        hierarchy,
        *,
        conv: str = "spiral",
        pool: str = "fixed",
        latent: int = 16,
        channels=(32, 32, 32, 64),
        activation: str = "elu",
        down_att: bool = True,
        up_att: bool = True,
        top_k=(8, 32),
        K: int = 6,
        attention_dim: int = 21,
        prior_weight: float = 0.8,
        attention_mode: str = "fused",
        attention_normalize: str = "l1",
        in_channels: int = 3,
    ) -> MeshAutoencoder:
        """Build an autoencoder on ``hierarchy``.

        Args:
            hierarchy: the template's ``MeshHierarchy``.
            conv: ``"spiral"`` (SpiralNet++) or ``"cheb"`` (COMA).
            pool: ``"fixed"`` (D/U) or ``"attention"`` (Deep3DMM).
            latent: latent code size.
            channels: encoder channels per level, one per pooling step of the hierarchy.
            activation: ``"elu"``, ``"relu"``, ``"leaky_relu"``, ``"gelu"``, ``"tanh"``,
                ``"identity"``.
            down_att: with ``pool="attention"``, learn the down mappings.
            up_att: with ``pool="attention"``, learn the up mappings.
            top_k: learned non-zeros per row, ``(down, up)``.
            K: Chebyshev terms (``conv="cheb"``).
            attention_dim: ``d``, the key/query size.
            prior_weight: initial weight of the fixed prior in the fused mapping.
            attention_mode: ``"fused"`` | ``"learned"`` (no prior) | ``"prior"`` (ablations).
            attention_normalize: ``"l1"`` (paper) or ``"softmax"``.
            in_channels: per-vertex input channels (3 for positions).
        """
        return cls(
            hierarchy,
            conv=conv,
            pool=pool,
            latent=latent,
            channels=channels,
            activation=activation,
            down_att=down_att,
            up_att=up_att,
            top_k=top_k,
            K=K,
            attention_dim=attention_dim,
            prior_weight=prior_weight,
            attention_mode=attention_mode,
            attention_normalize=attention_normalize,
            in_channels=in_channels,
        )

    @property
    def config(self) -> dict:
        """JSON-serialisable options, plus ``hierarchy_hash``, ``num_vertices``, ``frozen``."""
        cfg = {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in self.opts.items()}
        cfg.update(
            hierarchy_hash=self._hash,
            num_vertices=list(self.num_vertices),
            frozen=self.frozen,
            version=CONFIG_VERSION,
        )
        return cfg

    @classmethod
    def from_config(cls, config: dict, hierarchy) -> MeshAutoencoder:
        """Rebuild a model from :attr:`config` on the same hierarchy (frozen if it was).

        Raises:
            CheckpointError: the hierarchy is not the one the model was built on.
        """
        if str(hierarchy.hash) != str(config.get("hierarchy_hash")):
            raise CheckpointError(
                f"model was built on hierarchy {config.get('hierarchy_hash')!r} "
                f"({config.get('num_vertices')} vertices), got hierarchy {hierarchy.hash!r} "
                f"({list(hierarchy.num_vertices)} vertices)",
                fix="rebuild the hierarchy with the template and parameters of the run",
            )
        options = {k: v for k, v in config.items() if k in _DEFAULTS}
        model = cls.build(hierarchy, **options)
        if config.get("frozen"):
            model.freeze_pooling()
        return model

    def freeze_pooling(self) -> MeshAutoencoder:
        """Freeze every :class:`AttentionPool` into a constant sparse mapping (in place)."""
        for module in self.modules():
            if isinstance(module, AttentionPool):
                module.freeze()
        self.frozen = True
        return self

    # ------------------------------------------------------------------ forward
    def _check_input(self, x: Tensor) -> None:
        expected = (self.num_vertices[0], self.opts["in_channels"])
        if x.ndim != 3 or tuple(x.shape[1:]) != expected:
            raise TopologyMismatchError(
                f"MeshAutoencoder expected meshes of shape (B, {expected[0]}, {expected[1]}), "
                f"received {tuple(x.shape)}",
                fix="register the meshes to the template this model was built on",
            )

    def encode(self, x: Tensor) -> Tensor:
        """``(B, V_0, 3)`` meshes -> ``(B, latent)`` codes."""
        self._check_input(x)
        for conv, pool in zip(self.encoder_convs, self.down_pools):
            x = pool(self.activation(conv(x)))
        return self.to_latent(x.reshape(x.shape[0], -1))

    def decode(self, z: Tensor) -> Tensor:
        """``(B, latent)`` codes -> ``(B, V_0, 3)`` meshes."""
        if z.ndim != 2 or z.shape[1] != self.opts["latent"]:
            raise ConfigError(
                f"MeshAutoencoder.decode expected codes (B, {self.opts['latent']}), "
                f"received {tuple(z.shape)}"
            )
        x = self.from_latent(z).view(z.shape[0], *self.bottleneck)
        for pool, conv in zip(self.up_pools, self.decoder_convs):
            x = self.activation(conv(pool(x)))
        return self.output_conv(x)

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruct ``(B, V_0, 3)`` meshes."""
        return self.decode(self.encode(x))

    def extra_repr(self) -> str:
        """Key hyperparameters for ``repr``."""
        o = self.opts
        return (
            f"conv={o['conv']!r}, pool={o['pool']!r}, latent={o['latent']}, "
            f"channels={o['channels']}, vertices={self.num_vertices}, frozen={self.frozen}"
        )
