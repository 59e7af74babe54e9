"""Self-play in worker processes (xfer.muzero.selfplay_workers) on a real simulator (gymnasium
CartPole): each worker plays what an in-process SelfPlay of its share would, acting weights are sent when
their version changes, state survives a checkpoint, workers ignore Ctrl-C, and bad settings or a dead
worker are one line."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
import torch

from xfer.envs.make import make_from_spec, suite_spec
from xfer.envs.settings import EnvSettings
from xfer.errors import XferError
from xfer.muzero.agent import MuZeroAgent, SelfPlay, fit_to_env
from xfer.muzero.config import EfficientZeroConfig
from xfer.muzero.networks import EfficientZeroNet
from xfer.muzero.selfplay_workers import EnvRecipe, SelfPlayWorkers

SEEDS = np.array([11, 12, 13, 14])


@pytest.fixture(scope="module")
def world():
    recipe = EnvRecipe(suite_spec("gym"), "CartPole-v1", EnvSettings())
    probe = make_from_spec(recipe.spec, recipe.task, recipe.settings, 0)
    cfg = fit_to_env(EfficientZeroConfig(preset="tiny-mlp", num_simulations=4, init_zero=False), probe)
    probe.close()
    torch.manual_seed(0)
    net = EfficientZeroNet(cfg).eval().requires_grad_(False)
    return recipe, cfg, net, np.ones(cfg.n_actions, bool)


def _local(recipe: EnvRecipe, cfg: EfficientZeroConfig, seeds: np.ndarray, start_seed: int) -> SelfPlay:
    envs = [make_from_spec(recipe.spec, recipe.task, recipe.settings, int(s)) for s in seeds]
    local = SelfPlay(envs, cfg, np.ones(cfg.n_actions, bool), 0, segment_length=7)
    local.start(np.random.default_rng(start_seed))
    return local


def _same_games(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for name in ("frames", "past_frames", "actions", "rewards", "policies", "root_values"):
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name), err_msg=name)


def test_segments_stack_the_frames_the_agent_saw(world) -> None:
    """Every position of every stored game, segments of one episode included, stacks the frames the agent
    searched from at that step (before: a continued segment repeated its first frame)."""
    recipe, cfg, _, legal = world
    cfg = cfg.model_copy(update={"frame_stack": 3})
    torch.manual_seed(0)
    agent = MuZeroAgent(EfficientZeroNet(cfg).eval().requires_grad_(False), cfg, legal)
    env = make_from_spec(recipe.spec, recipe.task, recipe.settings, 3)
    play = SelfPlay([env], cfg, legal, 0, segment_length=7)
    rng = np.random.default_rng(0)
    play.start(rng)
    seen, games = [], []
    try:
        while len(games) < 6:
            assert play.stacked is not None
            seen.append(play.stacked[0].copy())
            games += play.step(agent, 1.0, rng)[0]
    finally:
        env.close()
    assert any(len(g.past_frames) == 2 for g in games) and any(g.terminal for g in games)
    inputs = [g.stacked_obs(t, cfg.frame_stack) for g in games for t in range(len(g))]
    np.testing.assert_array_equal(np.stack(inputs), np.stack(seen[:len(inputs)]))


def test_workers_play_what_in_process_self_play_would(world) -> None:
    """Two workers with two environments each: step by step, worker 0's share then worker 1's, each
    from the seeds the run's stream gave it, with the weights of the moment the chunk was asked for."""
    recipe, cfg, net, legal = world
    workers = SelfPlayWorkers(cfg, recipe, SEEDS, legal, workers=2, segment_length=7)
    try:
        rng, ref = np.random.default_rng(5), np.random.default_rng(5)
        workers.start(rng)
        starts = [int(ref.integers(2**63)) for _ in range(2)]
        locals_ = [_local(recipe, cfg, SEEDS[2 * i:2 * i + 2], starts[i]) for i in range(2)]
        changed = EfficientZeroNet(cfg).eval().requires_grad_(False)
        # new weights under the same version are not sent; a new version is
        for version, weights, acting in [(0, net, net), (0, changed, net), (1, changed, changed)]:
            agent = MuZeroAgent(acting, cfg, legal)
            workers.submit(weights, version, steps=6, temperature=0.5, rng=rng)
            got = workers.receive()
            seeds = [int(ref.integers(2**63)) for _ in range(2)]
            rngs = [np.random.default_rng(s) for s in seeds]
            assert len(got) == 6
            for games, returns in got:
                expected = [local.step(agent, 0.5, r) for local, r in zip(locals_, rngs, strict=True)]
                _same_games(games, [g for part, _ in expected for g in part])
                assert returns == [x for _, part in expected for x in part]
        state = workers.state_dict()
        assert [len(s["buffers"]) for s in state["workers"]] == [2, 2]
        np.testing.assert_array_equal(state["workers"][1]["stack"], locals_[1].state_dict()["stack"])
    finally:
        workers.close()
        for local in locals_:
            for env in local.envs:
                env.close()


@pytest.mark.parametrize("frame_stack", [1, 3])
def test_restored_workers_continue_as_the_saved_ones(world, frame_stack: int) -> None:
    """With a frame stack, the buffers' past frames (segments of 7 steps) travel in the saved state too."""
    recipe, cfg, net, legal = world
    if frame_stack != cfg.frame_stack:
        cfg = cfg.model_copy(update={"frame_stack": frame_stack})
        torch.manual_seed(0)
        net = EfficientZeroNet(cfg).eval().requires_grad_(False)
    first = SelfPlayWorkers(cfg, recipe, SEEDS[:2], legal, workers=1, segment_length=7)
    second = SelfPlayWorkers(cfg, recipe, SEEDS[:2], legal, workers=1, segment_length=7)
    try:
        first.start(np.random.default_rng(1))
        first.submit(net, 0, 9, 1.0, np.random.default_rng(2))
        first.receive()
        state = first.state_dict()
        if frame_stack > 1:
            assert any(len(b["past"]) == frame_stack - 1 for w in state["workers"] for b in w["buffers"])
        second.restore(state)
        for workers in (first, second):
            workers.submit(net, 0, 9, 1.0, np.random.default_rng(3))
        a, b = first.receive(), second.receive()
        for (games_a, ret_a), (games_b, ret_b) in zip(a, b, strict=True):
            _same_games(games_a, games_b)
            assert ret_a == ret_b
        with pytest.raises(XferError, match="2 self-play workers"):
            second.restore({"workers": [{}, {}]})
    finally:
        first.close()
        second.close()


def test_workers_ignore_ctrl_c_and_a_dead_worker_is_one_line(world) -> None:
    """Ctrl-C reaches the whole process group; the run's process checkpoints, so workers must live on."""
    recipe, cfg, net, legal = world
    workers = SelfPlayWorkers(cfg, recipe, SEEDS[:2], legal, workers=1)
    try:
        workers.start(np.random.default_rng(0))
        (proc,) = workers._pool._procs
        os.kill(proc.pid, signal.SIGINT)
        workers.submit(net, 0, 2, 1.0, np.random.default_rng(0))
        assert len(workers.receive()) == 2 and proc.is_alive()
        proc.kill()
        deadline = time.monotonic() + 10
        while proc.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        workers.submit(net, 0, 2, 1.0, np.random.default_rng(0))
        with pytest.raises(XferError, match="xfer-selfplay-0 stopped") as err:
            workers.receive()
        assert "xfer resume" in err.value.hint
    finally:
        workers.close()


def test_workers_must_divide_the_environments(world) -> None:
    recipe, cfg, _, legal = world
    with pytest.raises(XferError, match="selfplay.workers 3 must divide selfplay.num_envs 4"):
        SelfPlayWorkers(cfg, recipe, SEEDS, legal, workers=3)
