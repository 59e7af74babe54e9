"""The Stage 1 teacher of Vid2Act: the mixture world model F_φ (Eq. 1–2) with the action replay model G_θ
(Eq. 3–4), and its frozen-teacher file.

**gap** (METHODS.md): the authors' mixture pretraining script is stale and never passes the labels, so Stage 1
was not released in a working form. xfer implements it from the paper: one world model over all N source
datasets, conditioned on the one-hot task label k through the backbone's ``cond_dim`` seam (k as K constant
image channels at the encoder input, appended to [stoch, action] in the RSSM recurrence, concatenated to the
decoder's features — the authors' code's conditioning), trained on batches drawn evenly from the N tasks.

Eq. 2 has no reward term (the source data are reward-free): the teacher is the backbone's
:class:`~xfer.dreamer.world_model.WorldModel` with the reward loss scaled to 0, no discount head and no
ensemble, and β of Eq. 2 as its KL scale. Its action size is the largest of all source and target action
sizes; smaller actions are padded with zeros (:func:`pad_action`), so sources and target may differ. The
columns beyond the largest *source* action size (``source_act_dim``) are zero in every Stage 1 batch, so their
input weights never get a gradient and stay at their random initialisation; Stage 2 therefore zeroes them
before every teacher step (:meth:`MixtureTeacher.teacher_action`), so a target with more action dimensions
(DMC: quadruped's 12 against the sources' 6) does not feed the teacher noise through untrained weights.

The teacher file (``teacher.pt``) holds everything Stage 2 needs and nothing else: the source task names in
label order, the model and replay sizes, the observation shapes, the action sizes (the teacher's and the
largest source's) and both state dicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from xfer_plugins.vid2act.config import ReplayVAEConfig
from xfer_plugins.vid2act.replay_vae import ReplayVAE, one_hot

from xfer.dreamer.config import DreamerConfig
from xfer.dreamer.world_model import Batch, WorldModel, WorldModelOutputs
from xfer.errors import XferError
from xfer.nets.rssm import LatentState
from xfer.run.checkpoint import atomic_write

FORMAT = "xfer-vid2act-teacher"
FORMAT_VERSION = 2  # 2: source_act_dim (files of version 1 are read as unmasked)
TEACHER_FILE = "teacher.pt"


def pad_action(action: Tensor, size: int) -> Tensor:
    """Zero-pad the last axis of ``action`` to ``size`` (sources and target may differ in action size)."""
    missing = size - action.shape[-1]
    if missing < 0:
        raise XferError(f"an action of size {action.shape[-1]} does not fit the teacher's size {size}")
    return action if missing == 0 else torch.nn.functional.pad(action, (0, missing))


def teacher_model_config(model: DreamerConfig, beta: float, wm_lr: float | None = None) -> DreamerConfig:
    """The backbone configuration of F_φ: the shared sizes, Eq. 2's β as KL scale, no reward/discount loss."""
    update: dict[str, Any] = {"kl_scale": beta, "reward_scale": 0.0, "predict_discount": False,
                              "ensemble_size": 0}
    if wm_lr is not None:
        update["wm_lr"] = wm_lr
    return model.model_copy(update=update)


def shifted_previous(post: LatentState, action: Tensor, is_first: Tensor) -> tuple[LatentState, Tensor]:
    """For a [B, L] posterior sequence: the state each step t transits from, e_{t−1} (zeros at t = 0, the
    student's own initial state, and wherever ``is_first``), and the action a_{t−1} that led to step t
    (``action[:, t]`` in the batch convention, zeroed at ``is_first``)."""
    prev = post.map(lambda x: torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], 1))
    keep = (1.0 - is_first.float()).unsqueeze(-1)
    return prev.map(lambda x: x * keep), action.float() * keep


class MixtureTeacher(nn.Module):
    """F_φ (label-conditioned world model) and G_θ (replay VAE) over ``tasks`` (label k = position)."""

    def __init__(self, obs_shapes: Mapping[str, tuple[int, ...]], act_dim: int, model: DreamerConfig,
                 tasks: Sequence[str], replay_cfg: ReplayVAEConfig, source_act_dim: int | None = None
                 ) -> None:
        """``act_dim``: the teacher's (padded) action size; ``source_act_dim``: the largest source action
        size, recorded at Stage 1 (default ``act_dim``: no column is padding)."""
        super().__init__()
        if not tasks:
            raise XferError("Vid2Act needs at least one source task")
        source_act_dim = act_dim if source_act_dim is None else source_act_dim
        if not 1 <= source_act_dim <= act_dim:
            raise XferError(f"the source action size {source_act_dim} must lie in 1 … {act_dim}")
        self.obs_shapes = {key: tuple(shape) for key, shape in obs_shapes.items()}
        self.act_dim, self.model_cfg, self.tasks, self.replay_cfg = act_dim, model, list(tasks), replay_cfg
        self.source_act_dim = source_act_dim
        self.world_model = WorldModel(self.obs_shapes, act_dim, model, cond_dim=len(self.tasks))
        self.replay = ReplayVAE(self.world_model.feat_dim, act_dim, len(self.tasks), replay_cfg)

    @property
    def num_labels(self) -> int:
        return len(self.tasks)

    @property
    def feat_dim(self) -> int:
        return self.world_model.feat_dim

    def labels(self, index: Tensor) -> Tensor:
        """One-hot k for integer labels [...]."""
        return one_hot(index, self.num_labels)

    # -- Stage 1 losses --------------------------------------------------------------------------------------
    def observe(self, batch: Batch) -> WorldModelOutputs:
        """Posterior states of a labelled batch (``cond`` [B, K] one-hot), actions zero-padded."""
        action = pad_action(batch["action"].float(), self.act_dim)
        return self.world_model.observe({**batch, "action": action})

    def world_model_loss(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor], WorldModelOutputs]:
        """Eq. 2 on a labelled batch (``cond`` [B, K] one-hot): −ln p(ô_t | s_t, k) + β·KL[q ‖ p] (the
        backbone's balanced KL and free nats; reward and discount terms are off, see the module docstring)."""
        batch = {**batch, "action": pad_action(batch["action"].float(), self.act_dim)}
        return self.world_model.loss(batch)

    def replay_loss(self, out: WorldModelOutputs, batch: Batch, feat: Tensor | None = None
                    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Eq. 4 on the mixture model's posterior states ``out.feat`` (or on ``feat`` [B, L, F], e.g. the
        authors' code's F_distill(teacher features) in Stage 2), detached: the pair (s_t, a) uses the action
        taken *from* s_t, which is ``action[:, t+1]`` in the batch convention; rows whose next step starts a
        new episode have no such action and are masked out."""
        feat = (out.feat if feat is None else feat).detach()[:, :-1]
        action = pad_action(batch["action"].float(), self.act_dim)[:, 1:]
        label = out.cond[:, :-1] if out.cond is not None else None
        if label is None:
            raise XferError("the replay VAE needs labelled batches (cond)")
        mask = 1.0 - batch["is_first"].float()[:, 1:]
        return self.replay.loss(feat, action, label, mask)

    # -- Stage 2 -------------------------------------------------------------------------------------------
    def teacher_action(self, action: Tensor) -> Tensor:
        """A target action as the teacher's RSSM reads it: zero-padded to ``act_dim``, and the columns no
        source action filled (≥ ``source_act_dim``, never trained in Stage 1) set to 0."""
        action = pad_action(action.float(), self.act_dim)
        if self.source_act_dim == self.act_dim:
            return action
        return torch.cat([action[..., :self.source_act_dim],
                          action.new_zeros(*action.shape[:-1], self.act_dim - self.source_act_dim)], -1)

    @torch.no_grad()
    def transit(self, prev: LatentState, prev_action: Tensor, labels: Sequence[int]) -> LatentState:
        """Eq. 5's {s_t^k ~ p(e_{t−1}, a_{t−1}, k; φ)}: one prior step of the teacher's RSSM from the
        *student's* previous state under each label in ``labels``. ``prev`` [...], ``prev_action``
        [..., A ≤ act_dim] (through :meth:`teacher_action`) → states [K, ...] (K = len(labels)), without a
        graph."""
        action = self.teacher_action(prev_action)
        count = len(labels)
        index = torch.as_tensor(list(labels), device=action.device)
        cond = self.labels(index).view(count, *([1] * (action.dim() - 1)), self.num_labels)
        cond = cond.expand(count, *action.shape[:-1], self.num_labels)
        stacked = prev.map(lambda x: x.unsqueeze(0).expand(count, *x.shape))
        action = action.unsqueeze(0).expand(count, *action.shape)
        return self.world_model.rssm.img_step(stacked, action, cond)

    # -- the teacher file ----------------------------------------------------------------------------------
    def save(self, path: Path, **meta: Any) -> Path:
        """Write the frozen-teacher file atomically."""
        payload = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "tasks": self.tasks,
            "obs_shapes": {key: list(shape) for key, shape in self.obs_shapes.items()},
            "act_dim": self.act_dim, "source_act_dim": self.source_act_dim,
            "model": self.model_cfg.model_dump(mode="json"),
            "replay_vae": self.replay_cfg.model_dump(mode="json"),
            "world_model": self.world_model.state_dict(), "replay": self.replay.state_dict(), "meta": meta,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda f: torch.save(payload, f))
        return path

    @classmethod
    def load(cls, path: Path, device: torch.device | str = "cpu") -> MixtureTeacher:
        """Read a teacher file (``teacher.pt`` or a run directory holding one), frozen and in eval mode."""
        path = Path(path)
        if path.is_dir():
            path = path / TEACHER_FILE
        if not path.is_file():
            raise XferError(f"no Vid2Act teacher at {str(path)!r}",
                            hint="run Stage 1 first (a vid2act run writes teacher.pt into its run directory)")
        try:
            data = torch.load(path, map_location=device, weights_only=True)
        except Exception as err:
            raise XferError(f"teacher {str(path)!r} cannot be read ({type(err).__name__}: {err})") from err
        if data.get("format") != FORMAT:
            raise XferError(f"{str(path)!r} is not a Vid2Act teacher file")
        teacher = cls({k: tuple(v) for k, v in data["obs_shapes"].items()}, int(data["act_dim"]),
                      DreamerConfig.model_validate(data["model"]), data["tasks"],
                      ReplayVAEConfig.model_validate(data["replay_vae"]),
                      int(data.get("source_act_dim", data["act_dim"])))
        teacher.world_model.load_state_dict(data["world_model"])
        teacher.replay.load_state_dict(data["replay"])
        return teacher.to(device).freeze()

    def freeze(self) -> MixtureTeacher:
        """No parameter of the teacher gets gradients (Stage 2: "the parameters … are frozen")."""
        self.requires_grad_(False)
        return self.eval()
