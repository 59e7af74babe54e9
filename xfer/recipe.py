"""Recipes: pydantic-validated YAML experiments, ``--set`` overrides, and errors that name the key path.

A recipe names a ``method`` and carries that method's own section under the method's name, validated by
the model the method plugin registered (``extra="forbid"``). Everything else is core: sources and target
(suite, task, dataset), environment settings, seed, device, run name and log directory, evaluation,
checkpointing and logging.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from xfer.envs.settings import EnvSettings


def is_path_component(name: str) -> bool:
    """Whether ``name`` is one entry of a directory: not empty, no separator, no leading dot, no NUL."""
    return bool(name.strip()) and not any(c in name for c in "/\\\0") and not name.startswith(".")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CollectSpec(Strict):
    """How to make a dataset when the recipe gives no path: ``xfer run`` collects it once and caches it."""

    policy: str = Field("scripted", description="scripted | random | checkpoint:RUNDIR | a suite policy")
    episodes: int = Field(10, ge=1)
    seed: int = 0
    workers: int = Field(1, ge=1)


class DatasetSpec(Strict):
    """An offline dataset: a directory in xfer's format, or a ``collect`` spec to produce one."""

    path: Path | None = None
    collect: CollectSpec | None = None
    max_episodes: int | None = Field(None, ge=1, description="use at most this many episodes")

    @field_validator("collect")
    @classmethod
    def _one_of(cls, value: CollectSpec | None, info: Any) -> CollectSpec | None:
        if value is not None and info.data.get("path") is not None:
            raise ValueError("give either 'path' or 'collect', not both")
        return value


class TaskSpec(Strict):
    """A task in a suite, optionally with an offline dataset."""

    suite: str
    task: str
    dataset: DatasetSpec | None = None
    env: EnvSettings | None = Field(None, description="per-task overrides of the recipe's env section")


class EvalSettings(Strict):
    every: int = Field(10_000, ge=1, description="evaluate every this many environment steps")
    episodes: int = Field(10, ge=1)
    video: bool = Field(True, description="write an evaluation video at the end of the run")


class CheckpointSettings(Strict):
    every: int = Field(10_000, ge=1, description="checkpoint every this many steps of the loop")
    keep: int = Field(3, ge=1, description="keep the newest K checkpoints")


class LoggingSettings(Strict):
    every: int = Field(1000, ge=1, description="write scalars every this many steps")
    tensorboard: bool = True
    live: bool = Field(True, description="rich live display (off automatically when not a terminal)")


# Keys an earlier xfer wrote into every run's recipe.yaml and no longer accepts: none was ever read, so a
# run's recipe drops them (recipe_io.load_run_recipe) and a new recipe setting them is refused (PerfSettings).
RETIRED_RUN_KEYS: tuple[tuple[str, str], ...] = (("perf", "amp"), ("perf", "compile"))


class PerfSettings(Strict):
    """CPU threads. The speed switches of a backbone (``amp``: bf16 autocast on CUDA, ``compile``:
    torch.compile) are fields of its config, the method section's ``model`` (e.g. ``dreamer.model.amp``), so
    a recipe sets each in one place."""

    threads: int | None = Field(None, ge=1, description="torch CPU threads (default: all cores)")

    @model_validator(mode="before")
    @classmethod
    def _switches_live_in_the_model(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in (key for section, key in RETIRED_RUN_KEYS if section == "perf"):
                if key in data:
                    raise ValueError(f"perf.{key} is not a recipe key: the backbone's switch is "
                                     f"<method>.model.{key} (e.g. dreamer.model.{key}: true)")
        return data


class Recipe(Strict):
    """A whole experiment. ``config`` holds the method's own validated section (key = method name)."""

    method: str
    name: str | None = Field(None, description="run name (one directory name under logdir); default: the "
                                               "recipe file's stem")
    seed: int = 0
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    deterministic: bool = False
    logdir: Path = Path("runs")
    datadir: Path = Field(Path("data"), description="where datasets given by a collect spec are cached")
    sources: list[TaskSpec] = Field(default_factory=list)
    target: TaskSpec | None = None
    env: EnvSettings = Field(default_factory=EnvSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    checkpoint: CheckpointSettings = Field(default_factory=CheckpointSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    perf: PerfSettings = Field(default_factory=PerfSettings)
    config: Any = Field(None, exclude=True)

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        ok = value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit())
        if not ok:
            raise ValueError("device must be auto, cpu, cuda or cuda:N")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not is_path_component(value):
            raise ValueError("a run name is one path component (a directory under logdir): not empty, "
                             "no '/' or '\\', not starting with '.'; "
                             "fix it with --set name=NAME, e.g. name=my-run")
        return value

    def env_for(self, task: TaskSpec) -> EnvSettings:
        """The recipe's env section with the task's own overrides applied (those fields set explicitly)."""
        if task.env is None:
            return self.env
        return self.env.model_copy(update=task.env.model_dump(exclude_unset=True))

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude_none=False)
        data[self.method] = self.config.model_dump(mode="json") if self.config is not None else {}
        return data

