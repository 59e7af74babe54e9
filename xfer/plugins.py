"""The pluggy plugin manager: entry-point group ``xfer``, blocking by environment, broken-plugin reports.

Built-in plugins are found exactly like third-party ones, through their distribution's ``xfer`` entry
points. ``XFER_DISABLE_PLUGINS=a,b`` blocks plugins by entry-point name. A plugin that fails to import is
recorded as broken with its error and never stops another command. A hook implementation whose name
matches no spec is an error (``check_pending``).
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType

import pluggy

from xfer import hookspecs
from xfer.errors import XferError, did_you_mean
from xfer.registry import DISABLED, MethodSpec, Registry, SuiteSpec

GROUP = "xfer"


@dataclass
class PluginInfo:
    """One entry point of group ``xfer``: where it came from and what happened when loading it."""

    name: str
    distribution: str
    version: str
    status: str = "ok"  # ok | blocked | broken
    error: str = ""
    methods: list[str] = field(default_factory=list)
    suites: list[str] = field(default_factory=list)


@dataclass
class Loaded:
    """The result of loading every plugin: the registry and a report per plugin."""

    registry: Registry
    plugins: list[PluginInfo]
    manager: pluggy.PluginManager


def blocked_names() -> set[str]:
    return {n.strip() for n in os.environ.get("XFER_DISABLE_PLUGINS", "").split(",") if n.strip()}


def _entry_points() -> list[metadata.EntryPoint]:
    return sorted(metadata.entry_points(group=GROUP), key=lambda ep: ep.name)


def _register_module(pm: pluggy.PluginManager, info: PluginInfo, module: ModuleType | object) -> None:
    try:
        pm.register(module, name=info.name)
        pm.check_pending()
    except pluggy.PluginValidationError as err:
        pm.unregister(name=info.name)
        known = ", ".join(h for h in dir(hookspecs) if h.startswith("xfer_"))
        raise XferError(f"plugin {info.name!r} implements a hook that does not exist: {err}",
                        hint=f"hook names are {known}") from None


def load_plugins(extra: dict[str, object] | None = None) -> Loaded:
    """Load every entry point of group ``xfer`` (plus ``extra`` objects, used by tests) and collect specs."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    blocked = blocked_names()
    infos: list[PluginInfo] = []
    candidates: list[tuple[PluginInfo, metadata.EntryPoint | object]] = []
    for ep in _entry_points():
        dist = ep.dist
        info = PluginInfo(ep.name, dist.name if dist else "?", dist.version if dist else "?")
        infos.append(info)
        if ep.name in blocked:
            info.status = "blocked"
            continue
        candidates.append((info, ep))
    for name, obj in (extra or {}).items():
        info = PluginInfo(name, "(in process)", "-")
        infos.append(info)
        candidates.append((info, obj))
    for info, source in candidates:
        try:
            module = source.load() if isinstance(source, metadata.EntryPoint) else source
            _register_module(pm, info, module)
        except Exception as err:  # a broken plugin must not stop any other command
            info.status, info.error = "broken", _one_line(err)
    _warn_unmatched(blocked, [info.name for info in infos])
    registry = _collect(pm, infos)
    registry.unavailable = {info.name: DISABLED if info.status == "blocked" else info.error
                            for info in infos if info.status != "ok"}
    return Loaded(registry, infos, pm)


_warned: set[str] = set()


def _warn_unmatched(blocked: set[str], names: list[str]) -> None:
    """One stderr line (once per process) for each ``XFER_DISABLE_PLUGINS`` name matching no plugin."""
    for name in sorted(blocked - set(names) - _warned):
        _warned.add(name)
        print(f"warning: XFER_DISABLE_PLUGINS names {name!r}, which matches no installed plugin"
              f"{did_you_mean(name, names)}; plugins: {', '.join(names) or 'none'}", file=sys.stderr)


def _collect(pm: pluggy.PluginManager, infos: list[PluginInfo]) -> Registry:
    registry = Registry()
    by_name = {info.name: info for info in infos}
    for hook_name, attr in (("xfer_register_methods", "methods"), ("xfer_register_suites", "suites")):
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            info = by_name[impl.plugin_name]
            if info.status != "ok":
                continue
            found: list[MethodSpec | SuiteSpec] = []
            try:
                impl.function(register=found.append)
                for spec in found:
                    registry.add(spec, info.name)
                    getattr(info, attr).append(spec.name)
            except Exception as err:
                info.status, info.error = "broken", _one_line(err)
    return registry


def _one_line(err: BaseException) -> str:
    last = traceback.format_exception_only(type(err), err)[-1].strip()
    return last.replace("\n", " ")


_cache: Loaded | None = None


def get_loaded(refresh: bool = False) -> Loaded:
    """The process-wide plugin load (cached; ``refresh`` reloads, e.g. after tests register plugins)."""
    global _cache
    if _cache is None or refresh:
        _cache = load_plugins()
    return _cache


def get_registry() -> Registry:
    return get_loaded().registry
