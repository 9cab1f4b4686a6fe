"""``Workers``' cluster address: malformed ones are refused when given, and one where nothing listens
is one clear error within seconds, not Ray's minutes of waiting; a local Ray instance declares the
GPUs the machine has."""

from __future__ import annotations

import os
import socket
import time

import pytest
import torch

from mri_rl import distributed
from mri_rl.cli import main
from mri_rl.distributed import CONNECT_TIMEOUT_S, Workers, check_reachable, cluster_endpoint, run_tasks, start_ray


@pytest.mark.parametrize(
    ("address", "endpoint"),
    [
        ("auto", None),
        ("ray://head:10001", ("head", 10001)),
        ("10.0.0.1:6379", ("10.0.0.1", 6379)),
        ("[::1]:6379", ("::1", 6379)),
    ],
)
def test_cluster_addresses_name_a_host_and_port(address, endpoint):
    assert cluster_endpoint(address) == endpoint
    assert Workers(count=2, address=address).address == address


@pytest.mark.parametrize("address", ["", " ", "head", "head:", "ray://:10001", "head:port", "head:0", "head:70000"])
def test_a_malformed_address_is_refused_naming_it(address):
    with pytest.raises(ValueError, match="expected a Ray cluster address") as error:
        Workers(count=2, address=address)
    assert repr(address) in str(error.value)


def free_port() -> int:
    """A port that nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_address_that_accepts_connections_passes_and_one_that_does_not_is_refused():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_reachable(f"127.0.0.1:{server.getsockname()[1]}")
    port = free_port()
    with pytest.raises(ValueError, match=f"cannot reach the Ray cluster at '127.0.0.1:{port}'"):
        check_reachable(f"127.0.0.1:{port}")


def test_ray_is_not_started_for_a_cluster_that_is_not_there(capsys, tmp_path):
    ray = pytest.importorskip("ray")
    port = free_port()
    start = time.perf_counter()
    with pytest.raises(ValueError, match="ray start --head"):
        start_ray(Workers(count=2, address=f"ray://127.0.0.1:{port}"))
    assert time.perf_counter() - start < 2 * CONNECT_TIMEOUT_S and not ray.is_initialized()
    # through the CLI: one usage line, before any training
    args = ["train", "--agent", "dqn", "--env", "CartPole-v1", "--total-steps", "10", "--out", str(tmp_path / "run")]
    assert main([*args, "--address", f"127.0.0.1:{port}", "--no-progress"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and f"127.0.0.1:{port}" in error[0]
    assert main([*args, "--address", "head-without-port", "--no-progress"]) == 2
    assert "'head-without-port'" in capsys.readouterr().err


def test_a_task_whose_worker_dies_is_run_again(tmp_path):
    """The retry that sharded evaluation relies on: each task's first worker exits mid-task (as a
    killed or out-of-memory process would), and Ray runs the task again on another."""
    pytest.importorskip("ray")

    def double_after_dying_once(marker: str, value: int) -> int:  # pickled by value: Ray cannot import tests
        if not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        return 2 * value

    arguments = [(str(tmp_path / f"died{i}"), i) for i in range(3)]
    assert run_tasks(double_after_dying_once, arguments, Workers(count=2)) == [0, 2, 4]
    assert all(os.path.exists(marker) for marker, _ in arguments)  # every task's first run died


class RecordingRay:
    """Stands for Ray in :func:`start_ray`: records ``init``'s arguments."""

    def __init__(self) -> None:
        self.inits: list[dict] = []

    def is_initialized(self) -> bool:
        return False

    def init(self, **options) -> None:
        self.inits.append(options)


@pytest.mark.parametrize(("gpus", "per_worker", "count"), [(1, 0.5, 4), (2, 1, 3), (1, 0, 2), (0, 0, 2)])
def test_a_local_ray_declares_the_gpus_the_machine_has(monkeypatch, gpus, per_worker, count):
    """Not ``per_worker × count`` of them: Ray would hand tasks GPUs that do not exist (it did: two
    tasks with ``gpus_per_worker`` 1 on a machine without a GPU ran, given CUDA devices '0' and '1')."""
    ray = RecordingRay()
    monkeypatch.setattr(distributed, "import_ray", lambda: ray)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    assert start_ray(Workers(count=count, gpus_per_worker=per_worker))
    assert [(options["num_cpus"], options["num_gpus"]) for options in ray.inits] == [(count, gpus)]


@pytest.mark.parametrize(("gpus", "per_worker", "needed"), [(0, 0.5, 1), (0, 1, 1), (1, 2, 2)])
def test_a_local_ray_without_the_gpus_a_task_needs_is_refused(monkeypatch, gpus, per_worker, needed):
    ray = RecordingRay()
    monkeypatch.setattr(distributed, "import_ray", lambda: ray)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    message = f"gpus_per_worker {per_worker:g}: each task needs {needed} GPU\\(s\\) and this machine has {gpus}"
    with pytest.raises(ValueError, match=message):
        start_ray(Workers(count=2, gpus_per_worker=per_worker))
    assert ray.inits == []
