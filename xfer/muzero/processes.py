"""Worker processes answering ordered requests: the plumbing shared by reanalyse and self-play workers.

:class:`WorkerPool` starts ``n`` spawned processes, each running ``target(index, *args, requests,
replies)``: it reads requests from its own queue in order and puts ``(key, payload, error)`` on the
shared reply queue (``error`` a traceback string or ``None``). The learner's side sends with
:meth:`WorkerPool.send` and waits for a key with :meth:`WorkerPool.receive`, which turns a worker's
traceback into an error and a dead worker into one line with what to do next.
:meth:`WorkerPool.send_weights` gives every worker a network's weights when their version changed; a
worker applies such a message with :func:`load_weights`.

Workers ignore SIGINT from their start (the parent ignores it while it starts them, and an ignored signal
stays ignored through exec and Python's start-up): a Ctrl-C in the terminal reaches the whole process
group, and the run's own process handles it by finishing the current step and writing a checkpoint, which
needs its workers alive.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import queue
import signal
import threading
import traceback
from collections.abc import Callable, Iterator
from typing import Any

from xfer.errors import XferError

_POLL_S = 2.0


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _entry(target: Callable[..., None], index: int, args: tuple[Any, ...], requests: Any,
           replies: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run's process decides when to stop (module doc)
    target(index, *args, requests, replies)


def load_weights(net: Any, weights: dict[str, Any]) -> None:
    """Apply the weights of a :meth:`WorkerPool.send_weights` message to a worker's network copy."""
    import torch

    net.load_state_dict({k: torch.as_tensor(v) for k, v in weights.items()})


def answer(replies: Any, key: Any, work: Callable[[], Any]) -> None:
    """Run ``work`` and reply with its result, or with its traceback (the learner raises it)."""
    try:
        replies.put((key, work(), None))
    except Exception:  # noqa: BLE001 - sent back to the learner, which raises it
        replies.put((key, None, traceback.format_exc()))


class WorkerPool:
    """``n`` processes named ``{name}-{i}``; ``hint`` says what to do when one of them dies."""

    def __init__(self, target: Callable[..., None], args: list[tuple[Any, ...]], name: str,
                 hint: str) -> None:
        context = mp.get_context("spawn")  # no forked torch state: safe with threads and CUDA
        self.hint = hint
        self._requests = [context.Queue() for _ in args]
        self._replies = context.Queue()
        self._procs = [context.Process(target=_entry, daemon=True, name=f"{name}-{i}",
                                       args=(target, i, a, q, self._replies))
                       for i, (a, q) in enumerate(zip(args, self._requests, strict=True))]
        with _sigint_ignored():  # inherited through exec, so a worker ignores it while still importing
            for proc in self._procs:
                proc.start()
        self._arrived: dict[Any, Any] = {}
        self._sent_version: int | None = None

    def __len__(self) -> int:
        return len(self._procs)

    def send(self, index: int, message: tuple[Any, ...]) -> None:
        self._requests[index].put(message)

    def broadcast(self, message: tuple[Any, ...]) -> None:
        for q in self._requests:
            q.put(message)

    def send_weights(self, net: Any, version: int) -> None:
        """``("weights", numpy state dict)`` to every worker, unless ``version`` is the one sent last."""
        if version != self._sent_version:
            weights = {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}
            self.broadcast(("weights", weights))
            self._sent_version = version

    def receive(self, key: Any) -> Any:
        """The payload replied under ``key`` (replies to other keys are kept for later)."""
        while key not in self._arrived:
            try:
                got, payload, error = self._replies.get(timeout=_POLL_S)
            except queue.Empty:
                dead = [p for p in self._procs if not p.is_alive()]
                if dead:
                    raise XferError(f"worker process {dead[0].name} stopped (exit code {dead[0].exitcode})",
                                    hint=self.hint) from None
                continue
            if error is not None:
                raise RuntimeError(f"worker process failed on {got}:\n{error}")
            self._arrived[got] = payload
        return self._arrived.pop(key)

    def close(self) -> None:
        self.broadcast(("stop",))
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
