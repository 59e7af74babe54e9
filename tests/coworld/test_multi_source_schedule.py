"""Multi-source CoWorld's schedule (Appendix C): selection only after the target world model is pretrained
alone, measured with the current or the pretrained (unaligned) target encoder, the KL per source logged; each
source's η sized by its own Stage B updates, and Stage B only once every source is warm."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from xfer_plugins.coworld.agents import wire_stages
from xfer_plugins.coworld.alignment import softmax_kl
from xfer_plugins.coworld.config import CoWorldConfig
from xfer_plugins.coworld.learner import CoWorldLearner
from xfer_plugins.coworld.routing import SourceRouter
from xfer_plugins.coworld.run import check_recipe

from xfer.data.replay import ReplayBuffer
from xfer.dreamer.loop import EnvBatch
from xfer.envs.settings import EnvSettings
from xfer.envs.wrappers import wrap_env
from xfer.errors import XferError
from xfer.recipe import DatasetSpec, Recipe, TaskSpec
from xfer.testing import FakeReachEnv

from .test_stages import random_batch, tiny_agent


class BatchData:
    """Offline target batches for the learner (random images, the shapes of TargetData)."""

    def __init__(self, agent) -> None:  # type: ignore[no-untyped-def]
        self.agent, self.count = agent, 0

    def sample(self, rng=None) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
        self.count += 1
        return random_batch(100 + self.count)

    def share(self) -> dict[str, np.ndarray]:
        return self.sample()

    def tensors(self, device: torch.device) -> dict[str, torch.Tensor]:
        return self.agent.to_tensors(self.sample())


def config(**keys) -> CoWorldConfig:  # type: ignore[no-untyped-def]
    return CoWorldConfig.model_validate({"model": {"preset": "tiny", "horizon": 3}, **keys})


def test_selection_with_the_pretrained_encoder_is_not_pulled_by_alignment() -> None:
    target, a, b = tiny_agent(0), tiny_agent(1), tiny_agent(2)
    target.world_model.encoder.load_state_dict(a.world_model.encoder.state_dict())  # aligned to a
    stages = wire_stages(config(), target, [a, b], ["a", "b"], BatchData(target))  # type: ignore[arg-type]
    assert stages.alignment is not None
    batch = target.to_tensors(random_batch(0))
    metrics, _ = target.train_world_model(batch)
    assert stages.selected == 0, "the current encoder (a copy of a's) selects a"
    pretrained = copy.deepcopy(b.world_model.encoder)  # the unaligned encoder happened to agree with b
    stages.alignment.select_with(pretrained)
    obs = {"image": batch["image"]}
    with torch.no_grad():
        embed = pretrained(obs)
        by_hand = [softmax_kl(src.world_model.encode(obs), embed).mean().item() for src in (a, b)]
        current_to_b = softmax_kl(b.world_model.encode(obs), target.world_model.encode(obs)).mean().item()
    metrics, _ = target.train_world_model(batch)
    assert stages.selected == 1
    assert float(metrics["coworld/select_kl/a"]) == pytest.approx(by_hand[0], rel=1e-5)
    assert float(metrics["coworld/select_kl/b"]) == pytest.approx(by_hand[1], abs=1e-6)
    assert by_hand[1] < 1e-6 < by_hand[0]
    # Stage A aligns the current encoder to the selected source (b): its KL is the loss term
    assert float(metrics["coworld/state_kl"]) == pytest.approx(current_to_b, rel=1e-5) and current_to_b > 1e-3
    assert all(not p.requires_grad for p in pretrained.parameters())


def make_learner(tmp_path: Path, cfg: CoWorldConfig, warmup: int = 4):  # type: ignore[no-untyped-def]
    target, sources = tiny_agent(0), [tiny_agent(1), tiny_agent(2)]
    data = BatchData(target)
    stages = wire_stages(cfg, target, sources, ["a", "b"], data)  # type: ignore[arg-type]
    settings = EnvSettings(image_size=64, time_limit=4)
    envs = [EnvBatch(wrap_env(FakeReachEnv("reach", settings), settings)) for _ in sources]
    replays = [ReplayBuffer(tmp_path / name) for name in ("a", "b")]
    router = SourceRouter(envs, replays, [3, 3], warmup)
    recipe = SimpleNamespace(logging=SimpleNamespace(every=1))
    ctx = SimpleNamespace(rng=np.random.default_rng(0), recipe=recipe, say=lambda message: None,
                          logger=SimpleNamespace(log=lambda *a, **k: None))
    learner = CoWorldLearner(cfg, ctx, target, sources, stages, router, data)  # type: ignore[arg-type]
    return learner, router, stages


def test_pretrained_selection_encoder_is_taken_after_step_one_and_checkpointed(tmp_path: Path) -> None:
    cfg = config(target_pretrain_updates=2, target_iterations=2, multi_source={"select_with": "pretrained"})
    learner, _, stages = make_learner(tmp_path, cfg)
    learner.run_target_phase()
    encoder = stages.alignment.selection_encoder
    assert encoder is not None and encoder is not learner.target.world_model.encoder
    current = learner.target.world_model.encoder.state_dict()
    assert any(not torch.equal(v, current[k]) for k, v in encoder.state_dict().items()), \
        "the copy is frozen at the end of step 1 while the target encoder trains on"
    assert sum(stages.selector.total) == 2, "one selection per target update, none during step 1"
    saved = learner.state_dict()
    other, _, other_stages = make_learner(tmp_path / "resume", cfg)
    other.load_state_dict(saved)
    restored = other_stages.alignment.selection_encoder
    assert restored is not None
    assert all(torch.equal(v, encoder.state_dict()[k]) for k, v in restored.state_dict().items())


def test_stage_b_waits_for_every_source_and_the_first_target_phase(tmp_path: Path) -> None:
    cfg = config(target_pretrain_updates=1, target_iterations=1, source_iterations=20, train_every=5)
    learner, router, stages = make_learner(tmp_path, cfg, warmup=4)
    router.steps, router.active = [4, 0], 0  # source a is warm, b is still warming up
    metrics = learner.train_step(random_batch(0))
    assert "coworld/eta" not in metrics and stages.reward_terms[0].eta.count == 0
    assert learner.target_phases == 0
    router.steps = [4, 4]  # every source warm: the first target phase runs, then Stage B for the active one
    metrics = learner.train_step(random_batch(1))
    assert learner.target_phases == 1
    assert metrics["coworld/eta"] == 1.0 and stages.reward_terms[0].eta.count == 1
    assert stages.reward_terms[1].eta.count == 0, "each source's η follows its own Stage B updates"


def test_eta_length_per_source() -> None:
    base = {"rounds": 6, "source_iterations": 100, "train_every": 5}
    assert config(**base).eta_steps(1) == 100  # (6 − 1) · 100 / 5 updates of the single source
    assert config(**base).eta_steps(2) == 100, "selected: sized for the whole period (documented)"
    every = config(**base, multi_source={"train_sources": "all"})
    assert every.eta_steps(2) == 50, "all: each source's share, so each reaches the floor"
    assert config(**base, eta={"steps": 7}).eta_steps(2) == 7
    target, sources = tiny_agent(0), [tiny_agent(1), tiny_agent(2)]
    stages = wire_stages(every, target, sources, ["a", "b"], BatchData(target))  # type: ignore[arg-type]
    assert [term.eta.steps for term in stages.reward_terms] == [50, 50]
    for term in stages.reward_terms:
        term.eta.advance(50)
        assert term.eta.value == pytest.approx(0.1)


def test_multi_source_needs_target_pretraining() -> None:
    target = TaskSpec(suite="fake", task="reach", dataset=DatasetSpec(path=Path("unused")))
    sources = [TaskSpec(suite="fake", task="reach"), TaskSpec(suite="fake", task="reach")]
    recipe = Recipe(method="coworld", sources=sources, target=target, config=config())
    with pytest.raises(XferError, match="target_pretrain_updates"):
        check_recipe(recipe)
    check_recipe(Recipe(method="coworld", sources=sources, target=target,
                        config=config(target_pretrain_updates=10)))
    check_recipe(Recipe(method="coworld", sources=sources[:1], target=target, config=config()))
