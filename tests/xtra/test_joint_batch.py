"""Stage 2's one forward pass over the joint batch (batch-norm statistics shared as in the authors' code),
exact per-task gradients for Eq. 2 from it, and offline policy targets from stored search policies (and the
datasets that hold them, exported from an efficientzero replay)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from xfer_plugins.xtra.config import FinetuneSettings, TaskWeightSettings
from xfer_plugins.xtra.finetune import CrossTaskUpdate
from xfer_plugins.xtra.joint import concat_batches, split_losses
from xfer_plugins.xtra.offline import episode_to_game
from xfer_plugins.xtra.pretrain import OfflineGame

from xfer.errors import XferError
from xfer.muzero.learner import weighted_total
from xfer.muzero.replay import GameHistory, PrioritizedReplay

A = 18  # the full Atari head of the conftest's tiny model


def constant_game(name: str, value: int, task_id: int, cfg, length: int = 10) -> OfflineGame:
    """A game whose every frame is the grey level ``value``; legal actions 0..3."""
    legal = np.zeros(A, bool)
    legal[:4] = True
    replay = PrioritizedReplay(cfg)
    actions = np.arange(length) % 4
    policies = np.eye(A, dtype=np.float32)[actions]
    replay.add(GameHistory(frames=np.full((length + 1, 1, cfg.image_size, cfg.image_size), value, np.uint8),
                           actions=actions, rewards=np.ones(length, np.float32), policies=policies,
                           root_values=np.zeros(length, np.float32), legal_mask=legal, terminal=True,
                           task_id=task_id))
    return OfflineGame(name, replay, legal, searched=True)


def first_batch_norm(learner) -> torch.nn.BatchNorm2d:
    return next(m for m in learner.net.representation.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_target_is_half_of_the_stems_batch_norm_statistics(cfg, fake_ctx, learner_factory) -> None:
    """Momentum 1 makes the running mean the last batch's mean. Frames are constant per task, so the stem's
    pre-normalisation activations are affine in the grey level and the joint running mean is
    f·(target's) + (1 - f)·(offline's), f the target's share of the batch-norm batch: 4 of 4 + 2 + 2."""
    no_augmentation = {name: 0 for name in type(cfg).model_fields if name.startswith("augment")}
    cfg = cfg.model_copy(update={"bn_momentum": 1.0, **no_augmentation})
    learner = learner_factory(0, cfg)
    target = constant_game("target", 200, 0, cfg)
    games = [constant_game("a", 20, 1, cfg), constant_game("b", 20, 2, cfg)]
    update = CrossTaskUpdate(fake_ctx, learner, target.replay, games, FinetuneSettings(
        task_weights=TaskWeightSettings(enabled=False)))
    batches = [update._batch(target.replay, 4, offline=False)]
    batches += [update._batch(g.replay, 2, offline=True) for g in games]
    bn = first_batch_norm(learner)

    def running_mean(parts) -> torch.Tensor:
        learner.losses(concat_batches(parts))
        return bn.running_mean.clone()

    only_target, only_offline = running_mean(batches[:1]), running_mean(batches[1:])
    joint = running_mean(batches)
    differs = (only_target - only_offline).abs() > 1e-3
    assert differs.sum() >= 2
    share = (joint - only_offline)[differs] / (only_target - only_offline)[differs]
    assert torch.allclose(share, torch.full_like(share, 0.5), atol=1e-4)
    update()  # the update itself runs that joint forward pass (before its SGD step)
    assert torch.allclose(bn.running_mean, joint, atol=1e-5)


def test_per_task_gradients_are_those_of_each_tasks_loss_on_the_joint_forward(make_game, cfg,
                                                                               learner_factory, fake_ctx):
    learner = learner_factory(0)
    target = make_game("target", [0, 1, 2], 9, 0, cfg)
    games = [make_game("shooter", [0, 1, 3, 4], 1, 1, cfg), make_game("maze", [0, 2, 5, 6, 7], 2, 2, cfg)]
    update = CrossTaskUpdate(fake_ctx, learner, target.replay, games, FinetuneSettings())
    batch = concat_batches([update._batch(target.replay, 4, offline=False)]
                           + [update._batch(g.replay, 2, offline=True) for g in games])
    params = [p for p in learner.net.parameters() if p.requires_grad]

    def task_losses():
        torch.manual_seed(5)  # the same augmentation: the same joint forward pass
        return split_losses(learner.losses(batch), [4, 2, 2])

    losses = task_losses()
    grads = [learner.task_gradient(loss.total) for loss in losses]
    for i in range(3):
        learner.net.zero_grad(set_to_none=True)
        task_losses()[i].total.backward()
        separate = torch.cat([(torch.zeros_like(p) if p.grad is None else p.grad).flatten() for p in params])
        assert torch.allclose(grads[i], separate, rtol=1e-5, atol=1e-7), i
    assert all(g.norm() > 0 for g in grads)
    weights = [0.5, 0.25, 0.125]  # and the update's gradient is the weighted sum of the per-task ones
    total = learner.task_gradient(weighted_total(losses, weights))
    combined = sum(w * g for w, g in zip(weights, grads, strict=True))
    assert torch.allclose(total, combined, rtol=1e-5, atol=1e-5)
    torch.manual_seed(5)  # sharing batch norm is visible: alone, the target's loss is another number
    alone = learner.losses(concat_batches([update._batch(target.replay, 4, offline=False)]))
    assert alone.total.item() != pytest.approx(losses[0].total.item(), rel=1e-4)


def _episode_with_search(rng: np.random.Generator, steps: int, cfg) -> dict[str, np.ndarray]:
    rows = steps + 1
    search = rng.dirichlet(np.ones(4), size=rows).astype(np.float32)
    policy = np.zeros((rows, A), np.float32)
    policy[:, :4] = search
    actions = np.zeros((rows, A), np.float32)
    actions[np.arange(1, rows), rng.integers(4, size=steps)] = 1.0
    return {"image": rng.integers(0, 256, (rows, cfg.image_size, cfg.image_size, 1), dtype=np.uint8),
            "action": actions, "reward": np.ones(rows, np.float32), "is_terminal": np.eye(rows)[-1] > 0,
            "search_policy": policy, "search_value": np.linspace(0, 1, rows, dtype=np.float32)}


def test_stored_offline_targets_are_the_datasets_search_policies(cfg, learner_factory, fake_ctx,
                                                                 make_game) -> None:
    episode = _episode_with_search(np.random.default_rng(0), 12, cfg)
    legal = np.zeros(A, bool)
    legal[:4] = True
    game = episode_to_game(episode, cfg, legal, task_id=1)
    np.testing.assert_array_equal(game.policies, episode["search_policy"][:-1])
    np.testing.assert_array_equal(game.root_values, episode["search_value"][:-1])
    replay = PrioritizedReplay(cfg)
    replay.add(game)
    offline = OfflineGame("searched", replay, legal, searched=True)
    target = make_game("target", [0, 1, 2], 9, 0, cfg)
    stored = CrossTaskUpdate(fake_ctx, learner_factory(0), target.replay, [offline],
                             FinetuneSettings(offline_targets="stored"))
    batch = stored._batch(replay, 6, offline=True)
    for b, t in enumerate(batch.steps):
        inside = min(cfg.unroll_steps + 1, len(game) - int(t))
        np.testing.assert_allclose(batch.target_policy[b, :inside].numpy(), game.policies[t:t + inside])
    fresh = CrossTaskUpdate(fake_ctx, learner_factory(0), target.replay, [offline], FinetuneSettings())
    reanalysed = fresh._batch(replay, 6, offline=True)
    assert not np.allclose(reanalysed.target_policy[:, 0].numpy(), game.policies[reanalysed.steps])
    stored()  # a whole update runs on stored targets


def test_stored_offline_targets_need_datasets_with_search_policies(cfg, games, learner_factory, fake_ctx,
                                                                   make_game) -> None:
    target = make_game("target", [0, 1, 2], 9, 0, cfg)
    with pytest.raises(XferError, match="'shooter' stores no search policies"):
        CrossTaskUpdate(fake_ctx, learner_factory(0), target.replay, games,
                        FinetuneSettings(offline_targets="stored"))


def test_a_replay_exports_to_a_dataset_with_its_search(cfg, games, tmp_path) -> None:
    """An efficientzero replay → dataset (search_policy, search_value) → the same game for XTRA."""
    from xfer.data.dataset import Dataset
    from xfer.muzero.search_dataset import export_search_dataset

    replay = games[0].replay
    rng = np.random.default_rng(3)
    for game in replay.games:  # a search's visit distributions and values, not one-hot behaviour
        game.policies[:] = rng.dirichlet(np.ones(A), size=len(game)).astype(np.float32)
        game.root_values[:] = rng.normal(size=len(game)).astype(np.float32)
    first = replay.games[0]  # a continued segment: the frames before its first one are real ones
    first.past_frames = np.stack([first.frames[0] // 2 + k for k in range(cfg.frame_stack - 1)])
    replay.save(tmp_path / "replay")
    meta = export_search_dataset(tmp_path / "replay", tmp_path / "data", cfg, "atari", "phoenix")
    assert meta["episodes"] == len(replay.games) and meta["search_statistics"]
    episodes = list(Dataset.open(tmp_path / "data"))
    assert episodes[0]["image"].shape[1:] == (cfg.image_size, cfg.image_size, cfg.frame_stack)
    for episode, game in zip(episodes, replay.games, strict=True):
        again = episode_to_game(episode, cfg, game.legal_mask, task_id=game.task_id)
        for name in ("frames", "actions", "rewards", "policies", "root_values"):
            np.testing.assert_array_equal(getattr(again, name), getattr(game, name), err_msg=name)
        for t in range(cfg.frame_stack):  # the first rows stack the same frames, past ones included
            np.testing.assert_array_equal(again.stacked_obs(t, cfg.frame_stack),
                                          game.stacked_obs(t, cfg.frame_stack))
        assert again.terminal == game.terminal
    lengths = np.cumsum([len(game) for game in replay.games])  # games that ended by an agent step only
    cut = export_search_dataset(tmp_path / "replay", tmp_path / "cut", cfg, "atari", "phoenix",
                                until_step=int(lengths[1]))
    assert cut["episodes"] == 2 and cut["steps"] == lengths[1]
    with pytest.raises(XferError, match="is not empty"):  # never writes over another dataset
        export_search_dataset(tmp_path / "replay", tmp_path / "cut", cfg, "atari", "phoenix")
    replay.first_id = 3  # a replay that dropped its oldest games cannot say when the others ended
    replay.save(tmp_path / "evicted")
    with pytest.raises(XferError, match="dropped its first 3 games"):
        export_search_dataset(tmp_path / "evicted", tmp_path / "late", cfg, "atari", "phoenix", until_step=5)
    with pytest.raises(XferError, match="no game of the replay"):
        export_search_dataset(tmp_path / "replay", tmp_path / "none", cfg, "atari", "phoenix",
                              until_step=int(lengths[0]) - 1)
