"""Independent stages side by side, one process each, on a CPU with cores to spare.

On a small CPU a single stage of this project does not keep every core busy: a quick-start
agent trains about 1.3 to 1.45 times slower on one torch thread than on two, so two stages on
one thread each finish sooner than the two one after the other on two. The processes are
spawned (not forked: a forked child of a process whose OpenMP team has run can hang), each
with a fixed thread count, so their results do not depend on what else runs then
(:mod:`mri_rl.threads`). Ray is not needed.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from mri_rl.threads import available_cpus


def threads_per_stage(stages: int, cpus: int | None = None) -> int:
    """Torch threads for each of ``stages`` processes sharing ``cpus`` (default: this process's), at least one."""
    return max(1, (available_cpus() if cpus is None else cpus) // max(stages, 1))


def _use_threads(threads: int) -> None:
    """Initialiser of each process: a fixed torch thread count (which also turns off
    :func:`mri_rl.threads.follow_free_cpus` there)."""
    import torch

    torch.set_num_threads(threads)


def _timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def run_side_by_side(calls: Sequence[Callable[[], Any]], threads: int) -> list[tuple[Any, float]]:
    """Run each picklable call (a module-level function or a ``functools.partial`` of one) in its
    own spawned process with ``threads`` torch threads; wait for all of them.

    Returns:
        (result, seconds) of each call, in the order given.

    Raises:
        The first failed call's exception (in the order given), after every call has stopped.
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(len(calls), mp_context=context, initializer=_use_threads, initargs=(threads,)) as pool:
        futures = [pool.submit(_timed, call) for call in calls]
        errors = [future.exception() for future in futures]
    for error in errors:
        if error is not None:
            raise error
    return [future.result() for future in futures]
