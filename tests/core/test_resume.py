"""Exact resume: "N steps, stop, resume, N more" equals "2N steps"; broken checkpoints are never loaded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

from xfer.errors import XferError
from xfer.run.checkpoint import Checkpointer, load_checkpoint
from xfer.run.logger import read_metrics
from xfer.run.runner import resume_run, start_run


def write_recipe(tmp_path: Path, steps: int, name: str) -> Path:
    recipe = {
        "method": "fake-linear", "name": name, "device": "cpu", "seed": 7, "logdir": str(tmp_path / "runs"),
        "target": {"suite": "fake", "task": "reach"},
        "checkpoint": {"every": 10, "keep": 2}, "logging": {"every": 1, "tensorboard": True, "live": False},
        "fake-linear": {"steps": steps},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def final_state(rundir: Path) -> dict:
    found = Checkpointer(rundir / "checkpoints").load_latest()
    assert found is not None
    return found[1]["method"]


def test_stop_and_resume_equals_uninterrupted(tmp_path: Path, registry) -> None:
    full = start_run(write_recipe(tmp_path, 60, "full"), registry=registry)
    part = start_run(write_recipe(tmp_path, 60, "part"), registry=registry, stop_at=30)
    assert json.loads((part / "run.json").read_text())["status"] == "stopped"
    assert final_state(part)["step"] == 30
    resume_run(part, registry=registry)
    assert json.loads((part / "run.json").read_text())["status"] == "done"
    a, b = final_state(full), final_state(part)
    for key in a["policy"]:
        assert torch.equal(a["policy"][key], b["policy"][key]), key
    assert (a["states"] == b["states"]).all()
    assert read_metrics(full / "metrics.jsonl") == read_metrics(part / "metrics.jsonl")


def test_resume_drops_metrics_logged_after_the_checkpoint(tmp_path: Path, registry) -> None:
    rundir = start_run(write_recipe(tmp_path, 40, "crash"), registry=registry, stop_at=20)
    with open(rundir / "metrics.jsonl", "a") as f:  # lines a crash left behind after the checkpoint
        f.write(json.dumps({"step": 25, "train/loss": 123.0}) + "\n")
    resume_run(rundir, registry=registry)
    rows = read_metrics(rundir / "metrics.jsonl")
    assert all(r.get("train/loss") != 123.0 for r in rows)
    assert [r["step"] for r in rows] == sorted(r["step"] for r in rows)


def test_checkpoint_cut_off_mid_write_is_never_loaded(tmp_path: Path) -> None:
    ckpt = Checkpointer(tmp_path, keep=3)
    ckpt.save(10, {"w": torch.ones(3)})
    good = ckpt.save(20, {"w": torch.full((3,), 2.0)})
    (tmp_path / "ckpt-0000000030.pt.tmp").write_bytes(good.read_bytes()[:50])  # crash during write
    truncated = tmp_path / "ckpt-0000000040.pt"
    truncated.write_bytes(good.read_bytes()[:100])  # a cut-off file under a final name
    messages: list[str] = []
    path, state = ckpt.load_latest(say=messages.append)
    assert path == good and torch.equal(state["w"], torch.full((3,), 2.0))
    assert any("ckpt-0000000040.pt" in m and "cannot be read" in m for m in messages)


def test_keeps_newest_k_and_loads_numpy_safely(tmp_path: Path) -> None:
    import numpy as np

    ckpt = Checkpointer(tmp_path, keep=2)
    for step in (1, 2, 3):
        ckpt.save(step, {"a": np.arange(step, dtype=np.uint8), "b": np.float32(1.5)})
    assert [p.name for p in ckpt.paths()] == ["ckpt-0000000002.pt", "ckpt-0000000003.pt"]
    state = load_checkpoint(ckpt.paths()[-1])
    assert state["a"].dtype == np.uint8 and list(state["a"]) == [0, 1, 2] and state["b"] == 1.5


def test_loading_never_executes_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "ckpt-0000000001.pt"
    torch.save({"x": Evil()}, path)
    with pytest.raises(XferError, match="cannot be read"):
        load_checkpoint(path)


def test_resume_of_a_non_run_directory_is_a_clear_error(tmp_path: Path, registry) -> None:
    with pytest.raises(XferError, match="not a run directory"):
        resume_run(tmp_path, registry=registry)


def test_a_run_written_with_the_retired_perf_switches_still_resumes(tmp_path: Path, registry) -> None:
    """Runs written before perf.amp/perf.compile were retired carry them in recipe.yaml (every run did: they
    were defaults); resume drops them, while a new recipe that sets them is refused (test_recipe)."""
    part = start_run(write_recipe(tmp_path, 40, "old"), registry=registry, stop_at=20)
    saved = yaml.safe_load((part / "recipe.yaml").read_text())
    saved["perf"].update(compile=False, amp=True)  # what every run's recipe.yaml held before
    (part / "recipe.yaml").write_text(yaml.safe_dump(saved))
    resume_run(part, registry=registry)
    assert json.loads((part / "run.json").read_text())["status"] == "done"
    assert final_state(part)["step"] == 40
