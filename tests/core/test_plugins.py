"""Plugin loading through entry points, blocking, broken plugins, misspelled hooks."""

from __future__ import annotations

import pytest

from xfer import hookimpl
from xfer.errors import XferError
from xfer.plugins import load_plugins
from xfer.registry import MethodSpec
from xfer.testing import FakeMethodConfig, FakePlugin

BUILTIN_SUITES = {"metaworld", "dmc", "robodesk", "atari"}
BUILTIN_METHODS = {"dreamer", "vid2act", "coworld", "xtra", "efficientzero"}


def test_builtins_load_through_entry_points() -> None:
    loaded = load_plugins()
    names = {p.name: p for p in loaded.plugins}
    assert set(names) >= BUILTIN_SUITES | BUILTIN_METHODS
    for name in BUILTIN_SUITES | BUILTIN_METHODS:
        assert names[name].distribution == "xfer", "built-ins come from the xfer distribution's entry points"
        assert names[name].status == "ok", names[name].error
    assert set(loaded.registry.suites) >= BUILTIN_SUITES
    assert set(loaded.registry.methods) >= BUILTIN_METHODS


def test_blocking_by_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XFER_DISABLE_PLUGINS", "dmc, atari")
    loaded = load_plugins()
    status = {p.name: p.status for p in loaded.plugins}
    assert status["dmc"] == status["atari"] == "blocked"
    assert "dmc" not in loaded.registry.suites and "atari" not in loaded.registry.suites
    assert "metaworld" in loaded.registry.suites


class _Broken:
    @hookimpl
    def xfer_register_methods(self, register: object) -> None:
        raise RuntimeError("simulated failure inside the plugin")


class _Misspelled:
    @hookimpl
    def xfer_register_method(self, register: object) -> None:  # missing "s": matches no spec
        pass


def test_broken_plugin_is_reported_and_others_work() -> None:
    loaded = load_plugins(extra={"fake": FakePlugin(), "broken": _Broken()})
    info = {p.name: p for p in loaded.plugins}
    assert info["broken"].status == "broken"
    assert "simulated failure" in info["broken"].error
    assert info["fake"].status == "ok" and "fake-linear" in loaded.registry.methods


def test_misspelled_hook_implementation_is_rejected() -> None:
    loaded = load_plugins(extra={"typo": _Misspelled()})
    info = {p.name: p for p in loaded.plugins}["typo"]
    assert info.status == "broken"
    assert "xfer_register_method" in info.error and "does not exist" in info.error


def test_duplicate_registration_names_both_plugins() -> None:
    class Twice:
        @hookimpl
        def xfer_register_methods(self, register: object) -> None:
            register(MethodSpec(name="fake-linear", config=FakeMethodConfig, run="x:y"))

    loaded = load_plugins(extra={"fake": FakePlugin(), "twice": Twice()})
    info = {p.name: p for p in loaded.plugins}
    assert info["twice"].status == "broken" and "registered twice" in info["twice"].error


def test_unknown_names_get_suggestions(registry) -> None:
    with pytest.raises(XferError, match="did you mean 'metaworld'"):
        registry.suite("metawrold")
    with pytest.raises(XferError, match="did you mean 'vid2act'"):
        registry.method("vid2ac")


HOOK_TESTS = {
    "xfer_register_methods": [test_broken_plugin_is_reported_and_others_work,
                              test_builtins_load_through_entry_points],
    "xfer_register_suites": [test_builtins_load_through_entry_points, test_blocking_by_environment_variable],
}


def test_every_hookspec_is_tested_and_documented() -> None:
    """A new hook spec must come with a test listed in HOOK_TESTS and a README entry (datasette-style)."""
    from pathlib import Path

    from xfer import hookspecs

    specs = {name for name in dir(hookspecs) if name.startswith("xfer_")}
    assert specs == set(HOOK_TESTS), "add the new hook's tests to HOOK_TESTS"
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for name in specs:
        assert name in readme, f"hook {name} is not documented in README.md"
