"""Data-parallel learners on ``torch.distributed``: the one seam every loop calls (no method has its own).

``xfer run RECIPE --nproc N`` (or ``torchrun --nproc-per-node N -m xfer run RECIPE``) starts N processes,
one per GPU (``nccl``) or CPU process (``gloo``). How a run is shared between them:

- **Lockstep acting.** Every rank runs the method's whole loop: the same seeds, the same ``ctx.rng``
  draws, the same parameters, so every rank holds the same replay. Only the learner's work is split.
  Rank 0 writes the run directory (checkpoints, metrics, TensorBoard, videos, ``run.json``); a rank
  above 0 works in a scratch directory beside it (``.<run>.rank<r>``: its replay; when resuming, rank
  0's files hard-linked in) through a follower context that writes nothing else; it is deleted at the end.
- **Batch share.** :func:`share_batch`: the batch in the recipe is the *global* batch. Each rank draws it
  from its own generator (derived from the run's seed, its rank and the update count it started from, so
  resuming re-derives it) and keeps rows ``rank::world`` of it (a Vid2Act mixture stays balanced); on one
  process the run's own generator is used, unchanged. Every Dreamer-family update draws its data this way:
  the Dreamer loops' batches (``dreamer``, Vid2Act's Stage 1 and Stage 2, CoWorld's source updates), and
  CoWorld's own draws from its offline target dataset (the target world-model pretraining, the target
  phase's updates, Stage B's relabelled target batches: CoWorld's learner and ``TargetData``).
- **Gradients.** :func:`average_gradients` all-reduces (sums, then divides by the world size) the
  gradients an optimiser is about to apply, before clipping, so the update is the one of the global
  batch's mean loss: the learning rate needs no scaling. It is called per optimiser step: the Dreamer
  agent's three optimisers (so the terms CoWorld's stages and Vid2Act's Stage 2 add to them), Vid2Act's
  Stage 1 mixture world model and action replay VAE, the EfficientZero learner. :func:`broadcast_buffers`
  copies rank 0's buffers (BatchNorm statistics) to all ranks after each step, as DDP does.
- **Agreement.** :func:`any_rank` (stopping: Ctrl-C reaches the ranks at different moments),
  :func:`gather_rows` (EfficientZero's new priorities, so every replay stays the same) and
  :func:`mean_over_ranks` (a statistic a choice reads, e.g. multi-source CoWorld's per-source KL: the
  global batch's mean, so every rank selects the same source).

A checkpoint holds rank 0's state, which is every rank's: a multi-rank run resumes on one process and
back. Updates whose data still comes from ``ctx.rng`` instead of :func:`share_batch` (XTRA's pretraining
and finetuning batches, Vid2Act's optional ``train_vae_in_transfer`` source batches) are computed
identically on every rank: correct, not faster.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from xfer.errors import XferError

_generators: dict[int, np.random.Generator] = {}


def world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", rank()))


def setup(device_type: str) -> None:
    """Join the process group the environment describes (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``,
    ``MASTER_PORT``, as torchrun or :func:`launch` set them); nothing when ``WORLD_SIZE`` is 1 or unset."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return
    backend = "nccl" if device_type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
    _generators.clear()


def device_for(device: torch.device) -> torch.device:
    """A rank's own GPU (``cuda:LOCAL_RANK``) in a multi-rank run; ``device`` otherwise."""
    if world() > 1 and device.type == "cuda":
        return torch.device("cuda", local_rank())
    return device


# ---- batches ------------------------------------------------------------------------------------------
def rank_rng(rng: np.random.Generator, counter: int) -> np.random.Generator:
    """``rng`` on one process; else this rank's own generator, made at the first call from the run's seed
    (``rng``'s seed sequence), the rank and ``counter`` (the update count the process started from)."""
    if world() == 1:
        return rng
    if rank() not in _generators:
        entropy = rng.bit_generator.seed_seq.entropy  # type: ignore[attr-defined]
        _generators[rank()] = np.random.default_rng([int(entropy), rank(), int(counter)])
    return _generators[rank()]


def share_batch(sample: Callable[[np.random.Generator], Mapping[str, Any]], rng: np.random.Generator,
                counter: int) -> dict[str, Any]:
    """This rank's share of the global batch ``sample`` draws: rows ``rank::world`` of a batch drawn with
    :func:`rank_rng` (the whole batch from ``rng`` on one process)."""
    batch = sample(rank_rng(rng, counter))
    if world() == 1:
        return dict(batch)
    rows = len(next(iter(batch.values())))
    if rows % world():
        raise XferError(f"the batch of {rows} rows does not split over {world()} processes",
                        hint=f"set the recipe's batch to a multiple of {world()} (it is the global batch)")
    return {key: value[rank()::world()] for key, value in batch.items()}


def share_indices(count: int) -> slice:
    """The rows ``rank::world`` of ``count`` (for sources that draw positions, e.g. EfficientZero)."""
    if count % world():
        raise XferError(f"the batch of {count} does not split over {world()} processes",
                        hint=f"set the batch size to a multiple of {world()} (it is the global batch)")
    return slice(rank(), None, world())


# ---- gradients, buffers, agreement --------------------------------------------------------------------
def average_gradients(params: Iterable[torch.Tensor]) -> None:
    """Replace each gradient by its mean over the ranks (one flat all-reduce); nothing on one process.
    Every rank must pass the same parameters with gradients, in the same order."""
    if world() == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1).float() for g in grads])
    dist.all_reduce(flat)
    flat /= world()
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def mean_over_ranks(value: torch.Tensor) -> torch.Tensor:
    """``value``'s mean over the ranks (a new tensor; ``value`` itself on one process). For statistics of
    equal-sized batch shares, e.g. a per-share mean, it is the statistic of the global batch."""
    if world() == 1:
        return value
    total = value.detach().clone()
    dist.all_reduce(total)
    return total / world()


def broadcast_buffers(module: torch.nn.Module) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank."""
    if world() == 1:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer, 0)


def any_rank(flag: bool) -> bool:
    """True on every rank when it is true on any (so all ranks stop at the same step)."""
    if world() == 1:
        return flag
    value = torch.tensor([int(flag)])
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def same_on_all(value: Any) -> Any:
    """Rank 0's ``value`` on every rank (the actions of lockstep acting, so GPU rounding differences between
    processes cannot make their environments, and with them their loops, drift apart)."""
    if world() == 1:
        return value
    box = [value if is_main() else None]
    dist.broadcast_object_list(box, 0)
    return box[0]


def gather_rows(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every rank's rows of ``arrays`` concatenated in rank order (the arrays themselves on one process)."""
    if world() == 1:
        return arrays
    parts: list[Any] = [None] * world()
    dist.all_gather_object(parts, arrays)
    return tuple(np.concatenate([part[i] for part in parts]) for i in range(len(arrays)))


def barrier() -> None:
    if world() > 1:
        dist.barrier()


# ---- ranks above 0 ------------------------------------------------------------------------------------
SCRATCH_SKIP = {"checkpoints", "metrics.jsonl", "run.json", "videos", "previous"}


def scratch_dir_from(rundir: Path, target: Path) -> Path:
    """``target`` as a working copy of ``rundir`` for a rank above 0 that resumes: the method's files (the
    replay, a teacher) hard-linked (copied where links fail); checkpoints, metrics, TensorBoard events,
    status and videos left out (rank 0 alone keeps those)."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    def skip(folder: str, names: list[str]) -> set[str]:
        if Path(folder) != rundir:
            return set()
        return {n for n in names if n in SCRATCH_SKIP or n.startswith(("events.out", "previous-", "."))}

    shutil.copytree(rundir, target, ignore=skip, copy_function=link)
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _worker(index: int, nproc: int, port: int, target: Callable[..., Any], args: tuple[Any, ...]) -> None:
    os.environ.update(RANK=str(index), LOCAL_RANK=str(index), WORLD_SIZE=str(nproc),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    target(*args)


def launch(nproc: int, target: Callable[..., Any], *args: Any) -> None:
    """Run ``target(*args)`` in ``nproc`` local processes with the torchrun environment set (spawned, so
    CUDA is safe); when one fails, the others are ended and the error is raised here."""
    import torch.multiprocessing as mp

    mp.start_processes(_worker, args=(nproc, free_port(), target, args), nprocs=nproc, join=True,
                       start_method="spawn")


class _Silent:
    """Stands in for the logger and the progress display on ranks above 0: every call does nothing."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None

    def __enter__(self) -> _Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def follower_context(recipe: Any, rundir: Path, scratch: Path, registry: Any, latest: Any,
                     stop_at: int | None) -> Any:
    """The run context of a rank above 0: the method's files go to ``scratch``; checkpoints, metrics,
    status and messages go nowhere (rank 0 writes them), while the counters a loop reads stay in step."""
    from rich.console import Console

    from xfer.run.checkpoint import Checkpointer
    from xfer.run.context import RunContext
    from xfer.run.device import configure_torch, select_device
    from xfer.run.seeding import seed_everything

    class FollowerContext(RunContext):
        def save(self, step: int, state: dict[str, Any]) -> Path:
            self._last_save = step
            return self.rundir / "not-written"

        def set_status(self, status: str, **info: Any) -> None:
            return None

        def say(self, message: str) -> None:
            return None

    device = device_for(select_device(recipe.device, say=lambda message: None))
    configure_torch(device, recipe.perf.threads, recipe.deterministic)
    rng = seed_everything(recipe.seed)
    ctx = FollowerContext(recipe, scratch, device, registry, _Silent(),  # type: ignore[arg-type]
                          Checkpointer(rundir / "checkpoints", keep=recipe.checkpoint.keep), _Silent(),
                          rng, Console(quiet=True), stop_at)
    if latest is not None:
        ctx.load_resume(latest[1])
    return ctx


def run_rank(recipe_path: Path | None, overrides: list[str], rundir: Path | None, stop_at: int | None,
             resume: bool) -> Path:
    """One rank of ``xfer run --nproc N`` / ``xfer resume --nproc N`` (or of torchrun): join the group;
    rank 0 makes the run directory (unless given) and the cached datasets, ranks above 0 prepare their
    scratch copies; then rank 0 runs as a single-process run would and the others follow in step."""
    from rich.console import Console

    from xfer.data.cache import ensure_dataset
    from xfer.plugins import get_registry
    from xfer.recipe_io import load_recipe, load_run_recipe
    from xfer.registry import load_attr
    from xfer.run import runner

    registry = get_registry()
    if resume and rundir is not None:
        recipe = load_run_recipe(rundir, registry)
    else:
        assert recipe_path is not None
        recipe = load_recipe(recipe_path, registry, overrides)
    setup("cuda" if recipe.device != "cpu" and torch.cuda.is_available() else "cpu")
    try:
        if rundir is None:
            made = [runner.new_rundir(recipe) if is_main() else None]
            if world() > 1:
                dist.broadcast_object_list(made, 0)
            rundir = Path(str(made[0]))
        scratch = rundir.parent / f".{rundir.name}.rank{rank()}"
        if is_main():
            for task in [*recipe.sources, *([recipe.target] if recipe.target else [])]:
                if task.dataset is not None and task.dataset.collect is not None:
                    ensure_dataset(task, recipe.env_for(task), recipe.datadir, registry=registry)
        latest = None
        finished = resume and runner.run_status(rundir).get("status") == "done"
        if not is_main():
            latest = runner.resume_point(rundir, recipe, Console(quiet=True)) if resume else None
            shutil.rmtree(scratch, ignore_errors=True)
            scratch = scratch_dir_from(rundir, scratch) if latest is not None else scratch
            scratch.mkdir(parents=True, exist_ok=True)
        barrier()
        if is_main():
            if resume:
                runner.resume_run(rundir, registry, stop_at=stop_at)
            else:
                runner.start_run(recipe_path, overrides, registry, stop_at=stop_at, rundir=rundir)
        elif not finished:
            spec = registry.method(recipe.method)
            run_fn = load_attr(spec.run, what=f"method {spec.name!r}", extra=spec.extra)
            run_fn(recipe, follower_context(recipe, rundir, scratch, registry, latest, stop_at))
            shutil.rmtree(scratch, ignore_errors=True)
        barrier()
    finally:
        teardown()
    return rundir


def start(recipe_path: Path | None, overrides: list[str], rundir: Path | None, stop_at: int | None,
          nproc: int, resume: bool) -> Path | None:
    """``xfer run/resume --nproc N``: ``nproc`` local processes, or, under torchrun (``WORLD_SIZE`` set),
    this process as its rank. Returns the run directory (None on ranks above 0 under torchrun)."""
    if nproc < 1:
        raise XferError(f"--nproc {nproc}: give 1 or more processes")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        made = run_rank(recipe_path, overrides, rundir, stop_at, resume)
        return made if int(os.environ.get("RANK", "0")) == 0 else None
    if rundir is None:
        from xfer.plugins import get_registry
        from xfer.recipe_io import load_recipe
        from xfer.run.runner import new_rundir

        assert recipe_path is not None
        rundir = new_rundir(load_recipe(recipe_path, get_registry(), overrides))
    import torch.multiprocessing as mp

    try:
        launch(nproc, run_rank, recipe_path, overrides, rundir, stop_at, resume)
    except mp.ProcessRaisedException as err:
        lines = [line for line in str(err).strip().splitlines() if line.strip()]
        raise XferError(f"a process of the {nproc}-process run failed: {lines[-1] if lines else err}",
                        hint=f"see {rundir}/run.json; continue with `xfer resume {rundir}`") from None
    except mp.ProcessExitedException as err:
        raise XferError(f"a process of the {nproc}-process run ended early ({err})",
                        hint=f"continue with `xfer resume {rundir}`") from None
    return rundir
