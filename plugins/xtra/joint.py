"""One forward pass over the target and offline batches of XTRA's Stage 2, split back into per-task losses.

The authors' finetuning code concatenates the target batch and the offline games' batches and runs the
network once, so batch-norm batch statistics (and running statistics) are shared by all tasks: with the
1:1 ratio of Appendix D the target is half of every batch-norm batch. Per-task losses L_i are the means of
that forward pass's per-position losses over each task's slice; their gradients (Eq. 2) are exact
gradients of L_i through the shared forward pass, as in the authors' code, which takes them from the same
per-task slices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

import numpy as np
import torch

from xfer.muzero.learner import Losses
from xfer.muzero.targets import TrainBatch


def concat_batches(batches: Sequence[TrainBatch]) -> TrainBatch:
    """The batches stacked along the batch axis, in order (tensors by ``torch.cat``, arrays likewise)."""
    joined = {}
    for f in fields(TrainBatch):
        parts = [getattr(b, f.name) for b in batches]
        joined[f.name] = torch.cat(parts) if isinstance(parts[0], torch.Tensor) else np.concatenate(parts)
    return TrainBatch(**joined)


def split_losses(joint: Losses, sizes: Sequence[int]) -> list[Losses]:
    """Per-task :class:`Losses` from a joint forward pass: each term is the mean of the per-position values
    over the task's consecutive slice of ``sizes[i]`` positions (still attached to the joint graph)."""
    if sum(sizes) != len(joint.priorities):
        raise ValueError(f"slices of {list(sizes)} positions do not cover a batch of {len(joint.priorities)}")
    out, start = [], 0
    for size in sizes:
        part = slice(start, start + size)
        terms = {name: values[part].mean() for name, values in joint.per_sample.items()}
        out.append(Losses(**terms, priorities=joint.priorities[part],
                          per_sample={name: values[part] for name, values in joint.per_sample.items()},
                          diagnostics={name: values[part] for name, values in joint.diagnostics.items()}))
        start += size
    return out
