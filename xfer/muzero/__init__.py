"""The EfficientZero backbone (Ye et al. 2021), as used by XTRA (Xu et al. 2023, Appendix A, H, I).

Modules: ``config`` (pydantic settings and the ``tiny`` / ``paper`` / ``paper-L`` presets), ``networks``
(representation, dynamics with the value-prefix LSTM, prediction, SimSiam projection), ``support``
(categorical value/reward support and the h(x) transform), ``mcts`` (batched, array-based MCTS),
``replay`` (prioritised replay over game histories), ``targets`` (value-prefix and n-step targets,
reanalyse with any target or teacher network), ``learner`` (the loss of Eq. 3 and one SGD step), ``bench``.

Only ``config`` is imported here, so validating a recipe does not import torch.
"""

from xfer.muzero.config import EfficientZeroConfig

__all__ = ["EfficientZeroConfig"]
