"""The mesh autoencoder: (spiral | Chebyshev) convolutions x (fixed | attention) pooling."""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor, nn

from deep3dmm.errors import CheckpointError, ConfigError, TopologyMismatchError
from deep3dmm.nn.attention_pool import AttentionPool
from deep3dmm.nn.cheb_conv import ChebConv
from deep3dmm.nn.config import AUTO_EXACT_SCORES, ModelConfig
from deep3dmm.nn.fixed_pool import FixedPool
from deep3dmm.nn.spiral_conv import SpiralConv
from deep3dmm.nn.variational import gaussian_kl, reparameterize

log = logging.getLogger(__name__)

__all__ = ["MeshAutoencoder", "ACTIVATION_LAYERS"]

#: The layer of each name in :data:`deep3dmm.nn.config.ACTIVATIONS`.
ACTIVATION_LAYERS = {
    "elu": nn.ELU,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "identity": nn.Identity,
}
#: The activation layers that can overwrite their input.
INPLACE_ACTIVATIONS = (nn.ELU, nn.ReLU, nn.LeakyReLU)
CONFIG_VERSION = 1


class MeshAutoencoder(nn.Module):
    r"""Convolutional mesh autoencoder over a fixed-topology mesh hierarchy.

    The COMA (Ranjan et al., ECCV 2018), Neural3DMM (Bouritsas et al., ICCV 2019) and
    SpiralNet++ (Gong et al., ICCVW 2019) architecture, with the pooling optionally replaced
    by the learned attention aggregation of Deep3DMM (Chen & Kim, CVPR 2021):

    - encoder, for each level ``l``: conv (``C_{l-1} -> C_l``) -> activation -> pool down to
      level ``l+1``; flatten; linear to the latent code;
    - decoder, mirrored: linear; for each level from the coarsest: pool up -> conv ->
      activation; a final conv to 3 channels without activation.

    With ``config.variational`` (a VAE) a second linear head gives the log-variance of the
    code; in training mode :meth:`forward` decodes the reparameterised code (noise from the
    ``generator`` it is given), in eval mode the mean; :meth:`encode` is always the mean, so
    every analysis works unchanged (``deep3dmm.nn.variational``).

    ELU / ReLU / LeakyReLU run in place on the conv outputs (no conv or pool keeps its
    output for the backward, so one activation-sized tensor per layer is saved): a full
    backward hook on a conv (``register_full_backward_hook``) needs ``model.activation``
    replaced by an out-of-place layer, as PyTorch forbids in-place changes of a hooked
    module's output.

    Every option is a field of :class:`~deep3dmm.nn.ModelConfig`; :attr:`config` records
    them plus the hierarchy's hash so :meth:`from_config` rebuilds the model for a checkpoint.

    Args:
        hierarchy: a ``deep3dmm.mesh.MeshHierarchy`` (vertices, down/up, Laplacians, spirals).
        config: the options (default ``ModelConfig()``, the ``deep3dmm-spiral`` preset).

    Shapes:
        - input ``x``: ``(B, V_0, 3)``; latent ``z``: ``(B, latent)``; output ``(B, V_0, 3)``.
    """

    to_logvar: nn.Linear | None

    def __init__(self, hierarchy, config: ModelConfig | None = None):
        super().__init__()
        opts = config if config is not None else ModelConfig()
        if not isinstance(opts, ModelConfig):
            raise ConfigError(
                f"MeshAutoencoder: expected a ModelConfig, got {type(opts).__name__}",
                fix="pass ModelConfig(...) or use MeshAutoencoder.build(hierarchy, **options)",
            )
        num_vertices = [int(n) for n in hierarchy.num_vertices]
        steps = len(hierarchy.down)
        channels = list(opts.channels)
        if len(channels) != steps:
            raise ConfigError(
                f"MeshAutoencoder: {len(channels)} channel sizes for a hierarchy with {steps} "
                f"pooling steps ({num_vertices} vertices)",
                fix=f"pass channels with {steps} entries, or build the hierarchy with "
                f"{len(channels)} factors",
            )
        self.num_vertices = num_vertices
        self.options = opts
        self.frozen = False
        self._hash = str(hierarchy.hash)

        act = ACTIVATION_LAYERS[opts.activation]
        mean = np.asarray(hierarchy.vertices[0], dtype=np.float64).mean(0)
        std = np.asarray(hierarchy.vertices[0], dtype=np.float64).std(0)

        def conv(level: int, c_in: int, c_out: int) -> nn.Module:
            if opts.conv == "spiral":
                return SpiralConv(c_in, c_out, hierarchy.spirals[level])
            return ChebConv(c_in, c_out, hierarchy.laplacian[level], K=opts.K)

        def pool(level: int, down: bool) -> nn.Module:
            src, dst = (level, level + 1) if down else (level + 1, level)
            matrix = hierarchy.down[level] if down else hierarchy.up[level]
            use_att = opts.pool == "attention" and (opts.down_att if down else opts.up_att)
            if not use_att:
                return FixedPool(matrix)
            return AttentionPool(
                hierarchy.vertices[src],
                hierarchy.vertices[dst],
                matrix,
                top_k=opts.top_k[0 if down else 1],
                dim=opts.attention_dim,
                prior_weight=opts.prior_weight,
                mode=opts.attention_mode,
                normalize=opts.attention_normalize,
                topk_search=opts.topk_search,
                mean=mean,
                std=std,
            )

        self.encoder_convs = nn.ModuleList()
        self.down_pools = nn.ModuleList()
        c_in = opts.in_channels
        for level in range(steps):
            self.encoder_convs.append(conv(level, c_in, channels[level]))
            self.down_pools.append(pool(level, down=True))
            c_in = channels[level]
        self.bottleneck = (num_vertices[steps], channels[-1])
        flat = num_vertices[steps] * channels[-1]
        self.to_latent = nn.Linear(flat, opts.latent)  # the code (the mean of a VAE)
        self.to_logvar = nn.Linear(flat, opts.latent) if opts.variational else None
        self.from_latent = nn.Linear(opts.latent, flat)
        self.up_pools = nn.ModuleList()
        self.decoder_convs = nn.ModuleList()
        for level in reversed(range(steps)):
            c_in = channels[-1] if level == steps - 1 else channels[level + 1]
            self.up_pools.append(pool(level, down=False))
            self.decoder_convs.append(conv(level, c_in, channels[level]))
        self.output_conv = conv(0, channels[0], opts.in_channels)
        _say_approximate_levels(self.down_pools, self.up_pools, opts.topk_search)
        # in place where the layer can be: the conv output it overwrites is needed by no
        # backward (the convs and pools keep their inputs), so one activation-sized tensor
        # per layer is not kept for the backward
        self.activation = act(inplace=True) if act in INPLACE_ACTIVATIONS else act()

    # ------------------------------------------------------------------ construction
    @classmethod
    def build(cls, hierarchy, config: ModelConfig | None = None, **options) -> MeshAutoencoder:
        """Build on ``hierarchy`` from ``config`` with keyword ``options`` replacing its fields.

        ``MeshAutoencoder.build(h, conv="cheb", pool="fixed")`` is
        ``MeshAutoencoder(h, ModelConfig().replace(conv="cheb", pool="fixed"))``; the options
        are the fields of :class:`~deep3dmm.nn.ModelConfig`.

        Raises:
            ConfigError: an unknown or invalid option.
        """
        return cls(hierarchy, (config or ModelConfig()).replace(**options))

    @property
    def config(self) -> dict:
        """JSON-serialisable options, plus ``hierarchy_hash``, ``num_vertices``, ``frozen``."""
        cfg = self.options.to_dict()
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
        names = ModelConfig.option_names()
        model = cls(hierarchy, ModelConfig.from_dict({k: config[k] for k in names if k in config}))
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
        expected = (self.num_vertices[0], self.options.in_channels)
        if x.ndim != 3 or tuple(x.shape[1:]) != expected:
            raise TopologyMismatchError(
                f"MeshAutoencoder expected meshes of shape (B, {expected[0]}, {expected[1]}), "
                f"received {tuple(x.shape)}",
                fix="register the meshes to the template this model was built on",
            )

    def _features(self, x: Tensor) -> Tensor:
        """``(B, V_0, 3)`` meshes -> ``(B, V_L * C_L)`` flattened bottleneck features.

        When D selects vertices (fixed pooling: one 1 per row), ``D act(conv(x))`` is
        ``act(conv(x)[kept])``: the spiral convolution is evaluated at the kept vertices only
        (a quarter of the rows for factor 4), the same numbers.
        """
        self._check_input(x)
        for conv, pool in zip(self.encoder_convs, self.down_pools):
            kept = _kept_vertices(conv, pool)
            x = pool(self.activation(conv(x))) if kept is None else self.activation(conv(x, kept))
        return x.reshape(x.shape[0], -1)

    def encode(self, x: Tensor) -> Tensor:
        """``(B, V_0, 3)`` meshes -> ``(B, latent)`` codes (a VAE: the mean)."""
        return self.to_latent(self._features(x))

    def encode_distribution(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, V_0, 3)`` meshes -> mean and log-variance ``(B, latent)`` of the code.

        Raises:
            ConfigError: the model is not variational.
        """
        if self.to_logvar is None:
            raise ConfigError(
                "encode_distribution needs a variational model",
                fix="train with --variational",
            )
        features = self._features(x)
        return self.to_latent(features), self.to_logvar(features)

    def decode(self, z: Tensor) -> Tensor:
        """``(B, latent)`` codes -> ``(B, V_0, 3)`` meshes."""
        if z.ndim != 2 or z.shape[1] != self.options.latent:
            raise ConfigError(
                f"MeshAutoencoder.decode expected codes (B, {self.options.latent}), "
                f"received {tuple(z.shape)}"
            )
        x = self.from_latent(z).view(z.shape[0], *self.bottleneck)
        for pool, conv in zip(self.up_pools, self.decoder_convs):
            if isinstance(conv, SpiralConv) and isinstance(pool, FixedPool):
                x = self.activation(conv.upsampled(x, pool))  # conv(U x), matmul first
            else:
                x = self.activation(conv(pool(x)))
        return self.output_conv(x)

    def forward(
        self, x: Tensor, *, generator: torch.Generator | None = None, return_kl: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Reconstruct ``(B, V_0, 3)`` meshes.

        A variational model in training mode decodes ``mu + sigma * eps`` (``eps`` drawn
        from ``generator``), in eval mode ``mu``. With ``return_kl`` also returns the
        per-mesh ``KL(q(z|x) || N(0, I))`` ``(B,)`` (zeros for a plain autoencoder).
        """
        heads = [p for p in (*self.down_pools, *self.up_pools) if isinstance(p, AttentionPool)]
        try:
            for head in heads:  # the learned mappings first, before the activations exist
                head.prepare()
            if self.to_logvar is None:
                out = self.decode(self.encode(x))
                return (out, out.new_zeros(x.shape[0])) if return_kl else out
            mu, logvar = self.encode_distribution(x)
            z = reparameterize(mu, logvar, generator=generator) if self.training else mu
            out = self.decode(z)
            return (out, gaussian_kl(mu, logvar)) if return_kl else out
        finally:
            for head in heads:
                head.discard()

    def extra_repr(self) -> str:
        """Key hyperparameters for ``repr``."""
        o = self.options
        return (
            f"conv={o.conv!r}, pool={o.pool!r}, latent={o.latent}, "
            f"channels={list(o.channels)}, vertices={self.num_vertices}, frozen={self.frozen}"
            + (f", variational=True, beta={o.beta:g}" if o.variational else "")
        )


_SAID: set[tuple[str, ...]] = set()  # approximate level lists already logged


def _say_approximate_levels(down_pools, up_pools, topk_search: str) -> None:
    """Log once per process which levels ``topk_search="auto"`` gave the approximate search."""
    chosen = tuple(
        f"{p.out_vertices}<-{p.in_vertices}"
        for p in (*down_pools, *up_pools)
        if isinstance(p, AttentionPool) and p.approximate and p.mode != "prior"
    )
    if topk_search != "auto" or not chosen or chosen in _SAID:
        return
    _SAID.add(chosen)
    log.info(
        "attention top-k: approximate clustered search on the mappings %s (above %.0e scores "
        "per step; recall in docs/benchmarks.md), exact elsewhere; --topk-search exact "
        "scores every pair",
        ", ".join(chosen), AUTO_EXACT_SCORES,
    )  # fmt: skip


def _kept_vertices(conv: nn.Module, pool: nn.Module) -> Tensor | None:
    """The vertices a selecting fixed pooling keeps, when ``conv`` can evaluate them alone."""
    if isinstance(conv, SpiralConv) and isinstance(pool, FixedPool):
        return pool.selection()
    return None
