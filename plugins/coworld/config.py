"""The ``coworld:`` recipe section (pydantic only: importing it never imports torch).

Defaults follow Table 7 of Wang et al. (CoWorld). ``preset`` picks the table's column — ``metaworld`` (also
for RoboDesk targets) or ``dmc`` — and explicit keys win over it::

    coworld:
      preset: dmc                  # β2 1.5, k 0.9, α 1, 2e4 target / 2e4 source iterations per round
      value_constraint_scale: 1.5  # the authors' code's α
      model: {preset: tiny}        # DreamerConfig preset + overrides (CoWorld's lrs and γ applied first)

Alternation counts. Algorithm 1 names the offline (target) loop K1 and the online (source) loop K2, while
Table 7 labels its rows "Source domain update iterations K1 = 2·10⁴" and "Target domain update iterations
K2 = 5·10⁴ (Meta-World) / 2·10⁴ (DMC)". xfer names the fields by role and takes the values by Table 7's row
names, which the authors' code confirms (per round: 5 × 10⁴ target updates, 2 × 10⁴ source environment
steps on Meta-World): ``target_iterations`` = Table 7's K2 (Algorithm 1's K1) counts target *updates*;
``source_iterations`` = Table 7's K1 (Algorithm 1's K2) counts source *environment steps*, with one source
update every ``train_every`` steps.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from xfer.dreamer.config import DreamerConfig
from xfer.presets import expand_preset

#: Table 7's two columns; ``source_warmup_steps`` from Appendix D (source pretraining of DV2 Finetune: 160k
#: steps Meta-World, 600k DMC; CoWorld trains as long as DV2 Finetune, Table 5); ``prefill`` from DreamerV2's
#: schedules (METHODS.md: 5000 Meta-World, 2500 DMC).
PRESETS: dict[str, dict[str, Any]] = {
    "metaworld": {"state_alignment_scale": 1.0, "reward_mix": 0.3, "value_constraint_scale": 2.0,
                  "target_iterations": 50_000, "source_iterations": 20_000, "source_warmup_steps": 160_000,
                  "prefill": 5000},
    "dmc": {"state_alignment_scale": 1.5, "reward_mix": 0.9, "value_constraint_scale": 1.0,
            "target_iterations": 20_000, "source_iterations": 20_000, "source_warmup_steps": 600_000,
            "prefill": 2500},
}

#: Table 7's world-model and behaviour settings, applied before the recipe's ``model:`` keys.
MODEL_DEFAULTS: dict[str, Any] = {"discount": 0.995, "wm_lr": 2e-4, "actor_lr": 4e-5, "critic_lr": 1e-4}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EtaConfig(Strict):
    """η of Eq. 5 (reward alignment): from ``start`` to ``floor`` over ``steps`` Stage B updates.

    The authors' code froze η at 1 (its counter never advanced): xfer's schedule really advances. Every
    source has its own η, advanced by its own Stage B updates only (Stage B starts for every source once all
    sources are warm and the first target phase has run). Section 3.2 ("η ... gradually decreases from 1 to
    0.1 throughout this training stage") is written for one source; with ``train_sources: selected`` a source
    trains only in the phases it is selected in, which no schedule can know in advance, so its η is sized for
    the whole co-training period: a source trained in m of the rounds − 1 source phases ends at
    η = 1 − 0.9·m/(rounds − 1). With ``train_sources: all`` each source's share is used instead."""

    start: float = Field(1.0, ge=0, le=1)
    floor: float = Field(0.1, ge=0, le=1, description="paper: 0.1 (the authors' code: 0.2, never reached)")
    steps: int | None = Field(None, ge=1, description="Stage B updates of one source from start to floor; "
                              "None = the source updates of the co-training period ((rounds − 1) × "
                              "source_iterations / train_every), divided by the number of sources when they "
                              "all train (multi_source.train_sources: all), so η reaches the floor at the "
                              "end of training")
    shape: Literal["linear", "cosine"] = "linear"


class StageSwitches(Strict):
    """Ablations (paper Fig. 10b): turn each stage off. All off = offline DreamerV2 beside an idle source."""

    state_alignment: bool = Field(True, description="Stage A, Eq. 3")
    reward_alignment: bool = Field(True, description="Stage B, Eq. 4-5")
    value_constraint: bool = Field(True, description="Stage C, Eq. 6")


class MultiSourceConfig(Strict):
    """Several ``sources:`` in the recipe turn on adaptive selection (Appendix C, Eq. 12). Appendix C step 1
    pretrains the target world model alone before any selection, so ``target_pretrain_updates`` must be > 0;
    step 2 measures the KL "at each training step in the target domain" with the target encoder e_φ."""

    train_sources: Literal["selected", "all"] = Field(
        "selected", description="which sources train online in a source phase: the one selected most often "
        "in the preceding target phase, or all of them")
    select_with: Literal["current", "pretrained"] = Field(
        "current", description="the target encoder the selection KL is measured with: current = e_φ at each "
        "target step (Appendix C step 2 as written; Stage A pulls it toward the source it selected, so the "
        "first choice tends to stay); pretrained = a frozen copy taken after the step-1 pretraining, before "
        "any alignment")


class CoWorldConfig(Strict):
    """Options of the ``coworld`` method (Table 7 defaults, ``preset`` = the table's column)."""

    preset: Literal["metaworld", "dmc"] | None = Field(
        "metaworld", description="Table 7 column: metaworld (Meta-World, RoboDesk) or dmc")

    # Stage A / B / C coefficients
    state_alignment_scale: float = Field(1.0, ge=0, description="β2 of Eq. 3 (1 Meta-World, 1.5 DMC)")
    reward_mix: float = Field(0.3, ge=0, le=1, description="k of Eq. 4 (0.3 Meta-World, 0.9 DMC)")
    eta: EtaConfig = Field(default_factory=EtaConfig)
    value_constraint_scale: float = Field(2.0, ge=0, description="α of Eq. 6 (2 Meta-World, 1 DMC; code 1.5)")
    value_constraint_variant: Literal["min_max", "without_max"] = Field(
        "min_max", description="min_max: Eq. 6, α·max(v_tg, sg(v_src)); without_max: Fig. 5(b)'s 'CoWorld "
        "w/o Max' (Section 4.5), α·v_tg on every imagined state, the source critic unused")
    stages: StageSwitches = Field(default_factory=StageSwitches)

    # schedule (Algorithm 1)
    source_warmup_steps: int = Field(160_000, ge=0, description="environment steps of plain DreamerV2 per "
                                     "source before co-training (Algorithm 1 line 3)")
    source_init_from: list[Path] | None = Field(
        None, description="one finished dreamer run per source (same task, env settings and model sizes): "
        "its agent and replay are that source's warm-up, which this run then skips (the pretraining DV2 "
        "Finetune starts from, spent once); source_warmup_steps, prefill and pretrain are then unused")
    target_pretrain_updates: int = Field(
        0, ge=0, description="world-model-only target updates (no alignment) before co-training (Appendix C "
        "step 1; the authors' code does 2e4); required > 0 with several sources, whose selection compares "
        "encoders")
    target_iterations: int = Field(
        50_000, ge=1, description="counts UPDATES: target world-model + actor-critic updates on offline "
        "batches per round (Table 7's K2 'Target domain update iterations', 5e4 Meta-World / 2e4 DMC; "
        "Algorithm 1 calls this loop K1). The target has no environment; it takes no environment steps")
    source_iterations: int = Field(
        20_000, ge=1, description="counts ENVIRONMENT STEPS: source simulator steps per round (Table 7's K1 "
        "'Source domain update iterations', 2e4; Algorithm 1 calls this loop K2; the authors' code counts "
        "environment steps here); the source updates once every train_every steps, i.e. "
        "source_iterations / train_every updates per round")
    rounds: int = Field(6, ge=1, description="alternations of target and source phases (authors' code: 6)")

    # DreamerV2 training shapes (Table 7: batch 50 × length 50)
    batch_size: int = Field(50, ge=1)
    batch_length: int = Field(50, ge=2)
    train_every: int = Field(5, ge=1, description="source environment steps per source update")
    prefill: int = Field(5000, ge=0, description="random source steps before the source's first update")
    replay_capacity: int = Field(2_000_000, ge=1, description="source replay size in steps (Table 7: 2e6)")
    pretrain: int = Field(100, ge=0, description="source updates right after the prefill (DreamerV2)")
    envs: int = Field(1, ge=1, description="parallel training environments per source")
    eval_episodes: int | None = Field(
        None, ge=1, description="target evaluation episodes (None: recipe eval.episodes); each also logs "
        "value estimates vs true discounted returns (Fig. 5b)")

    model: DreamerConfig = Field(default_factory=lambda: DreamerConfig.model_validate(MODEL_DEFAULTS))
    multi_source: MultiSourceConfig = Field(default_factory=MultiSourceConfig)

    @model_validator(mode="before")
    @classmethod
    def _expand_preset(cls, data: Any) -> Any:
        return expand_preset(data, PRESETS, default="metaworld")

    @field_validator("model", mode="before")
    @classmethod
    def _model_defaults(cls, value: Any) -> Any:
        """CoWorld's Table 7 learning rates and γ first, then the recipe's keys (a DreamerConfig preset's own
        values for these keys are overridden by Table 7 unless the recipe names them)."""
        if isinstance(value, dict):
            return {**MODEL_DEFAULTS, **value}
        return value

    def eta_steps(self, sources: int = 1) -> int:
        """Length of one source's η schedule in its own Stage B updates (see :class:`EtaConfig`)."""
        if self.eta.steps is not None:
            return self.eta.steps
        updates = (self.rounds - 1) * self.source_iterations // self.train_every
        if sources > 1 and self.multi_source.train_sources == "all":
            updates //= sources
        return max(1, updates)
