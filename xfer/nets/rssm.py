"""The recurrent state-space model of DreamerV2 (Hafner et al. 2021, Section 2, Eq. 1).

    recurrent model      h_t = f(h_{t-1}, z_{t-1}, a_{t-1} [, k])      layer-normed GRU, ``deter`` units
    representation       z_t ~ q(z_t | h_t, e_t)                        posterior, from the embedding e_t
    transition predictor ẑ_t ~ p(ẑ_t | h_t)                             prior

Latents are ``stoch`` categoricals of ``classes`` classes with straight-through samples, or, with
``classes=0``, a ``stoch``-dimensional Gaussian with std ``2·sigmoid(x/2) + min_std`` (DreamerV2 code,
``std_act: sigmoid2``), as in the PyTorch port the Vid2Act and CoWorld authors used.

Seams:
- ``cond_dim`` (0 = none): a conditioning vector k (Vid2Act's one-hot task label) is appended to
  [z_{t-1}, a_{t-1}] at the input of the recurrent model, in ``img_step`` (the prior step) and thus in
  ``obs_step`` and ``observe`` too.
- :meth:`RSSM.img_step` runs one prior step from any :class:`LatentState` with any action and condition, e.g.
  a teacher RSSM stepping a student's previous state under every label (Vid2Act Eq. 5).
- :meth:`RSSM.feat` gives concat(stoch, deter), the feature every head reads.

Speed: in :meth:`RSSM.observe` only the recurrence and the posterior run inside the time loop; the
embedding's share of the posterior layer and the whole prior head run batched over all time steps.
:meth:`RSSM.compile_steps` hands those step functions (recurrence, posterior, prior head) to
``torch.compile``, which fuses their small ops; parameters and state-dict keys stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xfer.nets.dists import categorical_kl, gaussian_kl, onehot_mode, straight_through_onehot


class LatentState(NamedTuple):
    """One RSSM state (any leading batch/time shape).

    ``stoch``: the sample, flattened one-hots [..., stoch·classes] or Gaussian sample [..., stoch];
    ``deter``: GRU state [..., deter];
    ``stats``: logits [..., stoch·classes] or concat(mean, std) [..., 2·stoch].
    """

    stoch: Tensor
    deter: Tensor
    stats: Tensor

    def map(self, fn: Callable[[Tensor], Tensor]) -> LatentState:
        """Apply ``fn`` to every field (e.g. detach, flatten, index)."""
        return LatentState(fn(self.stoch), fn(self.deter), fn(self.stats))

    @staticmethod
    def stack(states: list[LatentState], dim: int) -> LatentState:
        return LatentState(*(torch.stack(parts, dim) for parts in zip(*states, strict=True)))


class LayerNormGRUCell(nn.Module):
    """GRU cell with layer norm on the joint gate pre-activations and update bias -1 (DreamerV2 code,
    ``GRUCell`` with ``norm=True``):
    r, c, u = LN(W[x, h]); c = tanh(σ(r)·c); u = σ(u - 1); h' = u·c + (1-u)·h."""

    def __init__(self, in_dim: int, size: int, layer_norm: bool = True) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim + size, 3 * size, bias=not layer_norm)
        self.norm = nn.LayerNorm(3 * size) if layer_norm else nn.Identity()

    def forward(self, inputs: Tensor, state: Tensor) -> Tensor:
        parts = self.norm(self.linear(torch.cat([inputs, state], -1)))
        reset, cand, update = parts.chunk(3, -1)
        cand = torch.tanh(torch.sigmoid(reset) * cand)
        update = torch.sigmoid(update - 1.0)
        return update * cand + (1.0 - update) * state


class RSSM(nn.Module):
    """DreamerV2's RSSM. Sizes: ``deter`` GRU units, ``hidden`` units of the input/output layers, ``stoch``
    latent variables with ``classes`` classes each (0 = Gaussian)."""

    def __init__(
        self,
        embed_dim: int,
        act_dim: int,
        deter: int,
        stoch: int,
        classes: int,
        hidden: int,
        cond_dim: int = 0,
        min_std: float = 0.1,
        layer_norm: bool = True,
    ) -> None:
        super().__init__()
        self.deter_dim, self.stoch, self.classes, self.cond_dim, self.min_std = (
            deter, stoch, classes, cond_dim, min_std)
        self.stoch_dim = stoch * classes if classes else stoch
        stats_dim = stoch * classes if classes else 2 * stoch
        self.img_in = nn.Linear(self.stoch_dim + act_dim + cond_dim, hidden)
        self.cell = LayerNormGRUCell(hidden, deter, layer_norm)
        self.img_out = nn.Linear(deter, hidden)
        self.img_stats = nn.Linear(hidden, stats_dim)
        self.obs_deter = nn.Linear(deter, hidden)
        self.obs_embed = nn.Linear(embed_dim, hidden, bias=False)
        self.obs_stats = nn.Linear(hidden, stats_dim)

    STEPS = ("_recur", "_posterior", "prior_stats")  # what :meth:`compile_steps` compiles

    def compile_steps(self) -> None:
        """torch.compile the per-step functions (:attr:`STEPS`) of this instance, with dynamic shapes (they
        run at the training batch, the imagination batch and the acting batch). Each compiled function is
        bound to this module: copies and unpickled modules compile their own (``__getstate__`` drops them).

        Every compiled RSSM's variants (grad mode, autocast, which inputs require grad; CoWorld's several
        agents) are cached on the same code objects, so dynamo's per-function recompile limit is raised to 64
        (its default, 8, was reached by one agent training, acting and drawing an open-loop video)."""
        import torch._dynamo

        torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
        for name in self.STEPS:
            setattr(self, name, torch.compile(getattr(type(self), name).__get__(self), dynamic=True))

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        plain = {key: value for key, value in state.items() if key not in self.STEPS}
        return {**plain, "_compiled_steps": len(plain) < len(state)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        compiled = state.pop("_compiled_steps", False)
        super().__setstate__(state)
        if compiled:
            self.compile_steps()

    @property
    def feat_dim(self) -> int:
        return self.stoch_dim + self.deter_dim

    def initial(self, batch: int, device: torch.device | str) -> LatentState:
        """The all-zero state DreamerV2 starts every episode from."""
        stats_dim = self.img_stats.out_features
        return LatentState(*(torch.zeros(batch, size, device=device)
                             for size in (self.stoch_dim, self.deter_dim, stats_dim)))

    @staticmethod
    def feat(state: LatentState) -> Tensor:
        """The feature heads read: concat(stoch, deter)."""
        return torch.cat([state.stoch, state.deter], -1)

    # -- distributions ---------------------------------------------------------------------------------------
    def _stats(self, raw: Tensor) -> Tensor:
        raw = raw.float()  # distributions in float32 whatever autocast (DreamerV2 code's mixed precision)
        if self.classes:
            return raw
        mean, std = raw.chunk(2, -1)
        return torch.cat([mean, 2 * torch.sigmoid(std / 2) + self.min_std], -1)

    def sample(self, stats: Tensor, sample: bool = True) -> Tensor:
        """Draw (``sample``) or take the mode of the latent distribution with these stats."""
        if self.classes:
            logits = stats.unflatten(-1, (self.stoch, self.classes))
            draw = straight_through_onehot(logits) if sample else onehot_mode(logits)
            return draw.flatten(-2)
        mean, std = stats.chunk(2, -1)
        return mean + std * torch.randn_like(std) if sample else mean

    def kl(self, lhs: Tensor, rhs: Tensor) -> Tensor:
        """KL(lhs‖rhs) between latent distributions given by their stats, summed over latent variables."""
        if self.classes:
            shape = (self.stoch, self.classes)
            return categorical_kl(lhs.unflatten(-1, shape), rhs.unflatten(-1, shape))
        return gaussian_kl(*lhs.chunk(2, -1), *rhs.chunk(2, -1))

    # -- steps -----------------------------------------------------------------------------------------------
    def _recur(self, state: LatentState, action: Tensor, cond: Tensor | None) -> Tensor:
        inputs = [state.stoch, action] if cond is None else [state.stoch, action, cond]
        hidden = F.elu(self.img_in(torch.cat(inputs, -1)))
        return self.cell(hidden, state.deter)

    def prior_stats(self, deter: Tensor) -> Tensor:
        """The transition predictor p(ẑ | h) for any batch shape of ``deter``."""
        return self._stats(self.img_stats(F.elu(self.img_out(deter))))

    def img_step(self, state: LatentState, action: Tensor, cond: Tensor | None = None,
                 sample: bool = True) -> LatentState:
        """One imagined step: h' = f(h, z, a[, k]), ẑ' ~ p(ẑ' | h')."""
        deter = self._recur(state, action, cond)
        stats = self.prior_stats(deter)
        return LatentState(self.sample(stats, sample), deter, stats)

    def _posterior(self, deter: Tensor, embed_hidden: Tensor, sample: bool) -> LatentState:
        stats = self._stats(self.obs_stats(F.elu(self.obs_deter(deter) + embed_hidden)))
        return LatentState(self.sample(stats, sample), deter, stats)

    @staticmethod
    def reset(state: LatentState, action: Tensor, is_first: Tensor) -> tuple[LatentState, Tensor]:
        """Zero the previous state and action where a new episode starts."""
        keep = (1.0 - is_first.to(action.dtype)).unsqueeze(-1)
        return state.map(lambda x: x * keep), action * keep

    def obs_step(self, state: LatentState, prev_action: Tensor, embed: Tensor, is_first: Tensor,
                 cond: Tensor | None = None, sample: bool = True) -> tuple[LatentState, LatentState]:
        """One filtering step from the previous state and action to (posterior, prior)."""
        state, prev_action = self.reset(state, prev_action, is_first)
        deter = self._recur(state, prev_action, cond)
        post = self._posterior(deter, self.obs_embed(embed), sample)
        prior_stats = self.prior_stats(deter)
        return post, LatentState(self.sample(prior_stats, sample), deter, prior_stats)

    def observe(self, embed: Tensor, action: Tensor, is_first: Tensor, state: LatentState | None = None,
                cond: Tensor | None = None) -> tuple[LatentState, LatentState]:
        """Filter a sequence. ``embed`` [B, L, E], ``action`` [B, L, A] with ``action[:, t]`` the action that
        led to observation t, ``is_first`` [B, L], ``cond`` [B, L, K] or None. Returns (posterior, prior)
        states [B, L, ...]; prior stats are those of p(ẑ_t | h_t), the prior's stoch is a sample of it."""
        batch, length = embed.shape[:2]
        if state is None:
            state = self.initial(batch, embed.device)
        embed_hidden = self.obs_embed(embed)
        posts: list[LatentState] = []
        for t in range(length):
            state, prev_action = self.reset(state, action[:, t], is_first[:, t])
            deter = self._recur(state, prev_action, None if cond is None else cond[:, t])
            state = self._posterior(deter, embed_hidden[:, t], sample=True)
            posts.append(state)
        post = LatentState.stack(posts, 1)
        prior_stats = self.prior_stats(post.deter)
        return post, LatentState(self.sample(prior_stats), post.deter, prior_stats)
