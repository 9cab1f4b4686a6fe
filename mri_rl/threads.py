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
other programs left free over that interval (at least one). On larger machines torch keeps its
default. A changed thread count changes the last bits of some results (reductions split
differently), so under contention runs are no longer bit-for-bit reproducible: set
``OMP_NUM_THREADS`` for that.

``import mri_rl`` calls :func:`configure_threads` first thing. A thread count the user has set
(``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``) always wins, and ``MRI_RL_THREADS=default`` leaves
everything as torch would have it. ``torch.set_num_threads`` acts on the calling thread's
OpenMP team, so :func:`follow_free_cpus` must be called from the thread that runs torch.
"""

from __future__ import annotations

import math
import os
import platform
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
#: Clock ticks per second of ``/proc/stat`` (USER_HZ).
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
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
    previous: tuple[float, int, int] | None = None  # (time, machine busy ticks, own ticks)
    last_set: int | None = None  # the count this module last left torch with
    counts_used: set[int] = set()  # every count torch had or was given at a look since configure_threads
    decision: dict[str, Any] = {}  # what configure_threads last decided


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
    _FreeCPUs.cpus, _FreeCPUs.counts_used = 0, set()
    if environ.get(OPT_OUT) == OPT_OUT_VALUE:
        record["policy"] = OPT_OUT_VALUE
    elif cpus <= FEW_CPUS and not any(name in environ for name in COUNT_VARIABLES):
        _FreeCPUs.cpus, _FreeCPUs.last_check, _FreeCPUs.previous, _FreeCPUs.last_set = cpus, -float("inf"), None, None
        record["policy"] = "follow_free_cpus"
    _FreeCPUs.decision = record
    return record


def cpu_ticks() -> tuple[int, int] | None:
    """(busy clock ticks of all CPUs, of this process) since boot, from ``/proc/stat`` and
    ``/proc/self/stat`` (None where there is no ``/proc``)."""
    try:
        fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        own = Path("/proc/self/stat").read_text().rpartition(")")[2].split()
    except (OSError, ValueError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return user + nice + system + irq + softirq + steal, int(own[11]) + int(own[12])  # utime, stime


def cpus_used_elsewhere() -> float | None:
    """CPUs other programs kept busy since the last call (busy ticks of the machine less this
    process's), averaged over that interval; None on the first call or without ``/proc``."""
    now, ticks = time.monotonic(), cpu_ticks()
    previous, _FreeCPUs.previous = _FreeCPUs.previous, None if ticks is None else (now, *ticks)
    if ticks is None or previous is None or now <= previous[0]:
        return None
    seconds = now - previous[0]
    busy, own = ticks[0] - previous[1], ticks[1] - previous[2]
    return max(busy - own, 0) / TICKS_PER_SECOND / seconds


def follow_free_cpus(modules: Mapping[str, Any] = sys.modules) -> int | None:
    """Where :func:`configure_threads` turned it on, at most every :data:`CHECK_INTERVAL` seconds:
    set torch's thread count to the CPUs other programs left free since the last look
    (:func:`cpus_used_elsewhere`, rounded), at least one.

    Averaging CPU time over the interval, rather than counting runnable threads at one instant,
    keeps an idle machine's count steady: a program must keep half a CPU busy to take a thread.
    A count the program set itself (``torch.set_num_threads``: one this function did not leave,
    or below the CPUs at the first look) turns it off for good.

    Returns:
        The count now set, or None when it did not decide (off, too soon, no torch, the first
        look, or no ``/proc``).
    """
    torch = modules.get("torch")
    now = time.monotonic()
    if not _FreeCPUs.cpus or torch is None or now - _FreeCPUs.last_check < CHECK_INTERVAL:
        return None
    _FreeCPUs.last_check = now
    current = torch.get_num_threads()
    if current != (_FreeCPUs.cpus if _FreeCPUs.last_set is None else _FreeCPUs.last_set):
        _FreeCPUs.cpus = 0  # the program set its own count (torch.set_num_threads): it wins from now on
        return None
    _FreeCPUs.counts_used.add(current)  # what torch ran with up to this look (the first one decides nothing)
    elsewhere = cpus_used_elsewhere()
    if elsewhere is None:
        return None
    wanted = max(1, _FreeCPUs.cpus - math.floor(elsewhere + 0.5))
    if current != wanted:
        torch.set_num_threads(wanted)
    _FreeCPUs.last_set = wanted
    _FreeCPUs.counts_used.add(wanted)
    return wanted


def thread_report(modules: Mapping[str, Any] = sys.modules) -> dict[str, Any]:
    """How torch's threads were set in this process so far, for a run's files: what
    :func:`configure_threads` decided, ``torch_threads``, the counts torch ran with (those
    :func:`follow_free_cpus` found and set, and the count now; empty without torch), and ``cpu``
    (:func:`cpu_report`).

    The count decides how reductions are split, so training under another count gives other last
    bits: a result is reproducible bit for bit only under one count (``OMP_NUM_THREADS``), and on
    one kind of CPU.
    """
    torch = modules.get("torch")
    counts = _FreeCPUs.counts_used | ({torch.get_num_threads()} if torch is not None else set())
    return {**_FreeCPUs.decision, "torch_threads": sorted(counts), "cpu": cpu_report(modules)}


def cpu_report(modules: Mapping[str, Any] = sys.modules) -> dict[str, Any]:
    """The CPU torch's kernels ran on: ``model`` (``/proc/cpuinfo``'s model name, else the
    platform's processor) and ``torch_capability``, the instruction set torch picked its kernels
    for (e.g. "AVX2", "AVX512"; None without torch). Kernels for another instruction set round
    differently: the same U-Net training, byte-identical data and one thread gave other weights on
    another machine."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        ]
        model = names[0] if names else model
    torch = modules.get("torch")
    capability = torch.backends.cpu.get_cpu_capability() if torch is not None else None
    return {"model": model, "torch_capability": capability}
