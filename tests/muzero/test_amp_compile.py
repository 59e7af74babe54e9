"""EfficientZero's speed switches ``amp`` (bf16 autocast) and ``compile`` (torch.compile h, g, f).

All on the CPU: ``amp`` autocasts the learner's forward there and leaves inference alone; the float32 casts of
the loss terms and of the inference outputs are exercised under a CPU bf16 autocast context entered by the
test (inference's own autocast is CUDA only); ``compile`` is checked for its wrappers and state-dict keys
without running a compiled forward (inductor on this CPU takes minutes).
"""

from __future__ import annotations

import contextlib
import copy
import pickle
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from xfer.muzero.bench import synthetic_batch
from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.learner import Learner, masked_policy_cross_entropy, negative_cosine, soft_cross_entropy
from xfer.muzero.networks import COMPILED, EfficientZeroNet, autocast
from xfer.muzero.support import h_inverse, scalar_to_support, support_to_scalar

# init_zero off: the heads' logits are not all zero, so the bf16 path has something to round
TINY = {"preset": "tiny", "init_zero": False}


def cpu_bf16() -> torch.autocast:
    return torch.autocast("cpu", dtype=torch.bfloat16)


def learner(amp: bool = False, compile: bool = False, seed: int = 0) -> Learner:
    torch.manual_seed(seed)
    return Learner(EfficientZeroConfig.model_validate({**TINY, "amp": amp, "compile": compile}))


def inference(net: EfficientZeroNet, obs: torch.Tensor) -> list[torch.Tensor]:
    """Every tensor of an initial and a recurrent inference."""
    root = net.initial_inference(obs)
    actions = torch.arange(len(obs)) % net.cfg.n_actions
    step = net.recurrent_inference(root.latent, root.reward_hidden, actions)
    return [t for out in (root, step) for t in (out.latent, *out.reward_hidden, out.value_prefix, out.value,
                                                  out.policy_logits)]


def test_switches_validate_in_the_recipe_section() -> None:
    from xfer_plugins.efficientzero.config import EfficientZeroMethodConfig

    section = EfficientZeroMethodConfig.model_validate({"model": {"preset": "tiny", "amp": True,
                                                                  "compile": True}})
    assert section.model.amp and section.model.compile
    assert not EfficientZeroConfig().amp and not EfficientZeroConfig().compile


def test_cpu_amp_is_the_learners_only() -> None:
    """On the CPU ``amp`` autocasts the learner's forward (bf16 networks, float32 losses near the float32
    ones) and leaves inference in float32: the same outputs bit for bit as without ``amp``."""
    assert isinstance(autocast(True, torch.device("cpu")), contextlib.nullcontext)
    assert isinstance(autocast(True, torch.device("cpu"), cpu=True), torch.autocast)
    assert isinstance(autocast(False, torch.device("cpu"), cpu=True), contextlib.nullcontext)
    batch = synthetic_batch(EfficientZeroConfig.model_validate(TINY), 8)
    losses, outputs, head_dtypes = [], [], []
    for amp in (False, True):
        lrn = learner(amp=amp)
        outputs.append(inference(lrn.net.eval(), batch.obs[:, :lrn.cfg.obs_channels]))
        dtypes: set[torch.dtype] = set()
        hook = lrn.net.prediction.register_forward_hook(lambda m, i, out, seen=dtypes: seen.add(out[1].dtype))
        torch.manual_seed(1)  # the augmentation's draws
        losses.append(lrn.losses(batch))
        hook.remove()
        head_dtypes.append(dtypes)
    assert head_dtypes == [{torch.float32}, {torch.bfloat16}]
    plain, mixed = losses
    assert mixed.total.dtype == torch.float32
    assert abs(mixed.total.item() - plain.total.item()) <= 0.05 * abs(plain.total.item())
    assert all(torch.equal(a, b) for a, b in zip(*outputs, strict=True))


def test_large_batch_inference_runs_the_representation_in_bf16_and_the_heads_in_float32() -> None:
    """Reanalyse's initial inference (``large_batch``) with ``amp`` on the CPU: the representation's
    convolutions see bf16, the prediction head float32 (its value logits too), the outputs are float32 and
    close to the float32 ones; without ``amp`` it is the plain inference, bit for bit."""
    batch = synthetic_batch(EfficientZeroConfig.model_validate(TINY), 8)
    outputs = {}
    for amp in (False, True):
        net = learner(amp=amp).net.eval()
        obs = batch.obs[:, :net.cfg.obs_channels]
        seen: dict[str, set[torch.dtype]] = {"conv": set(), "head": set()}
        conv = next(m for m in net.representation.modules() if isinstance(m, torch.nn.Conv2d))
        head = net.prediction
        hooks = [conv.register_forward_hook(lambda m, i, o, seen=seen: seen["conv"].add(o.dtype)),
                 head.register_forward_hook(lambda m, i, o, seen=seen: seen["head"].add(o[1].dtype))]
        root = net.initial_inference(obs, large_batch=True)
        for hook in hooks:
            hook.remove()
        want = torch.bfloat16 if amp else torch.float32
        assert seen == {"conv": {want}, "head": {torch.float32}}
        assert all(t.dtype == torch.float32 for t in (root.latent, root.value, root.policy_logits))
        if not amp:
            plain = net.initial_inference(obs)
            assert torch.equal(root.value, plain.value) and torch.equal(root.latent, plain.latent)
        outputs[amp] = root
    assert torch.allclose(outputs[True].value, outputs[False].value, rtol=0.05, atol=0.05)
    assert torch.allclose(outputs[True].policy_logits, outputs[False].policy_logits, rtol=0.05, atol=0.05)


def test_loss_terms_are_float32_from_bf16_outputs() -> None:
    """The loss terms of bf16 network outputs (``amp``) are computed in float32: equal, to float32 precision,
    to a float64 computation on the same bf16 values. A log-softmax over the support or a normalisation done
    in bf16 is off by 1e-3 or more (checked below), which these tolerances reject."""
    gen = torch.Generator().manual_seed(0)
    n, actions = 300, 18
    value_logits = (3 * torch.randn(64, 2 * n + 1, generator=gen)).bfloat16()
    policy_logits = (3 * torch.randn(64, actions, generator=gen)).bfloat16()
    online = torch.randn(64, 1024, generator=gen)
    target = (online + 0.3 * torch.randn(64, 1024, generator=gen)).bfloat16()  # cosines near 0.95, as trained
    online = online.bfloat16()
    value_target = scalar_to_support(20 * torch.randn(64, generator=gen), n)
    policy_target = torch.softmax(torch.randn(64, actions, generator=gen), -1)
    legal = torch.rand(64, actions, generator=gen) > 0.3
    legal[:, 0] = True

    def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return -(target * torch.log_softmax(logits, -1)).sum(-1)

    def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (F.normalize(a, dim=-1, eps=1e-5) * F.normalize(b, dim=-1, eps=1e-5)).sum(-1)

    wide = {"value": value_logits.double(), "policy": policy_logits.double().masked_fill(~legal, -1e9)}
    bins = torch.arange(-n, n + 1, dtype=torch.float64)
    logp_policy = torch.log_softmax(wide["policy"], -1).masked_fill(~legal, 0.0)
    exact = {  # float64 from the same bf16 values
        "value": cross_entropy(wide["value"], value_target.double()),
        "policy": -(policy_target.double() * logp_policy).sum(-1),
        "consistency": -cosine(online.double(), target.double()),
        "scalar": h_inverse((torch.softmax(wide["value"], -1) * bins).sum(-1)),
    }
    with cpu_bf16():
        got = {"value": soft_cross_entropy(value_logits, value_target),
               "policy": masked_policy_cross_entropy(policy_logits, policy_target, legal),
               "consistency": negative_cosine(online, target),
               "scalar": support_to_scalar(value_logits)}
        in_bf16 = {"value": cross_entropy(value_logits, value_target), "consistency": -cosine(online, target)}
    for key, value in got.items():
        assert value.dtype == torch.float32, key
        torch.testing.assert_close(value.double(), exact[key], rtol=2e-5, atol=2e-5, msg=key)
    # the check has teeth: the same terms computed in bf16 are far outside these tolerances
    for key, value in in_bf16.items():
        assert (value.double() - exact[key]).abs().max() > 1e-4, key


class DtypeSpy(TorchFunctionMode):
    """Records the dtype of the first argument of every softmax, log-softmax and normalisation."""

    WATCHED = {torch.softmax: "softmax", torch.log_softmax: "log_softmax", F.normalize: "normalize",
               torch.Tensor.softmax: "softmax", torch.Tensor.log_softmax: "log_softmax"}

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, torch.dtype]] = []

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func in self.WATCHED:
            self.seen.append((self.WATCHED[func], args[0].dtype))
        return func(*args, **(kwargs or {}))


def test_learner_losses_under_bf16_autocast_stay_float32() -> None:
    """The whole loss of Eq. 3 under a bf16 autocast (the CPU's, standing in for CUDA's): the network runs
    in bf16, every softmax / log-softmax / cosine sees float32 inputs, the terms are float32 and near the
    float32 losses, and the step's gradients are float32."""
    lrn = learner()
    batch = synthetic_batch(lrn.cfg, 8)
    torch.manual_seed(1)
    ref = lrn.losses(batch)
    torch.manual_seed(1)
    spy, head_dtypes = DtypeSpy(), set()
    hook = lrn.net.prediction.register_forward_hook(lambda m, i, out: head_dtypes.add(out[1].dtype))
    with cpu_bf16(), spy:
        low = lrn.losses(batch)
    hook.remove()
    assert head_dtypes == {torch.bfloat16}  # the networks did run in bf16
    names = {name for name, _ in spy.seen}
    assert {"log_softmax", "normalize", "softmax"} <= names
    assert {dtype for _, dtype in spy.seen} == {torch.float32}, spy.seen
    for key, value in low.per_sample.items():
        assert value.dtype == torch.float32, key
        scale = ref.per_sample[key].abs().max()
        assert (value - ref.per_sample[key]).abs().max() <= 0.1 * scale + 1e-2, key  # bf16 network
    assert low.total.dtype == torch.float32
    lrn.step(low.total)
    assert all(p.grad.dtype == torch.float32 for p in lrn.net.parameters() if p.grad is not None)


def test_inference_outputs_are_float32_under_bf16_autocast() -> None:
    """Search stores latents and LSTM states and reads logits, values and prefixes as float32."""
    lrn = learner()
    net = lrn.net.eval()
    obs = synthetic_batch(lrn.cfg, 4).obs[:, :lrn.cfg.obs_channels]
    exact = inference(net, obs)
    with cpu_bf16():
        low = inference(net, obs)
    for a, b in zip(exact, low, strict=True):
        assert b.dtype == torch.float32
        assert (a - b).abs().max() <= 0.1 * a.abs().max() + 0.1


def compiled(module: torch.nn.Module) -> bool:
    """``Module.compile`` (torch 2.13) sets ``_compiled_call_impl`` to the compiled ``_call_impl`` of the
    module itself; the module stays in place (no OptimizedModule wrapper, no ``_orig_mod`` in keys)."""
    impl = module._compiled_call_impl
    return impl is not None and getattr(impl, "__wrapped__", None).__self__ is module


def test_compile_wraps_h_g_f_in_place_and_keeps_the_keys() -> None:
    plain, fast = learner(), learner(compile=True)
    for lrn in (plain, fast):
        assert not compiled(lrn.net.projector) and not compiled(lrn.net.projection_head)
    copies = [fast.net, fast.target_net, copy.deepcopy(fast.net), pickle.loads(pickle.dumps(fast.net))]
    for net in copies:  # the learner's target, self-play's actor copy, a worker's unpickled net
        assert all(compiled(getattr(net, name)) for name in COMPILED)
    for net in (plain.net, plain.target_net):
        assert not any(compiled(getattr(net, name)) for name in COMPILED)
    assert list(fast.net.state_dict()) == list(plain.net.state_dict())
    assert all(torch.equal(v, plain.net.state_dict()[k]) for k, v in fast.net.state_dict().items())
    # a run resumes with the switch flipped, either way
    fast.load_state_dict(copy.deepcopy(plain.state_dict()))
    plain.load_state_dict(copy.deepcopy(fast.state_dict()))


@pytest.mark.parametrize("network", ["conv", "mlp"])
def test_compile_covers_both_network_kinds(network: str) -> None:
    cfg = EfficientZeroConfig.model_validate({"preset": "tiny-mlp" if network == "mlp" else "tiny",
                                              "compile": True})
    net = EfficientZeroNet(cfg)
    assert all(compiled(getattr(net, name)) for name in COMPILED)
    assert list(net.state_dict()) == list(EfficientZeroNet(cfg.model_copy(update={"compile": False}))
                                          .state_dict())
