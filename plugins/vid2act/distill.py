"""Domain-selective distillation of Vid2Act (paper Section 4.3, Eq. 5–6).

For every source label k the frozen teacher transits the student's previous state, giving s_t^k (see
:meth:`xfer_plugins.vid2act.teacher.MixtureTeacher.transit`); here

    u_t^k = F_distill(s_t^k)                                                       transferable features
    W = {w_k} = Softmax_k(F_weight(s_t^k * e_t))        (* = concatenation)        domain selection (Eq. 5)
    L_distill = Σ_k Σ_t max(0.1, w_k) · ‖e_t − u_t^k‖²                                              (Eq. 6)

e_t is the student's *predicted* state e_t ~ p(e_{t−1}, a_{t−1}) in training (Sec. 4.3: "we concatenate the
predicted state s_t^k of teacher model and the predicted state e_t of the student model"; the agent passes it)
and the posterior at acting time (Algorithm 1, line 19).

What xfer does where the paper is vague (METHODS.md, Vid2Act, **code** decisions):

- e_t and s_t^k are *features* concat(stoch, deter), the vector every Dreamer head reads;
- F_distill is one linear layer (feature size → feature size) and F_weight one linear layer to a scalar;
- the teacher's features are detached: L_distill trains the student, F_distill and F_weight, not the teacher;
- the floor is ``max(floor, w_k)`` element-wise, *without* renormalising (the floored weights may sum to > 1);
- reduction ``sum`` (default, the paper's balance): Σ_k and the squared norm summed over the F features, then
  the mean over batch and time. xfer's backbone reduces every other Eq. 7 term the same way (reconstruction
  and KL are summed over their dimensions and averaged over batch and time, i.e. Eq. 7's Σ_t divided by L), so
  α·L_distill stands to them as in Eq. 7 and α = 1 is the paper's α = 1. Reduction ``mean`` (authors' code)
  also averages over the features: the paper's loss divided by F (F = 1624 at the paper preset), i.e. α/F.
- ``uniform`` (the "w/o learned weights" ablation of Fig. 6): w_k = 1/N exactly, no floor, F_weight unused.

Weights are per (batch row, time step): the paper's "time-varying" selection. :meth:`DomainSelector.weights`
returns the softmax *before* the floor — the quantity Fig. 9 plots and the label selection of Eq. 8 takes the
argmax of.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn


class Distillation(NamedTuple):
    loss: Tensor  # scalar L_distill (Eq. 6), without α
    weights: Tensor  # [K, ...] softmax weights before the floor, detached
    used: Tensor  # [K, ...] the weights the loss used (floored, or uniform), detached


class DomainSelector(nn.Module):
    """F_distill and F_weight over features of size ``feat_dim`` (teacher and student share it)."""

    def __init__(self, feat_dim: int, floor: float = 0.1, uniform: bool = False,
                 reduction: Literal["sum", "mean"] = "sum") -> None:
        super().__init__()
        self.floor, self.uniform, self.reduction = floor, uniform, reduction
        self.distill = nn.Linear(feat_dim, feat_dim)
        self.weight = nn.Linear(2 * feat_dim, 1)

    def weights(self, teacher_feat: Tensor, student_feat: Tensor) -> Tensor:
        """Eq. 5: softmax over k of F_weight(concat(s_t^k, e_t)). ``teacher_feat`` [K, ..., F],
        ``student_feat`` [..., F] → [K, ...]. Under ``uniform``, 1/N everywhere."""
        if self.uniform:
            count = teacher_feat.shape[0]
            return torch.full(teacher_feat.shape[:-1], 1.0 / count, device=teacher_feat.device)
        student = student_feat.unsqueeze(0).expand_as(teacher_feat)
        scores = self.weight(torch.cat([teacher_feat, student], -1)).squeeze(-1).float()
        return torch.softmax(scores, 0)

    def floored(self, weights: Tensor) -> Tensor:
        """``max(floor, w_k)`` element-wise, not renormalised (authors' code); uniform weights are kept."""
        return weights if self.uniform else weights.clamp_min(self.floor)

    def forward(self, teacher_feat: Tensor, student_feat: Tensor) -> Distillation:
        """L_distill of Eq. 6 for teacher features [K, ..., F] (detached here), student features [..., F]:
        Σ_k mean_{batch, time} w_k·‖e − u^k‖² (``sum``) or w_k·mean_F (e − u^k)² (``mean``)."""
        teacher_feat = teacher_feat.detach()
        raw = self.weights(teacher_feat, student_feat)
        used = self.floored(raw)
        transferable = self.distill(teacher_feat)  # u_t^k
        squared = (student_feat.unsqueeze(0) - transferable).square()
        distance = squared.sum(-1) if self.reduction == "sum" else squared.mean(-1)  # [K, ...]
        loss = (used * distance).mean(tuple(range(1, distance.dim()))).sum()
        return Distillation(loss, raw.detach(), used.detach())

    @staticmethod
    def select(weights: Tensor) -> Tensor:
        """k* = argmax_k w_k for each state: [K, ...] → [...] indices into the K labels (Eq. 8; Algorithm 1,
        lines 10 and 20)."""
        return weights.argmax(0)
