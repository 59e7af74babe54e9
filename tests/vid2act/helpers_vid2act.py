"""Small builders for the Vid2Act tests: a tiny teacher and student, and random [B, L] batches."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from xfer_plugins.vid2act.config import ReplayVAEConfig, TransferConfig  # noqa: E402

from xfer.dreamer.config import DreamerConfig  # noqa: E402

TINY = DreamerConfig.from_preset("tiny", horizon=3)
SMALL_VAE = ReplayVAEConfig(encoder_units=(16, 16), decoder_units=(16, 6), latent=3)


def make_batch(batch: int = 2, length: int = 4, act_dim: int = 4, labels: int | None = None,
               seed: int = 0) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(seed)
    data: dict[str, Any] = {
        "image": torch.randint(0, 256, (batch, length, 64, 64, 3), dtype=torch.uint8, generator=gen),
        "action": torch.rand(batch, length, act_dim, generator=gen) * 2 - 1,
        "reward": torch.rand(batch, length, generator=gen),
        "is_first": torch.zeros(batch, length, dtype=torch.bool),
        "is_terminal": torch.zeros(batch, length, dtype=torch.bool),
    }
    data["is_first"][:, 0] = True
    data["action"][:, 0] = 0
    if labels is not None:
        data["cond"] = torch.nn.functional.one_hot(torch.arange(batch) % labels, labels).float()
    return data


def make_teacher(tasks: tuple[str, ...] = ("a", "b", "c"), act_dim: int = 4) -> Any:
    from xfer_plugins.vid2act.teacher import MixtureTeacher, teacher_model_config

    model = teacher_model_config(TINY, 1.0)
    return MixtureTeacher({"image": (64, 64, 3)}, act_dim, model, list(tasks), SMALL_VAE)


def make_student(teacher: Any, act_dim: int = 4, **transfer: Any) -> Any:
    from xfer_plugins.vid2act.agent import Vid2ActAgent, student_model_config

    return Vid2ActAgent({"image": (64, 64, 3)}, act_dim, False, student_model_config(TINY, 1.0), teacher,
                        TransferConfig(**transfer))
