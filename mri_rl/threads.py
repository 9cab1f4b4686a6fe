"""The default torch thread count: follow the CPUs other programs leave free.

torch's CPU kernels run on a libgomp (OpenMP) team whose threads spin-wait at each barrier.
When another program holds one of only two cores, the team's threads wait on a descheduled
peer: on a 2-core CPU a quick-start U-Net epoch then took about 60x as long. One thread
avoids that but is about 40% slower on an idle machine, and ``OMP_WAIT_POLICY=PASSIVE`` was
slower than one thread both idle and busy (``scripts/bench_contention.py``). So where the
process may use at most :data:`FEW_CPUS` CPUs and the user set no thread count,
:func:`configure_threads` turns on :func:`follow_free_cpus`: the project's loops (the
reconstructor's training batches, the agents' env steps, evaluation and LBCS steps) call it,
and at most every :data:`CHECK_INTERVAL` seconds it sets torch's thread count to the CPUs that
other programs' runnable threads leave free (at least one). On larger machines torch keeps its
default.

``import mri_rl`` calls :func:`configure_threads` first thing. A thread count the user has set
(``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``) always wins, and ``MRI_RL_THREADS=default`` leaves
everything as torch would have it. ``torch.set_num_threads`` acts on the calling thread's
OpenMP team, so :func:`follow_free_cpus` must be called from the thread that runs torch.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

#: The opt-out variable and the value that leaves torch's own defaults.
OPT_OUT, OPT_OUT_VALUE = "MRI_RL_THREADS", "default"
#: Up to this many available CPUs, torch's thread count follows the free CPUs.
FEW_CPUS = 2
#: Seconds between two looks at the free CPUs.
CHECK_INTERVAL = 0.5
#: Variables that set the thread count (torch reads both); prefixes of the thread runtimes' variables.
COUNT_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
THREAD_PREFIXES = ("OMP_", "GOMP_", "KMP_", "MKL_")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class _FreeCPUs:
    """Whether :func:`follow_free_cpus` is on, over how many CPUs, and when it last looked."""

    cpus = 0
    last_check = -float("inf")


def configure_threads(
    environ: MutableMapping[str, str] = os.environ,
    cpus: int | None = None,
    modules: Mapping[str, Any] = sys.modules,
) -> dict[str, Any]:
    """Turn on :func:`follow_free_cpus` on at most :data:`FEW_CPUS` CPUs, unless a thread count
    (:data:`COUNT_VARIABLES`) is set in ``environ`` or ``MRI_RL_THREADS=default``.

    Args:
        environ: the environment to read (nothing is written to it).
        cpus: available CPUs (default: :func:`available_cpus`).
        modules: the loaded modules (whether torch was loaded first is recorded).

    Returns:
        What was decided: ``policy`` ("follow_free_cpus", "torch" on a larger machine or under the
        user's count, or "default" when opted out), ``cpus``, ``user`` (thread variables the user
        had set, left as they were) and ``torch_loaded_first``.
    """
    cpus = available_cpus() if cpus is None else cpus
    record: dict[str, Any] = {
        "policy": "torch",
        "cpus": cpus,
        "user": {name: value for name, value in environ.items() if name.startswith(THREAD_PREFIXES)},
        "torch_loaded_first": "torch" in modules,
    }
    _FreeCPUs.cpus = 0
    if environ.get(OPT_OUT) == OPT_OUT_VALUE:
        return {**record, "policy": OPT_OUT_VALUE}
    if cpus <= FEW_CPUS and not any(name in environ for name in COUNT_VARIABLES):
        _FreeCPUs.cpus, _FreeCPUs.last_check = cpus, -float("inf")
        record["policy"] = "follow_free_cpus"
    return record


def runnable_elsewhere() -> int | None:
    """Runnable threads of other processes now: the runnable count of ``/proc/loadavg`` less this
    process's runnable threads, the least of three looks (None where there is no ``/proc``)."""
    looks = []
    try:
        for _ in range(3):
            runnable = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
            own = sum(_is_running(stat) for stat in Path("/proc/self/task").glob("*/stat"))
            looks.append(runnable - own)
    except (OSError, ValueError, IndexError):
        return None
    return max(min(looks), 0)


def _is_running(stat: Path) -> bool:
    """Whether the thread of ``/proc/self/task/N/stat`` is runnable (state R, after its name)."""
    try:
        return stat.read_text().rpartition(")")[2].split()[0] == "R"
    except (OSError, IndexError):
        return False  # the thread ended meanwhile


def follow_free_cpus(modules: Mapping[str, Any] = sys.modules) -> int | None:
    """Where :func:`configure_threads` turned it on, at most every :data:`CHECK_INTERVAL` seconds:
    set torch's thread count to the CPUs other programs leave free, at least one.

    Returns:
        The count now set, or None when it did not look (off, too soon, no torch or no ``/proc``).
    """
    torch = modules.get("torch")
    now = time.monotonic()
    if not _FreeCPUs.cpus or torch is None or now - _FreeCPUs.last_check < CHECK_INTERVAL:
        return None
    _FreeCPUs.last_check = now
    elsewhere = runnable_elsewhere()
    if elsewhere is None:
        return None
    wanted = max(1, _FreeCPUs.cpus - elsewhere)
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return wanted
