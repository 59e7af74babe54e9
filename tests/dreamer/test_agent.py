"""DreamerAgent: training step, gradient routing, target critic, acting, videos, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xfer.dreamer import DreamerConfig


def _params(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("discrete", [False, True])
def test_tiny_train_step_is_finite(make_agent, batch, discrete: bool) -> None:
    agent = make_agent(discrete=discrete)
    metrics = agent.train_step(batch(discrete=discrete))
    assert {"wm/loss", "actor/loss", "critic/loss", "actor/entropy"} <= set(metrics)
    assert all(np.isfinite(value) for value in metrics.values())
    assert agent.updates == 1


def test_variants_train(make_agent, batch) -> None:
    authors = DreamerConfig.from_preset("authors", deter=16, hidden=16, stoch=4, cnn_depth=4, mlp_units=16,
                                        horizon=3)
    assert authors.classes == 0 and not authors.predict_discount
    assert np.isfinite(make_agent(cfg=authors).train_step(batch())["wm/loss"])
    shapes = {"image": (64, 64, 3), "state": (5,)}
    assert np.isfinite(make_agent(obs_shapes=shapes).train_step(batch(obs_shapes=shapes))["wm/loss"])
    mixed = DreamerConfig.from_preset("tiny", horizon=3, reinforce_fraction=0.5)  # both actor gradients
    assert np.isfinite(make_agent(cfg=mixed).train_step(batch())["actor/loss"])


def test_world_model_update_leaves_actor_and_critic_alone(make_agent, batch) -> None:
    agent = make_agent()
    actor, critic = _params(agent.behavior.actor), _params(agent.behavior.critic)
    agent.train_world_model(batch())
    assert _same(actor, _params(agent.behavior.actor)) and _same(critic, _params(agent.behavior.critic))
    assert all(p.grad is None for p in agent.behavior.parameters())


def test_behavior_update_leaves_world_model_alone(make_agent, batch) -> None:
    agent = make_agent()
    data = batch()
    _, out = agent.train_world_model(data)
    agent.wm_opt.zero_grad(set_to_none=True)
    world = _params(agent.world_model)
    actor = _params(agent.behavior.actor)
    agent.train_behavior(out, data)
    assert all(p.grad is None for p in agent.world_model.parameters())
    assert _same(world, _params(agent.world_model))
    assert not _same(actor, _params(agent.behavior.actor))
    assert all(p.requires_grad for p in agent.world_model.parameters())  # unfrozen afterwards


def test_slow_critic_copies_on_its_period(make_agent, batch, tiny) -> None:
    agent = make_agent(cfg=tiny.model_copy(update={"slow_critic_every": 3}))
    data = batch()
    changed = []
    for _ in range(7):
        before = _params(agent.behavior.slow_critic)
        updates = agent.updates
        agent.train_step(data)
        changed.append((updates, not _same(before, _params(agent.behavior.slow_critic))))
    # copied at 0 (identical init, so no change), 3 and 6; untouched in between
    assert [u for u, moved in changed if moved] == [3, 6]
    assert all(not p.requires_grad for p in agent.behavior.slow_critic.parameters())


def test_world_model_term_changes_gradient_and_trains_its_params(make_agent, batch, tiny) -> None:
    cfg = tiny.model_copy(update={"weight_decay": 0.0})
    data = batch()
    grads = []
    scale = torch.nn.Parameter(torch.tensor(1.0))
    for with_term in (False, True):
        agent = make_agent(cfg=cfg)
        if with_term:
            def term(out, b):
                return scale * out.embed.square().mean(), {"x": scale}
            agent.add_world_model_term(term, [scale])
        torch.manual_seed(1)
        metrics, _ = agent.train_world_model(data)
        grads.append((agent.world_model.encoder.conv.net[0].weight.grad.clone(),
                      agent.world_model.reward_head.net[0].weight.grad.clone()))
    assert not torch.allclose(grads[0][0], grads[1][0])  # the term reaches the encoder
    assert torch.allclose(grads[0][1], grads[1][1])  # and nothing else
    assert "x" in metrics and scale.item() != 1.0  # its parameter was stepped by the WM optimiser


def test_critic_term_with_another_agents_critic(make_agent, batch) -> None:
    data = batch()
    source = make_agent(seed=5)
    source_critic = _params(source.behavior.critic)
    grads = []
    for with_term in (False, True):
        agent = make_agent()
        if with_term:
            def constraint(imag, ret, value):
                other = source.behavior.frozen_value(imag.feat[:-1])
                loss = 2.0 * (torch.maximum(value, other) * ret.weight[:-1]).mean()
                return loss, {"constraint": other.mean()}
            agent.critic_terms.append(constraint)
        torch.manual_seed(1)
        _, out = agent.train_world_model(data)
        metrics = agent.train_behavior(out, data)
        grads.append((agent.behavior.critic.net[0].weight.grad.clone(),
                      agent.behavior.actor.net[0].weight.grad.clone()))
    assert not torch.allclose(grads[0][0], grads[1][0]) and torch.allclose(grads[0][1], grads[1][1])
    assert "constraint" in metrics
    assert all(p.grad is None for p in source.behavior.parameters())
    assert _same(source_critic, _params(source.behavior.critic))


def test_reward_override_and_ensemble_penalty(make_agent, batch, tiny) -> None:
    agent = make_agent()
    agent.reward_fn = lambda imag: torch.zeros(imag.feat.shape[:-1])
    assert agent.train_step(batch())["imag/reward"] == 0.0
    agent = make_agent(cfg=tiny.model_copy(update={"ensemble_size": 3}))
    metrics = agent.train_step(batch())
    assert np.isfinite(metrics["wm/ensemble_loss"])
    feat = torch.randn(5, 4, agent.world_model.feat_dim)
    action = torch.rand(5, 4, 3)
    with torch.no_grad():
        penalised = agent.world_model.imagined_reward(feat, action)
        plain = agent.world_model.reward(feat)
    assert torch.equal(penalised[0], plain[0]) and (penalised[1:] < plain[1:]).all()


def test_actor_extra_input(make_agent, batch) -> None:
    agent = make_agent(actor_extra_dim=5)
    starts, seen = [], []

    def factory(start, cond):
        starts.append(start.deter.shape[0])
        def extra(state, prev_action):
            seen.append((state, prev_action))
            return torch.ones(state.deter.shape[0], 5)

        return extra

    agent.actor_extra = factory
    data = batch(size=2, length=6)
    assert np.isfinite(agent.train_step(data)["actor/loss"])
    assert starts == [12]  # one call per rollout, with all B·L start states
    # every step sees the state the actor acts from and the action that led to it (zeros at the start)
    seen.clear()
    _, _, out = agent.world_model.loss(agent.to_tensors(data))
    imag = agent.imagine(out)
    assert len(seen) == agent.cfg.horizon
    for i, (state, prev_action) in enumerate(seen):
        assert torch.equal(state.deter, imag.state.deter[i]) and not state.deter.requires_grad
        assert torch.equal(prev_action, imag.action[i].detach())
    action, _ = agent.policy({"image": data["image"][:, 0]}, None, explore=False)
    assert action.shape == (2, 3)
    assert agent.behavior.actor.net[0].in_features == agent.world_model.feat_dim + 5


@pytest.mark.parametrize("discrete", [False, True])
def test_acting_shapes_and_bounds(make_agent, batch, discrete: bool) -> None:
    agent = make_agent(discrete=discrete, act_dim=4)
    data = batch(act_dim=4, size=3)
    obs = {"image": data["image"][:, 0].numpy(), "is_first": np.ones(3, bool)}
    action, state = agent.policy(obs, None, explore=True)
    assert action.shape == (3, 4)
    if discrete:
        assert torch.equal(action.sum(-1), torch.ones(3))
    else:
        assert action.abs().max() <= 1
    numpy_action, _ = agent.act(obs, state, explore=False)
    assert numpy_action.shape == ((3,) if discrete else (3, 4))


def test_openloop_video(make_agent, batch) -> None:
    agent = make_agent()
    video = agent.openloop_video(batch(size=2, length=8), context=5)
    assert video.truth.shape == video.model.shape == (2, 8, 64, 64, 3)
    assert video.model.dtype == np.uint8


def test_state_dict_round_trip(make_agent, batch) -> None:
    data = batch()
    agent = make_agent()
    agent.train_step(data)
    copy = make_agent(seed=3)
    copy.load_state_dict(agent.state_dict())
    assert copy.updates == 1
    for one in (agent, copy):
        torch.manual_seed(7)
        one.train_step(data)
    for a, b in zip(agent.world_model.parameters(), copy.world_model.parameters(), strict=True):
        assert torch.equal(a, b)
    obs = {"image": data["image"][:, 0]}
    torch.manual_seed(2)
    first, _ = agent.policy(obs, None, explore=False)
    torch.manual_seed(2)
    second, _ = copy.policy(obs, None, explore=False)
    assert torch.equal(first, second)


def test_load_matching_reports_loaded_skipped_new(make_agent) -> None:
    source = make_agent(act_dim=4)
    target = make_agent(seed=1, act_dim=5, cond_dim=0, actor_extra_dim=2)
    report = target.load_matching(source.state_dict())
    skipped = {name for name, _, _ in report.skipped}
    assert "world_model.rssm.img_in.weight" in skipped and "behavior.actor.net.0.weight" in skipped
    assert "world_model.encoder.conv.net.0.weight" in report.loaded
    first_conv = target.world_model.encoder.conv.net[0].weight
    assert torch.equal(first_conv, source.world_model.encoder.conv.net[0].weight)
    assert not report.new and not report.unused
    bigger = make_agent(seed=1, act_dim=4, cfg=DreamerConfig.from_preset("tiny", ensemble_size=2))
    new = bigger.load_matching(source.state_dict()).new
    assert new and all(name.startswith("world_model.ensemble.") for name in new)
