"""The ``vid2act:`` recipe section (pydantic only: importing this never imports torch).

Sections, each validated with ``extra="forbid"`` so a misspelt key is named:

- ``model``: the DreamerV2 backbone (:class:`xfer.dreamer.config.DreamerConfig`, ``preset:`` + overrides),
  shared by the teacher and the student. They must share latent sizes: the teacher transits the *student's*
  state (Eq. 5) and the action-replay decoder reads the student's state (Eq. 8).
- ``pretrain`` (Stage 1, Eq. 1–4): gradient steps, batch shape, learning rates.
- ``transfer`` (Stage 2, Eq. 5–9): environment steps, the online schedule, α, β, the weight floor, the
  ablation switches of the paper's Fig. 6–7, and the switches between the paper's behaviour (every default)
  and the authors' code's (``student_state``, ``label_selection``, ``replay_input``, ``distill_reduction``,
  ``train_vae_in_transfer``).
- ``replay_vae``: sizes of the action replay model G_θ (the authors' code's sizes, see METHODS.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from xfer.dreamer.config import DreamerConfig
from xfer.dreamer.method_config import TrainSchedule


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _default_model() -> DreamerConfig:
    return DreamerConfig()


class PretrainConfig(_Strict):
    """Stage 1: the mixture world model F_φ (Eq. 1–2) and the action replay model G_θ (Eq. 3–4)."""

    steps: int = Field(200_000, ge=1, description="gradient steps (paper: 200k on Meta-World)")
    batch: int = Field(16, ge=1, description="sequences per batch, shared evenly among the source tasks")
    seq: int = Field(50, ge=2, description="sequence length")
    beta: float = Field(1.0, ge=0, description="β of Eq. 2 (KL scale of the teacher)")
    wm_lr: float | None = Field(None, gt=0, description="teacher learning rate (default: model.wm_lr)")
    vae_lr: float = Field(1e-3, gt=0, description="G_θ learning rate (BCQ's VAE default)")
    log_every: int = Field(1000, ge=1, description="log Stage 1 scalars every this many updates (Stage 2 "
                                                   "logs every recipe logging.every environment steps)")


class TransferConfig(_Strict):
    """Stage 2: the student world model with domain-selective distillation (Eq. 5–7) and behaviour learning
    with generative action replay (Eq. 8–9, Algorithm 1)."""

    env_steps: int = Field(300_000, ge=1, description="target environment steps (paper: 300k Meta-World)")
    schedule: TrainSchedule = Field(
        default_factory=TrainSchedule, description="the shared online loop's schedule (prefill, train_every, "
        "batch, seq_len, ...); its env_steps is transfer.env_steps")
    alpha: float = Field(
        1.0, ge=0, description="α of Eq. 7, the distillation weight. With distill_reduction: sum (default) "
        "it means what it means in the paper: L_distill is reduced like the backbone's other Eq. 7 terms")
    distill_reduction: Literal["sum", "mean"] = Field(
        "sum", description="reduction of ‖e_t − u_t^k‖² in Eq. 6. sum (paper): summed over features and k, "
        "averaged over batch and time exactly like the backbone's reconstruction and KL terms (which sum "
        "over their dimensions and average over batch and time), so α keeps Eq. 7's balance; mean "
        "(authors' code): also averaged over the F features, i.e. the paper's α/F")
    student_state: Literal["prior", "posterior"] = Field(
        "prior", description="the student state e_t of Eq. 5–6 in training. prior (paper, Sec. 4.3): the "
        "predicted state e_t ~ p(e_{t−1}, a_{t−1}); posterior (authors' code): the posterior. Acting always "
        "scores the posterior (Algorithm 1, line 19)")
    label_selection: Literal["per_step", "held"] = Field(
        "per_step", description="k* in imagination. per_step (paper, Algorithm 1 lines 9–11): re-selected by "
        "Eq. 5 at every imagined step; held (authors' code): the start state's k* for the whole horizon")
    replay_input: Literal["auto", "teacher", "student"] = Field(
        "auto", description="the state the frozen replay decoder D_θ2 reads (Eq. 8). teacher: the teacher's "
        "state s_t^{k*} transited from the student's e_{t−1} (the domain G_θ was trained on, Sec. 4.2–4.3); "
        "student: the student's e_t (the paper's notation G_θ(e_t, k) and the authors' code); auto: teacher, "
        "or student when train_vae_in_transfer trains G_θ on F_distill(teacher features)")
    beta: float = Field(1.0, ge=0, description="β of Eq. 7, the student's KL scale")
    weight_floor: float = Field(0.1, ge=0, lt=1, description="w_k ← max(floor, w_k), no renormalisation")
    uniform_weights: bool = Field(False, description="ablation (Fig. 6): w_k = 1/N, no learned selection")
    action_replay: bool = Field(True, description="ablation (Fig. 6): false = actor without G_θ's features")
    sources_subset: list[str] | None = Field(
        None, description="ablation (Fig. 7): use only these source tasks (names as in `sources`)")
    train_vae_in_transfer: bool = Field(
        False, description="false = G_θ frozen (paper, Sec. 4.4); true = keep training it in Stage 2 on "
        "F_distill(teacher posterior features of source batches), detached (authors' code)")
    teacher: Path | None = Field(
        None, description="skip Stage 1 and load this teacher (teacher.pt, or a run directory holding one)")

    @model_validator(mode="after")
    def _one_env_steps(self) -> TransferConfig:
        """``transfer.env_steps`` is the budget, the schedule's copy follows (resolved recipes hold both)."""
        given = self.schedule.env_steps if "env_steps" in self.schedule.model_fields_set else None
        if given is not None and given != self.env_steps:
            raise ValueError(f"transfer.schedule.env_steps ({given}) differs from transfer.env_steps "
                             f"({self.env_steps}); set transfer.env_steps only")
        self.schedule = self.schedule.model_copy(update={"env_steps": self.env_steps})
        return self

    @property
    def replay_from(self) -> Literal["teacher", "student"]:
        """``replay_input`` with ``auto`` resolved: the student's state when G_θ is trained on F_distill's
        output in Stage 2 (``train_vae_in_transfer``, authors' code), the teacher's otherwise."""
        if self.replay_input != "auto":
            return self.replay_input
        return "student" if self.train_vae_in_transfer else "teacher"


class ReplayVAEConfig(_Strict):
    """G_θ, BCQ-style (Fujimoto et al. 2019); defaults are the Vid2Act authors' sizes (METHODS.md)."""

    encoder_units: tuple[int, ...] = Field((750, 750), description="encoder MLP (s, a, k) → … → μ, log σ")
    decoder_units: tuple[int, ...] = Field(
        (750, 50), description="decoder MLP (s, z, k) → … → action; the last width is the actor's extra "
        "input")
    latent: int = Field(8, ge=1, description="size of z")
    log_std_min: float = -4.0
    log_std_max: float = 15.0
    z_clip: float = Field(0.5, gt=0, description="sampling draws z ~ N(0, I) clipped to [-clip, clip]")
    kl_weight: float = Field(
        1.0, ge=0, description="L_replay = MSE + kl_weight · KL: 1 is Eq. 4 (paper), 0.5 the authors' code "
        "(and BCQ's)")

    @model_validator(mode="after")
    def _units(self) -> ReplayVAEConfig:
        if not self.encoder_units or not self.decoder_units:
            raise ValueError("encoder_units and decoder_units need at least one layer each")
        return self


class Vid2ActConfig(_Strict):
    """The ``vid2act:`` section of a recipe."""

    model: DreamerConfig = Field(default_factory=_default_model)
    pretrain: PretrainConfig = Field(default_factory=PretrainConfig)
    transfer: TransferConfig = Field(default_factory=TransferConfig)
    replay_vae: ReplayVAEConfig = Field(default_factory=ReplayVAEConfig)
