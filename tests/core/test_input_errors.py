"""Bad input gives one message naming the problem and the fix: YAML, files, run names, plugins, markup."""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from cli_process import xfer

from xfer import hookimpl
from xfer.errors import XferError
from xfer.plugins import load_plugins
from xfer.recipe_io import RecipeError, apply_overrides, load_recipe, read_yaml, validate_recipe
from xfer.testing import FakePlugin, install_plugin_distribution

GOOD = {"method": "fake-linear", "target": {"suite": "fake", "task": "reach"}, "fake-linear": {"steps": 7}}


def one_error(result: subprocess.CompletedProcess) -> str:
    """The error printed by the CLI: exit 2, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("error: "), result.stderr
    return result.stderr


# ---- --set values -------------------------------------------------------------------------------------
def test_malformed_yaml_in_set_names_the_key_and_the_position() -> None:
    with pytest.raises(XferError) as info:
        apply_overrides({}, ["seed=[1,"])
    message = str(info.value)
    assert "--set seed" in message and "not valid YAML" in message and "column" in message
    assert "quote" in (info.value.hint or "")


@pytest.mark.parametrize("value", ["!!python/object:os.system x", "!!python/name:os.system", "!!binary aGk=",
                                   "!mytag 3", "!!set {a, b}"])
def test_yaml_tags_in_set_are_refused(value: str) -> None:
    with pytest.raises(XferError, match="YAML tag"):
        apply_overrides({}, [f"seed={value}"])


def test_yaml_tags_in_a_recipe_file_are_refused_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "tag.yaml"
    path.write_text("method: fake-linear\nname: !!binary aGk=\n")
    with pytest.raises(XferError, match=r"YAML tag '!!binary'.*line 2"):
        read_yaml(path)


def test_grid_values_get_the_same_checks() -> None:
    from xfer.sweep import expand_grid

    with pytest.raises(XferError, match="--grid seed: .*YAML tag"):
        expand_grid(["seed=1,!!python/name:os.system"])
    with pytest.raises(XferError, match="--grid seed: .*not valid YAML"):
        expand_grid(["seed=[1"])
    assert expand_grid(["seed=0,1"]) == [{"seed": 0}, {"seed": 1}]


def test_plain_values_still_parse_in_set() -> None:
    data = apply_overrides({}, ["seed=3", "env.image_size=64", "name='x: y'", "sources=[]"])
    assert data == {"seed": 3, "env": {"image_size": 64}, "name": "x: y", "sources": []}


# ---- recipe files -------------------------------------------------------------------------------------
def test_duplicate_keys_in_a_recipe_name_the_key_and_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("method: fake-linear\nseed: 1\ntarget:\n  suite: fake\n  suite: dmc\n")
    with pytest.raises(XferError) as info:
        read_yaml(path)
    message = str(info.value)
    assert "'suite'" in message and "line 5" in message and "line 4" in message, message


def test_duplicate_keys_in_a_set_value_are_refused() -> None:
    with pytest.raises(XferError, match="duplicate key 'a'"):
        apply_overrides({}, ["env.options={a: 1, a: 2}"])


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text("base: &b {x: 1, y: 2}\nother:\n  <<: *b\n  y: 3\n")
    assert read_yaml(path)["other"] == {"x": 1, "y": 3}


def test_recipe_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("method: fake-linear\nname: caf\u00e9\n".encode("latin-1"))
    with pytest.raises(XferError, match="not UTF-8") as info:
        read_yaml(path)
    assert "byte 0xe9" in str(info.value) and "UTF-8" in (info.value.hint or "")


def test_directory_as_recipe_says_it_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("method: x\n")
    with pytest.raises(XferError) as info:
        read_yaml(tmp_path)
    assert "is a directory" in str(info.value) and "does not exist" not in str(info.value)
    assert "a.yaml" in (info.value.hint or "")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_recipe(tmp_path: Path) -> None:
    path = tmp_path / "secret.yaml"
    path.write_text("method: x\n")
    path.chmod(0)
    with pytest.raises(XferError, match="cannot be read"):
        read_yaml(path)


def test_cli_prints_yaml_and_file_errors_as_one_message(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("method: fake-linear\n")
    assert "not valid YAML" in one_error(xfer("validate", str(path), "--set", "seed=[1,"))
    assert "YAML tag" in one_error(xfer("validate", str(path), "--set", "seed=!!python/object:os.system x"))
    assert "is a directory" in one_error(xfer("validate", str(tmp_path)))


@pytest.mark.parametrize(("args", "said"), [
    (("nosuchcommand",), "No such command 'nosuchcommand'"),
    (("run", "--nosuch", "r.yaml"), "No such option: --nosuch"),
    (("run",), "Missing argument"),
])
def test_usage_errors_are_one_message_and_exit_2(args: tuple[str, ...], said: str) -> None:
    """typer vendors click from 0.2x on: its usage errors must print click's message, not a traceback."""
    result = xfer(*args)
    assert result.returncode == 2, result.stderr
    assert said in result.stderr and "Traceback" not in result.stderr


# ---- run names ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../../escape", "a/b", "a\\b", "..", ".hidden", "", " "])
def test_run_name_is_one_path_component(registry, name: str) -> None:
    with pytest.raises(RecipeError) as info:
        validate_recipe({**GOOD, "name": name}, registry)
    problems = dict(info.value.problems)
    assert "name" in problems and "one path component" in problems["name"], problems


def test_set_name_cannot_escape_logdir(registry, tmp_path: Path) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    with pytest.raises(RecipeError, match="name: .*one path component"):
        load_recipe(path, registry, ["name=../../escape"])
    assert load_recipe(path, registry, ["name=seed=0__task-a.b"]).name == "seed=0__task-a.b"


# ---- disabled and broken plugins ----------------------------------------------------------------------
class _FailsToImport:
    """Stands in for an entry point whose module raises on import (load_plugins records it broken)."""

    @hookimpl
    def xfer_register_methods(self, register: object) -> None:
        raise ImportError("No module named 'missing_dep_of_broken'")


def test_disabled_suite_says_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XFER_DISABLE_PLUGINS", "metaworld")
    registry = load_plugins(extra={"fake": FakePlugin()}).registry
    with pytest.raises(XferError, match="disabled by XFER_DISABLE_PLUGINS") as info:
        registry.suite("metaworld")
    assert "unknown" not in str(info.value)
    data = {**GOOD, "target": {"suite": "metaworld", "task": "drawer-open"}}
    with pytest.raises(RecipeError) as recipe_info:
        validate_recipe(data, registry)
    assert "disabled by XFER_DISABLE_PLUGINS" in dict(recipe_info.value.problems)["target.suite"]


def test_broken_plugin_method_says_failed_to_import() -> None:
    registry = load_plugins(extra={"fake": FakePlugin(), "broken": _FailsToImport()}).registry
    with pytest.raises(XferError) as info:
        registry.method("broken")
    assert "plugin 'broken' failed to import" in str(info.value)
    assert "missing_dep_of_broken" in str(info.value)
    with pytest.raises(RecipeError) as recipe_info:
        validate_recipe({**GOOD, "method": "broken"}, registry)
    assert "plugin 'broken' failed to import" in dict(recipe_info.value.problems)["method"]


def test_unknown_name_in_disable_variable_is_warned_once() -> None:
    result = xfer("list-plugins", "--json", env={"XFER_DISABLE_PLUGINS": "metaworld,metawrold"})
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "metawrold" in line]
    assert len(warnings) == 1 and "matches no installed plugin" in warnings[0], result.stderr
    assert "did you mean 'metaworld'" in warnings[0]


def test_disabled_suite_through_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "mw.yaml"
    path.write_text(yaml.safe_dump({"method": "dreamer", "target": {"suite": "metaworld",
                                                                    "task": "drawer-open"}}))
    stderr = one_error(xfer("validate", str(path), env={"XFER_DISABLE_PLUGINS": "metaworld"}))
    assert "disabled by XFER_DISABLE_PLUGINS" in stderr


# ---- rich markup never eats user text or hints --------------------------------------------------------
def test_bracketed_task_is_printed_as_given(tmp_path: Path) -> None:
    path = tmp_path / "mw.yaml"
    path.write_text(yaml.safe_dump({"method": "dreamer", "target": {"suite": "metaworld",
                                                                    "task": "[bold]drawer-open"}}))
    stderr = one_error(xfer("validate", str(path)))
    assert "'[bold]drawer-open'" in stderr and "did you mean 'drawer-open'" in stderr, stderr


def _needy_plugin_env(site: Path) -> dict[str, str]:
    """A third-party plugin (a real distribution on PYTHONPATH) whose suite's simulator is not installed."""
    plugin = ("from xfer import hookimpl\nfrom xfer.registry import SuiteSpec\n"
              "class Plugin:\n    @hookimpl\n    def xfer_register_suites(self, register):\n"
              "        register(SuiteSpec(name='needy', tasks=('t',), make_env='xfer_needy_env:make',"
              " extra='metaworld'))\nplugin = Plugin()\n")
    return install_plugin_distribution(site, "xfer-needy-ep", {
        "xfer_needy_ep": plugin, "xfer_needy_env": "import xfer_simulator_not_installed_zz\n"},
        "needy = xfer_needy_ep:plugin")


def test_missing_simulator_hint_names_the_extra(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    env = _needy_plugin_env(site)
    stderr = one_error(xfer("data", "collect", "--suite", "needy", "--task", "t", "--episodes", "1",
                            "--out", str(tmp_path / "d"), "--no-progress", env=env))
    assert "xfer_simulator_not_installed_zz" in stderr
    assert 'pip install "xfer[metaworld]"' in stderr, stderr


@pytest.fixture
def unwritable(tmp_path: Path):
    """A directory in which nothing can be created (a chmod 500 directory; /sys for root, who ignores it)."""
    if os.geteuid() == 0:
        yield Path("/sys")
        return
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    yield locked
    locked.chmod(0o700)


def test_collect_into_an_unwritable_directory(unwritable: Path, fake_plugin_env: dict) -> None:
    out = unwritable / "xfer-test-dataset"
    stderr = one_error(xfer("data", "collect", "--suite", "fake", "--task", "reach", "--episodes", "1",
                            "--out", str(out), "--no-progress", env=fake_plugin_env))
    assert f"while writing {out}" in stderr and "Traceback" not in stderr, stderr


def test_plot_out_in_an_unwritable_directory(tmp_path: Path, unwritable: Path) -> None:
    rundir = tmp_path / "runs" / "r0"
    rundir.mkdir(parents=True)
    (rundir / "recipe.yaml").write_text(yaml.safe_dump({"method": "dreamer", "seed": 0}))
    rows = [{"step": s, "env_steps": s, "eval/return": float(s)} for s in range(3)]
    (rundir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = unwritable / "xfer-test-plot" / "c.png"
    stderr = one_error(xfer("plot", str(tmp_path / "runs"), "--out", str(out)))
    assert f"while writing {out}" in stderr, stderr


def test_plugin_table_prints_a_broken_plugin_error_as_it_is() -> None:
    from rich.console import Console

    from xfer.plugin_table import plugins_table

    class Broken:
        @hookimpl
        def xfer_register_methods(self, register: object) -> None:
            raise RuntimeError("needs [bold]torch[/bold] >= 2")

    console = Console(width=300, record=True, file=io.StringIO())
    console.print(plugins_table(load_plugins(extra={"[x]plugin": Broken()})))
    text = console.export_text()
    assert "needs [bold]torch[/bold] >= 2" in text and "[x]plugin" in text


def test_method_of_a_plugin_that_fails_to_import_through_the_cli(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    env = install_plugin_distribution(site, "xfer-broken-ep",
                                      {"xfer_broken_ep": "import xfer_dependency_not_installed_zz\n"},
                                      "broken = xfer_broken_ep")
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump({"method": "broken", "target": {"suite": "dmc", "task": "walker-walk"}}))
    stderr = one_error(xfer("validate", str(path), env=env))
    assert "plugin 'broken' failed to import" in stderr and "xfer_dependency_not_installed_zz" in stderr
    assert "unknown method" not in stderr


def test_a_missing_method_is_one_problem(registry) -> None:
    with pytest.raises(RecipeError) as info:
        validate_recipe({"seed": 1}, registry)
    assert [path for path, _ in info.value.problems] == ["method"]
