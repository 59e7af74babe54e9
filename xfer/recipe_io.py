"""Load a recipe from YAML: apply ``--set`` overrides, validate core and method sections, name every bad key.

Errors come back as one :class:`RecipeError` listing each problem as ``key.path: what is wrong`` with the
bad value and, for unknown keys and names, a "did you mean" suggestion.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from xfer.errors import XferError, did_you_mean
from xfer.recipe import RETIRED_RUN_KEYS, Recipe, TaskSpec
from xfer.registry import Registry


class RecipeError(XferError):
    """A recipe that does not validate; ``problems`` holds one ``(key path, message)`` per problem."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        lines = "\n".join(f"  {path or '(top level)'}: {msg}" for path, msg in problems)
        super().__init__(f"recipe {source} is not valid:\n{lines}",
                         hint="`xfer validate RECIPE` checks a recipe; --set key.path=value overrides a key")
        self.problems = problems


class RecipeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, stricter: a key given twice in one mapping and any explicit tag are errors."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        tag = getattr(event, "tag", None)
        if tag not in (None, "!"):
            shown = tag.replace("tag:yaml.org,2002:", "!!")
            raise yaml.MarkedYAMLError(problem=f"YAML tag {shown!r} is not allowed in a recipe (write "
                                               "plain values)", problem_mark=event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # '<<: *anchor' may be overridden by the mapping's own keys
            key = self.construct_object(key_node, deep=True)
            try:
                seen = first_line.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if seen is not None:
                raise yaml.MarkedYAMLError(problem=f"duplicate key {key!r} (first on line {seen})",
                                           problem_mark=key_node.start_mark)
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def parse_yaml(text: str) -> Any:
    """Parse recipe YAML with :class:`RecipeLoader`; raises ``yaml.YAMLError`` (see :func:`yaml_problem`)."""
    return yaml.load(text, Loader=RecipeLoader)  # noqa: S506 - RecipeLoader is a SafeLoader


def yaml_problem(err: yaml.YAMLError) -> str:
    """A YAML error as one line: what is wrong and where (``line L, column C``)."""
    if not isinstance(err, yaml.MarkedYAMLError):
        return str(err).replace("\n", " ")
    what = "; ".join(part for part in (err.context, err.problem) if part)
    mark = err.problem_mark or err.context_mark
    return f"{what} at line {mark.line + 1}, column {mark.column + 1}" if mark else what


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a recipe file into a mapping, with one clear message for a missing, unreadable, non-UTF-8 or
    malformed file, a duplicate key or a YAML tag."""
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.y*ml"))[:5]
        raise XferError(f"recipe {str(path)!r} is a directory, not a recipe file",
                        hint=f"give one of its files, e.g. {path / found[0]}" if found
                        else "give the path of a .yaml recipe file")
    if not path.exists():
        raise XferError(f"recipe file {str(path)!r} does not exist")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise XferError(f"recipe {str(path)!r} cannot be read: {err.strerror or err}") from err
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise XferError(f"recipe {str(path)!r} is not UTF-8 text: byte 0x{raw[err.start]:02x} on line {line}",
                        hint="save the file as UTF-8") from err
    try:
        data = parse_yaml(text) or {}
    except yaml.YAMLError as err:
        raise XferError(f"recipe {str(path)!r} is not valid YAML: {yaml_problem(err)}") from err
    if not isinstance(data, dict):
        raise XferError(f"recipe {str(path)!r} must be a mapping of keys to values, "
                        f"found {type(data).__name__}")
    return data


def parse_set_value(key: str, raw: str, option: str = "--set") -> Any:
    """The value of ``--set key=raw`` (or one ``--grid`` value), parsed as YAML with
    :class:`RecipeLoader`'s checks."""
    if not raw.strip():
        return None
    try:
        return parse_yaml(raw)
    except yaml.YAMLError as err:
        raise XferError(f"{option} {key}: value {raw!r} is not valid YAML: {yaml_problem(err)}",
                        hint=f"quote a value meant as text: {option} '{key}=\"...\"'") from err


def apply_overrides(data: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` overrides in place; values are parsed as YAML; list items by index."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise XferError(f"--set {item!r} is not of the form key.path=value")
        value = parse_set_value(key, raw)
        parts = key.split(".")
        node: Any = data
        for i, part in enumerate(parts[:-1]):
            node = _child(node, part, ".".join(parts[: i + 1]))
        _assign(node, parts[-1], value, key)
    return data


def _child(node: Any, part: str, where: str) -> Any:
    if isinstance(node, list):
        index = _index(node, part, where)
        return node[index]
    if not isinstance(node, dict):
        raise XferError(f"--set {where}: cannot descend into a {type(node).__name__}")
    if node.get(part) is None:
        node[part] = {}
    return node[part]


def _assign(node: Any, part: str, value: Any, where: str) -> None:
    if isinstance(node, list):
        node[_index(node, part, where)] = value
    elif isinstance(node, dict):
        node[part] = value
    else:
        raise XferError(f"--set {where}: cannot set a key inside a {type(node).__name__}")


def _index(node: list[Any], part: str, where: str) -> int:
    if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
        raise XferError(f"--set {where}: {part!r} is not an index of a list of {len(node)} items")
    return int(part)


def validate_recipe(data: dict[str, Any], registry: Registry, source: str = "<recipe>",
                    default_name: str | None = None) -> Recipe:
    """Validate a recipe mapping: core sections by :class:`Recipe`, the method section by its plugin."""
    data = dict(data)
    problems: list[tuple[str, str]] = []
    method = data.get("method")
    config_model: type[BaseModel] | None = None
    if not isinstance(method, str):
        problems.append(("method", "missing: name the method to run, e.g. 'method: vid2act'"))
    elif method not in registry.methods:
        problems.append(("method", "; ".join(registry.not_found("method", method))))
    else:
        config_model = registry.methods[method].config
    section = data.pop(method, None) if isinstance(method, str) else None
    if section is not None and not isinstance(section, dict):
        problems.append((str(method), f"must be a mapping, found {section!r}"))
        section = None
    if default_name and not data.get("name"):
        data["name"] = default_name
    recipe: Recipe | None = None
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as err:
        named = {path for path, _ in problems}  # 'method' is already explained above
        problems += [p for p in _pydantic_problems(err, Recipe, prefix="", extra_names=[str(method)])
                     if p[0] not in named]
    config: BaseModel | None = None
    if config_model is not None:
        try:
            config = config_model.model_validate(section or {})
        except ValidationError as err:
            problems += _pydantic_problems(err, config_model, prefix=str(method))
    if recipe is not None:
        problems += _task_problems(recipe, registry)
    if problems:
        raise RecipeError(source, problems)
    assert recipe is not None
    recipe.config = config
    return recipe


def load_recipe(path: Path, registry: Registry, overrides: Iterable[str] = ()) -> Recipe:
    """Read, override and validate a recipe file."""
    data = apply_overrides(read_yaml(path), overrides)
    return validate_recipe(data, registry, source=str(path), default_name=path.stem)


def load_run_recipe(rundir: Path, registry: Registry) -> Recipe:
    """The ``recipe.yaml`` of a run directory, validated: a run written by an earlier xfer still resumes,
    evaluates and serves as a policy (its :data:`RETIRED_RUN_KEYS` are dropped)."""
    path = rundir / "recipe.yaml"
    data = read_yaml(path)
    for section, key in RETIRED_RUN_KEYS:
        if isinstance(data, dict) and isinstance(data.get(section), dict):
            data[section].pop(key, None)
    return validate_recipe(data, registry, source=str(path), default_name=path.stem)


def _task_problems(recipe: Recipe, registry: Registry) -> list[tuple[str, str]]:
    tasks: list[tuple[str, TaskSpec]] = [(f"sources.{i}", t) for i, t in enumerate(recipe.sources)]
    if recipe.target is not None:
        tasks.append(("target", recipe.target))
    problems = []
    for path, task in tasks:
        if task.suite not in registry.suites:
            problems.append((f"{path}.suite", "; ".join(registry.not_found("suite", task.suite))))
            continue
        try:  # the suite's own check: a suite may accept tasks beyond its listed ones (gym's module:EnvId)
            registry.suites[task.suite].check_task(task.task)
        except XferError as err:
            problems.append((f"{path}.task", err.message))
    return problems


def _pydantic_problems(err: ValidationError, model: type[BaseModel], prefix: str,
                       extra_names: list[str] | None = None) -> list[tuple[str, str]]:
    problems = []
    for e in err.errors():
        loc = [str(p) for p in e["loc"]]
        path = ".".join([prefix, *loc] if prefix else loc)
        if e["type"] == "extra_forbidden":
            known = list(_fields_at(model, loc[:-1])) + (extra_names or [] if len(loc) == 1 else [])
            problems.append((path, f"unknown key{did_you_mean(loc[-1], known)}"))
        else:
            given = e.get("input")
            shown = "" if e["type"] == "missing" else f" (got {given!r})"
            msg = str(e["ctx"]["error"]) if e["type"] == "value_error" and "ctx" in e else e["msg"]
            problems.append((path, f"{msg}{shown}"))
    return problems


def _fields_at(model: Any, loc: list[str]) -> Iterable[str]:
    """Field names of the (nested) pydantic model reached by following ``loc`` from ``model``."""
    current: Any = model
    for part in loc:
        current = _unwrap(current, part)
        if current is None:
            return []
    return current.model_fields.keys() if isinstance(current, type) and issubclass(current, BaseModel) else []


def _unwrap(model: Any, part: str) -> Any:
    if part.isdigit():  # a list index: the list's item model was already unwrapped
        return model
    field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
    return _model_in(field.annotation) if field else None


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, tuple):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe as YAML (what a run directory's ``recipe.yaml`` holds)."""
    return yaml.safe_dump(recipe.to_dict(), sort_keys=False)
