"""xfer — a transfer reinforcement-learning toolkit.

Pretrain world models on offline data from some tasks and transfer them to a new task: Vid2Act, CoWorld
and XTRA with their baselines, every method and environment suite a pluggy plugin.
"""

__version__ = "0.1.0"

from xfer.hookspecs import hookimpl  # noqa: E402  (plugins write `from xfer import hookimpl`)

__all__ = ["__version__", "hookimpl"]
