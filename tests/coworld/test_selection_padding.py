"""Multi-source selection (Appendix C, Eq. 12) on a constructed case, and action padding across domains."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from xfer_plugins.coworld.agents import TargetEvalAgent, native_action_size, pad_actions, wire_stages
from xfer_plugins.coworld.config import CoWorldConfig
from xfer_plugins.coworld.routing import SourceRouter
from xfer_plugins.coworld.selection import SourceSelector, one_hot_weights, select_closest

from xfer.data.replay import ReplayBuffer
from xfer.dreamer.loop import EnvBatch
from xfer.envs.settings import EnvSettings
from xfer.envs.wrappers import wrap_env
from xfer.testing import FakeReachEnv

from .test_stages import random_batch, tiny_agent


class StubTargetData:
    def __init__(self, agent) -> None:
        self.agent = agent

    def tensors(self, device: torch.device) -> dict[str, torch.Tensor]:
        return self.agent.to_tensors(random_batch(9))


def test_select_closest_and_one_hot() -> None:
    assert select_closest(torch.tensor([0.3, 0.1, 0.2])) == 1
    assert one_hot_weights(2, 4).tolist() == [0.0, 0.0, 1.0, 0.0]


def test_selection_picks_the_source_whose_encoder_agrees_with_the_target() -> None:
    target = tiny_agent(0)
    unrelated = tiny_agent(1)
    agreeing = tiny_agent(2)
    agreeing.world_model.encoder.load_state_dict(copy.deepcopy(target.world_model.encoder.state_dict()))
    third = tiny_agent(3)
    sources = [unrelated, agreeing, third]
    cfg = CoWorldConfig.model_validate({"model": {"preset": "tiny"}})
    stages = wire_stages(cfg, target, sources, ["unrelated", "agreeing", "third"],
                         StubTargetData(target))  # type: ignore[arg-type]
    metrics, _ = target.train_world_model(random_batch(0))
    assert stages.alignment is not None and stages.selector is not None
    kls = stages.alignment.last_kl
    assert kls is not None and kls[1].item() < 1e-6 < kls[0].item()
    assert stages.selected == 1 and stages.selector.current == 1
    assert float(metrics["coworld/select_kl/agreeing"]) < float(metrics["coworld/select_kl/unrelated"])
    # Stage C reads the selected source's critic
    assert stages.constraint is not None and stages.constraint.source_behavior() is agreeing.behavior
    logged = stages.selector.log_metrics()
    assert logged["coworld/selected_source"] == 1.0 and logged["coworld/selected/agreeing"] == 1.0
    assert stages.selector.phase_majority() == 1


def test_selector_phase_majority_and_state() -> None:
    selector = SourceSelector(["a", "b"])
    for kls in ([0.1, 0.2], [0.3, 0.2], [0.4, 0.1]):
        selector(torch.tensor(kls))
    assert selector.phase_majority() == 1 and selector.total == [1, 2]
    restored = SourceSelector(["a", "b"])
    restored.load_state_dict(selector.state_dict())
    assert restored.phase_majority() == 1
    selector.start_phase()
    assert selector.phase_majority() == selector.current


def test_pad_actions_with_zeros() -> None:
    actions = np.ones((2, 3, 4), np.float32)
    padded = pad_actions(actions, 5)
    assert padded.shape == (2, 3, 5) and np.all(padded[..., 4] == 0) and np.all(padded[..., :4] == 1)
    assert pad_actions(actions, 4) is actions
    with pytest.raises(Exception, match="smaller"):
        pad_actions(actions, 3)


def test_source_router_pads_the_smaller_source_with_zeros(tmp_path: Path) -> None:
    settings = EnvSettings(image_size=16, time_limit=4, pad_action_to=3)
    env = wrap_env(FakeReachEnv("reach", settings), settings)
    assert env.action_space.shape == (3,) and native_action_size(env) == 2
    replay = ReplayBuffer(tmp_path / "replay")
    router = SourceRouter([EnvBatch(env)], [replay], natives=[2], warmup_steps=0)
    rng = np.random.default_rng(0)
    obs = router.reset([0])
    router.store(router, obs, router.zero_actions(), np.zeros(1, np.float32), np.zeros(1, bool))
    done = False
    while not done:
        action = np.full((1, 3), 0.5, np.float32) if rng.random() < 0.5 else router.random_actions(rng)
        obs, reward, success = router.step(action)
        router.store(router, obs, action, reward, success)
        done = bool(obs["is_last"][0])
    assert replay.num_episodes == 1
    stored = replay.sample(1, 5, rng)["action"]
    assert stored.shape == (1, 5, 3) and np.all(stored[..., 2] == 0.0) and np.any(stored[..., :2] != 0)
    assert router.steps == [4]


def test_target_eval_agent_emits_the_target_environments_actions() -> None:
    agent = tiny_agent(0, act_dim=5)
    evaluator = TargetEvalAgent(agent, native=4)
    obs = {"image": np.zeros((1, 64, 64, 3), np.uint8), "is_first": np.array([True])}
    action, state = evaluator.act(obs, None, explore=False)
    assert action.shape == (1, 4) and state is not None
    frames = evaluator.openloop(np.zeros((7, 64, 64, 3), np.uint8), np.zeros((6, 4), np.float32))
    assert frames.shape[1:] == (64, 64, 3)
