"""Data-parallel Vid2Act Stage 1 and CoWorld target-side updates on two CPU processes (gloo).

Each rank draws the global batch from its own stream (the run's seed, its rank, the update count it started
from) and trains on rows ``rank::2`` of it, with the gradients averaged over the ranks. The workers record
the rows every update of theirs read; the reference is one process making the same updates on the global
batches those rows make up (rank 0's rows at the even positions, rank 1's at the odd ones). The models'
noise is constant (as in ``test_distributed.py``) and the KL free nats are off (a clamp of the batch-mean
KL is not a mean over rows), so the reference is exact up to rounding.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from rank_helpers import ConstantNoise, params

from xfer.run import distributed

SEED = 11
BATCH, LENGTH = 4, 5  # the global batch: 2 rows a rank
STAGE1_UPDATES = 3
STATE, ACT, IMAGE = 5, 3, (64, 64, 3)


def write_dataset(directory: Path, act_dim: int, seed: int, image: bool = False, episodes: int = 3,
                  steps: int = 12) -> Path:
    """Episodes of random observations (64×64 images for Vid2Act, states for CoWorld) and actions."""
    from xfer.data.replay import ReplayBuffer

    gen = np.random.default_rng(seed)
    buffer = ReplayBuffer(directory)
    for _ in range(episodes):
        first = np.zeros(steps, bool)
        first[0] = True
        last = ~first & (np.arange(steps) == steps - 1)
        action = gen.uniform(-1, 1, (steps, act_dim)).astype(np.float32)
        action[0] = 0
        obs = ({"image": gen.integers(0, 256, (steps, *IMAGE), dtype=np.uint8)} if image
               else {"state": gen.normal(size=(steps, STATE)).astype(np.float32)})
        buffer.add_episode({**obs, "action": action, "reward": gen.normal(size=steps).astype(np.float32),
                            "is_first": first, "is_last": last, "is_terminal": np.zeros(steps, bool),
                            "success": np.zeros(steps, bool)})
    return directory


def model_config() -> Any:
    from xfer.dreamer.config import DreamerConfig

    return DreamerConfig.from_preset("tiny", kl_free=0.0, horizon=3)


def interleave(shares: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The global batch whose rows ``r::2`` are ``shares[r]``."""
    out = {}
    for key in shares[0]:
        value = np.empty((2 * len(shares[0][key]), *shares[0][key].shape[1:]), shares[0][key].dtype)
        value[0::2], value[1::2] = shares[0][key], shares[1][key]
        out[key] = value
    return out


def numpy_batch(batch: Any) -> dict[str, np.ndarray]:
    return {key: np.array(torch.as_tensor(value).cpu()) for key, value in batch.items()}


# ---- Vid2Act Stage 1 ------------------------------------------------------------------------------------
def stage1_trainer() -> Any:
    from xfer_plugins.vid2act.config import ReplayVAEConfig
    from xfer_plugins.vid2act.pretrain import TeacherTrainer
    from xfer_plugins.vid2act.teacher import MixtureTeacher, teacher_model_config

    torch.manual_seed(0)
    vae = ReplayVAEConfig(encoder_units=(16, 16), decoder_units=(16, 6), latent=3)
    model = teacher_model_config(model_config(), 1.0)
    teacher = MixtureTeacher({"image": IMAGE}, ACT, model, ["a", "b"], vae)
    return TeacherTrainer(teacher, 1e-3, torch.device("cpu"))


def stage1_batches(data: Path) -> Any:
    from xfer_plugins.vid2act.pretrain import mixture_batches

    from xfer.data.replay import ReplayBuffer

    opened = [(ReplayBuffer(data / name, readonly=True), {}) for name in ("a", "b")]
    return mixture_batches(opened, ACT, BATCH, LENGTH)


class OfflineContext:
    """What :func:`xfer.dreamer.loop.train_offline` reads of a run context: no checkpoint, no stop, no log."""

    def __init__(self) -> None:
        self.rng = np.random.default_rng(SEED)
        self.recipe = SimpleNamespace(eval=SimpleNamespace(every=10**9, video=False),
                                      logging=SimpleNamespace(every=10**9))
        self.logger = self.progress = distributed._Silent()

    def restore(self) -> None:
        return None

    def should_stop(self, step: int | None = None) -> bool:
        return False

    def checkpoint_due(self, step: int) -> bool:
        return False

    def save(self, step: int, state: Any) -> None:
        return None

    def say(self, message: str) -> None:
        return None


def train_stage1(data: Path, out: Path) -> None:
    """Stage 1's updates as ``run_pretrain`` makes them: ``train_offline`` over the source mixture."""
    from xfer.dreamer.loop import train_offline
    from xfer.dreamer.method_config import TrainSchedule

    trainer = stage1_trainer()
    seen: list[dict[str, np.ndarray]] = []
    step = trainer.train_step

    def record(batch: Any) -> dict[str, float]:
        seen.append(numpy_batch(batch))
        return step(batch)

    trainer.train_step = record
    schedule = TrainSchedule(updates=STAGE1_UPDATES, batch=BATCH, seq_len=LENGTH)
    with ConstantNoise():
        train_offline(OfflineContext(), trainer, stage1_batches(data), schedule)  # type: ignore[arg-type]
    torch.save({"seen": seen, "wm": params(trainer.teacher.world_model),
                "vae": params(trainer.teacher.replay)}, out / f"stage1-{distributed.rank()}.pt")


# ---- CoWorld --------------------------------------------------------------------------------------------
def coworld_learner(data: Path, rng: np.random.Generator) -> Any:
    """Two sources (so the selection runs), every stage on; a target phase of 2 world-model pretraining
    updates and 2 target updates."""
    from xfer_plugins.coworld.agents import TargetData, build_agent, wire_stages
    from xfer_plugins.coworld.config import CoWorldConfig
    from xfer_plugins.coworld.learner import CoWorldLearner

    cfg = CoWorldConfig.model_validate({
        "model": {"preset": "tiny", "kl_free": 0.0, "horizon": 3}, "batch_size": BATCH,
        "batch_length": LENGTH, "target_pretrain_updates": 2, "target_iterations": 2, "rounds": 2,
        "eta": {"start": 0.5}})
    torch.manual_seed(0)
    shapes = {"state": [STATE]}
    target = build_agent(shapes, ACT, cfg.model, "cpu", native=ACT - 1)
    sources = [build_agent(shapes, ACT, cfg.model, "cpu", native=ACT) for _ in range(2)]
    target_data = TargetData(data / "target", None, BATCH, LENGTH, ACT, ("state",), rng)
    stages = wire_stages(cfg, target, sources, ["a", "b"], target_data)
    router = SimpleNamespace(all_warm=True, steps=[0, 0], total_steps=0, active=0,
                             co_training_steps=lambda: 0)
    ctx = SimpleNamespace(rng=rng, recipe=SimpleNamespace(logging=SimpleNamespace(every=1000)),
                          logger=distributed._Silent(), say=lambda message: None)
    return CoWorldLearner(cfg, ctx, target, sources, stages, router, target_data)  # type: ignore[arg-type]


def source_batch() -> dict[str, np.ndarray]:
    gen = np.random.default_rng(3)
    first = np.zeros((BATCH, LENGTH), bool)
    first[:, 0] = True
    return {"state": gen.normal(size=(BATCH, LENGTH, STATE)).astype(np.float32),
            "action": gen.uniform(-1, 1, (BATCH, LENGTH, ACT)).astype(np.float32),
            "reward": gen.normal(size=(BATCH, LENGTH)).astype(np.float32), "is_first": first,
            "is_terminal": np.zeros((BATCH, LENGTH), bool)}


def coworld_updates(learner: Any, rng: np.random.Generator) -> None:
    """The target phase, then 2 source updates with Stage B (its target batches from the offline data)."""
    with ConstantNoise():
        learner.run_target_phase()
        learner.stages.reward_terms[0].enabled = True
        for _ in range(2):
            learner.sources[0].train_step(distributed.share_batch(lambda _rng: source_batch(), rng, 0))


def coworld_state(learner: Any) -> dict[str, Any]:
    stages = learner.stages
    return {"target": params(learner.target.world_model, learner.target.behavior),
            "source": params(learner.sources[0].world_model, learner.sources[0].behavior),
            "last_kl": stages.alignment.last_kl, "selector": stages.selector.state_dict()}


def train_coworld(data: Path, out: Path) -> None:
    rng = np.random.default_rng(SEED)
    learner = coworld_learner(data, rng)
    seen: dict[str, list[dict[str, np.ndarray]]] = {"target": [], "stage_b": []}
    train_world_model, tensors = learner.target.train_world_model, learner.target_data.tensors

    def record_target(batch: Any) -> Any:
        seen["target"].append(numpy_batch(batch))
        return train_world_model(batch)

    def record_stage_b(device: torch.device) -> dict[str, torch.Tensor]:
        batch = tensors(device)
        seen["stage_b"].append(numpy_batch(batch))
        return batch

    learner.target.train_world_model, learner.target_data.tensors = record_target, record_stage_b
    coworld_updates(learner, rng)
    torch.save({"seen": seen, **coworld_state(learner)}, out / f"coworld-{distributed.rank()}.pt")


def worker(data: Path, out: Path) -> None:
    torch.set_num_threads(1)
    distributed.setup("cpu")
    try:
        assert distributed.world() == 2
        train_stage1(data, out)
        distributed._generators.clear()  # each method's run starts its own per-rank stream
        train_coworld(data, out)
    finally:
        distributed.teardown()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    data = tmp_path_factory.mktemp("data")
    write_dataset(data / "a", ACT - 1, seed=1, image=True)
    write_dataset(data / "b", ACT, seed=2, image=True)
    write_dataset(data / "target", ACT - 1, seed=3)
    out = tmp_path_factory.mktemp("ranks")
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    distributed.launch(2, worker, data, out)
    return data, out


def rank_stream(rank: int) -> np.random.Generator:
    """A rank's batch stream as :func:`xfer.run.distributed.rank_rng` derives it (seed, rank, start 0)."""
    return np.random.default_rng([SEED, rank, 0])


def assert_same_rows(got: dict[str, np.ndarray], want: dict[str, Any]) -> None:
    assert set(got) == set(want)
    for key in got:
        np.testing.assert_array_equal(got[key], np.asarray(want[key]))


def test_vid2act_stage1_two_ranks_equal_one_process_on_the_global_batch(two_ranks: tuple[Path, Path]) -> None:
    data, out = two_ranks
    ranks = [torch.load(out / f"stage1-{r}.pt", weights_only=False) for r in (0, 1)]
    assert torch.equal(ranks[0]["wm"], ranks[1]["wm"]), "the world model's update is the same on every rank"
    assert torch.equal(ranks[0]["vae"], ranks[1]["vae"]), "so is the action replay VAE's"
    sample = stage1_batches(data)
    for r, rank in enumerate(ranks):  # each rank trained on its rows of its own stream's global batches
        stream = rank_stream(r)
        assert len(rank["seen"]) == STAGE1_UPDATES
        for seen in rank["seen"]:
            assert len(seen["image"]) == BATCH // 2
            assert_same_rows(seen, {key: value[r::2] for key, value in sample(stream).items()})
    trainer = stage1_trainer()  # reference: one process on the global batches the ranks' rows make up
    start = params(trainer.teacher.world_model), params(trainer.teacher.replay)
    with ConstantNoise():
        for k in range(STAGE1_UPDATES):
            trainer.train_step(interleave([rank["seen"][k] for rank in ranks]))
    wm, vae = params(trainer.teacher.world_model), params(trainer.teacher.replay)
    assert not torch.allclose(wm, start[0]) and not torch.allclose(vae, start[1])
    torch.testing.assert_close(ranks[0]["wm"], wm, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(ranks[0]["vae"], vae, rtol=1e-4, atol=1e-6)


def test_coworld_target_side_two_ranks_equal_one_process_on_the_global_batch(
        two_ranks: tuple[Path, Path]) -> None:
    data, out = two_ranks
    ranks = [torch.load(out / f"coworld-{r}.pt", weights_only=False) for r in (0, 1)]
    for key in ("target", "source", "last_kl"):
        assert torch.equal(ranks[0][key], ranks[1][key]), f"{key}: every rank makes the same update"
    assert ranks[0]["selector"] == ranks[1]["selector"], "every rank selects the same source"
    for r, rank in enumerate(ranks):  # the target batches are this rank's rows of its own stream's batches
        stream = rank_stream(r)
        draws = [*rank["seen"]["target"], *rank["seen"]["stage_b"]]
        assert len(rank["seen"]["target"]) == 4 and len(rank["seen"]["stage_b"]) == 2
        target_data = coworld_learner(data, np.random.default_rng(SEED)).target_data
        for seen in draws:
            assert len(seen["state"]) == BATCH // 2
            assert_same_rows(seen, {key: value[r::2] for key, value in target_data.sample(stream).items()})
    # reference: one process; its target batches are the global batches the ranks' rows make up
    rng = np.random.default_rng(SEED)
    learner = coworld_learner(data, rng)
    start = coworld_state(learner)
    queue = [interleave([rank["seen"][part][k] for rank in ranks])
             for part, count in (("target", 4), ("stage_b", 2)) for k in range(count)]
    learner.target_data.sample = lambda rng=None: queue.pop(0)
    coworld_updates(learner, rng)
    assert not queue
    single = coworld_state(learner)
    assert not torch.allclose(single["target"], start["target"])
    assert not torch.allclose(single["source"], start["source"])
    for key in ("target", "source", "last_kl"):
        torch.testing.assert_close(ranks[0][key], single[key], rtol=1e-4, atol=1e-6)
    assert ranks[0]["selector"] == single["selector"]
