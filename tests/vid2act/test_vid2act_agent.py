"""The mixture teacher and the student: label conditioning, label selection in imagination and at acting time,
the actor's input size, any action size and batch shape, different source and target action sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers_vid2act import make_batch, make_student, make_teacher

torch = pytest.importorskip("torch")

from xfer_plugins.vid2act.pretrain import mixture_batches  # noqa: E402
from xfer_plugins.vid2act.teacher import MixtureTeacher, pad_action  # noqa: E402

from xfer.data.replay import ReplayBuffer  # noqa: E402


def test_mixture_model_predicts_differently_per_label() -> None:
    torch.manual_seed(0)
    teacher = make_teacher()
    batch = make_batch(batch=1, length=3, labels=3)
    out = teacher.observe(batch)
    state = out.post.map(lambda x: x[:, -1])
    action = torch.rand(1, 4)
    nxt = teacher.transit(state, action, [0, 1, 2])
    assert nxt.deter.shape == (3, 1, teacher.world_model.rssm.deter_dim)
    for a, b in ((0, 1), (1, 2), (0, 2)):
        assert not torch.allclose(nxt.deter[a], nxt.deter[b])
        assert not torch.allclose(nxt.stats[a], nxt.stats[b])
    # the decoder head is conditioned too: same features, different label → different image
    feat = teacher.world_model.rssm.feat(state)
    images = [teacher.world_model.decoder(feat, teacher.labels(torch.tensor([k])))["image"] for k in range(2)]
    assert not torch.allclose(images[0], images[1])


def test_teacher_file_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    teacher = make_teacher(tasks=("x", "y"))
    path = teacher.save(tmp_path / "teacher.pt")
    loaded = MixtureTeacher.load(tmp_path)  # a directory holding teacher.pt works too
    assert loaded.tasks == ["x", "y"] and loaded.act_dim == teacher.act_dim
    assert all(not p.requires_grad for p in loaded.parameters())
    for name, value in teacher.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[name]), name
    assert path.is_file()


def test_actor_input_includes_replay_features() -> None:
    teacher = make_teacher()
    feat = teacher.feat_dim
    with_replay = make_student(teacher)
    assert with_replay.behavior.actor.net[0].in_features == feat + teacher.replay.hidden_dim
    without = make_student(make_teacher(), action_replay=False)
    assert without.behavior.actor.net[0].in_features == feat
    assert without.actor_extra is None


def test_acting_selects_the_label_with_the_highest_weight(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    agent = make_student(make_teacher())
    calls = []

    def weights(teacher_feat: torch.Tensor, student_feat: torch.Tensor) -> torch.Tensor:
        calls.append(teacher_feat.shape)
        w = torch.full(teacher_feat.shape[:-1], 0.1)
        w[1] = 0.8
        return w

    monkeypatch.setattr(agent.selector, "weights", weights)
    obs = {"image": np.zeros((3, 64, 64, 3), np.uint8), "is_first": np.ones(3, bool)}
    action, state = agent.act(obs, None, explore=True)
    obs["is_first"][:] = False
    action, state = agent.act(obs, state, explore=False)
    assert action.shape == (3, 4) and np.abs(action).max() <= 1
    assert calls == [(3, 3, agent.world_model.feat_dim)] * 2  # the teacher stepped under every label
    assert agent.acting_counts.tolist() == [0, 6, 0]
    metrics = agent._acting_metrics()
    assert metrics == {"vid2act/act_label/a": 0.0, "vid2act/act_label/b": 1.0, "vid2act/act_label/c": 0.0}


@pytest.mark.parametrize(("act_dim", "shape"), [(1, (1, 2)), (3, (3, 5)), (6, (2, 4))])
def test_any_action_size_and_batch_shape(act_dim: int, shape: tuple[int, int]) -> None:
    torch.manual_seed(0)
    teacher = make_teacher(act_dim=act_dim)
    loss, _, out = teacher.world_model_loss(make_batch(*shape, act_dim=act_dim, labels=3))
    replay_loss, _ = teacher.replay_loss(out, make_batch(*shape, act_dim=act_dim, labels=3))
    assert torch.isfinite(loss) and torch.isfinite(replay_loss)
    agent = make_student(teacher, act_dim=act_dim)
    metrics = agent.train_step(make_batch(*shape, act_dim=act_dim))
    assert np.isfinite(metrics["vid2act/distill_loss"])


def test_target_with_a_smaller_action_than_the_teacher() -> None:
    torch.manual_seed(0)
    teacher = make_teacher(act_dim=6)
    agent = make_student(teacher, act_dim=2)
    metrics = agent.train_step(make_batch(act_dim=2))
    assert np.isfinite(metrics["wm/loss"])
    obs = {"image": np.zeros((1, 64, 64, 3), np.uint8), "is_first": np.ones(1, bool)}
    action, _ = agent.act(obs, None, True)
    assert action.shape == (1, 2)
    padded = pad_action(torch.ones(2, 2), 6)
    assert padded.tolist() == [[1, 1, 0, 0, 0, 0]] * 2


def test_sources_with_different_action_sizes_are_padded(tmp_path: Path) -> None:
    buffers = []
    for i, size in enumerate((2, 4)):
        buffer = ReplayBuffer(tmp_path / f"source{i}")
        length = 6
        buffer.add_episode({
            "image": np.full((length, 64, 64, 3), i, np.uint8),
            "action": np.ones((length, size), np.float32),
            "reward": np.zeros(length, np.float32), "is_first": np.arange(length) == 0,
            "is_last": np.arange(length) == length - 1, "is_terminal": np.zeros(length, bool),
            "success": np.zeros(length, bool)})
        buffers.append((buffer, {"action": {"size": size}}))
    sample = mixture_batches(buffers, act_dim=5, batch=4, length=3)
    batch = sample(np.random.default_rng(0))
    assert batch["action"].shape == (4, 3, 5)
    assert batch["cond"].tolist() == [[1, 0], [1, 0], [0, 1], [0, 1]]
    from_small = batch["image"][:, 0, 0, 0, 0] == 0
    assert (batch["action"][from_small][..., 2:] == 0).all()
    from_large = batch["action"][~from_small]
    assert (from_large[..., 4:] == 0).all() and (from_large[..., :4] == 1).all()


def test_replay_vae_frozen_by_default_trained_when_asked() -> None:
    torch.manual_seed(0)
    teacher = make_teacher()
    frozen = make_student(teacher)
    before = {k: v.clone() for k, v in teacher.replay.state_dict().items()}
    frozen.train_step(make_batch())
    assert all(torch.equal(v, before[k]) for k, v in teacher.replay.state_dict().items())

    teacher = make_teacher()
    wm_before = {k: v.clone() for k, v in teacher.world_model.state_dict().items()}
    agent = make_student(teacher, train_vae_in_transfer=True)
    agent.source_batches = lambda: make_batch(labels=3, seed=1)
    before = {k: v.clone() for k, v in teacher.replay.state_dict().items()}
    metrics = agent.train_step(make_batch())
    assert "replay/loss" in metrics
    assert any(not torch.equal(v, before[k]) for k, v in teacher.replay.state_dict().items())
    assert all(torch.equal(v, wm_before[k]) for k, v in teacher.world_model.state_dict().items())
    assert "replay_vae" in agent.state_dict()["optimizers"]
