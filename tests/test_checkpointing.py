"""Checkpoint files: checksum round trips, damage and non-finite weights refused, and no
code ever runs from a crafted checkpoint, through any loader, whatever torch's default."""

from __future__ import annotations

import errno
import math
import os
import re
import subprocess
import sys
import warnings
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
from mri_rl.evaluation.policy_specs import load_agent
from mri_rl.files import atomic_write_text
from mri_rl.provenance import checkpoint_fingerprint, make_record
from mri_rl.reconstruct import UnetReconstructor, export_reconstructor, load_reconstructor
from mri_rl.reconstruct.checkpoint import read_reconstructor_record
from mri_rl.reconstruct.lightning import ReconstructionModule, VerifiedCheckpointIO, load_module
from mri_rl.task import DEFAULT_TASK

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


def test_equal_contents_saved_anywhere_are_equal_bytes(tmp_path):
    # The file's hash is the reconstructor's fingerprint in every record: two saves of the same
    # weights (another run, another folder) must not differ by the temporary file's random name.
    contents = {"format": "x", "state_dict": {"w": torch.arange(6.0)}}
    first = save_checkpoint(contents, tmp_path / "a" / "model.pt")
    second = save_checkpoint(contents, tmp_path / "b" / "other.pt")
    assert first.read_bytes() == second.read_bytes()
    assert checkpoint_fingerprint(first) == checkpoint_fingerprint(second)
    changed = save_checkpoint({**contents, "state_dict": {"w": torch.arange(6.0) + 1}}, tmp_path / "c.pt")
    assert checkpoint_fingerprint(changed) != checkpoint_fingerprint(first)


def test_an_agent_loaded_and_saved_again_is_the_same_bytes(tmp_path):
    # What save_checkpoint promises: a checkpoint read back saves to the bytes it was read from.
    # Merely equal contents do not (a view saves its whole storage), as its docstring says.
    for agent_class in (DQN, REINFORCE):
        agent = agent_class(gym.make("CartPole-v1"), seed=0, net_arch=(8,))
        agent.learn(64, progress_bar=False)
        first = agent.save(tmp_path / f"{agent_class.__name__}.pt", resumable=True)
        again = agent_class.load(first, gym.make("CartPole-v1")).save(tmp_path / "again.pt", resumable=True)
        assert again.read_bytes() == first.read_bytes()
    view = save_checkpoint({"w": torch.arange(100.0)[:2]}, tmp_path / "view.pt")
    copy = save_checkpoint({"w": torch.arange(2.0)}, tmp_path / "copy.pt")
    assert view.read_bytes() != copy.read_bytes()


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


@pytest.mark.parametrize(
    "content, words", [(b"", "it is empty"), (b'{"record": 1}', "it is not a torch.save zip archive")]
)
def test_an_empty_or_foreign_file_is_named_without_torchs_weights_only_advice(tmp_path, content, words):
    path = tmp_path / "c.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="c.pt cannot be loaded safely: " + words) as caught:
        read_checkpoint(path, ("state_dict",))
    assert "weights_only" not in str(caught.value)


def test_a_folder_given_as_a_checkpoint_is_named_a_folder(tmp_path):
    """``--reconstructor runs/NAME`` (the run folder, not its reconstructor.pt) exists: not 'does not exist'."""
    with pytest.raises(CheckpointError, match=r"checkpoint .* is a folder; expected a checkpoint file"):
        read_checkpoint(tmp_path, ("state_dict",))


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


# ------------------------------------------- wrong contents under a valid checksum
Damage = Callable[[dict[str, Any]], None]


def _parent(checkpoint: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The mapping holding the entry at ``keys`` (nested)."""
    for key in keys[:-1]:
        checkpoint = checkpoint[key]
    return checkpoint


def retype(*keys: str, change: Callable[[Any], Any]) -> Damage:
    """Replace the entry at ``keys`` (nested) by ``change`` of it."""

    def damage(checkpoint: dict[str, Any]) -> None:
        parent = _parent(checkpoint, keys)
        parent[keys[-1]] = change(parent[keys[-1]])

    return damage


def put(*keys: str, value: Any) -> Damage:
    """Set the entry at ``keys`` (nested; a new one too) to ``value``."""

    def damage(checkpoint: dict[str, Any]) -> None:
        _parent(checkpoint, keys)[keys[-1]] = value

    return damage


def drop(*keys: str) -> Damage:
    """Delete the entry at ``keys`` (nested)."""

    def damage(checkpoint: dict[str, Any]) -> None:
        del _parent(checkpoint, keys)[keys[-1]]

    return damage


def resigned(source: Path, damage: Damage, path: Path) -> Path:
    """A copy of ``source`` with ``damage`` done and its checksum recomputed with
    :func:`content_checksum`: wrong contents that pass the checksum, as a crafted file would."""
    contents = torch.load(source, weights_only=True)
    damage(contents)
    contents["checksum"] = content_checksum(contents)
    torch.save(contents, path)
    return path


def assert_refused(load: Callable[[Path], Any], path: Path, entry: str, problem: str | None) -> None:
    """``load(path)`` raises one CheckpointError whose message is exactly the one naming the file and
    ``entry`` with ``problem`` (None: the entry is missing); ``...`` in ``problem`` stands for any text
    (a library's own words)."""
    with pytest.raises(CheckpointError) as error:
        load(path)
    if problem is None:
        expected = re.escape(f"checkpoint {path} has no entry '{entry}'")
    else:
        expected = re.escape(f"checkpoint {path}: entry '{entry}' {problem}").replace(r"\.\.\.", ".*")
    assert re.fullmatch(expected, str(error.value)), str(error.value)


#: One damage: (name, damage, the entry named, the problem stated; None: "has no entry").
Row = tuple[str, Damage, str, str | None]


def tensor(dtype: str, shape: str, model: str, expected: str = "torch.float32") -> str:
    """The problem of a weight of another dtype or shape than ``model``'s."""
    return f"does not fit the {model}: is a tensor torch.{dtype} {shape}; the model has {expected} {shape}"


RECORD = "is of type {}, not a record (a mapping of ['mri_rl_version', 'task', 'data', 'settings'])"
COUNT = "is {}; expected an integer >= 0"
Q_WEIGHT = ("state", "q_network", "body.0.weight")
Q_ENTRY = "state.q_network.body.0.weight"
#: Agent checkpoints (a DQN with one hidden layer of 8 on CartPole) with wrong contents.
AGENT_DAMAGES: list[Row] = [
    ("record 3", put("record", value=3), "record", RECORD.format("int")),
    ("record 'x'", put("record", value="x"), "record", RECORD.format("str")),
    ("record []", put("record", value=[]), "record", RECORD.format("list")),
    ("record no version", put("record", value={"task": {}}), "record.mri_rl_version", "is None, not a version string"),
    (
        "record of a bad task",
        put("record", value={"mri_rl_version": "0", "task": {"budget": 0}}),
        "record.task",
        "is no task: task budget must be an integer >= 1, got 0",
    ),
    (
        "record data no fingerprint",
        put("record", value={"mri_rl_version": "0", "data": {"train": 3}}),
        "record.data.train",
        "is of type int, not a data fingerprint",
    ),
    ("int64 weights", retype(*Q_WEIGHT, change=lambda t: t.long()), Q_ENTRY, tensor("int64", "(8, 4)", "QNetwork")),
    ("bool weights", retype(*Q_WEIGHT, change=lambda t: t.bool()), Q_ENTRY, tensor("bool", "(8, 4)", "QNetwork")),
    (
        "complex weights",
        retype(*Q_WEIGHT, change=lambda t: t.to(torch.complex64)),
        Q_ENTRY,
        tensor("complex64", "(8, 4)", "QNetwork"),
    ),
    (
        "float64 target weights",
        retype("state", "target_network", "body.0.weight", change=lambda t: t.double()),
        "state.target_network.body.0.weight",
        tensor("float64", "(8, 4)", "QNetwork"),
    ),
    (
        "transposed weights",
        retype(*Q_WEIGHT, change=lambda t: t.T.contiguous()),
        Q_ENTRY,
        "does not fit the QNetwork: is a tensor torch.float32 (4, 8); the model has torch.float32 (8, 4)",
    ),
    (
        "weights as a list",
        retype(*Q_WEIGHT, change=lambda t: t.tolist()),
        Q_ENTRY,
        "does not fit the QNetwork: is of type list; the model has a tensor torch.float32 (8, 4)",
    ),
    (
        "a weight renamed",
        retype("state", "q_network", change=lambda s: {("x" if k == "body.0.bias" else k): v for k, v in s.items()}),
        "state.q_network",
        "does not fit the QNetwork: has other weights than the model: missing ['body.0.bias'], unexpected ['x']",
    ),
    (
        "no target network",
        drop("state", "target_network"),
        "state.target_network",
        "does not fit the QNetwork: is of type NoneType, not a state dict",
    ),
    ("optimizer 3", put("state", "optimizer", value=3), "state.optimizer", "is of type int, not an optimiser state"),
    (
        "optimizer of no groups",
        retype("state", "optimizer", change=lambda o: {**o, "param_groups": []}),
        "state.optimizer",
        "is unusable (ValueError: ...)",
    ),
    ("num_timesteps -1", put("counters", "num_timesteps", value=-1), "counters.num_timesteps", COUNT.format(-1)),
    ("num_timesteps True", put("counters", "num_timesteps", value=True), "counters.num_timesteps", COUNT.format(True)),
    ("num_episodes 'x'", put("counters", "num_episodes", value="x"), "counters.num_episodes", COUNT.format("'x'")),
    ("no counters", drop("counters"), "counters", None),
    (
        "episode return NaN",
        put("episode_returns", value=torch.tensor([1.0, math.nan], dtype=torch.float64)),
        "episode_returns",
        "holds NaN or Inf returns",
    ),
    (
        "episode returns int",
        put("episode_returns", value=torch.tensor([1, 2])),
        "episode_returns",
        "is a tensor torch.int64 (2,); expected one float return per episode (1-d)",
    ),
    ("seed -1", put("seed", value=-1), "seed", COUNT.format(-1)),
    ("settings a list", put("settings", value=[1, 2]), "settings", "is of type list; expected dict"),
    (
        "settings out of range",
        put("settings", "batch_size", value=0),
        "settings",
        "is unusable (ConfigError: DQNSettings: batch_size: must be >= 1, got 0)",
    ),
    ("unknown space", put("action_space", value={"type": "Graph"}), "action_space", "is unusable (KeyError: 'spaces')"),
    (
        "a Discrete observation space",
        put("observation_space", value={"type": "Discrete", "n": 3}),
        "observation_space",
        "is unusable (TypeError: observation key 'obs': unsupported space Discrete(3); expected Box or MultiBinary)",
    ),
    (
        "numpy rng 'x'",
        put("rng", "numpy", "state", value="x"),
        "rng.numpy",
        "is unusable (ValueError: invalid literal for int() with base 10: 'x')",
    ),
    (
        "torch rng of 3 bytes",
        put("rng", "torch", value=torch.zeros(3, dtype=torch.uint8)),
        "rng.torch",
        "is unusable (RuntimeError: ...)",
    ),
    (
        "cuda rng a tensor",
        put("rng", "cuda", value=torch.zeros(3, dtype=torch.uint8)),
        "rng.cuda",
        "is Tensor; expected a list of 1-d uint8 tensors",
    ),
    (
        "cuda rng of floats",
        put("rng", "cuda", value=[torch.zeros(3)]),
        "rng.cuda",
        "is list; expected a list of 1-d uint8 tensors",
    ),
]


@pytest.fixture(scope="module")
def saved_dqn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DQN (CartPole, one hidden layer of 8) after some training: optimiser state, counters, returns."""
    agent = DQN(gym.make("CartPole-v1"), net_arch=(8,), learning_starts=20, batch_size=8, seed=0)
    agent.learn(60, progress_bar=False)
    return agent.save(tmp_path_factory.mktemp("dqn") / "dqn.pt")


@pytest.mark.parametrize("load", [DQN.load, load_agent], ids=["DQN.load", "load_agent"])
@pytest.mark.parametrize(("name", "damage", "entry", "problem"), AGENT_DAMAGES, ids=[row[0] for row in AGENT_DAMAGES])
def test_an_agent_with_wrong_contents_is_one_clear_error(tmp_path, saved_dqn, load, name, damage, entry, problem):
    assert_refused(load, resigned(saved_dqn, damage, tmp_path / f"{name}.pt"), entry, problem)


@pytest.mark.parametrize("algorithm", [{}, [], None, 3, "x", "reinforce"])
def test_an_agent_of_another_algorithm_is_one_clear_error(tmp_path, saved_dqn, algorithm):
    path = resigned(saved_dqn, put("algorithm", value=algorithm), tmp_path / "other.pt")
    assert_refused(DQN.load, path, "algorithm", f"is {algorithm!r}: the file holds no 'dqn' agent")
    if algorithm != "reinforce":  # a REINFORCE agent of DQN weights: refused by its networks
        known = "['dagger', 'dqn', 'greedy_reinforce', 'reinforce']"
        assert_refused(load_agent, path, "algorithm", f"is {algorithm!r}, no known algorithm; known: {known}")


def same(first: Any, second: Any) -> bool:
    """Bitwise equal values: tensors by dtype, shape and bytes; mappings and sequences item by item."""
    if isinstance(first, torch.Tensor):
        bits = lambda t: t.detach().cpu().contiguous().reshape(-1).view(torch.uint8)  # noqa: E731
        same_kind = isinstance(second, torch.Tensor) and (first.dtype, first.shape) == (second.dtype, second.shape)
        return same_kind and torch.equal(bits(first), bits(second))
    if isinstance(first, dict):
        return (
            isinstance(second, dict) and first.keys() == second.keys() and all(same(first[k], second[k]) for k in first)
        )
    if isinstance(first, (list, tuple)):
        return len(first) == len(second) and all(same(a, b) for a, b in zip(first, second))
    return first == second


def test_a_good_agent_checkpoint_loads_bit_identical(saved_dqn):
    """Everything loaded is what was saved: the loaded agent's own checkpoint has the same contents."""
    saved = torch.load(saved_dqn, weights_only=True)
    assert saved["counters"]["num_timesteps"] == 60 and saved["state"]["optimizer"]["state"]
    for load in (DQN.load, load_agent):
        again = load(saved_dqn).checkpoint()  # the torch generator is global: restored by the load
        assert same(again, {k: v for k, v in saved.items() if k != "checksum"})
        assert content_checksum(again) == saved["checksum"]


class FakeCuda:
    """CUDA generators on a machine without CUDA: ``devices`` devices, each a 16-byte state ``states``
    that ``torch.cuda``'s ``get_rng_state_all`` and ``set_rng_state_all`` read and write."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, devices: int) -> None:
        self.states = [torch.full((16,), device, dtype=torch.uint8) for device in range(devices)]
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: devices)
        monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [state.clone() for state in self.states])
        monkeypatch.setattr(torch.cuda, "set_rng_state_all", self.set_rng_state_all)

    def set_rng_state_all(self, states: list[torch.Tensor]) -> None:
        assert all(state.device.type == "cpu" for state in states)  # as torch.cuda.set_rng_state_all needs
        self.states = [state.clone() for state in states]


def tiny_dqn() -> DQN:
    return DQN(gym.make("CartPole-v1"), net_arch=(8,), seed=0)


def test_an_agent_checkpoint_keeps_each_cuda_devices_random_state_and_a_load_restores_it(tmp_path, monkeypatch):
    cuda = FakeCuda(monkeypatch, devices=2)
    saved_states = [state.clone() for state in cuda.states]
    path = tiny_dqn().save(tmp_path / "agent.pt", resumable=True)
    rng = torch.load(path, weights_only=True)["rng"]  # a list of uint8 tensors: weights_only loads it
    assert same(rng["cuda"], saved_states)
    cuda.states = [torch.randint(0, 255, (16,), dtype=torch.uint8) for _ in range(2)]  # the generators drew on
    DQN.load(path, env=gym.make("CartPole-v1"))
    assert same(cuda.states, saved_states)  # restored: a resumed run draws what the saved one would have


@pytest.mark.parametrize("now", [0, 1, 3], ids=["no CUDA now", "1 device now", "3 devices now"])
def test_cuda_random_states_of_another_machine_are_left_as_they_are(tmp_path, monkeypatch, now):
    """Saved on 2 devices: with no CUDA now they are not used (silently), with another count a warning."""
    FakeCuda(monkeypatch, devices=2)
    path = tiny_dqn().save(tmp_path / "agent.pt")
    cuda = FakeCuda(monkeypatch, devices=max(now, 1))
    before = [state.clone() for state in cuda.states]
    if now == 0:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            DQN.load(path)
    else:
        with pytest.warns(UserWarning, match=rf"CUDA random states of 2 device\(s\), this machine has {now}:"):
            DQN.load(path)
    assert same(cuda.states, before)


def test_a_checkpoint_without_cuda_random_states_loads_on_a_cuda_machine(saved_dqn, monkeypatch):
    """Saved without CUDA (or before CUDA states were saved): the CUDA generators are left as they are."""
    assert "cuda" not in torch.load(saved_dqn, weights_only=True)["rng"]
    cuda = FakeCuda(monkeypatch, devices=1)
    before = [state.clone() for state in cuda.states]
    DQN.load(saved_dqn)
    assert same(cuda.states, before)


FIRST_WEIGHT = ("state_dict", "unet.down_sample_layers.0.layers.0.weight")
FIRST_ENTRY = ".".join(FIRST_WEIGHT)
SIZES = "is unusable (ValueError: recon_size must be (h, w), two positive integers, or None; got {!r})"
CHALLENGE = "is unusable (ValueError: challenge must be one of singlecoil, multicoil, got {!r})"
UNET = "'input mean/std of the zero-filled image (observed data only)'"
#: Wrong values of the entries of an export.
WRONG: dict[str, tuple[Any, ...]] = {
    "kind": ([], {}, None, "x"),
    "recon_size": ("x", [], {}, [16], [0, 0], [-16, 16], [16.5, 16], [True, 16], [16, 16, 1]),
    "challenge": (3, "x", [], {}, None),
    "version": (None, 2, "1", True, 1.0, []),
    "normalization": (None, "x", 3, []),
}


def as_dtype(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """A tensor converted to torch's dtype ``name``."""
    return lambda t: t.to(getattr(torch, name))


#: Exported reconstructors (a U-Net of 4 channels, 2 pools, 16x16) with wrong contents.
RECONSTRUCTOR_DAMAGES: list[Row] = [
    *[
        (f"kind {v!r}", put("kind", value=v), "kind", f"is {v!r}, no reconstructor kind; known: ['unet', 'varnet']")
        for v in WRONG["kind"]
    ],
    *[(f"recon_size {v!r}", put("recon_size", value=v), "recon_size", SIZES.format(v)) for v in WRONG["recon_size"]],
    *[(f"challenge {v!r}", put("challenge", value=v), "challenge", CHALLENGE.format(v)) for v in WRONG["challenge"]],
    *[
        (f"version {v!r}", put("version", value=v), "version", f"is {v!r}; this version of mri_rl reads version 1")
        for v in WRONG["version"]
    ],
    ("no version", drop("version"), "version", None),
    *[
        (
            f"normalization {v!r}",
            put("normalization", value=v),
            "normalization",
            f"is {v!r}; the unet reconstructor's is {UNET}",
        )
        for v in WRONG["normalization"]
    ],
    ("no normalization", drop("normalization"), "normalization", None),
    ("no state_dict", drop("state_dict"), "state_dict", None),
    (
        "varnet kind of U-Net weights",
        put("kind", value="varnet"),
        "normalization",
        f"is {UNET}; the varnet reconstructor's is \"each cascade's U-Net input mean/std (observed data only)\"",
    ),
    ("record 3", put("record", value=3), "record", RECORD.format("int")),
    ("record 'x'", put("record", value="x"), "record", RECORD.format("str")),
    (
        "record files 3",
        put("record", value={"mri_rl_version": "0", "data": {"train": {"folder": "f", "files": 3, "digest": "d"}}}),
        "record.data.train.files",
        "is 3; a data fingerprint has a list here",
    ),
    ("hparams 'x'", put("hparams", value="x"), "hparams", "is of type str; expected dict"),
    ("an unknown hparam", put("hparams", "depth", value=3), "hparams", "is unusable (TypeError: ...'depth')"),
    (
        "hparams of other weights",
        put("hparams", "chans", value=8),
        FIRST_ENTRY,
        "does not fit the UnetReconstructor: is a tensor torch.float32 (4, 1, 3, 3); "
        "the model has torch.float32 (8, 1, 3, 3)",
    ),
    *[
        (
            f"{d} weights",
            retype(*FIRST_WEIGHT, change=as_dtype(d)),
            FIRST_ENTRY,
            tensor(d, "(4, 1, 3, 3)", "UnetReconstructor"),
        )
        for d in ("int64", "bool", "complex64", "float64")
    ],
    (
        "a weight missing",
        drop(*FIRST_WEIGHT),
        "state_dict",
        "does not fit the UnetReconstructor: has other weights than the model: "
        f"missing ['{FIRST_WEIGHT[1]}'], unexpected []",
    ),
    (
        "weights 3",
        put("state_dict", value=3),
        "state_dict",
        "does not fit the UnetReconstructor: is of type int, not a state dict",
    ),
]


@pytest.fixture(scope="module")
def exported_unet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    record = make_record(DEFAULT_TASK, {"train": {"folder": "/d", "files": ["a.h5"], "digest": "sha256:0"}})
    return export_reconstructor(tiny_unet(), tmp_path_factory.mktemp("unet") / "unet.pt", record)


@pytest.mark.parametrize(
    ("name", "damage", "entry", "problem"), RECONSTRUCTOR_DAMAGES, ids=[r[0] for r in RECONSTRUCTOR_DAMAGES]
)
def test_a_reconstructor_with_wrong_contents_is_one_clear_error(tmp_path, exported_unet, name, damage, entry, problem):
    path = resigned(exported_unet, damage, tmp_path / f"{name}.pt")
    assert_refused(load_reconstructor, path, entry, problem)
    if not entry.startswith(("state_dict", "hparams")):  # the record is read from a checked export
        assert_refused(read_reconstructor_record, path, entry, problem)


def test_a_good_export_loads_bit_identical(exported_unet):
    saved = torch.load(exported_unet, weights_only=True)
    model = load_reconstructor(exported_unet)
    assert same(model.state_dict(), saved["state_dict"])
    assert model.recon_size == (16, 16) and model.challenge == "singlecoil"
    assert read_reconstructor_record(exported_unet) == saved["record"] and saved["record"]["task"]


LIGHTNING_PARAMETERS: dict[str, Any] = {
    "model": "unet",
    "model_hparams": {"chans": 2, "num_pool_layers": 1},
    "challenge": "singlecoil",
}
LIGHTNING_WEIGHT = ("state_dict", "reconstructor.unet.down_sample_layers.0.layers.0.weight")
#: Lightning checkpoints (as VerifiedCheckpointIO writes them) with wrong contents, read by ``load_module``.
LIGHTNING_DAMAGES: list[Row] = [
    (
        "int64 weights",
        retype(*LIGHTNING_WEIGHT, change=lambda t: t.long()),
        ".".join(LIGHTNING_WEIGHT),
        tensor("int64", "(2, 1, 3, 3)", "ReconstructionModule"),
    ),
    (
        "weights 3",
        put("state_dict", value=3),
        "state_dict",
        "does not fit the ReconstructionModule: is of type int, not a state dict",
    ),
    ("hyper_parameters []", put("hyper_parameters", value=[]), "hyper_parameters", "is of type list; expected dict"),
    (
        "recon_size [0, 16]",
        put("hyper_parameters", "recon_size", value=[0, 16]),
        "hyper_parameters",
        SIZES.format((0, 16)),
    ),
    ("no hyper_parameters", drop("hyper_parameters"), "hyper_parameters", None),
    ("no state_dict", drop("state_dict"), "state_dict", None),
]


@pytest.fixture(scope="module")
def lightning_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint with what Lightning writes through VerifiedCheckpointIO: state dict and hyper-parameters."""
    hyper_parameters = {**LIGHTNING_PARAMETERS, "recon_size": [16, 16]}
    torch.manual_seed(0)
    module = ReconstructionModule(**hyper_parameters)
    path = tmp_path_factory.mktemp("lightning") / "last.ckpt"
    return save_checkpoint({"state_dict": module.state_dict(), "hyper_parameters": hyper_parameters}, path)


@pytest.mark.parametrize(
    ("name", "damage", "entry", "problem"), LIGHTNING_DAMAGES, ids=[r[0] for r in LIGHTNING_DAMAGES]
)
def test_a_lightning_checkpoint_with_wrong_contents_is_one_clear_error(
    tmp_path, lightning_checkpoint, name, damage, entry, problem
):
    assert_refused(load_module, resigned(lightning_checkpoint, damage, tmp_path / f"{name}.ckpt"), entry, problem)


def test_a_good_lightning_checkpoint_loads_bit_identical(lightning_checkpoint):
    assert same(load_module(lightning_checkpoint).state_dict(), torch.load(lightning_checkpoint)["state_dict"])


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


def test_atomic_outputs_reach_the_disk_before_the_rename_and_the_rename_before_they_return(tmp_path, monkeypatch):
    """``fsync`` of the written temporary file, then the rename, then ``fsync`` of its folder: a
    power loss cannot leave an empty or partial file behind the new name."""
    events: list[tuple[str, str]] = []
    fsync, replace, os_open = os.fsync, os.replace, os.open
    names: dict[int, str] = {}

    def opened(path, flags, *args):
        handle = os_open(path, flags, *args)
        names[handle] = Path(path).name
        return handle

    monkeypatch.setattr(os, "open", opened)
    monkeypatch.setattr(os, "fsync", lambda handle: (events.append(("fsync", names[handle])), fsync(handle))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", Path(b).name)), replace(a, b))[1])
    save_checkpoint({"w": torch.zeros(1)}, tmp_path / "c.pt")
    assert [kind for kind, _ in events] == ["fsync", "replace", "fsync"]
    assert events[0][1].startswith(".c.pt.") and events[1:] == [("replace", "c.pt"), ("fsync", tmp_path.name)]


def test_a_full_disk_keeps_the_old_checkpoint_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = save_checkpoint({"w": torch.zeros(3)}, tmp_path / "c.pt")
    before = path.read_bytes()

    def disk_full(obj: Any, f: Any) -> None:
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device", f.name)

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
    lightning: dict[str, Any] = {"state_dict": {}, "hyper_parameters": {}, "optimizer_states": []}
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
