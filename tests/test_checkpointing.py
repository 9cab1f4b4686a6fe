"""Checkpoint files: checksum round trips, damage and non-finite weights refused, and no
code ever runs from a crafted checkpoint, through any loader, whatever torch's default."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from mri_rl.agents import DQN, REINFORCE
from mri_rl.checkpointing import (
    CheckpointError,
    check_safe_torch,
    content_checksum,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from mri_rl.data.synthetic import SyntheticSpec, write_synthetic_dataset
from mri_rl.evaluation.evaluate import load_agent
from mri_rl.files import atomic_write_text
from mri_rl.reconstruct import UnetReconstructor, export_reconstructor, load_reconstructor
from mri_rl.reconstruct.checkpoint import read_reconstructor_record
from mri_rl.reconstruct.lightning import VerifiedCheckpointIO, load_module

#: Set in the subprocess that reruns the payload tests with torch's unsafe default forced.
FORCED = os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD") == "1"


class Payload:
    """Unpickling this creates ``marker``: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return exec, (f"import pathlib; pathlib.Path({str(self.marker)!r}).touch()",)


def write_payload(path: Path, marker: Path, contents: dict[str, Any]) -> Path:
    """A checkpoint with the real ``contents`` and a payload, checksum included (as an
    attacker who knows the format would write it)."""
    crafted = {**contents, "payload": Payload(marker)}
    crafted["checksum"] = content_checksum({k: v for k, v in crafted.items() if k != "payload"})
    torch.save(crafted, path)
    return path


def tiny_unet() -> UnetReconstructor:
    torch.manual_seed(0)
    return UnetReconstructor(chans=4, num_pool_layers=2, challenge="singlecoil", recon_size=(16, 16)).eval()


@pytest.fixture(params=["torch default", "unsafe default (torch < 2.6)"])
def torch_default(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run with torch's own default, and with ``torch.load`` defaulting to
    ``weights_only=False`` as torch < 2.6 did: only an explicit ``weights_only=True`` is safe."""
    if request.param.startswith("unsafe"):
        original = torch.load

        def unsafe_by_default(*args: Any, weights_only: bool | None = None, **kwargs: Any) -> Any:
            return original(*args, weights_only=False if weights_only is None else weights_only, **kwargs)

        monkeypatch.setattr(torch, "load", unsafe_by_default)
    return request.param


# ---------------------------------------------------------------------- round trip
def test_a_saved_checkpoint_reads_back_equal(tmp_path):
    contents = {"format": "x", "state_dict": {"w": torch.arange(6.0).reshape(2, 3)}, "counts": [1, 2.5, "a", None]}
    path = save_checkpoint(contents, tmp_path / "c.pt")
    loaded = read_checkpoint(path, ("state_dict",))
    assert torch.equal(loaded["state_dict"]["w"], contents["state_dict"]["w"])
    assert loaded["counts"] == [1, 2.5, "a", None] and loaded["checksum"] == content_checksum(contents)
    assert load_checkpoint(path, "x", ("state_dict",))["format"] == "x"
    with pytest.raises(CheckpointError, match="format 'x'; expected 'y'"):
        load_checkpoint(path, "y", ())


def test_the_checksum_sees_every_value_and_key():
    base = {"state_dict": {"w": torch.zeros(4)}, "n": 1}
    changes = [
        {"state_dict": {"w": torch.tensor([0.0, 0.0, 0.0, 1e-30])}, "n": 1},
        {"state_dict": {"w": torch.zeros(4, dtype=torch.float64)}, "n": 1},
        {"state_dict": {"w": torch.zeros(2, 2)}, "n": 1},
        {"state_dict": {"v": torch.zeros(4)}, "n": 1},
        {"state_dict": {"w": torch.zeros(4)}, "n": 2},
        {"state_dict": {"w": torch.zeros(4)}, "n": "1"},
    ]
    checksums = {content_checksum(base)} | {content_checksum(changed) for changed in changes}
    assert len(checksums) == len(changes) + 1


def test_overwritten_weight_bytes_are_caught(tmp_path):
    """32 bytes overwritten inside the weights still unpickle; the checksum refuses them."""
    weights = torch.full((256,), 0.125)
    path = save_checkpoint({"state_dict": {"w": weights}}, tmp_path / "c.pt")
    raw = bytearray(path.read_bytes())
    start = raw.index(weights.numpy().tobytes()[:64]) + 100
    raw[start : start + 32] = os.urandom(32)
    path.write_bytes(bytes(raw))
    assert not torch.equal(torch.load(path, weights_only=True)["state_dict"]["w"], weights)  # it does unpickle
    with pytest.raises(CheckpointError, match=r"c.pt is damaged: its contents do not match its checksum"):
        read_checkpoint(path, ("state_dict",))


@pytest.mark.parametrize("cut", [0.1, 0.5, 0.99])
def test_truncated_checkpoints_are_refused(tmp_path, cut):
    path = save_checkpoint({"state_dict": {"w": torch.ones(1000)}}, tmp_path / "c.pt")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(CheckpointError, match="c.pt cannot be loaded safely"):
        read_checkpoint(path, ("state_dict",))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_weights_are_refused_and_named(tmp_path, bad):
    state = {"layer.weight": torch.ones(3), "layer.bias": torch.tensor([0.0, bad])}
    path = save_checkpoint({"state_dict": state, "bounds": torch.tensor([-np.inf, np.inf])}, tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match=r"NaN or Inf values \(at state_dict.layer.bias\)"):
        read_checkpoint(path, ("state_dict",))
    assert read_checkpoint(path, ())["bounds"].isinf().all()  # infinities outside the weights are values


def test_a_reconstructor_with_nan_weights_is_refused(tmp_path):
    model = tiny_unet()
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    path = export_reconstructor(model, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match="nan.pt holds NaN or Inf values .*the weights diverged"):
        load_reconstructor(path)


def test_an_agent_with_wrong_contents_is_one_clear_error(tmp_path):
    path = DQN(gym.make("CartPole-v1"), net_arch=(8,), seed=0).save(tmp_path / "dqn.pt")
    assert DQN.load(path).observation_space.high[1] == np.inf  # a Box of infinite bounds is fine
    checkpoint = torch.load(path, weights_only=True)
    damages: dict[str, Callable[[dict[str, Any]], None]] = {
        "missing counters": lambda c: c.pop("counters"),
        "settings as a list": lambda c: c.update(settings=[1, 2]),
        "weights of another shape": lambda c: c["state"]["q_network"].update(
            {name: torch.zeros(1) for name in c["state"]["q_network"]}
        ),
        "a space of unknown type": lambda c: c.update(action_space={"type": "Graph"}),
    }
    for name, damage in damages.items():
        changed = torch.load(path, weights_only=True)
        damage(changed)
        damaged = save_checkpoint(changed, tmp_path / f"{name}.pt")
        with pytest.raises(CheckpointError, match=f"{name}.pt"):
            DQN.load(damaged)
    assert checkpoint["algorithm"] == "dqn"


@pytest.mark.parametrize("version, safe", [("2.4.1", False), ("2.9.0+cu128", False), ("2.10.0", True), ("3.0", True)])
def test_torch_with_an_unsafe_unpickler_is_refused(version, safe):
    if safe:
        check_safe_torch(version)
    else:
        with pytest.raises(CheckpointError, match=f"torch {re.escape(version)} cannot read checkpoints safely"):
            check_safe_torch(version)
    check_safe_torch()  # the installed torch meets the declared floor


# ----------------------------------------------------------- atomic writes, modes
@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_atomic_outputs_follow_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        written = [
            atomic_write_text(tmp_path / "a.txt", "x"),
            save_checkpoint({"w": torch.zeros(1)}, tmp_path / "c.pt"),
            *write_synthetic_dataset(tmp_path / "data", SyntheticSpec(num_slices=1, size=8), {"train": 1}),
        ]
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(previous)
    expected = plain.stat().st_mode & 0o777
    assert expected == 0o666 & ~umask
    assert {path.name: path.stat().st_mode & 0o777 for path in written} == {path.name: expected for path in written}


def test_a_full_disk_keeps_the_old_checkpoint_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = save_checkpoint({"w": torch.zeros(3)}, tmp_path / "c.pt")
    before = path.read_bytes()

    def disk_full(obj: Any, f: Any) -> None:
        Path(f).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(f))

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError) as error:
        save_checkpoint({"w": torch.ones(3)}, path)
    assert error.value.errno == errno.ENOSPC
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]


# -------------------------------------------------------- no code from a checkpoint
def test_the_payload_runs_when_loaded_unsafely(tmp_path):
    """The crafted file is a real attack: an unsafe load creates the marker."""
    marker = tmp_path / "pwned"
    path = write_payload(tmp_path / "c.pt", marker, {"format": "mri_rl.agent"})
    if FORCED:  # the rerun's torch is unsafe by default, as torch < 2.6 was
        with pytest.warns(UserWarning, match="TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"):
            torch.load(path)
    else:
        torch.load(path, weights_only=False)
    assert marker.exists()


def _loaders(tmp_path: Path) -> dict[str, tuple[Callable[[Path], Any], dict[str, Any]]]:
    """Every loader of the package, with the real contents of a checkpoint it reads."""
    agent = DQN(gym.make("CartPole-v1"), net_arch=(8,), seed=0).checkpoint()
    reinforce = REINFORCE(gym.make("CartPole-v1"), net_arch=(8,), seed=0).checkpoint()
    export = torch.load(export_reconstructor(tiny_unet(), tmp_path / "unet.pt"), weights_only=True)
    lightning = {"state_dict": {}, "hyper_parameters": {}, "optimizer_states": []}
    return {
        "read_checkpoint": (lambda p: read_checkpoint(p, ("state",)), agent),
        "DQN.load": (DQN.load, agent),
        "REINFORCE.load": (REINFORCE.load, reinforce),
        "evaluate.load_agent": (load_agent, agent),
        "load_reconstructor": (load_reconstructor, export),
        "read_reconstructor_record": (read_reconstructor_record, export),
        "VerifiedCheckpointIO.load_checkpoint": (VerifiedCheckpointIO().load_checkpoint, lightning),
        "lightning.load_module": (load_module, lightning),
    }


def test_no_loader_runs_a_crafted_checkpoint(tmp_path, torch_default):
    for name, (load, contents) in _loaders(tmp_path).items():
        marker = tmp_path / f"pwned by {name}"
        path = write_payload(tmp_path / f"{name}.pt", marker, contents)
        with pytest.raises(CheckpointError, match="cannot be loaded safely"):
            load(path)
        assert not marker.exists(), f"{name} ran the payload"


@pytest.mark.skipif(FORCED, reason="already the rerun")
def test_no_loader_runs_a_crafted_checkpoint_with_torch_forced_unsafe():
    """Rerun the payload tests (Lightning resume included) in a process where
    ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` makes torch's default unsafe."""
    environment = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1", "OMP_NUM_THREADS": "1"}
    here, training = Path(__file__), Path(__file__).parent / "reconstruct" / "test_training.py"
    tests = [
        f"{here}::test_no_loader_runs_a_crafted_checkpoint",  # under both torch defaults
        f"{here}::test_the_payload_runs_when_loaded_unsafely",
        f"{training}::test_resume_refuses_a_crafted_last_checkpoint",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "4 passed" in result.stdout
