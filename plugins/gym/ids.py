"""Resolving a gym task name to gymnasium's registered spec, with close matches for an unknown id."""

from __future__ import annotations

import difflib
import importlib

import gymnasium
from gymnasium.envs.registration import EnvSpec

from xfer.errors import XferError


def split_task(task: str) -> tuple[str | None, str]:
    """``"module:EnvId"`` → ``("module", "EnvId")``; a plain id → ``(None, id)``."""
    module, sep, env_id = task.rpartition(":")
    return (module, env_id) if sep else (None, task)


def registered_spec(task: str) -> EnvSpec:
    """gymnasium's spec of ``task``, importing its module first for ``module:EnvId``; an unknown id (or a
    module that does not import) is one :class:`XferError` line."""
    module, env_id = split_task(task)
    if module is not None:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise XferError(f"gym task {task!r}: cannot import {module!r} ({err})",
                            hint=f"install the package that provides {module!r}") from err
    if env_id in gymnasium.registry:
        return gymnasium.registry[env_id]
    close = difflib.get_close_matches(env_id, list(gymnasium.registry), n=3, cutoff=0.6)
    shown = f" (close matches: {', '.join(close)})" if close else ""
    raise XferError(f"gymnasium has no environment {env_id!r}{shown}",
                    hint="`xfer list-plugins --tasks gym` lists the built-in ids; spell a third-party id "
                         "'module:EnvId' so that its module registers it first")
