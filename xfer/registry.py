"""What plugins register: methods and environment suites, as small frozen specs.

Specs name their heavy code by import path (``"package.module:function"``) so that listing plugins and
validating recipes never imports torch or a simulator; :func:`load_attr` imports on first use and turns a
missing optional dependency into one clear :class:`~xfer.errors.MissingDependency` message.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from xfer.errors import MissingDependency, XferError, did_you_mean

DISABLED = "disabled by XFER_DISABLE_PLUGINS"


def load_attr(path: str, *, what: str = "this plugin", extra: str = "all") -> Any:
    """Import ``"module:attr"`` lazily; a missing third-party module becomes a MissingDependency."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        missing = (err.name or "").split(".")[0]
        if missing and not module_name.startswith(missing):
            raise MissingDependency(what, missing, extra) from err
        raise
    try:
        return getattr(module, attr) if attr else module
    except AttributeError as err:
        raise XferError(f"{what}: {module_name!r} has no attribute {attr!r}") from err


@dataclass(frozen=True)
class SuiteSpec:
    """An environment suite.

    ``make_env`` is ``"module:function"`` with signature ``(task: str, settings: EnvSettings, seed: int) ->
    gymnasium.Env``; the settings arrive resolved (the suite's ``defaults`` filled in). ``policies`` maps a
    data-collection policy name to ``"module:function"`` with signature ``(env, task: str, seed: int) ->
    Policy`` (see :mod:`xfer.interfaces`). ``tasks`` is a static tuple so listing needs no simulator import.
    """

    name: str
    tasks: tuple[str, ...]
    make_env: str
    defaults: dict[str, Any] = field(default_factory=dict)
    policies: dict[str, str] = field(default_factory=dict)
    extra: str = "all"
    description: str = ""

    def check_task(self, task: str) -> None:
        if task not in self.tasks:
            raise XferError(f"suite {self.name!r} has no task {task!r}{did_you_mean(task, self.tasks)}",
                            hint=f"`xfer list-plugins --tasks {self.name}` lists its {len(self.tasks)} tasks")


@dataclass(frozen=True)
class MethodSpec:
    """A training method.

    ``config`` is the pydantic model (``extra="forbid"``) of the recipe section named after the method; it
    must import cheaply (pydantic only). ``run`` is ``"module:function"`` with signature
    ``(recipe: Recipe, ctx: RunContext) -> None``. ``load_agent`` (optional) is ``"module:function"`` with
    signature ``(rundir: Path, checkpoint: Path | None, device: str) -> Agent``, used by ``xfer eval`` and
    by data collection with ``--policy checkpoint:RUNDIR``.
    """

    name: str
    config: type[BaseModel]
    run: str
    load_agent: str | None = None
    description: str = ""
    extra: str = "all"


@dataclass
class Registry:
    """Everything the loaded plugins registered, with the plugin that registered each entry."""

    methods: dict[str, MethodSpec] = field(default_factory=dict)
    suites: dict[str, SuiteSpec] = field(default_factory=dict)
    owners: dict[tuple[str, str], str] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)  # plugin name -> why it registered nothing

    def add(self, spec: MethodSpec | SuiteSpec, owner: str) -> None:
        kind, table = ("method", self.methods) if isinstance(spec, MethodSpec) else ("suite", self.suites)
        if spec.name in table:
            first = self.owners[(kind, spec.name)]
            raise XferError(f"{kind} {spec.name!r} is registered twice: by {first!r} and by {owner!r}",
                            hint=f"block one with XFER_DISABLE_PLUGINS={owner}")
        table[spec.name] = spec
        self.owners[(kind, spec.name)] = owner

    def method(self, name: str) -> MethodSpec:
        if name not in self.methods:
            message, hint = self.not_found("method", name)
            raise XferError(message, hint=hint)
        return self.methods[name]

    def suite(self, name: str) -> SuiteSpec:
        if name not in self.suites:
            message, hint = self.not_found("suite", name)
            raise XferError(message, hint=hint)
        return self.suites[name]

    def not_found(self, kind: str, name: str) -> tuple[str, str]:
        """Why no ``kind`` (method | suite) called ``name`` is registered, and a hint: its plugin is disabled
        by ``XFER_DISABLE_PLUGINS`` or failed to import (a plugin of that name), or the name is unknown."""
        table = self.methods if kind == "method" else self.suites
        known = f"known {kind}s: {', '.join(sorted(table)) or 'none'}"
        if name in self.unavailable:
            reason = self.unavailable[name]
            if reason == DISABLED:
                return (f"{kind} {name!r} is not available: plugin {name!r} is {DISABLED}",
                        f"remove {name!r} from XFER_DISABLE_PLUGINS to use it")
            return (f"{kind} {name!r} is not available: plugin {name!r} failed to import: {reason}",
                    f"fix or reinstall that plugin (`xfer list-plugins` shows its status); {known}")
        others = "; ".join(f"{plugin}: {'disabled' if why == DISABLED else 'failed to import'}"
                           for plugin, why in sorted(self.unavailable.items()))
        return (f"unknown {kind} {name!r}{did_you_mean(name, table)}",
                known + (f" (plugins not loaded: {others})" if others else ""))
