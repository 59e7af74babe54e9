"""Stage 2 (Eq. 1): what each ablation switch changes in the update."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from xfer_plugins.xtra.config import FinetuneSettings, TaskWeightSettings, XtraConfig
from xfer_plugins.xtra.finetune import CrossTaskUpdate, freeze_representation
from xfer_plugins.xtra.joint import concat_batches, split_losses

from xfer.muzero.learner import weighted_total


@pytest.fixture
def make_update(fake_ctx, learner_factory, games, cfg, make_game):
    def make(**settings):
        return _update(fake_ctx, learner_factory, games, cfg, make_game, **settings)

    return make


def _update(ctx, learner_factory, games, cfg, make_game, **settings):
    target = make_game("target", [0, 1, 2], 9, 0, cfg).replay
    weights = settings.pop("task_weights", TaskWeightSettings(cycle=4, count_steps=2, warmup=2))
    return CrossTaskUpdate(ctx, learner_factory(0), target, games, FinetuneSettings(task_weights=weights,
                                                                                   **settings))


def test_cross_task_update_follows_the_schedule(make_update, cfg) -> None:
    update = make_update()
    assert update.offline_batch == cfg.batch_size // 2  # B/n from each offline game (Appendix D)
    logged = [update() for _ in range(8)]
    for step, stats in enumerate(logged):
        counting = step >= 2 and step % 4 < 2
        assert ("xtra/cos/shooter" in stats) == counting
        assert {"xtra/eta/shooter", "xtra/eta/maze", "xtra/offline/maze/total"} <= set(stats)
    assert [s["xtra/eta/maze"] for s in logged[:5]] == [1.0] * 5  # warm-up and first window: eta = 1
    sims = [logged[4]["xtra/cos/maze"], logged[5]["xtra/cos/maze"]]
    assert logged[5]["xtra/eta/maze"] == pytest.approx(sum(c > 0.1 for c in sims) / 2)


def test_without_cross_task_only_the_target_is_trained(make_update, cfg) -> None:
    update = make_update(cross_task=False)
    assert update.games == [] and update.weights() == [1.0]
    stats = update()
    assert not any(k.startswith("xtra/") for k in stats)
    assert stats["total"] == pytest.approx(stats["target_total"])


def test_without_task_weights_eta_stays_one(make_update, cfg) -> None:
    update = make_update(task_weights=TaskWeightSettings(enabled=False, cycle=4, count_steps=2, warmup=0))
    for _ in range(6):
        stats = update()
        assert "xtra/cos/maze" not in stats and stats["xtra/eta/maze"] == 1.0


def test_loss_balance_by_hand(make_update, cfg) -> None:
    """B = 4 target positions and B/2 = 2 from each of two offline games: a joint batch of 8."""
    code = make_update()  # the default: the authors' mean over the joint batch (App. D, 2x batch)
    assert (cfg.batch_size, code.offline_batch) == (4, 2)
    assert code.weights() == [0.5, 0.25, 0.25]  # 4/8, 2/8, 2/8: the target is half of the loss
    code.schedule.weights = np.array([1.0, 0.5])
    assert code.weights() == [0.5, 0.25, 0.125]  # eta_i scales its game's share
    paper = make_update(loss_normalisation="paper")
    assert paper.weights() == [1.0, 1.0, 1.0]  # Eq. 1 literally: L_t + sum eta_i L_i
    paper.schedule.weights = np.array([1.0, 0.5])
    assert paper.weights() == [1.0, 1.0, 0.5]


def test_default_balance_is_one_mean_over_the_joint_batch(make_update) -> None:
    """With eta = 1 the weighted total is exactly the single-task loss of the concatenated batch."""
    update = make_update(task_weights=TaskWeightSettings(enabled=False))
    learner = update.learner
    batches = [update._batch(update.target, 4, offline=False)]
    batches += [update._batch(g.replay, 2, offline=True) for g in update.games]
    torch.manual_seed(0)
    joint = learner.losses(concat_batches(batches))
    per_task = split_losses(joint, [4, 2, 2])
    assert weighted_total(per_task, update.weights()).item() == pytest.approx(joint.total.item(), rel=1e-6)
    # the logged diagnostics split with the terms: the slices' size-weighted means are the joint batch's
    for name, value in joint.as_dict().items():
        if name.startswith(("raw_", "weight_mean", "target_policy", "uniform_policy")):
            parts = [loss.as_dict()[name] for loss in per_task]
            assert (4 * parts[0] + 2 * parts[1] + 2 * parts[2]) / 8 == pytest.approx(value, rel=1e-5), name
    stats = update()
    assert "weight_mean" in stats and "raw_policy" in stats  # the target task's, logged by Stage 2
    offline = stats["xtra/offline/shooter/total"] + stats["xtra/offline/maze/total"]
    assert stats["total"] == pytest.approx(0.5 * stats["target_total"] + 0.25 * offline, rel=1e-6)


def test_frozen_representation_stays_fixed(make_update, cfg) -> None:
    update = make_update()
    freeze_representation(update.learner)
    net = update.learner.net
    rep = {k: v.clone() for k, v in net.representation.state_dict().items()}
    rest = [p.clone() for p in net.dynamics_net.parameters()]
    for _ in range(3):
        update()
    assert all(torch.equal(rep[k], v) for k, v in net.representation.state_dict().items())  # incl. BN stats
    assert any(not torch.equal(a, b) for a, b in zip(rest, net.dynamics_net.parameters(), strict=True))
    assert not net.representation.training and net.prediction.training


def test_config_defaults_are_the_papers() -> None:
    cfg = XtraConfig()
    assert cfg.model.repr_blocks == 4  # EfficientZero-L (Sec. 4, App. H)
    assert (cfg.model.value_loss_coeff, cfg.model.policy_loss_coeff, cfg.model.reward_loss_coeff,
            cfg.model.consistency_coeff) == (0.25, 1.0, 1.0, 2.0)
    assert (cfg.model.lr, cfg.model.momentum, cfg.model.weight_decay) == (0.2, 0.9, 1e-4)
    assert cfg.selfplay.env_steps == 100_000 and cfg.finetune.cross_task and cfg.pretrain
    assert not cfg.finetune.freeze_representation and cfg.finetune.task_weights.enabled
    assert cfg.finetune.loss_normalisation == "code" and cfg.finetune.offline_targets == "reanalyse"
    with pytest.raises(ValueError):
        XtraConfig.model_validate({"finetune": {"crosstask": False}})
    np.testing.assert_equal(cfg.finetune.offline_batch_size, None)


def test_only_the_target_replay_gets_the_off_policy_correction(make_update, monkeypatch) -> None:
    """EZ Sec. 4.3 shortens TD horizons for the agent's own older data: the target batch passes its
    positions' ages (transitions stored since), the offline games' batches none (full horizon)."""
    import xfer_plugins.xtra.finetune as finetune

    seen = []
    real = finetune.make_batch

    def recording(replay, positions, *args, ages=None, **kwargs):
        seen.append((replay, ages))
        if ages is not None:
            assert np.array_equal(ages, replay.ages(positions.game_ids, positions.steps))
        return real(replay, positions, *args, ages=ages, **kwargs)

    monkeypatch.setattr(finetune, "make_batch", recording)
    update = make_update()
    update()
    assert seen[0][0] is update.target and seen[0][1] is not None and (seen[0][1] >= 1).all()
    assert [ages for replay, ages in seen[1:]] == [None, None]
    assert [replay for replay, _ in seen[1:]] == [g.replay for g in update.games]
