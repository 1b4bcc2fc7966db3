r"""Show, attend and tell: an LSTM caption decoder with soft or hard visual attention.

Paper: Xu, Ba, Kiros, Cho, Courville, Salakhutdinov, Zemel & Bengio, ICML 2015. A CNN turns
the image into ``L`` annotation vectors :math:`a_l \in \mathbb{R}^D` (its last feature
map, one per position); at every word ``t`` the LSTM state picks where to look:

.. math::
    e_{tl} = w^\top \tanh(W_a a_l + W_h h_{t-1}), \qquad
    \alpha_{tl} = \operatorname{softmax}_l(e_{tl}), \qquad
    \hat z_t = \beta_t \, \phi(\{a_l\}, \alpha_t), \quad \beta_t = \sigma(f_\beta(h_{t-1}))

- ``"soft"``: :math:`\phi = \sum_l \alpha_{tl} a_l`, trained by backpropagation with the
  doubly stochastic regulariser :math:`\lambda \sum_l (1 - \sum_t \alpha_{tl})^2`;
- ``"hard"``: :math:`\phi = a_{s_t}`, :math:`s_t \sim \operatorname{Cat}(\alpha_t)` while
  training (``argmax`` at evaluation), trained by the REINFORCE estimator of the paper
  (Eq. 12): reward :math:`\log p(y \mid s)`, a moving-average baseline
  :math:`b \leftarrow 0.9 b + 0.1 \log p(y \mid s)` and an entropy bonus;
- ``"none"``: the baseline without attention, :math:`\phi = \frac{1}{L}\sum_l a_l`.

The LSTM reads ``[E y_{t-1}, \hat z_t]``; the word logits are a linear map of
``[h_t, \hat z_t, E y_{t-1}]`` (the paper's deep output, one layer). The initial state is
``tanh`` of linear maps of the mean annotation.

Shapes:
    - images ``(B, 3, H, W)``, ``H = W = image_size``; annotations ``(B, L, D)``,
      ``L = (H / 2^stages)^2``; tokens ``(B, T)`` starting with ``<start>``.
    - :meth:`ShowAttendTell.forward`: logits ``(B, T-1, V)``, alphas ``(B, T-1, L)``,
      log-probabilities of the sampled locations and attention entropies ``(B, T-1)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from deep3dmm.errors import ConfigError
from deep3dmm.image_graph.backbone import ConvStage
from deep3dmm.optional import require

__all__ = [
    "ATTENTION_MODES",
    "DecoderOutput",
    "ShowAttendTell",
    "bleu_scores",
    "reinforce_surrogate",
]

ATTENTION_MODES = ("soft", "hard", "none")


def reinforce_surrogate(
    log_prob: torch.Tensor, reward: torch.Tensor, baseline: float | torch.Tensor = 0.0
) -> torch.Tensor:
    r"""Score-function surrogate: its gradient is the REINFORCE estimate of :math:`\nabla E[r]`.

    :math:`\nabla_\theta \mathbb{E}_{s \sim p_\theta}[r(s)] =
    \mathbb{E}[(r(s) - b)\, \nabla_\theta \log p_\theta(s)]` for any ``b`` independent of
    ``s``; the surrogate is ``(r - b).detach() * log_prob`` per sample (average it).

    Shapes:
        log_prob, reward: (N,) (or broadcastable) -> (N,).
    """
    return (reward - baseline).detach() * log_prob


@dataclass
class DecoderOutput:
    """Teacher-forced decoder outputs (see the module docstring for the shapes)."""

    logits: torch.Tensor
    alphas: torch.Tensor
    log_prob_locations: torch.Tensor
    entropy: torch.Tensor


class ShowAttendTell(nn.Module):
    """CNN encoder + attention LSTM decoder; ``attention`` is ``"soft"``, ``"hard"`` or ``"none"``.

    Args:
        vocab_size: number of tokens ``V`` (with the specials; ``<pad>`` = 0).
        attention: attention mode (switchable later through the ``attention`` attribute).
        image_size: image side (checked on input; divisible by ``2 ** len(widths)``).
        widths: channels of the CNN stages; ``D = widths[-1]``.
        embed: word embedding size.
        hidden: LSTM hidden size.
        attention_dim: size of the attention MLP.
        start: id of ``<start>``; end: id of ``<end>`` (used by :meth:`generate`).
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        attention: str = "soft",
        image_size: int = 48,
        widths: Sequence[int] = (16, 32, 64),
        embed: int = 32,
        hidden: int = 128,
        attention_dim: int = 64,
        start: int = 1,
        end: int = 2,
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if vocab_size < 5:
            raise ConfigError(
                f"ShowAttendTell: vocab_size {vocab_size} leaves no words besides the 4 specials",
                fix="build the vocabulary from non-empty captions",
            )
        if attention not in ATTENTION_MODES:
            raise ConfigError(
                f"ShowAttendTell: unknown attention {attention!r}",
                fix=f"choose one of {', '.join(ATTENTION_MODES)}",
            )
        if image_size < 2 ** len(widths) or image_size % 2 ** len(widths):
            raise ConfigError(
                f"ShowAttendTell: image_size {image_size} is not divisible by 2**{len(widths)}",
                fix=f"use images whose side is a multiple of {2 ** len(widths)}",
            )
        self.vocab_size, self.attention, self.image_size = vocab_size, attention, image_size
        self.start, self.end = start, end
        channels = (3, *widths)
        self.encoder = nn.Sequential(*(ConvStage(a, b) for a, b in zip(channels, channels[1:])))
        d = widths[-1]
        self.init_h = nn.Linear(d, hidden)
        self.init_c = nn.Linear(d, hidden)
        self.att_a = nn.Linear(d, attention_dim)
        self.att_h = nn.Linear(hidden, attention_dim)
        self.att_w = nn.Linear(attention_dim, 1)
        self.beta = nn.Linear(hidden, 1)
        self.embedding = nn.Embedding(vocab_size, embed, padding_idx=0)
        self.lstm = nn.LSTMCell(embed + d, hidden)
        self.out = nn.Linear(hidden + d + embed, vocab_size)
        self.register_buffer("reward_baseline", torch.zeros(()))
        self.register_buffer("baseline_ready", torch.zeros((), dtype=torch.bool))

    def annotations(self, images: torch.Tensor) -> torch.Tensor:
        """CNN annotation vectors ``(B, L, D)``."""
        s = self.image_size
        if images.dim() != 4 or tuple(images.shape[1:]) != (3, s, s):
            raise ConfigError(
                f"ShowAttendTell: expected images (B, 3, {s}, {s}), got {tuple(images.shape)}",
                fix="resize the images or build the model with their size",
            )
        return self.encoder(images).flatten(2).transpose(1, 2)

    def _init_state(self, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = a.mean(dim=1)
        return torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean))

    def _step(self, a, keys, word, h, c, *, sample: bool):
        """One decoder step; returns logits, alpha, log p(s), entropy, (h, c)."""
        alpha = self.att_w(torch.tanh(keys + self.att_h(h)[:, None])).squeeze(-1).softmax(-1)
        log_ps = entropy = torch.zeros(len(a), device=a.device, dtype=a.dtype)
        if self.attention == "soft":
            z = torch.einsum("bl,bld->bd", alpha, a)
        elif self.attention == "hard":
            loc = torch.multinomial(alpha, 1) if sample else alpha.argmax(-1, keepdim=True)
            log_alpha = torch.log(alpha.clamp_min(1e-12))
            log_ps = log_alpha.gather(1, loc).squeeze(1)
            entropy = -(alpha * log_alpha).sum(-1)
            z = a.gather(1, loc[..., None].expand(-1, -1, a.shape[-1])).squeeze(1)
        else:
            z = a.mean(dim=1)
            alpha = torch.full_like(alpha, 1.0 / alpha.shape[1])
        if self.attention != "none":
            z = torch.sigmoid(self.beta(h)) * z
        e = self.embedding(word)
        h, c = self.lstm(torch.cat((e, z), -1), (h, c))
        logits = self.out(torch.cat((h, z, e), -1))
        return logits, alpha, log_ps, entropy, (h, c)

    def forward(self, images: torch.Tensor, tokens: torch.Tensor) -> DecoderOutput:
        """Teacher forcing on ``tokens[:, :-1]``; predictions for ``tokens[:, 1:]``."""
        a = self.annotations(images)
        keys = self.att_a(a)  # (B, L, A)
        h, c = self._init_state(a)
        outs = []
        for t in range(tokens.shape[1] - 1):
            logits, alpha, log_ps, ent, (h, c) = self._step(
                a, keys, tokens[:, t], h, c, sample=self.training
            )
            outs.append((logits, alpha, log_ps, ent))
        logits, alphas, log_ps, ent = (torch.stack(x, 1) for x in zip(*outs))
        return DecoderOutput(logits, alphas, log_ps, ent)

    def training_loss(
        self,
        images: torch.Tensor,
        tokens: torch.Tensor,
        *,
        doubly_stochastic: float = 0.2,
        reinforce_weight: float = 1.0,
        entropy_weight: float = 0.01,
        baseline_decay: float = 0.9,
    ) -> torch.Tensor:
        """Mean over captions of the summed word NLL plus the mode's extra terms.

        - soft: ``+ doubly_stochastic * sum_l (1 - sum_t alpha_tl)^2`` (over real words);
        - hard: ``- reinforce_weight * (log p(y|s) - b) log p(s) - entropy_weight * H``
          (the REINFORCE surrogate of :func:`reinforce_surrogate`), then
          ``b <- decay * b + (1 - decay) * mean log p(y|s)``.
        """
        out = self(images, tokens)
        target = tokens[:, 1:]
        valid = (target != 0).to(out.logits.dtype)  # (B, T-1)
        nll = F.cross_entropy(out.logits.transpose(1, 2), target, reduction="none")
        log_py = -(nll * valid).sum(1)  # (B,)
        loss = -log_py
        if self.attention == "soft":
            coverage = (out.alphas * valid[..., None]).sum(1)  # (B, L)
            loss = loss + doubly_stochastic * (1 - coverage).pow(2).sum(1)
        elif self.attention == "hard" and self.training:
            reward = log_py.detach()
            baseline = self.reward_baseline if bool(self.baseline_ready) else reward.mean()
            log_ps = (out.log_prob_locations * valid).sum(1)
            entropy = (out.entropy * valid).sum(1)
            loss = loss - reinforce_weight * reinforce_surrogate(log_ps, reward, baseline)
            loss = loss - entropy_weight * entropy
            with torch.no_grad():
                new = baseline_decay * baseline + (1 - baseline_decay) * reward.mean()
                self.reward_baseline.copy_(new)
                self.baseline_ready.fill_(True)
        return loss.mean()

    @torch.no_grad()
    def generate(
        self, images: torch.Tensor, max_len: int = 16
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy decoding: tokens ``(B, max_len)`` (``<end>`` then ``<pad>``) and alphas
        ``(B, max_len, L)``; hard attention looks at the most probable location.
        """  # noqa: D205
        was = self.training
        self.eval()
        a = self.annotations(images)
        keys = self.att_a(a)
        h, c = self._init_state(a)
        word = torch.full((len(a),), self.start, dtype=torch.long, device=a.device)
        done = torch.zeros(len(a), dtype=torch.bool, device=a.device)
        tokens, alphas = [], []
        for _ in range(max_len):
            logits, alpha, _, _, (h, c) = self._step(a, keys, word, h, c, sample=False)
            word = torch.where(done, torch.zeros_like(word), logits.argmax(-1))
            tokens.append(word)
            alphas.append(alpha)
            done = done | (word == self.end)
        self.train(was)
        return torch.stack(tokens, 1), torch.stack(alphas, 1)

    def extra_repr(self) -> str:
        """Key hyperparameters for the repr."""
        return (
            f"vocab_size={self.vocab_size}, attention={self.attention!r}, "
            f"image_size={self.image_size}"
        )


def bleu_scores(
    references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Corpus BLEU-1..4 (``nltk.translate.bleu_score.corpus_bleu``, one reference each).

    Returns:
        ``{"bleu1": .., "bleu2": .., "bleu3": .., "bleu4": ..}`` in [0, 1].
    """
    corpus_bleu = require("nltk.translate.bleu_score", feature="BLEU").corpus_bleu
    if len(references) != len(hypotheses) or not references:
        raise ConfigError(
            f"bleu_scores: need as many references as hypotheses (> 0), got "
            f"{len(references)} and {len(hypotheses)}"
        )
    refs = [[list(r)] for r in references]
    hyps = [list(h) for h in hypotheses]
    ws = [(1.0,), (0.5, 0.5), (1 / 3, 1 / 3, 1 / 3), (0.25, 0.25, 0.25, 0.25)]
    return {f"bleu{n + 1}": float(corpus_bleu(refs, hyps, weights=w)) for n, w in enumerate(ws)}
