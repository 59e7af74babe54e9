"""The world-model belief diagnostic (``xfer.dreamer.plan_rewards``): each plan's actions reach the RSSM as
stated, and the per-step reward is the reward head's mean over the imagined states (hand-set heads)."""

from __future__ import annotations

import torch

from xfer.dreamer.plan_rewards import fixed_plans, plan_rewards


def _last_linear(module: torch.nn.Module) -> torch.nn.Linear:
    return [m for m in module.modules() if isinstance(m, torch.nn.Linear)][-1]


def test_constant_reward_head_gives_that_reward_for_every_plan(make_agent, batch) -> None:
    agent = make_agent(act_dim=2)
    head = _last_linear(agent.world_model.reward_head)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(0.75)
    out = plan_rewards(agent, batch(act_dim=2, size=2, length=4))
    assert set(out) == {"actor", "actor_action_mean", "low", "high", "zero", "random"}
    for name in ("actor", "low", "high", "zero", "random"):
        assert abs(out[name] - 0.75) < 1e-6, name
    assert -1.0 <= out["actor_action_mean"] <= 1.0


def test_plans_feed_their_actions_and_average_over_steps(make_agent, batch) -> None:
    agent = make_agent(act_dim=2)
    rssm = agent.world_model.rssm
    seen: list[torch.Tensor] = []
    original = rssm.img_step

    def spy(state, action, cond=None, sample=True):
        seen.append(action.clone())
        return original(state, action, cond, sample)

    rssm.img_step = spy  # type: ignore[method-assign]
    # reward = the first deter unit: compare with the mean of that unit over the imagined states
    steps: list[torch.Tensor] = []
    agent.world_model.reward = lambda feat, cond=None: steps.append(feat[..., rssm.stoch_dim]) or feat[
        ..., rssm.stoch_dim]  # type: ignore[method-assign]
    horizon, rows = agent.cfg.horizon, 2 * 4
    plans = {"high": fixed_plans(2, False)["high"], "random": fixed_plans(2, False)["random"]}
    out = plan_rewards(agent, batch(act_dim=2, size=2, length=4), plans=plans)
    high = seen[-2 * horizon:-horizon]
    assert all(a.shape == (rows, 2) and torch.equal(a, torch.ones(rows, 2)) for a in high)
    random = torch.cat(seen[-horizon:])
    assert random.min() >= -1 and random.max() <= 1 and random.std() > 0.3
    expected_high = torch.stack([s.mean() for s in steps[-2 * horizon:-horizon]]).mean()
    assert abs(out["high"] - float(expected_high)) < 1e-6


def test_discrete_plans_are_one_hot_constants() -> None:
    plans = fixed_plans(3, discrete=True)
    assert set(plans) == {"action_0", "action_1", "action_2", "random"}
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(plans["action_1"](0, 2, generator), torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]))
    drawn = plans["random"](0, 50, generator)
    assert torch.equal(drawn.sum(-1), torch.ones(50)) and set(drawn.argmax(-1).tolist()) == {0, 1, 2}
