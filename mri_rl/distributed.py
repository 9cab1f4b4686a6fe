"""More than one process or machine: independent tasks on Ray (the ``distributed`` extra).

One seam, :func:`run_tasks`: call a module-level function on each of a list of arguments,
in this process (``Workers()``, the default: no Ray needed) or as Ray tasks, at most
``Workers.count`` at a time, on a local Ray instance started for the call or on a running
cluster (``address``). Each task gets one CPU, so Ray gives each worker one torch thread
(it sets ``OMP_NUM_THREADS`` to the task's CPUs), and ``gpus_per_worker`` of a GPU. A task
whose worker dies (killed, out of memory) is retried by Ray on another worker; tasks
must therefore be idempotent: write their output atomically and skip what is done.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from mri_rl.checks import check_int, check_number

Result = TypeVar("Result")
INSTALL_HINT = "Ray is not installed: pip install -e '.[distributed]' (or pip install 'ray>=2.9')"
#: Retries of a task whose worker process died (Ray retries only on system failures, not
#: on exceptions the task raises: those stop the run with their own message).
TASK_RETRIES = 3
#: Seconds to wait for a Ray cluster's address to accept a connection.
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Workers:
    """Where tasks run.

    Attributes:
        count: tasks in flight at once; 1 without ``address`` runs them in this process.
        address: a running Ray cluster (``ray://host:10001`` or ``host:6379``; "auto": the
            one this machine belongs to); None starts a local Ray instance of ``count`` CPUs and
            this machine's GPUs.
        gpus_per_worker: share of a GPU each task holds (e.g. 0.5: two tasks per GPU).
    """

    count: int = 1
    address: str | None = None
    gpus_per_worker: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "count", check_int("workers", self.count))
        gpus = check_number("gpus_per_worker", self.gpus_per_worker, 0)
        if not 0 <= gpus <= 1 and not float(gpus).is_integer():
            raise ValueError(f"gpus_per_worker: expected a share in [0, 1] or a whole number of GPUs, got {gpus}")
        object.__setattr__(self, "gpus_per_worker", gpus)
        if self.address is not None:
            cluster_endpoint(self.address)  # raises on a malformed address

    @property
    def uses_ray(self) -> bool:
        return self.count > 1 or self.address is not None


def cluster_endpoint(address: str) -> tuple[str, int] | None:
    """(host, port) of a Ray cluster ``address`` (``host:port`` or ``ray://host:port``); None for "auto".

    Raises:
        ValueError: another form, naming the address and the forms expected.
    """
    if address == "auto":
        return None
    host, _, port = str(address).removeprefix("ray://").rpartition(":")
    if not host.strip() or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"address: expected a Ray cluster address ray://HOST:PORT, HOST:PORT or auto, got {address!r}")
    return host.strip("[]"), int(port)  # [::1]:6379: an IPv6 host in brackets


def check_reachable(address: str) -> None:
    """Raise ValueError unless something accepts connections at ``address`` within
    :data:`CONNECT_TIMEOUT_S` ("auto" is left to Ray). Ray itself waits minutes for a cluster
    that is not there, printing only warnings."""
    endpoint = cluster_endpoint(address)
    if endpoint is None:
        return
    try:
        socket.create_connection(endpoint, timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise ValueError(
            f"cannot reach the Ray cluster at {address!r}: nothing accepts connections on "
            f"{endpoint[0]}:{endpoint[1]} within {CONNECT_TIMEOUT_S:g} s ({error}); start one there with "
            "`ray start --head`, or leave out --address for a local Ray instance"
        ) from None


def import_ray() -> Any:
    """The ``ray`` module.

    Raises:
        ValueError: Ray is not installed (naming the extra that installs it).
    """
    try:
        import ray
    except ImportError:
        raise ValueError(INSTALL_HINT) from None
    return ray


def local_gpus(workers: Workers) -> int:
    """The GPUs a local Ray instance declares: this machine's (``torch.cuda.device_count()``), so
    that Ray runs at once only the tasks they can hold and gives each a GPU that exists.

    Raises:
        ValueError: ``gpus_per_worker`` needs more GPUs than the machine has (Ray would wait forever).
    """
    import torch

    available = torch.cuda.device_count()
    if math.ceil(workers.gpus_per_worker) > available:
        raise ValueError(
            f"gpus_per_worker {workers.gpus_per_worker:g}: each task needs {math.ceil(workers.gpus_per_worker)} "
            f"GPU(s) and this machine has {available} that torch can use (torch.cuda.device_count())"
        )
    return available


def start_ray(workers: Workers) -> bool:
    """Initialise Ray for ``workers`` unless this process already runs it; whether it started it.

    Raises:
        ValueError: Ray is not installed, the cluster at ``address`` cannot be reached, or a local
            instance would lack the GPUs a task needs (:func:`local_gpus`).
    """
    ray = import_ray()
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "configure_logging": False, "log_to_driver": False}
    try:
        if workers.address is None:
            ray.init(num_cpus=workers.count, num_gpus=local_gpus(workers), **options)
        else:
            check_reachable(workers.address)
            ray.init(address=workers.address, **options)
    except ConnectionError as error:
        raise ValueError(f"cannot reach the Ray cluster at {workers.address!r}: {error}") from None
    return True


def ray_results(refs: Any) -> Any:
    """``ray.get(refs)``, raising a failed task's or method's own exception as itself.

    Raises:
        The remote exception (e.g. a ValueError naming a bad file), not Ray's wrapper of it.
    """
    ray = import_ray()
    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as error:
        cause = getattr(error, "cause", None)
        raise (cause if isinstance(cause, Exception) else error) from None


@contextmanager
def ray_instance(workers: Workers) -> Iterator[Any]:
    """Ray, initialised for ``workers`` (:func:`start_ray`) and shut down after if this call started it."""
    started = start_ray(workers)
    ray = import_ray()
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def run_tasks(
    function: Callable[..., Result],
    arguments: Sequence[tuple[Any, ...]],
    workers: Workers,
    on_done: Callable[[int], None] | None = None,
) -> list[Result]:
    """``[function(*a) for a in arguments]``, in this process or as Ray tasks (see :class:`Workers`).

    Args:
        function: a module-level function (Ray workers import it by name).
        arguments: one tuple of positional arguments per task; picklable.
        workers: where the tasks run.
        on_done: called with a task's index as it finishes (for progress bars).

    Returns:
        The results, in the order of ``arguments``.

    Raises:
        Whatever a task raises (the first one that fails), as itself.
    """
    if not workers.uses_ray:
        results = []
        for index, args in enumerate(arguments):
            results.append(function(*args))
            if on_done is not None:
                on_done(index)
        return results
    with ray_instance(workers) as ray:
        remote = ray.remote(num_cpus=1, num_gpus=workers.gpus_per_worker, max_retries=TASK_RETRIES)(function)
        results_by_index: dict[int, Any] = {}
        pending: dict[Any, int] = {}
        queue = list(enumerate(arguments))
        while queue or pending:
            while queue and len(pending) < workers.count:
                index, args = queue.pop(0)
                pending[remote.remote(*args)] = index
            (done,), _ = ray.wait(list(pending), num_returns=1)
            index = pending.pop(done)
            try:
                results_by_index[index] = ray_results(done)
            except Exception:
                for ref in pending:
                    ray.cancel(ref)
                raise
            if on_done is not None:
                on_done(index)
        return [results_by_index[index] for index in range(len(arguments))]


class ActorGroup:
    """Instances of a class, one per argument tuple, called together: plain objects in this
    process (``Workers()``), or Ray actors (one CPU, ``gpus_per_worker`` each).

    Use as a context manager; leaving it ends the actors (and Ray, if it started it).
    """

    def __init__(self, cls: type, arguments: Sequence[tuple[Any, ...]], workers: Workers) -> None:
        self.workers = workers
        self.started_ray = workers.uses_ray and start_ray(workers)
        if workers.uses_ray:
            remote = import_ray().remote(num_cpus=1, num_gpus=workers.gpus_per_worker)(cls)
            self.members = [remote.remote(*args) for args in arguments]
        else:
            self.members = [cls(*args) for args in arguments]

    def call(self, method: str, *args: Any) -> list[Any]:
        """``member.method(*args)`` of every member (at once on Ray), results in member order."""
        if not self.workers.uses_ray:
            return [getattr(member, method)(*args) for member in self.members]
        return ray_results([getattr(member, method).remote(*args) for member in self.members])

    def __enter__(self) -> ActorGroup:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self.workers.uses_ray:
            ray = import_ray()
            for member in self.members:
                ray.kill(member)
            if self.started_ray:
                ray.shutdown()
        self.members = []


__all__ = [
    "ActorGroup",
    "INSTALL_HINT",
    "Workers",
    "import_ray",
    "ray_instance",
    "ray_results",
    "run_tasks",
    "start_ray",
]
