"""``model.compile`` of the Dreamer backbone: the conv / MLP / GRU modules and the RSSM's step functions go
through torch.compile without changing parameter names, copies compile their own steps, and (slow: inductor
on this CPU takes about a minute) a compiled training step computes what the eager one does."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch

from xfer.dreamer import DreamerConfig
from xfer.nets.rssm import RSSM


def test_compile_wraps_steps_and_keeps_state_dict_keys(make_agent, tiny) -> None:
    eager = make_agent(cfg=tiny)
    compiled = make_agent(cfg=tiny.model_copy(update={"compile": True}))
    assert eager.state_dict()["world_model"].keys() == compiled.state_dict()["world_model"].keys()
    rssm = compiled.world_model.rssm
    for name in RSSM.STEPS:
        assert name in rssm.__dict__ and name not in eager.world_model.rssm.__dict__
    compiled.load_state_dict(eager.state_dict())  # checkpoints move between the two


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_copies_of_a_compiled_rssm_step_themselves(how: str) -> None:
    rssm = RSSM(embed_dim=8, act_dim=2, deter=6, stoch=2, classes=3, hidden=5)
    rssm.compile_steps()
    twin = copy.deepcopy(rssm) if how == "deepcopy" else pickle.loads(pickle.dumps(rssm))
    for name in RSSM.STEPS:
        # torch.compile keeps the function it wraps: each copy's step is bound to that copy
        assert getattr(twin, name)._torchdynamo_orig_callable.__self__ is twin
        assert getattr(rssm, name)._torchdynamo_orig_callable.__self__ is rssm
    with torch.no_grad():
        next(twin.img_in.parameters()).add_(1.0)
    assert not torch.equal(twin.img_in.weight, rssm.img_in.weight)  # parameters were copied, not shared
    plain = copy.deepcopy(RSSM(embed_dim=8, act_dim=2, deter=6, stoch=2, classes=3, hidden=5))
    assert not any(name in plain.__dict__ for name in RSSM.STEPS)


@pytest.mark.slow
def test_compiled_agent_matches_eager_under_the_recompile_limit(make_agent, batch, monkeypatch) -> None:
    """One world-model loss equal to the eager one (random ops drawn as eager draws them), then training,
    acting greedily and exploring, and an open-loop video without exhausting dynamo's cache."""
    import numpy as np
    import torch._dynamo
    import torch._inductor.config
    from torch._dynamo.eval_frame import _debug_get_cache_entry_list

    monkeypatch.setattr(torch._inductor.config, "fallback_random", True)
    cfg = DreamerConfig.from_preset("tiny", horizon=4)
    data = batch(size=4, length=8)
    eager = make_agent(cfg=cfg)
    compiled = make_agent(cfg=cfg.model_copy(update={"compile": True}))
    compiled.load_state_dict(eager.state_dict())
    torch.manual_seed(3)
    loss_eager, _, _ = eager.world_model.loss(eager.to_tensors(data))
    torch.manual_seed(3)
    loss_compiled, _, _ = compiled.world_model.loss(compiled.to_tensors(data))
    assert loss_compiled.item() == pytest.approx(loss_eager.item(), rel=1e-5)
    for _ in range(2):
        metrics = compiled.train_step(data)
    assert all(torch.isfinite(torch.as_tensor(value)) for value in metrics.values())
    obs = {"image": np.zeros((2, 64, 64, 3), np.uint8), "is_first": np.array([True, True])}
    state = None
    for explore in (True, False, True):
        _, state = compiled.act(obs, state, explore)
        obs["is_first"] = np.array([False, False])
    compiled.openloop_video(data, context=3, sequences=2)
    for name in RSSM.STEPS:
        entries = _debug_get_cache_entry_list(getattr(RSSM, name).__code__)
        assert 0 < len(entries) < torch._dynamo.config.recompile_limit, name


def test_image_nll_by_hand() -> None:
    """½·Σ_{C,H,W}(x̂ − x)², mean over the rest, x = uint8/255 − ½; gradient (x̂ − x)/N."""
    from xfer.dreamer.observation import image_nll

    image = torch.zeros(2, 3, 4, 4, 3, dtype=torch.uint8)
    image[0] = 255  # x = +0.5 on the first of the two leading rows, -0.5 on the second
    recon = torch.zeros(2, 3, 3, 4, 4, requires_grad=True)
    loss = image_nll(recon, image)
    assert loss.item() == pytest.approx(0.5 * 0.25 * 3 * 4 * 4)  # every pixel 0.5 away
    loss.backward()
    assert torch.allclose(recon.grad[0], torch.full((3, 3, 4, 4), -0.5 / 6))
    assert torch.allclose(recon.grad[1], torch.full((3, 3, 4, 4), 0.5 / 6))
