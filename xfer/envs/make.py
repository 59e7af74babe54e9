"""Make environments by suite and task name: one, or a vector of them in worker processes."""

from __future__ import annotations

import functools
import re

import gymnasium

from xfer.envs.settings import EnvSettings
from xfer.envs.wrappers import wrap_env
from xfer.errors import XferError
from xfer.registry import Registry, SuiteSpec, load_attr


def suite_spec(suite: str, registry: Registry | None = None) -> SuiteSpec:
    """The registered SuiteSpec (from the loaded plugins unless ``registry`` is given)."""
    if registry is None:
        from xfer.plugins import get_registry

        registry = get_registry()
    return registry.suite(suite)


def check_task(spec: SuiteSpec, task: str) -> None:
    """Refuse an unknown task; a task spelled in another style (``MsPacman``, ``walker_walk``) gets the
    suite's spelling as the suggestion."""
    if task in spec.tasks:
        return
    key = _spelling_key(task)
    same = [name for name in spec.tasks if _spelling_key(name) == key]
    if same:
        raise XferError(f"suite {spec.name!r} has no task {task!r} (did you mean {same[0]!r}?)",
                        hint=f"{spec.name} spells its task names like {spec.tasks[0]!r}")
    spec.check_task(task)


def _spelling_key(name: str) -> str:
    return re.sub(r"[-_\s]", "", name).lower()


def make_env(suite: str, task: str, settings: EnvSettings | None = None, seed: int = 0,
             registry: Registry | None = None) -> gymnasium.Env:
    """One environment of ``suite``/``task`` with the common wrappers (see :mod:`xfer.envs.wrappers`).

    ``settings`` are the recipe's (``None`` fields take the suite's defaults); ``seed`` makes the first
    ``reset()`` reproducible.
    """
    return make_from_spec(suite_spec(suite, registry), task, settings or EnvSettings(), seed)


def make_from_spec(spec: SuiteSpec, task: str, settings: EnvSettings, seed: int) -> gymnasium.Env:
    check_task(spec, task)
    resolved = settings.resolve(spec.defaults)
    factory = load_attr(spec.make_env, what=f"suite {spec.name!r}", extra=spec.extra)
    return wrap_env(factory(task, resolved, seed), resolved)


def make_vector_env(suite: str, task: str, settings: EnvSettings | None, seed: int, n: int,
                    registry: Registry | None = None,
                    context: str | None = "spawn") -> gymnasium.vector.VectorEnv:
    """``n`` environments with seeds ``seed, seed + 1, …``.

    In worker processes (gymnasium ``AsyncVectorEnv``, observations through shared memory) when ``n > 1``
    or ``settings.workers > 1``, otherwise in this process (``SyncVectorEnv``). Workers start with
    ``context="spawn"`` by default: a forked child would inherit the parent's GL context and torch thread
    pools, which deadlock or crash renderers. Episodes reset automatically on the step after they end
    (gymnasium's "next step" mode); ``obs["is_first"]`` marks the reset observation.
    """
    if n < 1:
        raise XferError(f"a vector environment needs n >= 1 environments, not {n}")
    settings = settings or EnvSettings()
    spec = suite_spec(suite, registry)
    check_task(spec, task)
    fns = [functools.partial(make_from_spec, spec, task, settings, seed + i) for i in range(n)]
    if n > 1 or settings.workers > 1:
        return gymnasium.vector.AsyncVectorEnv(fns, shared_memory=True, context=context)
    return gymnasium.vector.SyncVectorEnv(fns)
