"""Data-parallel learners on two CPU processes (gloo): the update of the global batch, split over ranks.

The models' noise (latent samples, actor samples) is made constant here, so that a single process on the
whole batch is an exact reference; the EfficientZero network's BatchNorm uses each rank's batch
statistics (as DDP without SyncBatchNorm does), so its reference averages the gradients of the two halves.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from rank_helpers import ConstantNoise, params

from xfer.run import distributed

UPDATES = 3


def dreamer_agent() -> Any:
    from xfer.dreamer.agent import DreamerAgent
    from xfer.dreamer.config import DreamerConfig

    torch.manual_seed(0)
    cfg = DreamerConfig.from_preset("tiny", kl_free=0.0, horizon=4)
    return DreamerAgent({"state": (5,)}, 3, False, cfg)


def dreamer_batches() -> list[dict[str, np.ndarray]]:
    gen = np.random.default_rng(5)
    out = []
    for _ in range(UPDATES):
        first = np.zeros((4, 6), np.float32)
        first[:, 0] = 1
        out.append({"state": gen.normal(size=(4, 6, 5)).astype(np.float32),
                    "action": gen.uniform(-1, 1, (4, 6, 3)).astype(np.float32),
                    "reward": gen.normal(size=(4, 6)).astype(np.float32), "is_first": first,
                    "is_terminal": np.zeros((4, 6), np.float32)})
    return out


def train_dreamer(out: Path | None) -> torch.Tensor:
    agent = dreamer_agent()
    rng = np.random.default_rng(0)
    with ConstantNoise():
        for batch in dreamer_batches():
            agent.train_step(distributed.share_batch(lambda _rng, b=batch: b, rng, 0))
    result = params(agent.world_model, agent.behavior)
    if out is not None:
        torch.save(result, out / f"dreamer-{distributed.rank()}.pt")
    return result


def muzero_config() -> Any:
    from xfer.muzero.config import EfficientZeroConfig

    fields = EfficientZeroConfig.model_fields
    extra = {key: 0 for key in ("augment_shift", "augment_intensity") if key in fields}  # no random views
    return EfficientZeroConfig.model_validate({"preset": "tiny", "lr_warmup_steps": 0, **extra})


def half(batch: Any, part: int) -> Any:
    import dataclasses

    return dataclasses.replace(batch, **{f.name: getattr(batch, f.name)[part::2]
                                         for f in dataclasses.fields(batch)})


def muzero_learner() -> Any:
    from xfer.muzero.learner import Learner

    torch.manual_seed(0)
    return Learner(muzero_config())


def train_muzero(out: Path) -> None:
    from xfer.muzero.bench import synthetic_batch

    learner = muzero_learner()
    with ConstantNoise():
        for k in range(UPDATES):
            learner.update(half(synthetic_batch(learner.cfg, 8, seed=k), distributed.rank()))
    torch.save({"params": params(learner.net), "buffers": [b.clone() for b in learner.net.buffers()]},
               out / f"muzero-{distributed.rank()}.pt")


def worker(out: Path) -> None:
    torch.set_num_threads(1)
    distributed.setup("cpu")
    try:
        assert distributed.world() == 2
        train_dreamer(out)
        train_muzero(out)
    finally:
        distributed.teardown()


@pytest.fixture(autouse=True)
def one_thread() -> Any:
    """The one-process references on one thread, as the ranks (``worker``): an earlier in-process run may have
    set more (``configure_torch``), and another reduction order moves the results by up to 7e-4."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ranks")
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    distributed.launch(2, worker, out)
    return out


def test_dreamer_two_ranks_equal_one_process_on_the_global_batch(two_ranks: Path) -> None:
    rank0, rank1 = (torch.load(two_ranks / f"dreamer-{r}.pt") for r in (0, 1))
    assert torch.equal(rank0, rank1), "every rank applies the same averaged update"
    single = train_dreamer(None)
    start = params(dreamer_agent().world_model, dreamer_agent().behavior)
    assert not torch.allclose(single, start), "the updates moved the parameters"
    torch.testing.assert_close(rank0, single, rtol=1e-4, atol=1e-6)


def test_efficientzero_two_ranks_average_the_halves_gradients(two_ranks: Path) -> None:
    from xfer.muzero.bench import synthetic_batch

    ranks = [torch.load(two_ranks / f"muzero-{r}.pt") for r in (0, 1)]
    assert torch.equal(ranks[0]["params"], ranks[1]["params"])
    assert all(torch.equal(a, b) for a, b in zip(ranks[0]["buffers"], ranks[1]["buffers"], strict=True))
    learner = muzero_learner()  # reference: one process, the mean of the two halves' gradients, then SGD
    with ConstantNoise():
        for k in range(UPDATES):
            batch = synthetic_batch(learner.cfg, 8, seed=k)
            for group in learner.optimizer.param_groups:
                group["lr"] = learner.learning_rate(learner.train_step)
            learner.optimizer.zero_grad(set_to_none=True)
            for part in (0, 1):
                (learner.losses(half(batch, part)).total / learner.cfg.unroll_steps / 2).backward()
            torch.nn.utils.clip_grad_norm_(learner.net.parameters(), learner.cfg.max_grad_norm)
            learner.optimizer.step()
            learner.train_step += 1
    assert not torch.allclose(params(learner.net), params(muzero_learner().net))
    torch.testing.assert_close(ranks[0]["params"], params(learner.net), rtol=1e-4, atol=1e-6)


def test_one_process_is_unchanged() -> None:
    rng = np.random.default_rng(3)
    assert distributed.world() == 1 and distributed.rank_rng(rng, 7) is rng
    batch = {"x": np.arange(4)}
    assert distributed.share_batch(lambda r: batch, rng, 0)["x"].tolist() == [0, 1, 2, 3]
    assert distributed.any_rank(True) and not distributed.any_rank(False)
    assert distributed.gather_rows(np.ones(2))[0].tolist() == [1, 1]


def test_run_on_two_processes_then_resume_on_one(tmp_path: Path) -> None:
    pytest.importorskip("gymnasium")
    from xfer.run.checkpoint import Checkpointer
    from xfer.run.runner import resume_run, run_status

    recipe = Path(__file__).resolve().parents[2] / "recipes" / "dreamer_gym_cartpole.yaml"
    sets = ["device=cpu", f"logdir={tmp_path / 'runs'}", "eval.episodes=1", "eval.every=1000",
            "logging.live=false", "logging.every=20", "checkpoint.every=40", "dreamer.train.env_steps=120",
            "dreamer.train.prefill=40", "dreamer.train.pretrain=4", "dreamer.train.train_every=4",
            "dreamer.train.batch=4", "dreamer.train.seq_len=8", "perf.threads=1"]
    rundir = distributed.start(recipe, sets, None, 60, nproc=2, resume=False)
    assert rundir is not None and run_status(rundir)["status"] == "stopped"
    assert [p.name for p in rundir.parent.iterdir()] == [rundir.name], "scratch copies are removed"
    assert not (rundir / "ranks").exists() and (rundir / "replay").is_dir()
    stopped = Checkpointer(rundir / "checkpoints").load_latest()[1]["method"]["loop"]["updates"]
    assert stopped > 0
    resume_run(rundir)  # one process continues the two-process run
    assert run_status(rundir)["status"] == "done"
    final = Checkpointer(rundir / "checkpoints").load_latest()[1]["method"]["loop"]
    assert final["env_steps"] >= 120 and final["updates"] > stopped


def test_a_batch_that_does_not_split_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from xfer.errors import XferError

    monkeypatch.setattr(distributed, "world", lambda: 2)
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    monkeypatch.setattr(distributed, "_generators", {})
    rng = np.random.default_rng(0)
    batch = distributed.share_batch(lambda r: {"x": np.arange(6)}, rng, 0)
    assert batch["x"].tolist() == [1, 3, 5]
    with pytest.raises(XferError, match="multiple of 2"):
        distributed.share_batch(lambda r: {"x": np.arange(5)}, rng, 0)
    assert distributed.share_indices(4) == slice(1, None, 2)
