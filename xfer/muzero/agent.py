"""The acting side of EfficientZero: observations to network inputs, batched search, self-play.

:class:`MuZeroAgent` implements xfer's :class:`~xfer.interfaces.Agent` (``act(obs, state, explore)``) for
``xfer eval`` and ``--policy checkpoint:RUNDIR`` data collection, and :meth:`MuZeroAgent.search` for
self-play. One search serves a whole batch of environments (:func:`xfer.muzero.mcts.run_mcts`).
:class:`SelfPlay` runs environments of one task with it and turns their episodes into replay entries.

Action choice (EfficientZero / MuZero Appendix D): when exploring, sample from the root visit counts
with a temperature and Dirichlet noise at the root; when evaluating, take the most visited action of a
search without noise (EZ code's test mode).

Frames: Atari observations are ``image`` uint8 ``[B, H, W, C]``. When ``C`` already holds the stacked
frames (``frame_stack * image_channels``) the newest frame is the last ``image_channels`` channels;
when it holds one frame the agent stacks the last ``frame_stack`` frames itself (its recurrent
``state``), repeating the first frame after a reset, like :meth:`GameHistory.stacked_obs`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from xfer.errors import XferError
from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.mcts import SearchResult, run_mcts
from xfer.muzero.networks import EfficientZeroNet
from xfer.muzero.replay import GameHistory


def newest_frame(image: np.ndarray, cfg: EfficientZeroConfig) -> np.ndarray:
    """``[B, H, W, C]`` observations to the newest single frame ``[B, c, H, W]`` (c = image_channels)."""
    image = np.asarray(image)
    if image.ndim == 3:
        image = image[..., None]
    if image.shape[1:3] != (cfg.image_size, cfg.image_size):
        raise XferError(f"observation images are {image.shape[1]}x{image.shape[2]}, the network expects "
                        f"{cfg.image_size}x{cfg.image_size}",
                        hint="set the recipe's env.image_size and the model's image_size to the same value")
    channels = image.shape[-1]
    c = cfg.image_channels
    if channels not in (c, cfg.obs_channels):
        raise XferError(f"observation images have {channels} channels; the model expects {c} per frame "
                        f"({cfg.obs_channels} stacked)",
                        hint="check the model's image_channels and frame_stack")
    return np.ascontiguousarray(image[..., channels - c:].transpose(0, 3, 1, 2))


class FrameStacker:
    """The last ``frame_stack`` frames of each environment; reset where ``is_first`` is set."""

    def __init__(self, cfg: EfficientZeroConfig) -> None:
        self.cfg = cfg
        self.frames: np.ndarray | None = None  # [B, stack, c, H, W]

    def push(self, frame: np.ndarray, is_first: np.ndarray | None) -> np.ndarray:
        """Add the newest frames ``[B, c, H, W]`` (or states ``[B, D]``); returns ``[B, stack * c, H, W]``."""
        batch = frame.shape[0]
        first = np.ones(batch, bool) if is_first is None else np.asarray(is_first, bool).reshape(batch)
        if self.frames is None or self.frames.shape[0] != batch:
            self.frames = np.repeat(frame[:, None], self.cfg.frame_stack, axis=1)
            first = np.zeros(batch, bool)
        else:
            self.frames = np.concatenate([self.frames[:, 1:], frame[:, None]], axis=1)
        self.frames[first] = frame[first][:, None]
        return self.frames.reshape(batch, -1, *frame.shape[2:])


def newest_state(obs: dict[str, Any], cfg: EfficientZeroConfig) -> np.ndarray:
    """``[B, D]`` float32 state vectors of a batched observation (the mlp networks' frames)."""
    if "state" not in obs:
        raise XferError("the mlp EfficientZero networks need state observations ('state'), the environment "
                        "gives none", hint="use network: conv for image observations")
    state = np.asarray(obs["state"], np.float32).reshape(len(np.asarray(obs["state"])), -1)
    if state.shape[1] != cfg.state_dim:
        raise XferError(f"state vectors have {state.shape[1]} entries, the network expects {cfg.state_dim}",
                        hint="leave the model's state_dim unset so the run reads it from the environment")
    return state


def network_input(obs: dict[str, np.ndarray], stacker: FrameStacker) -> np.ndarray:
    """The stacked network input for a batched observation: uint8 frames, or float32 state vectors."""
    cfg = stacker.cfg
    if cfg.network == "mlp":
        return stacker.push(newest_state(obs, cfg), obs.get("is_first"))
    image = np.asarray(obs["image"])
    if image.ndim == 4 and image.shape[-1] == cfg.obs_channels and cfg.frame_stack > 1:
        return np.ascontiguousarray(image.transpose(0, 3, 1, 2))
    return stacker.push(newest_frame(image, cfg), obs.get("is_first"))


class MuZeroAgent:
    """EfficientZero acting through batched MCTS over the full action head, masked to legal actions."""

    def __init__(self, net: EfficientZeroNet, cfg: EfficientZeroConfig, legal_mask: np.ndarray | None = None,
                 seed: int = 0, device: str | torch.device = "cpu") -> None:
        self.net = net.to(device).eval()
        self.cfg = cfg
        self.device = torch.device(device)
        self.legal_mask = np.ones(cfg.n_actions, bool) if legal_mask is None else np.asarray(legal_mask, bool)
        self.rng = np.random.default_rng(seed)

    @torch.no_grad()
    def search(self, stacked: np.ndarray, explore: bool, temperature: float = 1.0,
               rng: np.random.Generator | None = None) -> tuple[np.ndarray, SearchResult]:
        """One batched search from stacked uint8 inputs ``[B, stack * c, H, W]``; returns actions too."""
        rng = self.rng if rng is None else rng
        self.net.eval()
        root = self.net.initial_inference(torch.as_tensor(stacked, device=self.device))
        legal = np.tile(self.legal_mask, (len(stacked), 1))
        result = run_mcts(self.net, root, legal, self.cfg, rng, add_noise=explore)
        if explore:
            actions = result.sample_actions(rng, temperature)
        else:
            actions = np.argmax(result.visit_counts, axis=1)
        return actions.astype(np.int64), result

    def act(self, obs: dict[str, np.ndarray], state: Any, explore: bool) -> tuple[np.ndarray, Any]:
        stacker = state if isinstance(state, FrameStacker) else FrameStacker(self.cfg)
        actions, _ = self.search(network_input(obs, stacker), explore)
        return actions, stacker


def load_net(state: dict[str, Any], device: str | torch.device = "cpu") -> tuple[EfficientZeroNet,
                                                                                    EfficientZeroConfig]:
    """Rebuild a network from ``{"config": EfficientZeroConfig dump, "net": state_dict}``."""
    cfg = EfficientZeroConfig.model_validate(state["config"])
    net = EfficientZeroNet(cfg)
    net.load_state_dict(state["net"])
    return net.to(device).eval(), cfg


def agent_from_checkpoint(rundir: Path, checkpoint: Path | None, device: str, key: str = "agent",
                          seed: int = 0) -> MuZeroAgent:
    """The agent a method stored under ``state[key]`` (config, net, legal_mask) in a run's checkpoint."""
    from xfer.run.checkpoint import load_run_checkpoint

    method = load_run_checkpoint(Path(rundir), checkpoint)["method"]
    if key not in method:
        raise XferError(f"the checkpoint of {str(rundir)!r} holds no agent yet ({key!r} missing)")
    stored = method[key]
    net, cfg = load_net(stored, device)
    return MuZeroAgent(net, cfg, stored.get("legal_mask"), seed=seed, device=device)


def agent_state(net: EfficientZeroNet, cfg: EfficientZeroConfig, legal_mask: np.ndarray) -> dict[str, Any]:
    """What :func:`agent_from_checkpoint` reads back."""
    return {"config": cfg.model_dump(mode="json"), "net": net.state_dict(),
            "legal_mask": np.asarray(legal_mask, bool)}


def fit_to_env(cfg: EfficientZeroConfig, env: Any) -> EfficientZeroConfig:
    """``cfg`` fitted to the environment, in what the recipe left unset: ``n_actions`` (a discrete action
    space's size; Atari's full set is 18), the network
    (conv for an ``image`` entry, mlp for a ``state`` vector alone), ``state_dim`` from the state's length,
    and ``image_channels``: 1 or 3 channels are one frame (gray or RGB); more are ``frame_stack`` stacked
    frames (Atari's RGB 12 -> 3, its gray 4 -> 1)."""
    space = getattr(env, "observation_space", None)
    keys = set(space.spaces) if isinstance(space, gym.spaces.Dict) else set()
    actions = getattr(env, "action_space", None)
    if "n_actions" not in cfg.model_fields_set and isinstance(actions, gym.spaces.Discrete):
        cfg = cfg.model_copy(update={"n_actions": int(actions.n)})
    if "network" not in cfg.model_fields_set and keys:
        cfg = cfg.model_copy(update={"network": "conv" if "image" in keys else "mlp"})
    if cfg.network == "mlp":
        if "state_dim" in cfg.model_fields_set or "state" not in keys:
            return cfg
        return cfg.model_copy(update={"state_dim": int(np.prod(space["state"].shape))})
    if "image_channels" in cfg.model_fields_set or "image" not in keys:
        return cfg
    channels = int(space["image"].shape[-1])
    if channels not in (1, 3):
        if channels % cfg.frame_stack:
            raise XferError(f"observation images have {channels} channels, not a multiple of frame_stack "
                            f"{cfg.frame_stack}", hint="set the model's frame_stack and image_channels")
        channels //= cfg.frame_stack
    return cfg.model_copy(update={"image_channels": channels})


def legal_mask_of(env: Any, n_actions: int) -> np.ndarray:
    """The environment's legal-action mask over the full head (all legal when it has none)."""
    try:
        mask = np.asarray(env.get_wrapper_attr("legal_action_mask"), bool)
    except AttributeError:
        return np.ones(n_actions, bool)
    if mask.shape != (n_actions,):
        raise XferError(f"the environment's legal-action mask has {mask.shape[0]} actions, the model's "
                        f"head {n_actions}", hint="set the model's n_actions to the full action set")
    return mask


def game_over(env: Any) -> bool:
    """Whether an ended episode also ended the game (false after a life lost under episodic life)."""
    try:
        return bool(env.get_wrapper_attr("game_over"))
    except AttributeError:
        return True


CONTINUE = -1  # marks a reset() that continued the game after a lost life, in the action log


class GameBuffer:
    """The growing game of one environment: frames [c, H, W], actions, rewards, search statistics."""

    def __init__(self, first_frame: np.ndarray, past: np.ndarray | None = None) -> None:
        self.frames = [first_frame]
        # the frames before first_frame of a continued episode (GameHistory.past_frames); none at its start
        self.past = np.zeros((0, *first_frame.shape), first_frame.dtype) if past is None else past
        self.actions: list[int] = []
        self.rewards: list[float] = []
        self.policies: list[np.ndarray] = []
        self.values: list[float] = []

    def __len__(self) -> int:
        return len(self.actions)

    def add(self, action: int, reward: float, policy: np.ndarray, value: float, frame: np.ndarray) -> None:
        self.actions.append(int(action))
        self.rewards.append(float(reward))
        self.policies.append(policy.astype(np.float32))
        self.values.append(float(value))
        self.frames.append(frame)

    def history(self, legal: np.ndarray, terminal: bool, task_id: int) -> GameHistory:
        return GameHistory(frames=np.stack(self.frames), actions=np.asarray(self.actions, np.int64),
                           rewards=np.asarray(self.rewards, np.float32), policies=np.stack(self.policies),
                           root_values=np.asarray(self.values, np.float32), legal_mask=legal,
                           terminal=terminal, task_id=task_id, past_frames=self.past)

    def continuation(self, stack: int) -> GameBuffer:
        """The next segment of this episode: it starts at this buffer's last frame and keeps the ``stack``
        − 1 frames before it, so its stacked inputs are the ones the agent saw."""
        held = [*self.past, *self.frames]
        before = held[max(0, len(held) - stack):-1]
        return GameBuffer(self.frames[-1], np.stack(before) if before else None)

    def state(self, n_actions: int) -> dict[str, np.ndarray]:
        policies = np.stack(self.policies) if self.policies else np.zeros((0, n_actions), np.float32)
        return {"frames": np.stack(self.frames), "actions": np.asarray(self.actions, np.int64),
                "rewards": np.asarray(self.rewards, np.float32),
                "values": np.asarray(self.values, np.float32), "policies": policies, "past": self.past}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> GameBuffer:
        # checkpoints written before continued segments kept their past have none
        buf = cls(state["frames"][0], state.get("past"))
        buf.frames = list(state["frames"])
        buf.actions, buf.rewards = state["actions"].tolist(), state["rewards"].tolist()
        buf.values, buf.policies = state["values"].tolist(), list(state["policies"])
        return buf


class SelfPlay:
    """Environments of one task acting by one batched search per step (EZ code's parallel MCTS).

    Every ended episode (under episodic life: every lost life, ``terminal``) and every ``segment_length``
    steps of a long one (EZ code's ``history_length``; ``terminal=False``, values bootstrap past its end)
    becomes a :class:`GameHistory`. A continuation segment keeps the ``frame_stack - 1`` frames before its
    first one (``past_frames``, as EZ code pads it from the previous segment), so its first inputs are the
    ones the agent searched from.

    Resume: the emulator is restored by replaying, from its last seeded reset (one per real game over,
    seeded from the run's rng), the logged actions and life-continuing resets; the frames reached are
    checked against the saved ones. ALE without sticky actions is deterministic given its seed.
    """

    def __init__(self, envs: list[Any], cfg: EfficientZeroConfig, legal: np.ndarray, task_id: int = 0,
                 segment_length: int = 400) -> None:
        self.envs, self.cfg, self.legal, self.task_id = envs, cfg, legal, task_id
        self.segment_length = segment_length
        self.stacker = FrameStacker(cfg)
        self.buffers: list[GameBuffer] = []
        self.reset_seeds = np.zeros(len(envs), np.int64)
        self.log: list[list[int]] = [[] for _ in envs]
        self.returns = np.zeros(len(envs))
        self.stacked: np.ndarray | None = None

    def _frame(self, obs: dict[str, Any]) -> np.ndarray:
        if self.cfg.network == "mlp":
            return newest_state({"state": np.asarray(obs["state"])[None]}, self.cfg)[0]
        return newest_frame(np.asarray(obs["image"])[None], self.cfg)[0]

    def _new_game(self, i: int, seed: int | None) -> np.ndarray:
        """Reset env ``i``: a seeded reset starts a new game, an unseeded one continues after a life."""
        obs, _ = self.envs[i].reset(seed=seed)
        if seed is None:
            self.log[i].append(CONTINUE)
        else:
            self.reset_seeds[i], self.log[i], self.returns[i] = seed, [], 0.0
        return self._frame(obs)

    def start(self, rng: np.random.Generator) -> None:
        for env in self.envs:
            env.reset()  # consume the construction seed, so later unseeded resets continue games
        frames = np.stack([self._new_game(i, int(rng.integers(2**31))) for i in range(len(self.envs))])
        self.buffers = [GameBuffer(f) for f in frames]
        self.stacked = self.stacker.push(frames, np.ones(len(self.envs), bool))

    def step(self, agent: MuZeroAgent, temperature: float,
             rng: np.random.Generator) -> tuple[list[GameHistory], list[float]]:
        """One agent step in every environment: new replay entries and returns of games that ended."""
        assert self.stacked is not None, "call start() first"
        actions, result = agent.search(self.stacked, explore=True, temperature=temperature, rng=rng)
        policies, values = result.policy(), result.root_values
        games, finished, frames = [], [], []
        first = np.zeros(len(self.envs), bool)
        for i, env in enumerate(self.envs):
            obs, reward, terminated, truncated, info = env.step(int(actions[i]))
            self.log[i].append(int(actions[i]))
            self.returns[i] += float(info.get("game_reward", reward))
            frame = self._frame(obs)
            buf = self.buffers[i]
            buf.add(int(actions[i]), float(reward), policies[i], float(values[i]), frame)
            if terminated or truncated:
                games.append(buf.history(self.legal, bool(terminated), self.task_id))
                over = truncated or game_over(env)
                if over:
                    finished.append(float(self.returns[i]))
                frame = self._new_game(i, int(rng.integers(2**31)) if over else None)
                self.buffers[i], first[i] = GameBuffer(frame), True
            elif len(buf) >= self.segment_length:
                games.append(buf.history(self.legal, False, self.task_id))
                self.buffers[i] = buf.continuation(self.cfg.frame_stack)
            frames.append(frame)
        self.stacked = self.stacker.push(np.stack(frames), first)
        return games, finished

    def close(self) -> None:
        for env in self.envs:
            env.close()

    def state_dict(self) -> dict[str, Any]:
        assert self.stacker.frames is not None
        return {"buffers": [b.state(self.cfg.n_actions) for b in self.buffers],
                "reset_seeds": self.reset_seeds.copy(), "log": [np.asarray(a, np.int64) for a in self.log],
                "returns": self.returns.copy(), "stack": self.stacker.frames.copy()}

    def restore(self, state: dict[str, Any]) -> None:
        """Bring every environment back to its saved state by replaying its log (see the class doc)."""
        self.buffers = [GameBuffer.from_state(b) for b in state["buffers"]]
        self.returns = np.asarray(state["returns"], float).copy()
        for i, env in enumerate(self.envs):
            env.reset()  # consume the construction seed
            seed, log = int(state["reset_seeds"][i]), state["log"][i].tolist()
            obs, _ = env.reset(seed=seed)
            for action in log:
                obs = env.reset()[0] if action == CONTINUE else env.step(int(action))[0]
            self.reset_seeds[i], self.log[i] = seed, log
            if not np.array_equal(self._frame(obs), state["stack"][i, -1]):
                raise XferError(f"environment {i} did not return to its saved state when its actions were "
                                "replayed: it is not deterministic given its seed",
                                hint="exact resume needs deterministic environments (no sticky actions)")
        self.stacker.frames = np.asarray(state["stack"]).copy()
        self.stacked = self.stacker.frames.reshape(len(self.envs), -1, *self.stacker.frames.shape[3:])
