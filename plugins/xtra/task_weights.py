"""Periodic task re-weighting of XTRA (Xu et al. 2023, Sec. 3.2, Eq. 2 and Appendix B, Eq. 4).

Eq. 2: Sim(M^i, M) = G^i . G / (|G^i| |G|), the cosine between the gradient of the offline task's
EfficientZero loss and that of the target task, both over all trainable parameters.

Appendix B: training steps are grouped into T-step cycles. During the first N steps of a cycle each
offline task keeps a counter s^i, incremented when Sim > 0.1 (Eq. 4); after these N steps
eta^i = s^i / N holds for the rest of the cycle and the first N steps of the next one. All weights are
1 before the warm-up (10k steps). As in the authors' released finetuning code, cycles are aligned to step
0 (counting happens at steps s with s % T < N and s >= warm-up) and the new weights apply from step
s % T == N on; with the paper's values (warm-up a multiple of T) this is exactly the paper's schedule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


def cosine_similarities(target_grad: torch.Tensor, task_grads: Sequence[torch.Tensor],
                        eps: float = 1e-12) -> np.ndarray:
    """Eq. 2 for every offline task: cos between each flat task gradient and the flat target gradient."""
    target = target_grad.detach().double()
    norm_t = target.norm()
    sims = []
    for grad in task_grads:
        g = grad.detach().double()
        sims.append(float((g @ target) / (g.norm() * norm_t).clamp_min(eps)))
    return np.asarray(sims, dtype=np.float64)


class TaskWeightSchedule:
    """eta_i for ``m`` offline tasks over finetuning steps (Appendix B).

    Call :meth:`counting` before a step to know whether similarities are needed, :meth:`observe` with
    them, then read :attr:`weights` for the loss of that step. ``enabled=False`` keeps eta = 1 (the
    "w.o. task weights" ablation).
    """

    def __init__(self, num_tasks: int, cycle: int = 5000, count_steps: int = 500, threshold: float = 0.1,
                 warmup: int = 10_000, enabled: bool = True) -> None:
        if count_steps > cycle:
            raise ValueError(f"count_steps ({count_steps}) must not exceed cycle ({cycle})")
        self.num_tasks, self.cycle, self.count_steps = num_tasks, cycle, count_steps
        self.threshold, self.warmup, self.enabled = threshold, warmup, enabled
        self.weights = np.ones(num_tasks, dtype=np.float64)
        self.counts = np.zeros(num_tasks, dtype=np.int64)
        self.last_similarities = np.full(num_tasks, np.nan)

    def counting(self, step: int) -> bool:
        """Whether ``step`` lies in the counting window of a cycle past the warm-up."""
        return self.enabled and step >= self.warmup and step % self.cycle < self.count_steps

    def observe(self, step: int, similarities: np.ndarray) -> None:
        """Eq. 4: s^i += 1 where Sim > threshold; at the window's last step set eta = s / N and reset s."""
        if not self.counting(step):
            raise ValueError(f"step {step} is not a counting step of the task-weight schedule")
        sims = np.asarray(similarities, dtype=np.float64)
        if sims.shape != (self.num_tasks,):
            raise ValueError(f"expected {self.num_tasks} similarities, got shape {sims.shape}")
        self.last_similarities = sims
        if step % self.cycle == 0:
            self.counts[:] = 0  # a fresh cycle (also after a partially observed one)
        self.counts += sims > self.threshold
        if step % self.cycle == self.count_steps - 1:
            self.weights = self.counts / self.count_steps
            self.counts[:] = 0

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.weights.copy(), "counts": self.counts.copy(),
                "last_similarities": self.last_similarities.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.weights = np.asarray(state["weights"], dtype=np.float64).copy()
        self.counts = np.asarray(state["counts"], dtype=np.int64).copy()
        self.last_similarities = np.asarray(state["last_similarities"], dtype=np.float64).copy()
