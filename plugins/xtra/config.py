"""Options of the ``xtra`` method (Xu et al. 2023): Stage 1 pretraining, Stage 2 finetuning, ablations.

Importable without torch (pydantic only), so ``xfer validate`` stays fast. Defaults are the paper's
(Table 4, Sec. 3.2, Appendix B, D); where the paper is silent the value is marked "xfer".
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.loop import SelfPlaySettings


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskWeightSettings(Strict):
    """Periodic task re-weighting (Eq. 2, Appendix B): cycles of ``cycle`` training steps."""

    enabled: bool = Field(True, description="false: the 'w.o. task weights' ablation (eta = 1 throughout)")
    cycle: int = Field(5000, ge=1, description="T: steps per re-weighting cycle")
    count_steps: int = Field(500, ge=1, description="N: first steps of a cycle that count cos > threshold")
    threshold: float = Field(0.1, ge=-1, le=1, description="cosine similarity counted as aligned")
    warmup: int = Field(10_000, ge=0, description="weights stay 1 before this many finetuning steps")

    @model_validator(mode="after")
    def _check(self) -> TaskWeightSettings:
        if self.count_steps > self.cycle:
            raise ValueError(f"count_steps ({self.count_steps}) must not exceed cycle ({self.cycle})")
        return self


class PretrainSettings(Strict):
    """Stage 1 (Sec. 3.1): offline teachers per game, then a multi-task student distilled from them."""

    teacher_steps: int = Field(100_000, ge=1, description="offline RL updates per teacher (xfer)")
    distill_steps: int = Field(100_000, ge=1, description="student distillation updates (xfer)")
    distill_value: Literal["nstep", "network"] = Field(
        "nstep", description="value targets: n-step returns bootstrapped by the teacher, or its prediction")
    distill_policy: Literal["mcts", "network"] = Field(
        "mcts", description="policy targets: the teacher's search visits (Reanalyze), or its prediction")
    teacher_reanalyse_noise: bool = Field(True, description="root noise in the teachers' reanalyse search")
    log_every: int = Field(100, ge=1, description="log Stage 1 losses every this many updates")


class FinetuneSettings(Strict):
    """Stage 2 (Sec. 3.2, Eq. 1): concurrent online finetuning on the target plus offline batches."""

    cross_task: bool = Field(True, description="false: 'w.o. cross-task' ablation (plain finetuning)")
    offline_batch_size: int | None = Field(
        None, ge=1, description="offline samples per step over all games, B/n each (default: the target B)")
    loss_normalisation: Literal["code", "paper"] = Field(
        "code", description="code: the authors' mean over the joint batch (App. D: 1:1, 2x effective "
                            "batch), (B_t L_t + sum eta_i B_i L_i) / (B_t + sum B_i); paper: Eq. 1 read "
                            "literally, L_t + sum eta_i L_i")
    offline_targets: Literal["reanalyse", "stored"] = Field(
        "reanalyse", description="offline policy targets: a fresh search of the target network, or the "
                                 "search policies stored in the datasets (the authors' code; needs "
                                 "datasets with 'search_policy')")
    freeze_representation: bool = Field(False, description="true: keep the pretrained h fixed (Fig. 7b)")
    task_weights: TaskWeightSettings = Field(default_factory=TaskWeightSettings)
    reanalyse_workers: int = Field(
        0, ge=0, description="processes that build the next updates' targets (the target's and the offline "
                             "games' batches) ahead of the learner, as efficientzero.reanalyse_workers")


class XtraConfig(Strict):
    """The ``xtra`` recipe section. ``sources`` are the offline games, ``target`` the finetuning game."""

    model: EfficientZeroConfig = Field(
        default_factory=lambda: EfficientZeroConfig(preset="paper-L"),
        description="backbone settings; XTRA uses EfficientZero-L (4 representation blocks, Sec. 4)")
    selfplay: SelfPlaySettings = Field(default_factory=SelfPlaySettings)
    pretrain: bool = Field(True, description="false: 'w.o. pretraining' ablation (random initialisation)")
    pretrained: Path | None = Field(
        None, description="skip Stage 1: a run directory or checkpoint of an xtra run with a student")
    stage1: PretrainSettings = Field(default_factory=PretrainSettings)
    finetune: FinetuneSettings = Field(default_factory=FinetuneSettings)
    zero_shot_eval: bool = Field(True, description="evaluate the pretrained student on the target before "
                                                   "finetuning (Table 1, zero-shot column)")
    pretrain_only: bool = Field(False, description="stop after Stage 1 (share one student)")
