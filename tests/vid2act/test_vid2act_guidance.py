"""Generative action replay (Eq. 8, Algorithm 1): k* re-selected at every imagined step (paper) or held
(authors' code), the state the frozen replay decoder reads, z = 0 when acting greedily, the teacher's masked
action columns, and G_θ's Stage 2 training on F_distill(teacher features) (authors' code)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers_vid2act import SMALL_VAE, TINY, make_batch, make_student, make_teacher

torch = pytest.importorskip("torch")

from xfer_plugins.vid2act.config import TransferConfig, Vid2ActConfig  # noqa: E402
from xfer_plugins.vid2act.pretrain import build_teacher  # noqa: E402
from xfer_plugins.vid2act.teacher import MixtureTeacher, teacher_model_config  # noqa: E402

from xfer.recipe import TaskSpec  # noqa: E402


def scripted_weights(agent: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Replace Eq. 5's weights by a constructed case: the n-th evaluation puts 0.8 on label n mod K (the
    distillation of the update is evaluation 0, so every start state begins with label 0, and the best label
    changes at every imagined step). Returns the list of best labels handed out."""
    handed: list[int] = []

    def weights(teacher_feat: torch.Tensor, student_feat: torch.Tensor) -> torch.Tensor:
        best = len(handed) % teacher_feat.shape[0]
        handed.append(best)
        w = torch.full(teacher_feat.shape[:-1], 0.1)
        w[best] = 0.8
        return w

    monkeypatch.setattr(agent.selector, "weights", weights)
    return handed


Seen = list[tuple[Any, Any, bool]]


def record_replay(agent: Any, monkeypatch: pytest.MonkeyPatch) -> Seen:
    """Record every (input state, label index, sample) the replay decoder is asked for."""
    seen: Seen = []
    replay = agent.teacher.replay
    original = replay.replay_features

    def spy(state: torch.Tensor, label: torch.Tensor, sample: bool = True) -> torch.Tensor:
        seen.append((state.clone(), label.argmax(-1), sample))
        return original(state, label, sample)

    monkeypatch.setattr(replay, "replay_features", spy)
    return seen


def imagine_once(agent: Any) -> Any:
    batch = agent.to_tensors(make_batch(batch=2, length=3))
    _, _, out = agent.world_model.loss(batch)
    agent._distill_term(out, batch)
    return agent.imagine(out)


def test_per_step_selection_follows_the_best_label_at_every_imagined_step(monkeypatch: pytest.MonkeyPatch
                                                                          ) -> None:
    """Algorithm 1, lines 9–11 (default): the best label changes 0 → 1 → 2 over the horizon and so does k*."""
    torch.manual_seed(0)
    agent = make_student(make_teacher())
    assert agent.transfer.label_selection == "per_step"
    handed = scripted_weights(agent, monkeypatch)
    seen = record_replay(agent, monkeypatch)
    imagine_once(agent)
    assert agent.cfg.horizon == 3 and handed == [0, 1, 2]  # the distillation, then imagined steps 1 and 2
    assert [label.tolist() for _, label, _ in seen] == [[0] * 6, [1] * 6, [2] * 6]
    assert all(sample for _, _, sample in seen)
    assert agent.guidance.switch_rate() == 1.0  # every state switched at both steps


def test_held_selection_keeps_the_start_label_for_the_horizon(monkeypatch: pytest.MonkeyPatch) -> None:
    """The authors' code: one k* per start state for the whole horizon, whatever the later weights say."""
    torch.manual_seed(0)
    agent = make_student(make_teacher(), label_selection="held")
    handed = scripted_weights(agent, monkeypatch)
    seen = record_replay(agent, monkeypatch)
    imagine_once(agent)
    assert handed == [0]  # only the distillation scored the labels
    assert [label.tolist() for _, label, _ in seen] == [[0] * 6] * 3
    assert agent.guidance.switch_rate() == 0.0


@pytest.mark.parametrize("selection", ["per_step", "held"])
def test_replay_decoder_reads_the_teacher_state_of_the_selected_label(monkeypatch: pytest.MonkeyPatch,
                                                                      selection: str) -> None:
    """Default replay input: s_i^{k*}, the teacher's step from the student's previous state e_{i−1} with
    a_{i−1} under k* — at the start state the distillation's s_t^{k*}, later recomputed from the imagined
    trajectory (the GRU part is deterministic, so it is compared exactly)."""
    torch.manual_seed(0)
    agent = make_student(make_teacher(), label_selection=selection)
    scripted_weights(agent, monkeypatch)
    seen = record_replay(agent, monkeypatch)
    imag = imagine_once(agent)
    teacher = agent.teacher
    stoch = teacher.world_model.rssm.stoch_dim
    rows = torch.arange(6)
    start_input, start_label, _ = seen[0]
    assert torch.equal(start_input, agent._start.teacher_feat[start_label, rows])
    for i in (1, 2):
        source, label, _ = seen[i]
        prev = imag.state.map(lambda x, i=i: x[i - 1])
        expected = teacher.transit(prev, imag.action[i], agent.labels).deter[label, rows]
        assert torch.allclose(source[:, stoch:], expected, atol=1e-6)
        student_feat = imag.feat[i]
        assert not torch.allclose(source, student_feat)  # not the student's state


def test_replay_input_student_and_auto() -> None:
    assert TransferConfig().replay_from == "teacher"
    assert TransferConfig(train_vae_in_transfer=True).replay_from == "student"  # authors' code pairing
    assert TransferConfig(replay_input="teacher", train_vae_in_transfer=True).replay_from == "teacher"


def test_replay_input_student_reads_the_imagined_student_state(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    agent = make_student(make_teacher(), replay_input="student")
    seen = record_replay(agent, monkeypatch)
    imag = imagine_once(agent)
    for i, (source, _, _) in enumerate(seen):
        assert torch.equal(source, imag.feat[i].detach())


def test_greedy_acting_uses_z_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    """explore=False: the replay latent is z = 0 (deterministic); exploring samples it."""
    torch.manual_seed(0)
    agent = make_student(make_teacher())
    seen = record_replay(agent, monkeypatch)
    obs = {"image": np.zeros((2, 64, 64, 3), np.uint8), "is_first": np.ones(2, bool)}
    _, state = agent.act(obs, None, explore=True)
    obs["is_first"][:] = False
    agent.act(obs, state, explore=False)
    assert [sample for _, _, sample in seen] == [True, False]
    # with the same inputs, greedy replay features do not change between calls
    feat = agent.world_model.feat_dim
    guide = agent.guidance.select(torch.randn(3, 2, feat), torch.randn(2, feat))
    first = agent.guidance.features(state.latent, guide, sample=False)
    assert torch.equal(first, agent.guidance.features(state.latent, guide, sample=False))


def test_teacher_ignores_the_padded_action_columns() -> None:
    """Columns ≥ the largest source action size never had a nonzero input in Stage 1, so their weights are
    untrained: the teacher's step must not depend on them. Control: without the mask the same weights read
    them."""
    torch.manual_seed(0)
    model = teacher_model_config(TINY, 1.0)
    teacher = MixtureTeacher({"image": (64, 64, 3)}, 6, model, ["a", "b"], SMALL_VAE, source_act_dim=3)
    rssm = teacher.world_model.rssm
    prev = rssm.initial(4, "cpu").map(lambda x: torch.randn_like(x))
    action = torch.rand(4, 6) * 2 - 1
    noisy = action.clone()
    noisy[:, 3:] = torch.randn(4, 3) * 5
    clean = teacher.transit(prev, action, [0, 1]).deter
    assert torch.equal(clean, teacher.transit(prev, noisy, [0, 1]).deter)
    assert torch.equal(teacher.teacher_action(noisy)[:, 3:], torch.zeros(4, 3))
    # a 6-d target student trains and acts against this teacher
    agent = make_student(teacher, act_dim=6)
    assert np.isfinite(agent.train_step(make_batch(act_dim=6))["vid2act/distill_loss"])
    teacher.source_act_dim = 6
    assert not torch.allclose(teacher.transit(prev, action, [0, 1]).deter,
                              teacher.transit(prev, noisy, [0, 1]).deter)


def test_stage1_records_the_source_action_size(tmp_path: Any) -> None:
    cfg = Vid2ActConfig(model=TINY, replay_vae=SMALL_VAE)
    sources = [TaskSpec(suite="dmc", task="cheetah-run"), TaskSpec(suite="dmc", task="hopper-stand")]
    opened = [(None, {"action": {"size": size}, "observation": {"image": {"shape": [64, 64, 3]}}})
              for size in (6, 4)]
    teacher = build_teacher(cfg, sources, opened, target_act_dim=12)  # type: ignore[arg-type]
    assert (teacher.act_dim, teacher.source_act_dim) == (12, 6)
    loaded = MixtureTeacher.load(teacher.save(tmp_path / "teacher.pt"))
    assert (loaded.act_dim, loaded.source_act_dim) == (12, 6)


def test_replay_vae_in_transfer_trains_on_distilled_teacher_features(monkeypatch: pytest.MonkeyPatch) -> None:
    """train_vae_in_transfer (authors' code): G_θ's states are F_distill(teacher posterior features),
    detached, so F_distill gets no gradient from Eq. 4."""
    torch.manual_seed(0)
    teacher = make_teacher()
    agent = make_student(teacher, train_vae_in_transfer=True)
    agent.source_batches = lambda: make_batch(labels=3, seed=1)
    outs, states = [], []
    observe, loss = teacher.observe, teacher.replay.loss
    monkeypatch.setattr(teacher, "observe", lambda batch: outs.append(observe(batch)) or outs[-1])
    monkeypatch.setattr(teacher.replay, "loss",
                        lambda state, *rest: states.append(state) or loss(state, *rest))
    distill_before = agent.selector.distill.weight.clone()
    metrics = agent._train_replay()
    assert "replay/loss" in metrics and len(outs) == 1
    expected = agent.selector.distill(outs[0].feat)[:, :-1]
    assert torch.allclose(states[0], expected) and not states[0].requires_grad
    assert not torch.allclose(states[0], outs[0].feat[:, :-1])  # not the raw teacher features
    assert torch.equal(agent.selector.distill.weight, distill_before)


def test_distill_ratio_is_logged() -> None:
    torch.manual_seed(0)
    agent = make_student(make_teacher(), alpha=2.0)
    metrics, _ = agent.train_world_model(make_batch())
    ratio = 2.0 * metrics["vid2act/distill_loss"] / metrics["wm/loss"]
    assert float(metrics["vid2act/distill_ratio"]) == pytest.approx(float(ratio), rel=1e-5)


def test_replay_error_diagnostic_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    """The decoder-error diagnostic feeds each candidate input with the true label and z = 0, and scores the
    action taken from each state (``action[:, t+1]``) over the source's columns."""
    from xfer_plugins.vid2act.diagnostics import replay_errors
    from xfer_plugins.vid2act.teacher import shifted_previous

    torch.manual_seed(0)
    agent = make_student(make_teacher())
    batch = agent.to_tensors(make_batch(batch=3, length=4, labels=3, seed=2))
    decoded: list[tuple[torch.Tensor, torch.Tensor]] = []
    decode = agent.teacher.replay.decode
    monkeypatch.setattr(agent.teacher.replay, "decode",
                        lambda s, k, z: decoded.append((s, z)) or decode(s, k, z))
    torch.manual_seed(1)
    errors = replay_errors(agent, batch)
    torch.manual_seed(1)  # the same draws, in the function's order
    student = agent.world_model.observe({k: v for k, v in batch.items() if k != "cond"})
    prev, prev_action = shifted_previous(student.post, batch["action"], batch["is_first"])
    stepped = agent.teacher.world_model.rssm.feat(agent.teacher.transit(prev, prev_action, [0, 1, 2]))
    posterior = agent.teacher.observe(batch).feat
    expected = [posterior, stepped[torch.arange(3), torch.arange(3)], student.feat]
    assert len(decoded) == 3
    for (state, z), feat in zip(decoded, expected, strict=True):
        assert torch.allclose(state, feat[:, :-1], atol=1e-6)
        assert torch.equal(z, torch.zeros_like(z))
    target = batch["action"][:, 1:]
    action = decode(expected[1][:, :-1], batch["cond"].unsqueeze(1).expand(-1, 3, -1), decoded[1][1])
    assert errors["teacher_step"] == pytest.approx(float((action - target).square().mean()), rel=1e-5)
    assert errors["zero_action"] == pytest.approx(float(target.square().mean()), rel=1e-5)


def test_actor_input_diagnostic_by_hand() -> None:
    """The actor diagnostic's numbers from the actor itself: a saturated actor (its output layer set to a
    pre-tanh mean of 10) reads |μ| = 10 everywhere, all saturated; with the first layer's replay block zeroed
    the replay features contribute exactly 0, the features not."""
    from xfer_plugins.vid2act.diagnostics import actor_inputs

    torch.manual_seed(0)
    agent = make_student(make_teacher())
    layers = [m for m in agent.behavior.actor.modules() if isinstance(m, torch.nn.Linear)]
    width = agent.world_model.feat_dim
    with torch.no_grad():
        layers[-1].weight.zero_()
        layers[-1].bias.fill_(10.0)
    report = actor_inputs(agent, make_batch(batch=2, length=4))
    assert report["abs_mean_median"] == pytest.approx(10.0)
    assert report["saturated_share"] == 1.0 and report["abs_mean_median_replay_zeroed"] == pytest.approx(10.0)
    assert report["first_layer_from_replay"] > 0
    with torch.no_grad():
        layers[0].weight[:, width:] = 0.0
    report = actor_inputs(agent, make_batch(batch=2, length=4))
    assert report["first_layer_from_replay"] == 0.0 and report["first_layer_from_features"] > 0
