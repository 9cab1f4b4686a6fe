"""The thread policy: torch's count follows the free CPUs on small machines, the user's variables
win, the opt-out works, and the count drops to one beside a busy process and comes back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import torch

from mri_rl import threads
from mri_rl.threads import (
    FEW_CPUS,
    OPT_OUT,
    OPT_OUT_VALUE,
    THREAD_PREFIXES,
    available_cpus,
    configure_threads,
    cpu_report,
    cpus_used_elsewhere,
    follow_free_cpus,
    thread_report,
)


class FakeTorch:
    """Records ``set_num_threads`` calls in place of torch."""

    def __init__(self, count: int = 2) -> None:
        self.count, self.calls = count, []
        self.backends = SimpleNamespace(cpu=SimpleNamespace(get_cpu_capability=lambda: "FAKE"))

    def get_num_threads(self) -> int:
        return self.count

    def set_num_threads(self, count: int) -> None:
        self.calls.append(count)
        self.count = count


@pytest.fixture(autouse=True)
def restore_policy():
    """Each test configures its own policy; the session's is put back after."""
    state = threads._FreeCPUs
    saved = (state.cpus, state.last_check, state.previous, state.last_set, state.counts_used, state.decision)
    yield
    state.cpus, state.last_check, state.previous, state.last_set, state.counts_used, state.decision = saved


@pytest.mark.parametrize("cpus", [1, 2])
def test_few_cpus_follow_the_free_cpus_and_the_environment_is_left_alone(cpus):
    environ = {"PATH": "/bin"}
    record = configure_threads(environ, cpus=cpus, modules={})
    assert environ == {"PATH": "/bin"}
    assert record == {"policy": "follow_free_cpus", "cpus": cpus, "user": {}, "torch_loaded_first": False}


def test_larger_machines_keep_torchs_default():
    assert configure_threads({}, cpus=8, modules={})["policy"] == "torch"
    torch = FakeTorch()
    assert follow_free_cpus({"torch": torch}) is None and torch.calls == []


@pytest.mark.parametrize("users", [{"OMP_NUM_THREADS": "2"}, {"MKL_NUM_THREADS": "2", "OMP_WAIT_POLICY": "ACTIVE"}])
def test_the_users_count_wins(users, monkeypatch):
    environ, torch = dict(users), FakeTorch()
    record = configure_threads(environ, cpus=2, modules={"torch": torch})
    assert environ == users and record["policy"] == "torch" and record["user"] == users
    monkeypatch.setattr(threads, "cpus_used_elsewhere", lambda: 1.0)
    assert follow_free_cpus({"torch": torch}) is None and torch.calls == []


def test_the_opt_out_leaves_everything_as_torch_would(monkeypatch):
    environ, torch = {OPT_OUT: OPT_OUT_VALUE}, FakeTorch()
    assert configure_threads(environ, cpus=2, modules={})["policy"] == OPT_OUT_VALUE
    monkeypatch.setattr(threads, "cpus_used_elsewhere", lambda: 1.0)
    assert follow_free_cpus({"torch": torch}) is None and torch.calls == []


def test_the_count_drops_beside_a_busy_program_and_comes_back(monkeypatch):
    configure_threads({}, cpus=2, modules={})
    torch, busy = FakeTorch(), [0.04]
    monkeypatch.setattr(threads, "cpus_used_elsewhere", lambda: busy[0])
    assert follow_free_cpus({"torch": torch}) == 2 and torch.calls == []  # idle (daemons): torch's two threads
    busy[0] = 0.7  # a program that keeps most of a CPU busy
    assert follow_free_cpus({"torch": torch}) is None  # too soon: it looks at most every CHECK_INTERVAL
    threads._FreeCPUs.last_check -= threads.CHECK_INTERVAL
    assert follow_free_cpus({"torch": torch}) == 1 and torch.calls == [1]
    busy[0] = 3.0
    threads._FreeCPUs.last_check -= threads.CHECK_INTERVAL
    assert follow_free_cpus({"torch": torch}) == 1 and torch.calls == [1]  # never below one
    busy[0] = 0.2
    threads._FreeCPUs.last_check -= threads.CHECK_INTERVAL
    assert follow_free_cpus({"torch": torch}) == 2 and torch.calls == [1, 2]


def test_the_report_lists_every_count_torch_ran_with(monkeypatch):
    configure_threads({}, cpus=2, modules={})
    torch, busy = FakeTorch(), [0.0]
    monkeypatch.setattr(threads, "cpus_used_elsewhere", lambda: busy[0])
    assert thread_report({"torch": torch})["torch_threads"] == [2]  # before the first look: torch's own count
    busy[0] = 1.0
    assert follow_free_cpus({"torch": torch}) == 1
    report = thread_report({"torch": torch})
    assert report["policy"] == "follow_free_cpus" and report["torch_threads"] == [1, 2]  # 2 until that look
    configure_threads({}, cpus=2, modules={})
    torch.count = 1  # set by the program before the first look: its count wins, and is reported
    assert follow_free_cpus({"torch": torch}) is None
    assert thread_report({"torch": torch})["torch_threads"] == [1]
    configure_threads({"OMP_NUM_THREADS": "1"}, cpus=2, modules={})  # a new decision starts a new list
    assert thread_report({"torch": FakeTorch(1)}) == {
        "policy": "torch",
        "cpus": 2,
        "user": {"OMP_NUM_THREADS": "1"},
        "torch_loaded_first": False,
        "torch_threads": [1],
        "cpu": {"model": cpu_report()["model"], "torch_capability": "FAKE"},
    }
    assert thread_report({})["torch_threads"] == []


def test_the_cpu_report_names_the_instruction_set_torch_picked_its_kernels_for():
    report = cpu_report()
    assert report["torch_capability"] == torch.backends.cpu.get_cpu_capability()
    assert isinstance(report["model"], str) and report["model"]
    assert cpu_report({})["torch_capability"] is None  # without torch


def test_a_count_the_program_sets_itself_wins(monkeypatch):
    monkeypatch.setattr(threads, "cpus_used_elsewhere", lambda: 0.0)
    configure_threads({}, cpus=2, modules={})
    torch = FakeTorch(count=1)  # e.g. torch.set_num_threads(1) before the first look
    assert follow_free_cpus({"torch": torch}) is None and torch.calls == []
    configure_threads({}, cpus=2, modules={})
    torch = FakeTorch(count=2)
    assert follow_free_cpus({"torch": torch}) == 2
    torch.count = 1  # set by the program between two looks
    threads._FreeCPUs.last_check -= threads.CHECK_INTERVAL
    assert follow_free_cpus({"torch": torch}) is None and torch.calls == []
    threads._FreeCPUs.last_check -= threads.CHECK_INTERVAL
    assert follow_free_cpus({"torch": torch}) is None  # off for good


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads /proc")
def test_a_spinning_process_is_seen_as_cpu_used_elsewhere_and_this_ones_own_work_is_not():
    configure_threads({}, cpus=2, modules={})
    assert cpus_used_elsewhere() is None  # the first look only starts the interval
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:  # this process's own work
        pass
    quiet = cpus_used_elsewhere()
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)
        cpus_used_elsewhere()  # start an interval with the spinner running
        time.sleep(1.0)
        busy = cpus_used_elsewhere()
    finally:
        spinner.kill()
        spinner.wait()
    assert quiet is not None and busy is not None
    assert busy >= 0.5 and busy > quiet  # the spinner's CPU (other jobs may add to both)


def test_import_mri_rl_chooses_the_policy_before_torch_loads():
    environ = {k: v for k, v in os.environ.items() if not k.startswith((*THREAD_PREFIXES, OPT_OUT))}
    code = "import json, sys, mri_rl; print(json.dumps([mri_rl.THREADS, 'torch' in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True).stdout
    record, torch_loaded = json.loads(out)
    assert record["policy"] == ("follow_free_cpus" if available_cpus() <= FEW_CPUS else "torch")
    assert record["torch_loaded_first"] is False and torch_loaded is False
