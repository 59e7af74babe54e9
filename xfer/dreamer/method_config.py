"""Config pieces shared by the Dreamer-based methods (``dreamer``, Vid2Act's Stage 2, CoWorld): the training
schedule of :mod:`xfer.dreamer.loop`. Pydantic only — importing this module never imports torch, so method
config models can use it at recipe-validation time.

Counting convention (DreamerV2's): ``env_steps``, ``prefill``, ``train_every`` and the recipe's
``eval.every`` count *environment steps*, i.e. simulator frames: one agent step with action repeat R is R
environment steps. In offline mode the loop's step is the gradient update, and ``eval.every`` /
``checkpoint.every`` / ``logging.every`` count updates.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TrainSchedule(BaseModel):
    """When the Dreamer loops act, update, and for how long (DreamerV2 defaults, batch 16 × 50)."""

    model_config = ConfigDict(extra="forbid")

    env_steps: int = Field(300_000, ge=1, description="online: environment steps (frames) to train for")
    prefill: int = Field(5000, ge=0, description="online: environment steps of uniform random actions first")
    pretrain: int = Field(100, ge=0, description="online: updates once the prefill is done")
    train_every: int = Field(5, ge=1, description="online: environment steps per round of updates")
    train_steps: int = Field(1, ge=1, description="online: updates per round")
    envs: int = Field(1, ge=1, description="online: parallel training environments")
    replay_capacity: int | None = Field(
        None, ge=1, description="online: sample only the newest episodes holding this many steps (None: all)")
    sampling: Literal["uniform", "ends", "stream"] = Field(
        "uniform", description="online replay sequences: uniform over windows inside episodes; ends = "
        "DreamerV2 code's prioritize_ends (each last window length + 1 times); stream = across episode "
        "boundaries, every row alike (sheeprl's sequential buffer)")
    updates: int = Field(100_000, ge=1, description="offline: gradient updates to train for")
    batch: int = Field(16, ge=1, description="B: sequences per batch")
    seq_len: int = Field(50, ge=2, description="L: steps per sequence")
    eval_episodes: int | None = Field(None, ge=1, description="episodes per evaluation (None: eval.episodes)")

    def updates_due(self, env_steps: int) -> int:
        """How many updates an online run should have made after ``env_steps``: none during the prefill,
        then ``pretrain`` at once and ``train_steps`` every ``train_every`` environment steps."""
        if env_steps < self.prefill or env_steps == 0:
            return 0
        return self.pretrain + (env_steps - self.prefill) // self.train_every * self.train_steps
