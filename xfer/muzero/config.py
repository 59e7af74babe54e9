"""Settings of the EfficientZero backbone, with the XTRA paper's values as defaults.

Defaults follow XTRA Table 4 (Appendix I), which adopts EfficientZero's hyper-parameters, and the
architecture of Appendix H. Where the paper is silent the value is EfficientZero's public Atari config
(``config/atari/__init__.py`` and ``core/config.py`` of YeWR/EfficientZero), marked "EZ code".

Presets: ``paper`` (EfficientZero), ``paper-L`` (4 residual blocks in the representation network,
Appendix H) and ``tiny`` (for tests and CPU smoke runs). A preset is expanded before validation, so a
recipe may say ``preset: tiny`` and still override single fields.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from xfer.presets import expand_preset

PresetName = Literal["tiny", "tiny-cpu", "tiny-mlp", "cartpole", "atari-cpu", "paper", "paper-L"]

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "paper-L": {"repr_blocks": 4},
    "tiny": {
        "image_size": 32,
        "channels": 8,
        "reduced_channels": 4,
        "head_hidden": 16,
        "lstm_hidden": 16,
        "proj_hidden": 32,
        "proj_out": 32,
        "pred_hidden": 16,
        "support_size": 30,
        "num_simulations": 8,
        "batch_size": 8,
        "lr_warmup_steps": 10,
        "lr_decay_steps": 1000,
        "training_steps": 1000,
        "replay_capacity": 10_000,
        "min_replay_size": 16,
    },
}
# What makes EfficientZero learn in minutes on one CPU thread (issue 13, measured on a 4-action cue bandit;
# see the README): one-hot action planes, Adam at 3e-3 (LightZero's classic-control optimiser), batches of
# 32, g/f batch-norm statistics from the first unroll step, a single frame.
_CPU_TRAINING = {"frame_stack": 1, "batch_size": 32, "optimizer": "adam", "lr": 0.003,
                 "action_encoding": "one_hot", "model_bn_stats": "first"}
# ``tiny``'s 8-plane latent (1x1 at 16x16 inputs) and 4-feature reward path fit the bandit's 4x4 reward
# table only slowly (on fixed random-play data, 400 updates: right 1.17 vs wrong 1.05 with the reward loss
# alone); 32 planes, 16 reduced channels, LSTM 64 and heads 32 separate it (1.54 vs 0.49) at ~1.4x the time.
PRESETS["tiny-cpu"] = {**PRESETS["tiny"], **_CPU_TRAINING, "channels": 32, "reduced_channels": 16,
                       "lstm_hidden": 64, "head_hidden": 32}
# State vectors: the MLP networks at test size, and LightZero's CartPole widths (latent and LSTM 128).
_TINY_CPU = {**PRESETS["tiny"], **_CPU_TRAINING}
PRESETS["tiny-mlp"] = {**_TINY_CPU, "network": "mlp", "latent_dim": 32, "mlp_hidden": 64}
PRESETS["cartpole"] = {**_TINY_CPU, "network": "mlp", "latent_dim": 128, "mlp_hidden": 128,
                       "lstm_hidden": 128, "head_hidden": 32, "proj_hidden": 128, "proj_out": 128,
                       "pred_hidden": 64, "num_simulations": 25, "batch_size": 64, "discount": 0.997}
# Atari on a 2-core CPU (recipes/efficientzero_atari_cpu.yaml): 64x64 gray frames, 4 stacked (the latent is
# 4x4), EfficientZero's gray width halved again (32 planes), the CPU training settings above; 50 simulations
# and LightZero's Atari replay (uniform, policy targets from the stored self-play visit counts), the target
# network every 50 updates (a run here has ~2.6k updates, EfficientZero's 100k refresh every 200), bf16
# learner. These made Krull learn (benchmarks/results/efficientzero_atari/); with 16 simulations, reanalysed
# policy targets, prioritised replay and the target every 200 no game learned at this budget.
PRESETS["atari-cpu"] = {**_CPU_TRAINING, "frame_stack": 4, "image_size": 64, "image_channels": 1,
                        "channels": 32, "reduced_channels": 16, "head_hidden": 32, "lstm_hidden": 128,
                        "proj_hidden": 256, "proj_out": 256, "pred_hidden": 128, "num_simulations": 50,
                        "batch_size": 64, "lr_warmup_steps": 100, "replay_capacity": 100_000,
                        "min_replay_size": 1000, "priority_alpha": 0.0, "reanalyse_policy_ratio": 0.0,
                        "target_update_interval": 50, "amp": True}


class EfficientZeroConfig(BaseModel):
    """EfficientZero network, search and training settings (XTRA Appendix H and Table 4)."""

    model_config = ConfigDict(extra="forbid")

    preset: PresetName | None = Field(None, description="Named size preset, expanded before other fields.")

    # Observations (Table 4): 96x96 RGB, 4 stacked frames; the full 18-action Atari head (Appendix J).
    image_size: int = Field(96, ge=16)
    image_channels: int = Field(3, ge=1)
    frame_stack: int = Field(4, ge=1)
    n_actions: int = Field(18, ge=2)

    # State vectors (xfer; EZ and LightZero ship an MLP variant for classic control): ``network: mlp``.
    network: Literal["conv", "mlp"] = Field("conv", description="conv for images, mlp for state vectors; "
                                                                "runs pick it from the observation space")
    state_dim: int = Field(4, ge=1, description="Length of one state vector (mlp); runs read it from the env")
    latent_dim: int = Field(64, ge=2, description="Latent width of the mlp networks.")
    mlp_hidden: int = Field(128, ge=1, description="Hidden width of the mlp representation.")

    # Architecture (Appendix H; hidden sizes of the heads and projector from EZ code).
    channels: int = Field(64, ge=2, description="Planes of the latent state.")
    repr_blocks: int = Field(1, ge=1, description="Residual blocks after downsampling; 4 in EfficientZero-L.")
    dyn_blocks: int = Field(1, ge=1)
    pred_blocks: int = Field(1, ge=1)
    reduced_channels: int = Field(16, ge=1, description="1x1-conv planes of the value, policy, reward heads.")
    head_hidden: int = Field(32, ge=1, description="Hidden units of the value/policy/reward MLP heads.")
    lstm_hidden: int = Field(512, ge=1, description="Value-prefix LSTM width.")
    proj_hidden: int = Field(1024, ge=1, description="SimSiam projector hidden width (EZ code).")
    proj_out: int = Field(1024, ge=1, description="SimSiam projector output width (EZ code).")
    pred_hidden: int = Field(512, ge=1, description="SimSiam prediction-head hidden width (EZ code).")
    support_size: int = Field(300, ge=1, description="Support is [-n, n]: 601 bins at n=300.")
    bn_momentum: float = Field(0.1, gt=0, le=1)
    model_bn_stats: Literal["all", "first", "search"] = Field(
        "all", description="Batch-norm running statistics of g and f from every unroll step (EZ code) or "
                           "from the first only (xfer): search then normalises a step like training does; "
                           "search: later steps also trained with those running statistics (xfer)")
    action_encoding: Literal["plane", "one_hot"] = Field(
        "plane", description="Action input of g: one plane a/|A| (EZ code) or a plane per action (LightZero)")
    init_zero: bool = Field(True, description="Zero-init the last layer of every head (EZ code).")

    # Speed (xfer; the switches of the Dreamer backbone). Neither changes parameter names or checkpoints.
    compile: bool = Field(False, description="torch.compile the representation, dynamics and prediction "
                                             "networks")
    amp: bool = Field(False, description="bf16 autocast: the learner's forward (CUDA and CPU) and every "
                      "inference (CUDA only)")

    # Search (MuZero Appendix B; Table 4).
    num_simulations: int = Field(50, ge=1)
    discount: float = Field(0.997**4, gt=0, le=1, description="Per agent step: 0.997 per frame, skip 4.")
    pb_c_base: float = 19652.0
    pb_c_init: float = 1.25
    dirichlet_alpha: float = Field(0.3, gt=0)
    exploration_fraction: float = Field(0.25, ge=0, le=1)
    value_delta_max: float = Field(0.01, ge=0, description="Soft min-max normalisation floor (EZ code).")
    lstm_horizon: int = Field(5, ge=1, description="Value prefix reset every this many steps (zeta).")

    # Training (Table 4).
    batch_size: int = Field(256, ge=1)
    unroll_steps: int = Field(5, ge=1)
    td_steps: int = Field(5, ge=1)
    value_loss_coeff: float = 0.25
    policy_loss_coeff: float = 1.0
    reward_loss_coeff: float = 1.0
    consistency_coeff: float = 2.0
    dynamics_grad_scale: float = Field(0.5, ge=0, le=1, description="MuZero's gradient scale on latents.")
    optimizer: Literal["sgd", "adam"] = Field(
        "sgd", description="SGD with momentum (EZ) or Adam (LightZero's classic-control configs)")
    lr: float = Field(0.2, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(1e-4, ge=0)
    lr_warmup_steps: int = Field(1000, ge=0, description="Linear warm-up: 1% of 100k steps (EZ code).")
    lr_decay_rate: float = Field(0.1, gt=0, le=1)
    lr_decay_steps: int = Field(100_000, ge=1, description="Step decay every this many steps: 0.2 -> 0.02.")
    max_grad_norm: float = Field(5.0, gt=0)
    target_update_interval: int = Field(200, ge=1)
    augment_shift: int = Field(4, ge=0, description="Random-shift pixels for the consistency views (EZ).")
    augment_intensity: float = Field(0.05, ge=0, description="Random-intensity scale after the shift (EZ).")
    training_steps: int = Field(100_000, ge=1, description="For the priority-beta anneal.")

    # Prioritised replay and reanalyse (Table 4).
    replay_capacity: int = Field(100_000, ge=1, description="Transitions kept; oldest games evicted first.")
    min_replay_size: int = Field(2000, ge=1)
    priority_alpha: float = Field(0.6, ge=0)
    priority_beta_start: float = Field(0.4, ge=0, le=1)
    priority_beta_end: float = Field(1.0, ge=0, le=1)
    priority_eps: float = Field(1e-6, gt=0)
    new_priority: Literal["buffer_max", "ever_max"] = Field(
        "buffer_max", description="priority of new games: the largest stored now (EZ code) or the largest "
                                  "ever seen (xfer before; early value errors then keep it high for the run)")
    reanalyse_policy_ratio: float = Field(1.0, ge=0, le=1, description="Fraction of policy targets by MCTS.")
    off_policy_correction: bool = Field(True, description="Shorter TD horizons for older data (EZ Sec. 4.3).")
    auto_td_ratio: float = Field(0.3, gt=0, description="EZ code's auto_td_steps_ratio: one step shorter "
                                                         "per ratio * training_steps newer transitions")

    @model_validator(mode="before")
    @classmethod
    def _expand_preset(cls, data: Any) -> Any:
        """Fill fields from the named preset; fields given explicitly win."""
        return expand_preset(data, PRESETS)

    @model_validator(mode="after")
    def _check_consistency(self) -> EfficientZeroConfig:
        if self.lstm_horizon > self.unroll_steps:
            raise ValueError(f"lstm_horizon ({self.lstm_horizon}) must not exceed unroll_steps "
                             f"({self.unroll_steps}), as in EfficientZero")
        return self

    @property
    def frame_width(self) -> int:
        """Channels of one frame (conv) or length of one state vector (mlp)."""
        return self.state_dim if self.network == "mlp" else self.image_channels

    @property
    def obs_channels(self) -> int:
        """Input planes (or features, mlp) of the representation network: stacked frames times frame width."""
        return self.frame_stack * self.frame_width

    @property
    def support_bins(self) -> int:
        return 2 * self.support_size + 1

    @property
    def latent_size(self) -> int:
        """Side of the latent grid: four stride-2 stages (Appendix H), 96 -> 6."""
        side = self.image_size
        for _ in range(4):
            side = (side + 1) // 2
        return side
