"""Multi-source CoWorld: adaptive source-domain selection (Wang et al., Appendix C, Eq. 12).

Procedure (Appendix C), as xfer runs it:

1. *World-model pretraining*: every candidate source agent is warmed up online with plain DreamerV2 and the
   target world model is pretrained on the offline dataset alone, without alignment
   (``target_pretrain_updates``, required > 0 with several sources). No selection happens before this.
2. *Domain distance*: at every target training step the KL between the target encoder's latent
   g(e_φ(o^T)) and each source encoder's g(e_φ'_i(o^T)) on the same target batch is measured (the KL of
   Eq. 3, :func:`xfer_plugins.coworld.alignment.softmax_kl`). As written, e_φ is the current target
   encoder (``select_with: current``): once Stage A pulls it toward the source it selected, that source's
   KL falls further, so the first choice tends to stay (a probe kept one source in 13 of 13 selections).
   ``select_with: pretrained`` measures with a frozen copy of the target encoder taken right after step 1,
   before any alignment, so the choice follows the sources' encoders (which keep training online) and the
   batches, not the alignment it caused.
3. *Identification*: ω_t is one-hot on the source with the smallest KL.
4. *Rest of training*: Eq. 12 aligns the target to the selected source only, and the value constraint of
   Eq. 6 uses the selected source's critic. In each source phase the source selected most often during the
   preceding target phase is trained online (``train_sources: selected``) — or every source (``all``).

**gap** the authors' code never wired this up (METHODS.md); xfer implements it from the paper. The selection
is logged as ``coworld/selected_source`` (index), ``coworld/selected/<name>`` (share of the steps since
the last log line) and ``coworld/select_kl/<name>`` (the KL per source the choice read, averaged since the
last log line).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor


def select_closest(kls: Tensor) -> int:
    """ω of Appendix C step 3: the index of the smallest KL (ties go to the lower index)."""
    return int(torch.argmin(kls.detach()).item())


def one_hot_weights(index: int, count: int) -> Tensor:
    """ω as a one-hot vector [N] (Eq. 12)."""
    weights = torch.zeros(count)
    weights[index] = 1.0
    return weights


class SourceSelector:
    """Chooses the closest source at every target step and keeps the counts that are logged and that pick
    the source trained in the next source phase."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.current = 0
        self.window = [0] * len(self.names)  # selections since the last log line
        self.phase = [0] * len(self.names)  # selections during the current target phase
        self.total = [0] * len(self.names)

    def __call__(self, kls: Tensor) -> int:
        self.current = select_closest(kls)
        for counts in (self.window, self.phase, self.total):
            counts[self.current] += 1
        return self.current

    def phase_majority(self) -> int:
        """The source selected most often in the current target phase (the last selection if none)."""
        if not any(self.phase):
            return self.current
        return max(range(len(self.phase)), key=lambda i: (self.phase[i], -i))

    def start_phase(self) -> None:
        self.phase = [0] * len(self.names)

    def log_metrics(self) -> dict[str, float]:
        """``coworld/selected_source`` and the share of each source among the selections since the last call
        (then reset; no shares when there were none)."""
        seen = sum(self.window)
        metrics = {"coworld/selected_source": float(self.current)}
        if not seen:
            return metrics
        pairs = zip(self.names, self.window, strict=True)
        metrics.update({f"coworld/selected/{name}": count / seen for name, count in pairs})
        self.window = [0] * len(self.names)
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {"current": self.current, "window": list(self.window), "phase": list(self.phase),
                "total": list(self.total)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.current = int(state["current"])
        self.window = [int(v) for v in state["window"]]
        self.phase = [int(v) for v in state["phase"]]
        self.total = [int(v) for v in state["total"]]
