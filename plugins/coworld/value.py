"""Stage C of CoWorld — the min-max value constraint (Wang et al., Eq. 6, Algorithm 1 lines 10–12).

The target critic v_ξ is trained on the target's imagined states ẑ_t^T with

    L(ξ) = Σ_t ½(v_ξ(ẑ_t) − sg(V_t))² + α · max(v_ξ(ẑ_t), sg(v_ξ'(ẑ_t)))

where v_ξ' is the source critic evaluated on the *target's* imagined features (the state spaces are aligned
by Stage A) and sg stops its gradient: the source critic is never changed by the target loss. Where the
target critic's estimate exceeds the source's (v_tg > v_src), the term pushes v_tg down with gradient α;
where it does not (v_tg ≤ v_src), the term is constant and gives no gradient, so the target keeps its own
estimate and may explore states the source values highly. The actor is DreamerV2's (Eq. 7).

The first term is the backbone's critic loss (:meth:`xfer.dreamer.behavior.ActorCritic.critic_loss`); this
module adds the second through the agent's ``critic_terms`` seam. Like the regression term, it is weighted
by the cumulative imagined discount (DreamerV2 and the authors' code) and averaged over the rollout.

Defaults (Table 7): α = 2 for Meta-World/RoboDesk, 1 for DMC (**code** the authors' configuration uses 1.5).
xfer uses ``torch.where(v_tg > v_src, v_tg, v_src)`` instead of ``torch.maximum`` so that ties give exactly
zero gradient (``torch.maximum`` splits the gradient at ties).

Variant ``without_max`` (``coworld.value_constraint_variant``): Fig. 5(b)'s "CoWorld w/o Max", which
Section 4.5 writes as Eq. 6 with the max removed, Σ_t ½(v_ξ(ẑ_t) − sg(V_t))² + α·v_ξ(ẑ_t): a brute-force
push-down of every value, active on every state, the source critic unused (its value is still logged).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

from xfer.dreamer.behavior import ActorCritic, Imagination, Returns


def value_constraint(target_value: Tensor, source_value: Tensor, weight: Tensor, alpha: float
                     ) -> tuple[Tensor, Tensor]:
    """α · mean(weight · max(v_tg, sg(v_src))) of Eq. 6 and the mask where the constraint is active
    (v_tg > v_src)."""
    source_value = source_value.detach()
    active = target_value > source_value
    upper = torch.where(active, target_value, source_value)
    return alpha * (weight.detach() * upper).mean(), active


def value_push_down(target_value: Tensor, weight: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    """α · mean(weight · v_tg): "CoWorld w/o Max" of Section 4.5 / Fig. 5(b), active everywhere."""
    return alpha * (weight.detach() * target_value).mean(), torch.ones_like(target_value, dtype=torch.bool)


Variant = Literal["min_max", "without_max"]


class ValueConstraint:
    """The Stage C critic term for the target agent: ``target.critic_terms.append(ValueConstraint(...))``.

    ``source_behavior()`` returns the actor-critic of the source whose critic constrains this step (the
    selected one in multi-source CoWorld). ``variant`` picks Eq. 6 (``min_max``) or "w/o Max"."""

    def __init__(self, source_behavior: Callable[[], ActorCritic], alpha: float,
                 variant: Variant = "min_max") -> None:
        self.source_behavior, self.alpha, self.variant = source_behavior, alpha, variant

    def __call__(self, imag: Imagination, ret: Returns, value: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        source_value = self.source_behavior().frozen_value(imag.feat[:-1])
        if self.variant == "without_max":
            loss, active = value_push_down(value, ret.weight[:-1], self.alpha)
        else:
            loss, active = value_constraint(value, source_value, ret.weight[:-1], self.alpha)
        return loss, {
            "coworld/constraint_active": active.float().mean(),
            "coworld/constraint_loss": loss.detach(),
            "coworld/imag_value_target": value.detach().mean(),
            "coworld/imag_value_source": source_value.mean(),
        }
