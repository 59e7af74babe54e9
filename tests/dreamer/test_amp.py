"""bf16 autocast of the Dreamer training passes (``model.amp``) on the CPU: the layers run in bf16, every
head and latent distribution hands back float32, and the losses and gradients match float32
training closely."""

from __future__ import annotations

import torch

from xfer.dreamer import DreamerConfig


def _wm_loss_and_grads(agent, data) -> tuple[float, torch.Tensor, dict[str, torch.dtype]]:
    dtypes: dict[str, torch.dtype] = {}
    wm = agent.world_model
    hook = wm.encoder.register_forward_hook(lambda _m, _i, out: dtypes.__setitem__("embed", out.dtype))
    torch.manual_seed(1)
    with agent._autocast():
        loss, _, out = wm.loss(agent.to_tensors(data))
        dtypes.update(stats=out.post.stats.dtype, reward=wm.reward(out.feat).dtype,
                      recon=wm.decoder(out.feat)["image"].dtype, discount=wm.discount(out.feat).dtype)
    hook.remove()
    wm.zero_grad(set_to_none=True)
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in wm.parameters() if p.grad is not None])
    return loss.item(), grads, dtypes


def test_cpu_amp_runs_layers_in_bf16_and_heads_in_float32(make_agent, batch) -> None:
    cfg = DreamerConfig.from_preset("tiny", horizon=4)
    data = batch(size=4, length=8)
    plain = make_agent(cfg=cfg)
    mixed = make_agent(cfg=cfg.model_copy(update={"amp": True}))
    mixed.load_state_dict(plain.state_dict())
    loss32, grad32, dtypes32 = _wm_loss_and_grads(plain, data)
    loss16, grad16, dtypes16 = _wm_loss_and_grads(mixed, data)
    assert dtypes32["embed"] == torch.float32 and dtypes16["embed"] == torch.bfloat16  # autocast is on
    assert {dtypes16[key] for key in ("stats", "reward", "recon", "discount")} == {torch.float32}
    assert abs(loss16 - loss32) / abs(loss32) < 0.02
    cosine = torch.nn.functional.cosine_similarity(grad16, grad32, dim=0).item()
    assert cosine > 0.98


def test_cpu_amp_train_step_is_float32_where_it_matters(make_agent, batch) -> None:
    agent = make_agent(cfg=DreamerConfig.from_preset("tiny", horizon=4, amp=True))
    data = batch(size=4, length=8)
    metrics = agent.train_step(data)
    assert all(torch.isfinite(torch.as_tensor(value)) for value in metrics.values())
    _, out = agent.train_world_model(data)
    with agent._autocast():
        imag = agent.imagine(out)
        assert imag.actor_out.dtype == torch.float32 and imag.state.stats.dtype == torch.float32
        assert agent.behavior.value(imag.feat).dtype == torch.float32
    modules = (agent.world_model, agent.behavior)
    assert all(p.dtype == torch.float32 for module in modules for p in module.parameters())  # weights: fp32
