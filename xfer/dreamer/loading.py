"""Partial checkpoint loading for finetuning (the ``dreamer`` plugin's ``mode: finetune``, CoWorld's
"DV2 Finetune" baseline, CoWorld's ``source_init_from``): copy every parameter whose name and shape match,
and report the rest."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from xfer.errors import XferError


def learner_state(checkpoint: Mapping[str, Any], where: Path) -> dict[str, Any]:
    """The Dreamer agent's state in a checkpoint written by :mod:`xfer.dreamer.loop` (``where`` names it in
    the error when it holds none)."""
    state = checkpoint.get("method", {}).get("learner")
    if not isinstance(state, dict) or "world_model" not in state:
        raise XferError(f"{str(where)!r} holds no Dreamer agent (expected a checkpoint written by "
                        "xfer.dreamer.loop, e.g. of a dreamer run)")
    return state


@dataclass
class LoadReport:
    """Which tensors were loaded, skipped (shape mismatch: name, source shape, own shape) or are new (absent
    from the source and left at their initial values). Tensors only the source has are ``unused``."""

    loaded: list[str] = field(default_factory=list)
    skipped: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"loaded {len(self.loaded)}, skipped {len(self.skipped)} (shape mismatch), "
                f"new {len(self.new)}, unused {len(self.unused)}")


def load_matching_tensors(modules: Mapping[str, nn.Module], source: Mapping[str, Mapping[str, Tensor]]
                          ) -> LoadReport:
    """For each named module, copy the tensors of ``source[name]`` whose key and shape match."""
    report = LoadReport()
    for prefix, module in modules.items():
        given = source.get(prefix, {})
        own = module.state_dict()
        with torch.no_grad():
            for key, tensor in own.items():
                name = f"{prefix}.{key}"
                if key not in given:
                    report.new.append(name)
                elif tuple(given[key].shape) != tuple(tensor.shape):
                    report.skipped.append((name, tuple(given[key].shape), tuple(tensor.shape)))
                else:
                    tensor.copy_(given[key])
                    report.loaded.append(name)
        report.unused += [f"{prefix}.{key}" for key in given if key not in own]
    return report
