"""Vid2Act end to end on real Meta-World with tiny sizes: scripted source data → Stage 1 → Stage 2 →
evaluation with a video; a run stopped in the middle of Stage 2 and resumed ends exactly like an uninterrupted
one; Stage 2 alone from a teacher file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("torch")
pytest.importorskip("metaworld")

from rich.console import Console  # noqa: E402

from xfer.run.checkpoint import Checkpointer  # noqa: E402
from xfer.run.evaluate import evaluate_run  # noqa: E402
from xfer.run.logger import read_metrics  # noqa: E402
from xfer.run.runner import resume_run, run_status, start_run  # noqa: E402

PRETRAIN_STEPS = 3
ENV_STEPS = 80


def tiny_recipe(root: Path, **vid2act: Any) -> dict[str, Any]:
    source = {"collect": {"policy": "scripted", "episodes": 1}}
    config: dict[str, Any] = {
        "model": {"preset": "tiny", "horizon": 4},
        "replay_vae": {"encoder_units": [16], "decoder_units": [16, 8], "latent": 2},
        "pretrain": {"steps": PRETRAIN_STEPS, "batch": 2, "seq": 8, "log_every": 1},
        "transfer": {"env_steps": ENV_STEPS,
                     "schedule": {"prefill": 20, "pretrain": 2, "train_every": 10, "batch": 2, "seq_len": 8}},
    }
    for key, value in vid2act.items():
        config[key] = {**config.get(key, {}), **value}
    return {
        "method": "vid2act", "name": "tiny", "seed": 3, "device": "cpu",
        "logdir": str(root / "runs"), "datadir": str(root.parent / "data"),
        "sources": [{"suite": "metaworld", "task": "drawer-close", "dataset": source},
                    {"suite": "metaworld", "task": "button-press-topdown", "dataset": source}],
        "target": {"suite": "metaworld", "task": "drawer-open"},
        "env": {"image_size": 64, "time_limit": 20},
        "eval": {"every": 40, "episodes": 1, "video": True},
        "checkpoint": {"every": 20, "keep": 10},
        "logging": {"every": 10, "tensorboard": False, "live": False},
        "perf": {"threads": 1},
        "vid2act": config,
    }


def write(root: Path, recipe: dict[str, Any]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def stage2_rows(rundir: Path) -> list[dict[str, Any]]:
    """metrics.jsonl rows of Stage 2 without wall-clock throughput."""
    rows = [row for row in read_metrics(rundir / "metrics.jsonl") if row["step"] > PRETRAIN_STEPS]
    return [{k: v for k, v in row.items() if not k.startswith("perf/")} for row in rows]


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vid2act") / "full"
    return start_run(write(root, tiny_recipe(root)))


def test_pretrain_transfer_evaluate(full_run: Path, tmp_path: Path) -> None:
    assert run_status(full_run)["status"] == "done"
    assert (full_run / "teacher.pt").is_file()
    rows = read_metrics(full_run / "metrics.jsonl")
    keys = set().union(*rows)
    assert {"pretrain/wm/image_loss", "pretrain/replay/loss"} <= keys
    stage1 = [row for row in rows if row["step"] <= PRETRAIN_STEPS]
    stage2 = [row for row in rows if row["step"] > PRETRAIN_STEPS]
    # one x-axis per TensorBoard tag: Stage 1 (updates, no env_steps) and Stage 2 (env_steps) share no name
    assert stage1 and all("env_steps" not in row for row in stage1)
    names1 = set().union(*stage1) - {"step", "updates"}
    names2 = set().union(*stage2) - {"step", "updates", "env_steps"}
    assert all(name.startswith("pretrain/") for name in names1) and not names1 & names2
    for task in ("drawer-close", "button-press-topdown"):
        assert f"vid2act/weight/{task}" in keys and f"vid2act/label_used/{task}" in keys
        assert f"vid2act/act_label/{task}" in keys and f"eval/label/{task}" in keys
    weights = [row for row in rows if "vid2act/weight/drawer-close" in row]
    assert all(row["vid2act/weight/drawer-close"] + row["vid2act/weight/button-press-topdown"]
               == pytest.approx(1.0, abs=1e-4) for row in weights)
    steps = [row["step"] for row in rows]
    assert steps == sorted(steps) and steps[-1] == PRETRAIN_STEPS + ENV_STEPS
    assert list((full_run / "videos").glob("*.mp4"))
    final = Checkpointer(full_run / "checkpoints").paths()[-1]
    assert final.name == f"ckpt-{PRETRAIN_STEPS + ENV_STEPS:010d}.pt"
    video = tmp_path / "eval.mp4"
    result = evaluate_run(full_run, episodes=1, video=video, explore=False, seed=0, device="cpu",
                          console=Console(quiet=True))
    assert "eval/return" in result and "eval/success" in result
    assert video.is_file() and video.stat().st_size > 0


def test_resume_in_the_middle_of_stage2_continues_exactly(full_run: Path, tmp_path: Path) -> None:
    root = full_run.parent.parent.parent / "resumed"
    stop = PRETRAIN_STEPS + 40
    rundir = start_run(write(root, tiny_recipe(root)), stop_at=stop)
    assert run_status(rundir)["status"] == "stopped"
    latest = Checkpointer(rundir / "checkpoints").load_latest()
    assert latest is not None and latest[1]["method"]["stage"] == "transfer"
    assert PRETRAIN_STEPS < latest[1]["step"] < PRETRAIN_STEPS + ENV_STEPS
    resume_run(rundir)
    assert run_status(rundir)["status"] == "done"
    assert stage2_rows(rundir) == stage2_rows(full_run)


def test_stage2_alone_from_a_teacher_file(full_run: Path) -> None:
    root = full_run.parent.parent.parent / "from_teacher"
    recipe = tiny_recipe(root, transfer={"teacher": str(full_run / "teacher.pt"), "env_steps": 40,
                                         "sources_subset": ["button-press-topdown"]})
    recipe["eval"]["video"] = False
    rundir = start_run(write(root, recipe))
    assert run_status(rundir)["status"] == "done"
    assert not (rundir / "teacher.pt").exists()
    rows = read_metrics(rundir / "metrics.jsonl")
    keys = set().union(*rows)
    assert "vid2act/weight/button-press-topdown" in keys and "vid2act/weight/drawer-close" not in keys
    assert rows[-1]["step"] == 40  # no Stage 1: the run's step is the environment step
    json.dumps(rows)  # every logged value is plain JSON
