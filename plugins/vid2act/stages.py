"""Two stages in one run directory: a view of the :class:`~xfer.run.context.RunContext` per stage.

The shared Dreamer loops (:mod:`xfer.dreamer.loop`) count their own steps from 0 — updates offline,
environment steps online — and read ``ctx.restore()`` as their own state. Vid2Act runs Stage 1 (offline
pretraining) and Stage 2 (online transfer) in one run, so each stage gets a :class:`StageContext`:

- steps are shifted by the stage's ``offset`` wherever they reach the run (checkpoint names, ``metrics.jsonl``
  lines, ``should_stop``/``checkpoint_due``): the run's step is monotonic, ``pretrain.steps`` + environment
  steps in Stage 2, so resuming truncates exactly the lines written after the checkpoint, whichever stage;
- checkpoints are tagged ``{"stage": name, "state": …}``; ``restore()`` returns the state only when the
  checkpoint belongs to this stage (a Stage 2 that starts after a resumed Stage 1 starts fresh);
- Stage 1 may log at its own interval (``pretrain.log_every`` updates; the loops read
  ``recipe.logging.every``);
- counters passed to the logger (``env_steps``, ``updates``) are left as the loop gives them, so TensorBoard
  and ``xfer plot`` show Stage 2 against target environment steps, comparable with a ``dreamer`` run, and
  Stage 1 (an offline loop, no ``env_steps``) against its updates; Stage 1's metrics are all named
  ``pretrain/…`` so no TensorBoard tag mixes the two axes.

So ``xfer run --stop-after N`` and ``start_run(..., stop_at=N)`` take the run's step: N > ``pretrain.steps``
stops inside Stage 2 after N − ``pretrain.steps`` environment steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xfer.run.context import RunContext

PRETRAIN, TRANSFER = "pretrain", "transfer"


def checkpoint_stage(ctx: RunContext) -> str | None:
    """The stage of the checkpoint this run resumes from (None for a fresh run)."""
    saved = ctx.restore()
    return None if saved is None else str(saved["stage"])


class OffsetLogger:
    """The run's logger with the stage's step offset added to every ``log`` step and, for Stage 1, every
    metric name under ``pretrain/``: Stage 1 is plotted against its updates and Stage 2 against environment
    steps, so a name both stages log (the loop's ``perf/updates_per_s``) would draw one curve on two axes."""

    def __init__(self, logger: Any, offset: int, prefix: str = "") -> None:
        self._logger, self.offset, self.prefix = logger, offset, prefix

    def log(self, step: int, metrics: dict[str, Any], **counters: int) -> None:
        named = {(key if key.startswith(self.prefix) else self.prefix + key): value
                 for key, value in metrics.items()}
        self._logger.log(step + self.offset, named, **counters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger, name)


class StageContext:
    """``ctx`` as one stage's loop sees it (see the module docstring)."""

    def __init__(self, ctx: RunContext, stage: str, offset: int, log_every: int | None = None) -> None:
        self._ctx, self.stage, self.offset = ctx, stage, offset
        self.logger = OffsetLogger(ctx.logger, offset, prefix=f"{PRETRAIN}/" if stage == PRETRAIN else "")
        self.recipe = ctx.recipe
        if log_every is not None:  # the loops read recipe.logging.every
            logging = ctx.recipe.logging.model_copy(update={"every": log_every})
            self.recipe = ctx.recipe.model_copy(update={"logging": logging})

    def restore(self) -> dict[str, Any] | None:
        saved = self._ctx.restore()
        if saved is None or saved.get("stage") != self.stage:
            return None
        return saved["state"]

    def save(self, step: int, state: dict[str, Any]) -> Path:
        return self._ctx.save(step + self.offset, {"stage": self.stage, "state": state})

    def checkpoint_due(self, step: int) -> bool:
        return self._ctx.checkpoint_due(step + self.offset)

    def should_stop(self, step: int | None = None) -> bool:
        return self._ctx.should_stop(None if step is None else step + self.offset)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ctx, name)
