"""DreamerV2 hyperparameters as one pydantic model, with named size presets.

Defaults are the DreamerV2 paper's values for continuous control (Hafner et al. 2021, Appendix "Hyper
Parameters", DMC column where Atari and DMC differ). A recipe may name a preset and override single fields::

    dreamer:
      preset: tiny
      horizon: 10

The preset is expanded first, then the explicit keys win (see :meth:`DreamerConfig._expand_preset`).
Presets (see ``PRESETS``):

- ``paper``: the defaults — CNN depth 48, GRU 600, 32×32 discrete latents, MLPs 4×400, DMC learning rates.
- ``paper_atari``: the paper's Atari column — KL scale 0.1, no free nats, discount loss ×5, γ 0.999,
  learning rates 2e-4 / 4e-5 / 1e-4.
- ``authors``: the PyTorch DreamerV2 port the Vid2Act and CoWorld authors built on — GRU 200, continuous 50-d
  latent, CNN depth 32, reward MLP 2 layers, critic 3, actor 4, no discount head, no weight decay.
- ``small``: sheeprl's small-state benchmark sizes — GRU 200, 16×16 latents, MLPs 2×256, CNN depth 32.
- ``cpu``: the pixel recipe for a 2-core CPU (recipes/dreamer_pixels_cpu.yaml) — CNN depth 16, GRU 200,
  16×16 discrete latents, MLPs 2×256. At depth 16 the convs no longer dominate a B 16 × L 32 update (36 GFLOP
  world model, 43 GFLOP imagination; ``small``'s depth 32 costs 122 GFLOP in the world model alone).
- ``cpu_dmc``: ``cpu``'s sizes with DreamerV2 code's DMC settings — Xavier-uniform (Keras) initialisation
  and no discount head (its ``dmc_vision`` config), the critic at 3e-4 with its target copied every 25
  updates, bf16 and torch.compile. The model of recipes/dreamer_swingup_cpu.yaml, level with sheeprl 0.8.4
  there (benchmarks/results/dreamer_pixels/README.md).
- ``tiny``: for tests and the quickstart — CNN depth 8, GRU 32, 4×4 latents, MLPs 1×32.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from xfer.presets import expand_preset

_CPU_SIZES: dict[str, Any] = {
    "deter": 200, "hidden": 200, "stoch": 16, "classes": 16, "cnn_depth": 16, "mlp_units": 256,
    "mlp_layers": 2, "reward_layers": 2, "discount_layers": 2, "actor_layers": 2, "critic_layers": 2,
}

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "paper_atari": {
        "kl_free": 0.0, "kl_scale": 0.1, "discount_scale": 5.0, "discount": 0.999,
        "wm_lr": 2e-4, "actor_lr": 4e-5, "critic_lr": 1e-4,
    },
    "authors": {
        "deter": 200, "hidden": 200, "stoch": 50, "classes": 0, "cnn_depth": 32,
        "reward_layers": 2, "critic_layers": 3, "actor_layers": 4, "predict_discount": False,
        "weight_decay": 0.0,
    },
    "small": {**_CPU_SIZES, "cnn_depth": 32},
    "cpu": _CPU_SIZES,
    "cpu_dmc": {
        **_CPU_SIZES, "init": "glorot", "predict_discount": False, "critic_lr": 3e-4, "slow_critic_every": 25,
        "amp": True, "compile": True,
    },
    "tiny": {
        "deter": 32, "hidden": 32, "stoch": 4, "classes": 4, "cnn_depth": 8, "mlp_units": 32,
        "mlp_layers": 1, "reward_layers": 1, "discount_layers": 1, "actor_layers": 1, "critic_layers": 1,
    },
}


PresetName = Literal["paper", "paper_atari", "authors", "small", "cpu", "cpu_dmc", "tiny"]


class DreamerConfig(BaseModel):
    """Every size, learning rate and coefficient of the DreamerV2 backbone."""

    model_config = ConfigDict(extra="forbid")

    preset: PresetName | None = Field(None, description="named preset expanded before the other keys")

    # observation encoder / decoder
    cnn_depth: int = Field(48, ge=1, description="channels of the first conv layer (doubling per layer)")
    encoder_kernels: tuple[int, ...] = (4, 4, 4, 4)
    decoder_kernels: tuple[int, ...] = (5, 5, 6, 6)
    mlp_units: int = Field(400, ge=1, description="width of every MLP (state codec and heads)")
    mlp_layers: int = Field(4, ge=0, description="hidden layers of the state-vector encoder and decoder")

    # RSSM
    deter: int = Field(600, ge=1, description="GRU state size")
    hidden: int = Field(600, ge=1, description="RSSM input/output layer width")
    stoch: int = Field(32, ge=1, description="latent variables (or Gaussian size when classes=0)")
    classes: int = Field(32, ge=0, description="classes per latent variable; 0 = continuous Gaussian latent")
    latent_min_std: float = Field(0.1, gt=0, description="min std of the Gaussian latent (classes=0)")
    gru_layer_norm: bool = True

    # heads
    reward_layers: int = Field(4, ge=0)
    discount_layers: int = Field(4, ge=0)
    actor_layers: int = Field(4, ge=0)
    critic_layers: int = Field(4, ge=0)
    predict_discount: bool = Field(True, description="learn a discount head (else γ everywhere)")
    actor_min_std: float = Field(0.1, gt=0)

    # world-model loss (Eq. 2, Algorithm 2)
    kl_balance: float = Field(0.8, ge=0, le=1, description="weight of the prior-training KL term")
    kl_free: float = Field(1.0, ge=0, description="free nats, applied to the batch-mean KL of each term")
    kl_scale: float = Field(1.0, ge=0, description="β, the KL loss scale")
    image_scale: float = 1.0
    state_scale: float = 1.0
    reward_scale: float = 1.0
    discount_scale: float = 1.0

    # behaviour (Eq. 4-6)
    horizon: int = Field(15, ge=1)
    discount: float = Field(0.99, gt=0, le=1, description="γ")
    return_lambda: float = Field(0.95, ge=0, le=1, description="λ of the λ-return")
    reinforce_fraction: float | None = Field(
        None, ge=0, le=1, description="ρ of Eq. 6: REINFORCE share of the actor gradient "
        "(None = 1 for discrete actions, 0 = dynamics backprop for continuous)")
    actor_entropy: float | None = Field(
        None, ge=0, description="η of Eq. 6 (None = 1e-3 for discrete actions, 1e-4 for continuous)")
    slow_critic_every: int = Field(100, ge=1, description="updates between target-critic copies")
    slow_critic_fraction: float = Field(1.0, gt=0, le=1, description="1 = hard copy")

    # offline-DV2 disagreement penalty (CoWorld's "Offline DV2" baseline)
    ensemble_size: int = Field(0, ge=0, description="one-step latent predictors; 0 = no penalty")
    ensemble_layers: int = Field(2, ge=0)
    ensemble_penalty: float = Field(1.0, ge=0, description="reward -= penalty · ensemble std")

    # optimisation
    init: Literal["torch", "glorot"] = Field(
        "torch", description="layer initialisation: torch = PyTorch's defaults; glorot = Xavier-uniform "
        "weights and zero biases (DreamerV2 code's Keras defaults, and sheeprl's)")
    wm_lr: float = Field(3e-4, gt=0)
    actor_lr: float = Field(8e-5, gt=0)
    critic_lr: float = Field(8e-5, gt=0)
    adam_eps: float = Field(1e-5, gt=0)
    grad_clip: float = Field(100.0, gt=0)
    weight_decay: float = Field(1e-6, ge=0, description="decoupled, params *= 1 - wd per update (DV2 code)")

    # performance switches
    compile: bool = Field(False, description=(
        "torch.compile the conv, MLP and GRU modules and the RSSM's step functions (CPU: needs a C++ "
        "compiler; the first updates take a minute longer)"))
    amp: bool = Field(False, description=(
        "bf16 autocast of the training passes, CUDA or CPU (fast on CPUs with AMX / AVX512-BF16); heads and "
        "latent distributions stay float32"))
    channels_last: bool = Field(True, description="channels-last memory format for the convs")
    optimizer_impl: Literal["auto", "foreach", "fused", "plain"] = Field(
        "auto", description="Adam kernel: auto = fused on CUDA, foreach on CPU")

    @model_validator(mode="before")
    @classmethod
    def _expand_preset(cls, data: Any) -> Any:
        return expand_preset(data, PRESETS)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> DreamerConfig:
        """``DreamerConfig.from_preset("tiny", horizon=5)``."""
        return cls.model_validate({"preset": name, **overrides})

    def entropy_scale(self, discrete: bool) -> float:
        """η of Eq. 6, resolved for the action space."""
        if self.actor_entropy is not None:
            return self.actor_entropy
        return 1e-3 if discrete else 1e-4

    def reinforce_weight(self, discrete: bool) -> float:
        """ρ of Eq. 6, resolved for the action space."""
        if self.reinforce_fraction is not None:
            return self.reinforce_fraction
        return 1.0 if discrete else 0.0
