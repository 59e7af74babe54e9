"""Collect an offline dataset by running a policy in one or more worker processes.

Episode ``i`` is reset with a seed derived from ``(seed, i)`` and its policy is built with the same seed, so a
dataset does not depend on how many workers collected it, and an interrupted collection resumes by
collecting only the episode indices whose files are missing (each file is written atomically). Worker ``w``
takes every ``workers``-th missing index; its environment is made once with a seed derived from
``(seed, w)``.

Policies: a suite's registered collection policy (``scripted``, ...), ``random`` (uniform over the action
space, unless the suite registers its own), or ``checkpoint:RUNDIR`` — the agent of a training run's newest
checkpoint, loaded through its method's ``load_agent`` and acting greedily (``explore=False``);
``checkpoint:RUNDIR/checkpoints/<file>`` takes that checkpoint instead (an early-stopped agent, as the
"medium" datasets of Vid2Act and CoWorld are made).
"""

from __future__ import annotations

import multiprocessing as mp
import queue as queue_module
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xfer.data.dataset import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    finalize_dataset,
    read_manifest,
    write_manifest,
)
from xfer.data.episode import EpisodeBuilder, episode_files, parse_filename, write_episode
from xfer.envs.settings import EnvSettings
from xfer.errors import XferError, did_you_mean
from xfer.registry import Registry, load_attr
from xfer.run.storage import writing

Report = Callable[[dict[str, Any]], None]
_PLAIN_EVERY_S = 30.0  # off a terminal: one progress line at most this often, and one at the end


def episode_seed(seed: int, index: int) -> int:
    """The reset and policy seed of episode ``index`` of a collection with ``seed``."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def worker_seed(seed: int, worker: int) -> int:
    """The environment-construction seed of worker ``worker``."""
    return int(np.random.SeedSequence([seed, 1_000_003, worker]).generate_state(1)[0])


@dataclass(frozen=True)
class PolicyRef:
    """A resolved policy name: ``kind`` is suite | checkpoint; ``target`` is ``module:function``."""

    name: str
    kind: str
    target: str | None = None
    rundir: Path | None = None
    extra: str = "all"
    checkpoint: Path | None = None


def resolve_policy(name: str, suite: str, registry: Registry) -> PolicyRef:
    """Turn ``--policy`` into something a worker can build, with a clear error for unknown names."""
    spec = registry.suite(suite)
    if name.startswith("checkpoint:"):
        path = Path(name.partition(":")[2])
        if path.is_file():  # one checkpoint file of a run: RUNDIR/checkpoints/<file>
            return _checkpoint_policy(name, path.parent.parent, registry, path)
        return _checkpoint_policy(name, path, registry)
    if name in spec.policies:
        return PolicyRef(name, "suite", spec.policies[name], extra=spec.extra)
    if name == "random":  # every suite offers it, registered or not
        return PolicyRef(name, "suite", "xfer.envs.policies:random_policy")
    known = sorted({*spec.policies, "random"})
    raise XferError(f"suite {suite!r} has no collection policy {name!r}{did_you_mean(name, known)}",
                    hint=f"policies: {', '.join(known)}, or checkpoint:RUNDIR")


def _checkpoint_policy(name: str, rundir: Path, registry: Registry, checkpoint: Path | None = None
                       ) -> PolicyRef:
    from xfer.recipe_io import load_run_recipe

    if not (rundir / "recipe.yaml").is_file():
        what = f"{str(checkpoint)!r} is not in a run's checkpoints/ folder" if checkpoint else \
            f"{str(rundir)!r} is not a run directory"
        raise XferError(f"policy {name!r}: {what} (no recipe.yaml)",
                        hint="give checkpoint:RUNDIR or checkpoint:RUNDIR/checkpoints/<file>")
    method = registry.method(load_run_recipe(rundir, registry).method)
    if method.load_agent is None:
        raise XferError(f"policy {name!r}: method {method.name!r} registers no load_agent, "
                        "so its runs cannot collect data")
    return PolicyRef(name, "checkpoint", method.load_agent, rundir, method.extra, checkpoint)


class AgentPolicy:
    """A trained :class:`~xfer.interfaces.Agent` acting in one environment (batch of one)."""

    def __init__(self, agent: Any) -> None:
        self.agent = agent
        self.state: Any = None

    def reset(self) -> None:
        self.state = None

    def __call__(self, obs: dict[str, np.ndarray]) -> Any:
        batch = {key: np.asarray(value)[None] for key, value in obs.items()}
        action, self.state = self.agent.act(batch, self.state, False)
        return np.asarray(action)[0]


@dataclass(frozen=True)
class WorkerJob:
    suite: str
    task: str
    settings: EnvSettings
    seed: int
    worker: int
    indices: tuple[int, ...]
    out: Path
    policy: PolicyRef
    registry: Registry


def run_worker(job: WorkerJob, report: Report) -> None:
    """Collect the episodes ``job.indices``, writing each atomically and reporting a summary of it."""
    import gymnasium as gym

    from xfer.envs.make import make_env

    env_seed = worker_seed(job.seed, job.worker)
    env = make_env(job.suite, job.task, job.settings, env_seed, registry=job.registry)
    space = env.action_space
    discrete = isinstance(space, gym.spaces.Discrete)
    size = int(space.n) if discrete else int(np.prod(space.shape))
    agent = None
    if job.policy.kind == "checkpoint":
        load = load_attr(job.policy.target or "", what=f"policy {job.policy.name!r}", extra=job.policy.extra)
        agent = load(job.policy.rundir, job.policy.checkpoint, "cpu")
    try:
        for index in job.indices:
            seed = episode_seed(job.seed, index)
            if job.policy.kind == "suite":
                factory = load_attr(job.policy.target or "", what=f"policy {job.policy.name!r}",
                                    extra=job.policy.extra)
                policy = factory(env, job.task, seed)
            else:
                policy = AgentPolicy(agent)
            builder = EpisodeBuilder(size, discrete)
            obs, info = env.reset(seed=seed)
            policy.reset()
            builder.start(obs, info)
            done = False
            while not done:
                action = policy(obs)
                obs, reward, terminated, truncated, info = env.step(action)
                builder.step(obs, action, float(reward), bool(terminated), bool(truncated), info)
                done = bool(terminated or truncated)
            episode = builder.finish()
            write_episode(job.out, index, episode)
            report({"kind": "episode", "index": index, "length": len(episode["reward"]) - 1,
                    "return": float(episode["reward"].sum()), "success": bool(episode["success"].any()),
                    "discrete": discrete, "success_defined": builder.success_defined})
    finally:
        env.close()


def _worker_main(job: WorkerJob, messages: Any) -> None:
    try:
        run_worker(job, messages.put)
        messages.put({"kind": "done", "worker": job.worker})
    except XferError as err:
        messages.put({"kind": "error", "worker": job.worker, "message": err.message, "hint": err.hint})
    except BaseException as err:  # report anything to the parent, which raises it as an XferError
        messages.put({"kind": "error", "worker": job.worker, "hint": None,
                      "message": f"{type(err).__name__}: {err}\n{traceback.format_exc()}"})


def collect(suite: str, task: str, settings: EnvSettings, policy_name: str, episodes: int, out: Path,
            seed: int = 0, workers: int = 1, progress: bool = True, registry: Registry | None = None) -> Path:
    """Collect ``episodes`` episodes of ``task`` with ``policy_name`` into the dataset directory ``out``.

    Resumes a partial collection made with the same suite, task, policy, seed and env settings; refuses a
    directory holding a different one. Returns ``out`` with a complete ``dataset.json``.
    """
    if registry is None:
        from xfer.plugins import get_registry

        registry = get_registry()
    spec = registry.suite(suite)
    spec.check_task(task)
    policy = resolve_policy(policy_name, suite, registry)
    out = Path(out)
    header = {"suite": suite, "task": task, "policy": policy_name, "seed": seed,
              "env": settings.resolve(spec.defaults).model_dump(mode="json"), "source": "collect"}
    with writing(out):
        meta = _start_manifest(out, header, episodes)
    done = {parse_filename(p)[0] for p in episode_files(out)}  # type: ignore[index]
    todo = [i for i in range(episodes) if i not in done]
    workers = max(1, min(workers, len(todo)))
    jobs = [WorkerJob(suite, task, settings, seed, w, tuple(todo[w::workers]), out, policy, registry)
            for w in range(workers)]
    summaries: list[dict[str, Any]] = []
    try:
        if todo:
            _run_jobs(jobs, summaries, f"{suite}/{task} ({policy_name})", progress)
    finally:
        for summary in summaries:  # remembered in the partial manifest too, for a resume with nothing to do
            meta["discrete"] = summary["discrete"]
            meta["success_defined"] = meta.get("success_defined", False) or summary["success_defined"]
        if summaries:
            write_manifest(out, {**read_manifest(out), **meta})
    fields = {key: meta[key] for key in (*header, "discrete", "success_defined") if key in meta}
    finalize_dataset(out, **fields)
    return out


def _start_manifest(out: Path, header: dict[str, Any], episodes: int) -> dict[str, Any]:
    """Refuse a directory holding another dataset; mark this one incomplete until collection ends."""
    if (out / MANIFEST).exists():
        old = read_manifest(out)
        differs = [f"{key}: expected {header[key]!r}, found {old.get(key)!r}" for key in header
                   if old.get(key) != header[key]]
        if differs:
            raise XferError(f"dataset {out} was collected differently, so it cannot be resumed or extended: "
                            + "; ".join(differs), hint="choose another --out directory")
        meta = {key: old[key] for key in ("discrete", "success_defined") if key in old}
    elif out.exists() and any(out.iterdir()):
        raise XferError(f"output directory {out} is not empty and holds no {MANIFEST}",
                        hint="choose a new or empty --out directory")
    else:
        meta = {}
    meta.update(header)
    write_manifest(out, {"format": FORMAT, "format_version": FORMAT_VERSION, "complete": False,
                         **meta, "target_episodes": episodes})
    return meta


def _run_jobs(jobs: list[WorkerJob], summaries: list[dict[str, Any]], label: str, progress: bool) -> None:
    """Run the jobs (in this process when there is one), appending each episode's summary."""
    from rich import get_console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    total = sum(len(job.indices) for job in jobs)
    console = get_console()
    plain = progress and not console.is_terminal  # logs and pipes: whole plain lines, not a cut-off bar
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("episodes"),
               TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[last]}"))
    printed = [time.monotonic()]
    with Progress(*columns, disable=not progress or plain, transient=False, console=console) as bar:
        task_id = bar.add_task(f"collecting {label}", total=total, last="")

        def on_episode(summary: dict[str, Any]) -> None:
            summaries.append(summary)
            success = " success" if summary["success"] else ""
            last = f"last: {summary['length']} steps, return {summary['return']:.1f}{success}"
            bar.update(task_id, advance=1, last=last)
            if plain and (len(summaries) == total or time.monotonic() - printed[0] >= _PLAIN_EVERY_S):
                printed[0] = time.monotonic()
                console.print(f"collecting {label}: {len(summaries)}/{total} episodes, {last}", markup=False,
                              highlight=False, soft_wrap=True)

        if len(jobs) == 1:
            run_worker(jobs[0], on_episode)
        else:
            _run_processes(jobs, on_episode)


def _run_processes(jobs: list[WorkerJob], on_episode: Report) -> None:
    context = mp.get_context("spawn")  # no fork: simulators and torch do not survive forking well
    messages = context.Queue()
    processes = [context.Process(target=_worker_main, args=(job, messages), daemon=True) for job in jobs]
    for process in processes:
        process.start()
    running = len(processes)
    try:
        while running:
            try:
                message = messages.get(timeout=1.0)
            except queue_module.Empty as empty:
                dead = [p for p in processes if p.exitcode not in (None, 0)]
                if dead:
                    raise XferError(f"a collection worker died (exit code {dead[0].exitcode})",
                                    hint="episodes already written are kept; run the command again "
                                         "to resume") from empty
                continue
            if message["kind"] == "episode":
                on_episode(message)
            elif message["kind"] == "done":
                running -= 1
            else:
                raise XferError(f"collection worker {message['worker']} failed: {message['message']}",
                                hint=message["hint"] or "episodes already written are kept; "
                                                        "run the command again to resume")
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
            process.join(timeout=10)
