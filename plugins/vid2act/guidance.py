"""Generative action replay of Vid2Act's Stage 2 (paper Section 4.4, Eq. 8, Algorithm 1 lines 9–11 and 19–21):
which source label k* guides the actor at each state, and which state the frozen replay decoder D_θ2 reads.

    a_i ~ π(a_i | e_i, G_θ(·, k*_i)),    k*_i = argmax_k w_k(s_i^k, e_i)   (Eq. 5),
    s_i^k ~ p(e_{i−1}, a_{i−1}, k; φ)                                       (the teacher's step, Sec. 4.3)

**Label selection.** In imagination Algorithm 1 re-selects k* at every imagined step (lines 9–11, "for time
step i = t … t+H: select the task label k with highest confidence in Equation (5)"): the teacher steps the
student's previous imagined state e_{i−1} with a_{i−1} under every label, F_weight scores each s_i^k against
the imagined (predicted) e_i, and the argmax guides step i (``label_selection: per_step``, the default). The
authors' code selects k* once per start state and holds it for the horizon (``held``). At the start state both
use the weights of the same update's distillation (Eq. 5 at that time step). At acting time (lines 19–21) the
teacher steps the previous posterior with the previous action and the weights score the new posterior.

**What D_θ2 reads.** G_θ is trained in Stage 1 on the teacher's states s (Sec. 4.2, Eq. 3–4) and frozen in
Stage 2 (Sec. 4.4: "The parameters in G_θ are frozen at this stage"). The student's e_t is a different
network's state: L_distill pulls it toward u_t^k = F_distill(s_t^k), a map learnt from scratch, never toward
s_t^k itself, so G_θ(e_t, k) reads inputs it was never trained on. The paper's notation G_θ(e_t, k) treats the
student's state as living in the teacher's space — the teacher's dynamics read e_{t−1} directly
(s_t^k ~ p(e_{t−1}, a_{t−1}; φ), Sec. 4.3) — and the state of that space at step t under label k is exactly
s_t^k, which Algorithm 1 computes right before the replay (line 20, then line 21; Sec. 4.4: "the action
guidance is dependent on current states e_i and the source task label"). So by default D_θ2 reads
s_t^{k*}, the teacher's state for the selected label transited from the student's previous state
(``replay_input: teacher``). ``student`` feeds e_t as the paper's formula and the authors' code do; the
authors' code makes that consistent by training G_θ in Stage 2 on F_distill(teacher features)
(``train_vae_in_transfer``), which ``replay_input: auto`` pairs it with.

**Greedy acting.** The replay latent z is drawn (clipped N(0, I)) in imagination and when exploring; greedy
acting (``explore=False``) uses z = 0, so evaluation is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor
from xfer_plugins.vid2act.config import TransferConfig
from xfer_plugins.vid2act.distill import DomainSelector
from xfer_plugins.vid2act.teacher import MixtureTeacher

from xfer.nets.rssm import RSSM, LatentState

Chooser = Callable[[Tensor], Tensor]  # weights [K, N] → k* positions [N]


class Guide(NamedTuple):
    """k* at N states and the teacher's states there under every label."""

    positions: Tensor  # [N] k* as positions into the agent's labels
    teacher_feat: Tensor | None  # [K, N, F] features of s^k (None where nothing needed them)


class ReplayGuidance:
    """Eq. 8's extra actor input for a Vid2Act student (see the module docstring)."""

    def __init__(self, teacher: MixtureTeacher, selector: DomainSelector, labels: Sequence[int],
                 transfer: TransferConfig, choose: Chooser) -> None:
        self.teacher, self.selector, self.transfer, self.choose = teacher, selector, transfer, choose
        self.labels = list(labels)
        self.per_step = transfer.label_selection == "per_step"
        self.from_teacher = transfer.replay_from == "teacher"
        self.switches = torch.zeros(2)  # [label changes, imagined steps after the start] since the last read

    def teacher_feat(self, prev: LatentState, prev_action: Tensor) -> Tensor:
        """Features of s^k ~ p(e_prev, a_prev, k; φ) for every label: [K, ..., F]."""
        states = self.teacher.transit(prev, prev_action, self.labels)
        return self.teacher.world_model.rssm.feat(states)

    @torch.no_grad()
    def select(self, teacher_feat: Tensor, student_feat: Tensor) -> Guide:
        """k* by Eq. 5 of the student states ``student_feat`` [N, F] against ``teacher_feat`` [K, N, F]."""
        return Guide(self.choose(self.selector.weights(teacher_feat, student_feat)), teacher_feat)

    @torch.no_grad()
    def features(self, state: LatentState, guide: Guide, sample: bool) -> Tensor:
        """D_θ2's hidden activation for (input, z, k*) at states ``state`` [N]: the input is s^{k*} (teacher)
        or e (student); z is sampled, or 0 when not ``sample``."""
        index = torch.as_tensor(self.labels, device=guide.positions.device)[guide.positions]
        label = self.teacher.labels(index)
        if self.from_teacher:
            assert guide.teacher_feat is not None
            rows = torch.arange(guide.positions.shape[0], device=guide.positions.device)
            source = guide.teacher_feat[guide.positions, rows]
        else:
            source = RSSM.feat(state)
        return self.teacher.replay.replay_features(source, label, sample)

    def rollout(self, start: Guide) -> Callable[[LatentState, Tensor], Tensor]:
        """The per-step extra function of one imagined rollout whose start states have the guide ``start``."""
        previous: list[LatentState] = []
        current = [start]

        def extra(state: LatentState, prev_action: Tensor) -> Tensor:
            if previous:
                guide = current[0]
                needs_teacher = self.per_step or self.from_teacher
                feat = self.teacher_feat(previous[0], prev_action) if needs_teacher else None
                if self.per_step:
                    assert feat is not None
                    new = self.select(feat, RSSM.feat(state))
                    self.switches += torch.tensor([float((new.positions != guide.positions).sum()),
                                                   float(new.positions.numel())])
                    current[0] = new
                else:
                    current[0] = Guide(guide.positions, feat)
                    self.switches[1] += guide.positions.numel()
            previous[:] = [state]
            return self.features(state, current[0], sample=True)

        return extra

    def switch_rate(self) -> float:
        """The share of imagined steps (after the start) whose k* differs from the previous step's, since the
        last call; 0 under ``held``."""
        changed, steps = self.switches.tolist()
        self.switches.zero_()
        return changed / steps if steps else 0.0
