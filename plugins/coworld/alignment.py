"""Stage A of CoWorld — offline-to-online state alignment (Wang et al., Eq. 3; multi-source form Eq. 12).

The target world model M_φ adds to its DreamerV2 loss

    β2 · KL[ sg(g(e_φ'(o_t^T))) ‖ g(e_φ(o_t^T)) ],        g = softmax over the embedding's feature axis,

where both encoders see the *same* target observations o_t^T. The source encoding is the (stop-gradient)
alignment target, so only the target encoder is trained by this term; the source encoder runs under
``torch.no_grad`` and never receives a gradient.

Defaults (Table 7): β2 = 1 for Meta-World/RoboDesk, 1.5 for DMC.

Decisions (see METHODS.md, CoWorld):
- **code** the authors apply it to the flattened conv embedding ``e`` with the softmax over the feature
  dimension; xfer does the same with :attr:`WorldModelOutputs.embed`.
- Normalisation: xfer sums the KL over features and averages over batch and time, like every other term of
  xfer's world-model loss. The authors' code uses ``KLDivLoss(reduction="batchmean")`` on [B, L, E] tensors,
  which divides by B only, i.e. its term is L times larger (50× at L = 50); scale β2 by L to reproduce it.
- Multi-source (Appendix C, Eq. 12): the KL to every candidate source is measured on the batch and the
  one-hot ω selects the closest source (see :mod:`xfer_plugins.coworld.selection`); only that source's
  KL enters the loss. The KL that the choice reads is logged as ``coworld/select_kl/<source>``. It is
  measured with the current target encoder e_φ (Appendix C step 2, the default), or — when
  :meth:`StateAlignment.select_with` is given the target encoder as it was after step 1 — with that
  unaligned copy, which Stage A cannot pull toward the source it selected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from xfer.dreamer.world_model import Batch, WorldModel, WorldModelOutputs
from xfer.run.distributed import mean_over_ranks


def softmax_kl(source_embed: Tensor, target_embed: Tensor) -> Tensor:
    """KL[sg(softmax(e_src)) ‖ softmax(e_tg)] per position: sums over the last (feature) axis.

    ``source_embed`` is detached here, so gradients flow into ``target_embed`` only."""
    source_embed = source_embed.detach().float()
    log_p = F.log_softmax(source_embed, -1)
    log_q = F.log_softmax(target_embed.float(), -1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


@torch.no_grad()
def source_embeddings(source: WorldModel, batch: Batch) -> Tensor:
    """e_φ'(o^T): a source encoder's embedding of the target batch, without a graph."""
    return source.encode(batch)


class StateAlignment:
    """The Stage A world-model term for the target agent (Eq. 3 / Eq. 12).

    ``sources`` are the candidate source world models (one for single-source CoWorld). ``choose`` maps the
    per-source mean KL values [N] (detached) to the selected index; single-source always picks 0.
    Register with ``target.add_world_model_term(alignment)``; its ``last_kl``/``selected`` fields are read
    by the logger and by the value constraint (which uses the selected source's critic).
    """

    def __init__(self, sources: Sequence[WorldModel], scale: float,
                 choose: Callable[[Tensor], int] | None = None, names: Sequence[str] | None = None) -> None:
        if not sources:
            raise ValueError("state alignment needs at least one source world model")
        self.sources = list(sources)
        self.scale = scale
        self.choose = choose or (lambda kls: 0)
        self.names = list(names) if names is not None else [str(i) for i in range(len(sources))]
        self.selected = 0
        self.last_kl: Tensor | None = None  # the KL per source [N] the last choice read
        self.enabled = True  # off while the target world model is pretrained alone (Appendix C step 1)
        self.selection_encoder: nn.Module | None = None  # None: select with the current target encoder

    def select_with(self, encoder: nn.Module | None) -> None:
        """Measure the selection KL with ``encoder`` (a frozen copy of the target encoder, e.g. taken after
        Appendix C step 1) instead of the current target encoder; ``None`` = the current one."""
        self.selection_encoder = None if encoder is None else encoder.requires_grad_(False)

    def per_source_kl(self, out: WorldModelOutputs, batch: Batch) -> Tensor:
        """Mean KL to every source [N] (with a graph into the target encoder)."""
        return self._kls(self._source_embeddings(batch), out.embed)

    @staticmethod
    def _observations(batch: Batch) -> Batch:
        return {key: value for key, value in batch.items() if key in ("image", "state")}

    def _source_embeddings(self, batch: Batch) -> list[Tensor]:
        return [source_embeddings(src, self._observations(batch)) for src in self.sources]

    @staticmethod
    def _kls(source_embeds: Sequence[Tensor], target_embed: Tensor) -> Tensor:
        return torch.stack([softmax_kl(embed, target_embed).mean() for embed in source_embeds])

    def __call__(self, out: WorldModelOutputs, batch: Mapping[str, Tensor]
                 ) -> tuple[Tensor, dict[str, Tensor]]:
        if not self.enabled:
            return out.embed.new_zeros(()), {}
        source_embeds = self._source_embeddings(batch)
        kls = self._kls(source_embeds, out.embed)
        self.last_kl = kls.detach()
        if self.selection_encoder is not None:  # the KL of the frozen, unaligned copy (no graph)
            with torch.no_grad():
                self.last_kl = self._kls(source_embeds, self.selection_encoder(self._observations(batch)))
        if len(self.sources) > 1:  # several processes: the global batch's KL, so every rank chooses alike
            self.last_kl = mean_over_ranks(self.last_kl)
        self.selected = int(self.choose(self.last_kl)) if len(self.sources) > 1 else 0
        kl = kls[self.selected]
        metrics: dict[str, Tensor] = {"coworld/state_kl": kl.detach()}
        if len(self.sources) > 1:
            pairs = zip(self.names, self.last_kl, strict=True)
            metrics.update({f"coworld/select_kl/{name}": value for name, value in pairs})
        return self.scale * kl, metrics
