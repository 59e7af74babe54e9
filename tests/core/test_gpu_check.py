"""benchmarks/gpu_check.py on the CPU at tiny sizes: the whole script's logic, and its instruments."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_check)


def test_same_noise_ignores_the_global_stream() -> None:
    draws = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        with gpu_check.SameNoise(7):
            x = torch.zeros(5)
            draws.append(
                torch.cat(
                    [
                        torch.rand_like(x),
                        torch.randn_like(x),
                        torch.randint(0, 9, (5,)).float(),
                        torch.rand(3),
                    ]
                )
            )
    assert torch.equal(draws[0], draws[1])
    torch.manual_seed(0)
    assert not torch.equal(torch.rand(5), draws[0][:5])  # the mode really replaced the draw


def test_compare_updates_is_relative_to_the_cpu_update() -> None:
    before = {"w": torch.zeros(3)}
    assert gpu_check.compare_updates(
        before, {"w": torch.tensor([1.0, 2, 4])}, {"w": torch.tensor([1.0, 2, 3])}
    ) == pytest.approx(0.25)


def test_device_audit_counts_copies_and_cpu_compute() -> None:
    audit = gpu_check.DeviceAudit()
    with audit:
        x = torch.ones(32, 32)
        x.to("meta")  # a host-to-device copy (meta stands in for CUDA here)
        torch.zeros(2, device="meta").copy_(torch.ones(2))
        x @ x  # heavy compute on the CPU
        torch.ones(2) + 1  # not heavy
    assert audit.counts == {"h2d": 2, "d2h": 0, "cpu_heavy_ops": 1}
    assert audit.cpu_ops == {"mm": 1}


def test_loss_trend_takes_the_first_and_last_quarter() -> None:
    rows = [{"wm/loss": v} for v in (4.0, 3.0, 2.0, 1.0)] + [{"other": 1}]
    assert gpu_check.loss_trend(rows) == {
        "key": "wm/loss",
        "first": 4.0,
        "last": 1.0,
        "points": 4,
        "decreased": True,
    }
    assert not gpu_check.loss_trend([{"x/total": 1.0}] * 3)["decreased"]


def test_whole_check_on_the_cpu_tiny(tmp_path: Path) -> None:
    pytest.importorskip("gymnasium")
    out = tmp_path / "check.json"
    result = gpu_check.main(
        ["--device", "cpu", "--tiny", "--out", str(out), "--methods", "dreamer", "--budget-s", "120"]
    )
    saved = json.loads(out.read_text())
    assert saved["tiny"] and saved["goals"] == gpu_check.GOALS
    assert set(result["backbones"]["dreamer"]) == {"shapes", "fp32", "bf16"}  # compile only on CUDA
    assert result["backbones"]["dreamer"]["fp32"]["median_ms"] > 0
    assert set(result["backbones"]["efficientzero"]) == {"shapes", "fp32", "bf16"}  # the amp switch
    assert result["backbones"]["efficientzero"]["fp32"]["median_ms"] > 0
    assert result["backbones"]["efficientzero"]["bf16"]["median_ms"] > 0
    assert result["agreement"]["agree"] is True
    assert result["mcts"]["sims_per_s"] > 0
    e2e = result["e2e"]["dreamer"]
    assert e2e["ok"] and e2e["updates"] > 0 and e2e["loss"]["key"] == "wm/loss"
    assert e2e["cpu_ops"], "on the CPU the audit sees the compute there"


def test_budget_skips_sections(tmp_path: Path) -> None:
    result = gpu_check.main(
        ["--device", "cpu", "--tiny", "--out", str(tmp_path / "c.json"), "--budget-s", "0"]
    )
    assert all("skipped" in result[name] for name in ("backbones", "agreement", "mcts", "e2e"))


@pytest.mark.slow
def test_every_method_end_to_end_on_the_cpu(tmp_path: Path) -> None:
    result = gpu_check.check_e2e(torch.device("cpu"), True, list(gpu_check.E2E), gpu_check.Budget(3600))
    for method, part in result.items():
        assert part.get("ok") or "skipped" in part, (method, part)
