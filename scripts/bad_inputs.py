"""Tally what bad inputs do, by kind, for the closing report of issue "Hardening".

Every input runs in-process (``mri_rl.cli.main([...])`` or the Python API; a command's stdout and
stderr captured at the file descriptors, as a terminal would show them) in a forked child with a time
limit and a fresh working folder, and is classified:

- **clear error**: the expected exception type (ValueError kinds, OSError), or exit status 2 with
  one ``mri-rl: error:`` line (argparse's usage errors; data check's status 1 and BAD lines), that
  names the file, key or value;
- **correct result**: success with finite numbers and nothing written where it should not be;
- **traceback**: an unexpected exception escaped (also: the child hung and was killed, or crashed);
- **unclear**: an expected error whose message does not name the file or value, or more than one line;
- **silent wrong**: success with non-finite numbers, a file created by a crafted payload, a file
  written outside the output folder, a mode that ignores the umask, a file that data check passed
  and a reader then refused or skipped, ...

Kinds: 1 code execution from checkpoints (and configs), 2 the volume ``max`` attribute, 3 files data
check passes that later crash or are skipped, 4 corrupt and degenerate checkpoints, 5 bad values,
6 paths and files, 7 the command line. Kind 1 runs twice: here, and in a subprocess with
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (torch's unsafe default forced). Random inputs use ``--seed``.

    python scripts/bad_inputs.py [--kind N] [--quick] [--seed 0] [--workspace DIR] [--timeout 120] [--list]

Prints a markdown table (kind | inputs tried | clear errors | correct results | tracebacks/unclear |
silent wrong), then every case that is not clean, with its detail.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before torch: 2 shared cores

import argparse
import contextlib
import inspect
import json
import math
import pathlib
import pickle
import re
import select
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import h5py
import numpy as np
import torch

import mri_rl  # noqa: F401  (registers the environment)
from mri_rl.cli import main
from mri_rl.data.fastmri_files import TARGET_KEYS, FastMRIDataError, FastMRISliceDataset, inspect_volume
from mri_rl.data.synthetic import SyntheticSpec, write_synthetic_dataset
from mri_rl.envs import ENV_ID
from mri_rl.envs.acquisition import ActiveAcquisitionEnv
from mri_rl.kspace import data_range
from mri_rl.task import METRIC_NAMES

CLEAR, CORRECT, TRACEBACK, UNCLEAR, SILENT = "clear error", "correct result", "traceback", "unclear", "silent wrong"
#: A case this script could not set up (not the package's fault): listed apart, not tallied.
SETUP = "setup error"
KINDS = {
    1: "code execution from a crafted checkpoint / config",
    2: "the volume's max attribute",
    3: "files data check passes that later crash / are skipped",
    4: "corrupt and degenerate checkpoints",
    5: "bad values",
    6: "paths and files",
    7: "command line",
}
FORCE_UNSAFE = "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"
ERROR_PREFIX = "mri-rl: error: "
#: Lightning's start-up log lines (train-recon logs them before it fails): logging, not part of the error.
LIGHTNING_LOG = re.compile(r"^((GPU|TPU|HPU|IPU) available: |💡 Tip: |Seed set to \d+$)")
MAX_TOLERANCE = 1e-3  # the package's tolerance of 'max' against the target's maximum
NON_FINITE = re.compile(r"(?<![A-Za-z])(nan|inf|infinity)(?![A-Za-z])", re.IGNORECASE)


# =============================================================================== outcomes
@dataclass(frozen=True)
class Verdict:
    """How one input ended, and why."""

    outcome: str
    detail: str = ""


@dataclass
class Case:
    """One input: its kind, a name for the report, how to run it (returning a Verdict), its time
    limit, and the names it may leave in the working folder."""

    kind: int
    name: str
    run: Callable[[], Verdict]
    timeout: float = 120.0
    allowed_in_cwd: tuple[str, ...] = ()
    on_timeout: str | None = None  # a hang is silent wrong with this detail (e.g. a pipeline that started)


def one_line(text: Any, limit: int = 300) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _where(error: BaseException) -> str:
    """``file:line`` of the innermost frame of ``error``'s traceback."""
    frames = traceback.extract_tb(error.__traceback__)
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"


def escaped(error: BaseException, context: str = "") -> Verdict:
    """An exception the contract does not allow."""
    return Verdict(TRACEBACK, f"{context}{type(error).__name__} at {_where(error)}: {one_line(error)}")


Names = Sequence[str | tuple[str, ...]]


def named(text: str, names: Names, outcome: str = CLEAR) -> Verdict:
    """``outcome`` when ``text`` names every one of ``names`` (a tuple: any one of its strings), else unclear."""
    missing = [name for name in names if not any(n in text for n in ((name,) if isinstance(name, str) else name))]
    return (
        Verdict(UNCLEAR, f"does not name {missing}: {one_line(text)}") if missing else Verdict(outcome, one_line(text))
    )


def judge_call(
    call: Callable[[], Any],
    names: Names = (),
    expected: tuple[type[BaseException], ...] = (ValueError, OSError),
    check: Callable[[Any], str | Verdict | None] | None = None,
) -> Verdict:
    """Run a Python API call: an ``expected`` error naming ``names`` is clear; a result is correct when
    ``check`` finds nothing wrong (it returns None, a problem, or its own verdict)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = call()
    except expected as error:
        return named(f"{type(error).__name__}: {error}", names)
    except Exception as error:
        return escaped(error)
    problem = check(result) if check is not None else None
    if isinstance(problem, Verdict):
        return problem
    return Verdict(SILENT, problem) if problem else Verdict(CORRECT, "")


def judge_valid(call: Callable[[], Any], check: Callable[[Any], str | Verdict | None] | None = None) -> Verdict:
    """A valid input (e.g. a numpy integer where an integer is due): refusing it is a defect too."""
    verdict = judge_call(call, check=check)
    if verdict.outcome in (CLEAR, UNCLEAR):
        return Verdict(UNCLEAR, f"REFUSED a valid value: {verdict.detail.removeprefix('does not name []: ')}")
    return verdict


def is_numpy_int(value: Any) -> bool:
    """Whether ``value`` is a numpy integer scalar (a valid count or index wherever ints are)."""
    return isinstance(value, np.integer)


@dataclass(frozen=True)
class CliRun:
    """What ``main(argv)`` did."""

    status: int | str | None
    out: str
    err: str
    usage_error: bool


def run_cli(argv: Sequence[Any]) -> CliRun:
    """``main(argv)`` in-process with file descriptors 1 and 2 captured, so that everything a terminal
    would show is seen (loggers bound to the original streams included); Python warnings left out."""
    usage_error = False
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                status: int | str | None = main([str(arg) for arg in argv])
        except SystemExit as exit_:
            status, usage_error = exit_.code, True
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        texts = []
        for handle in (out, err):
            handle.seek(0)
            texts.append(handle.read().decode(errors="replace"))
    return CliRun(status, texts[0], texts[1], usage_error)


def finite_output(run: CliRun) -> str | None:
    """A problem when the command's output holds nan or inf."""
    found = NON_FINITE.search(run.out)
    return None if found is None else f"status 0 with {found.group()!r} in its output: {one_line(run.out, 200)}"


def judge_cli(argv: Sequence[Any], names: Names = (), check: Callable[[CliRun], str | None] = finite_output) -> Verdict:
    """Run a command line: status 2 with one error line (or argparse's usage error, or data check's
    status 1 with BAD lines) naming ``names`` is clear; status 0 is correct when ``check`` finds nothing."""
    try:
        run = run_cli(argv)
    except Exception as error:
        return escaped(error, "escaped main: ")
    lines = [line for line in run.err.splitlines() if not LIGHTNING_LOG.match(line)]
    if run.usage_error:
        return named(lines[-1] if lines else f"usage error, status {run.status}", names)
    if run.status == 0:
        problem = check(run)
        return Verdict(SILENT, problem) if problem else Verdict(CORRECT, one_line(run.out, 120))
    bad_lines = [line for line in run.out.splitlines() if line.startswith("BAD ")]
    if run.status == 1 and bad_lines and not run.err:
        return named(" | ".join(bad_lines), names)
    if run.status == 2 and len(lines) == 1 and lines[0].startswith(ERROR_PREFIX):
        return named(lines[0], names)
    errors = [i for i, line in enumerate(lines) if line.startswith(ERROR_PREFIX)]
    if run.status == 2 and len(errors) == 1:
        other = len(lines) - 1
        where = "before" if errors[0] == other else "around"
        return Verdict(UNCLEAR, f"{other} other stderr line(s) {where} the error line: {one_line(run.err)}")
    return Verdict(UNCLEAR, f"status {run.status}, {len(lines)} stderr line(s): {one_line(run.err)}")


def worst(verdicts: Sequence[Verdict]) -> Verdict:
    """The most serious of several verdicts (the first of its outcome)."""
    order = (SETUP, TRACEBACK, SILENT, UNCLEAR, CLEAR, CORRECT)
    return min(verdicts, key=lambda v: order.index(v.outcome))


# ============================================================================ isolation
def in_child(run: Callable[[], Verdict], timeout: float, log: Path) -> Verdict:
    """``run()`` in a forked child (stdout and stderr to ``log``); a hang is killed after ``timeout`` s."""
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        handle = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(handle, 1)
        os.dup2(handle, 2)
        try:
            verdict = run()
        except BaseException as error:  # this script's own setup of the case failed
            verdict = Verdict(SETUP, f"{type(error).__name__} at {_where(error)}: {one_line(error)}")
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(pickle.dumps(verdict))
        os._exit(0)
    os.close(write_end)
    data, hung = _read_until_eof(read_end, timeout)
    if hung:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if hung:
        return Verdict(TRACEBACK, f"HANG: no answer after {timeout:g} s (killed)")
    if os.WIFSIGNALED(status):
        return Verdict(TRACEBACK, f"CRASH: the process died of signal {os.WTERMSIG(status)}")
    return pickle.loads(data) if data else Verdict(SETUP, f"the child exited with status {os.WEXITSTATUS(status)}")


def _read_until_eof(fd: int, timeout: float) -> tuple[bytes, bool]:
    """All of pipe ``fd`` until its end; (data, True) when ``timeout`` passed first."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    with os.fdopen(fd, "rb") as pipe:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([pipe], [], [], remaining)[0]:
                return b"".join(chunks), True
            chunk = os.read(pipe.fileno(), 1 << 16)
            if not chunk:
                return b"".join(chunks), False
            chunks.append(chunk)


# ============================================================================ workspace
class Workspace:
    """The folder of one run: fixtures (built once, atomically, reused by the kind-1 subprocess),
    case folders, the payload marker and the children's log."""

    def __init__(self, root: Path, quick: bool, seed: int) -> None:
        self.root = root
        self.quick = quick
        self.seed = seed
        self.marker = root / "PAYLOAD_RAN"
        self.log = root / "children.log"
        self.fixtures = root / "fixtures"
        self.fixtures.mkdir(parents=True, exist_ok=True)
        self._count = 0

    def case_dir(self) -> Path:
        """A fresh empty folder for one case."""
        self._count += 1
        path = self.root / "cases" / f"{os.getpid()}-{self._count}"
        path.mkdir(parents=True)
        return path

    def _built(self, name: str, build: Callable[[Path], Any]) -> Path:
        """Fixture ``name``: built by ``build(tmp)`` into a temporary folder, then renamed (once)."""
        final = self.fixtures / name
        if not final.exists():
            temporary = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=self.fixtures))
            build(temporary)
            os.replace(temporary, final)
        return final

    def data_root(self, challenge: str = "singlecoil") -> Path:
        """A fastMRI root: 2/1/1 volumes of 3 slices, 16 x 16 targets, k-space 32 x 16 (3 coils multi-coil)."""
        spec = SyntheticSpec(challenge=challenge, num_slices=3, size=16, num_coils=3)
        return self._built(
            f"root_{challenge}",
            lambda tmp: write_synthetic_dataset(tmp, spec, {"train": 2, "val": 1, "test": 1}, seed=0, progress=False),
        )

    def volume(self, challenge: str = "singlecoil") -> Path:
        """The first training volume of :meth:`data_root`."""
        return sorted((self.data_root(challenge) / f"{challenge}_train").glob("*.h5"))[0]

    def agent(self) -> Path:
        """A DQN agent trained a few steps on the MRI env of the train split (budget 2, 2 initial lines)."""

        def build(tmp: Path) -> None:
            from mri_rl.agents import DQN

            env = gym.make(ENV_ID, data_path=self.data_root() / "singlecoil_train", budget=2, initial_lines=2)
            agent = DQN(env, net_arch=(8,), learning_starts=4, batch_size=4, buffer_size=32, train_freq=1, seed=0)
            agent.learn(16, progress_bar=False).save(tmp / "dqn.pt")

        return self._built("agent", build) / "dqn.pt"

    def reconstructor(self) -> Path:
        """A tiny exported U-Net for the 16 x 16 single-coil data."""

        def build(tmp: Path) -> None:
            from mri_rl.reconstruct import UnetReconstructor, export_reconstructor

            export_reconstructor(UnetReconstructor(chans=2, num_pool_layers=1, recon_size=(16, 16)), tmp / "unet.pt")

        return self._built("reconstructor", build) / "unet.pt"

    def train_run(self) -> Path:
        """A finished ``mri-rl train`` run of DQN on CartPole (64 steps): its out folder."""
        return self._built("train_run", lambda tmp: _must(run_cli(["train", *TRAIN_ARGS, "--out", tmp / "run"])))

    def recon_run(self) -> Path:
        """A finished ``mri-rl train-recon`` run (1 epoch of a tiny U-Net): its out folder."""
        argv = ["train-recon", "--data", self.data_root(), *RECON_ARGS, "--max-epochs", "1"]
        return self._built("recon_run", lambda tmp: _must(run_cli([*argv, "--out", tmp / "run"])))

    def copy_run(self, run: Path) -> Path:
        """A copy of a run folder (``run``: a fixture's folder holding ``run/``) in a fresh case folder."""
        target = self.case_dir() / "run"
        shutil.copytree(run / "run", target)
        return target


def _must(run: CliRun) -> None:
    """Raise when a fixture command failed (a setup error, not a finding)."""
    if run.status != 0:
        raise RuntimeError(f"fixture command failed with status {run.status}: {one_line(run.err)}")


TRAIN_ARGS: tuple[str, ...] = ("--agent", "dqn", "--env", "CartPole-v1", "--total-steps", "64", "--no-progress")
TRAIN_ARGS += (
    "--set",
    "eval_episodes=2",
    "--set",
    "checkpoint_interval=32",
    "--set",
    "hyperparameters.learning_starts=16",
)
RECON_ARGS: tuple[str, ...] = (
    "--challenge",
    "singlecoil",
    "--budget",
    "2",
    "--initial-lines",
    "2",
    "--set",
    "model.chans=2",
)
RECON_ARGS += (
    "--set",
    "model.num_pool_layers=1",
    "--set",
    "data.batch_size=2",
    "--accelerator",
    "cpu",
    "--devices",
    "1",
)
EVAL_ARGS = ("--policies", "random", "--seeds", "0", "--budget", "2", "--initial-lines", "2", "--no-progress")


# ====================================================================== shared checks
def slice_problem(items: list[Any], checked: bool) -> str | None:
    """What is wrong with read slices: non-finite values, sizes unlike their metadata, a data range that is
    not a positive finite number (or, for a file data check passed, below the slice's maximum)."""
    if not items:
        return "no slice read"
    for item in items:
        meta, target = item.metadata, item.target
        where = f"{meta.file.name}, slice {meta.slice_index}"
        if not (bool(torch.isfinite(item.kspace).all()) and bool(torch.isfinite(target).all())):
            return f"{where}: NaN or Inf read"
        if tuple(target.shape) != meta.recon_size:
            return f"{where}: target {tuple(target.shape)}, metadata {meta.recon_size}"
        value, peak = data_range(meta.max_value, target), float(target.max())
        if not (math.isfinite(value) and value > 0):
            return f"{where}: data range {value}"
        if checked and value < peak * (1 - MAX_TOLERANCE):
            return f"{where}: data range {value:g} below the slice's maximum {peak:g}"
    return None


def read_all(folder: Path, challenge: str, **options: Any) -> list[Any]:
    """Every slice of a folder through ``FastMRISliceDataset``."""
    dataset = FastMRISliceDataset(folder, challenge, **options)
    return [dataset[i] for i in range(len(dataset))]


def env_numbers(folder: Path, challenge: str = "singlecoil", **options: Any) -> list[float]:
    """Rewards and metrics of two steps from every slice, in the single env (budget 2, 2 initial lines)."""
    env = ActiveAcquisitionEnv(folder, **{"challenge": challenge, "budget": 2, "initial_lines": 2, **options})
    numbers: list[float] = []
    for index in range(env.num_slices):
        _, info = env.reset(seed=0, options={"index": index})
        numbers += [float(info[m]) for m in METRIC_NAMES]
        for _ in range(2):
            _, reward, terminated, _, info = env.step(int(np.flatnonzero(env.action_masks())[0]))
            numbers += [reward] + [float(info[m]) for m in METRIC_NAMES]
            if terminated:
                break
    return numbers


def non_finite(numbers: Sequence[float], what: str = "numbers") -> str | None:
    """A problem naming the non-finite numbers among ``numbers``, or None."""
    bad = [n for n in numbers if not math.isfinite(n)]
    return f"{len(bad)} non-finite {what} of {len(numbers)}, e.g. {bad[:3]}" if bad else None


def env_metric_problem(numbers: list[float]) -> str | None:
    """A problem when a reward or metric of the env is not finite."""
    return non_finite(numbers, "rewards/metrics")


def eval_recon_rows(folder: Path, challenge: str, reconstructor: Any = "zero_filled") -> list[dict[str, Any]]:
    """``evaluate_reconstructor`` of ``reconstructor`` on ``folder`` with the packaged evaluation masks."""
    from mri_rl.reconstruct.train import evaluate_reconstructor, load_config
    from mri_rl.reconstruct.training_masks import build_mask_samplers
    from mri_rl.task import DEFAULT_TASK

    task = DEFAULT_TASK.with_changes(challenge=challenge, initial_lines=2)
    config = load_config("recon_unet" if challenge == "singlecoil" else "recon_varnet", (), task)
    masks = build_mask_samplers(config["masks"]["evaluation"], task)
    return evaluate_reconstructor(reconstructor, folder, challenge, "val", masks, any_folder=True)


def rows_problem(rows: list[dict[str, Any]]) -> str | None:
    """A problem when an ``evaluate_reconstructor`` number is not finite."""
    return non_finite([v for row in rows for v in row.values() if isinstance(v, float)], "evaluation numbers")


def copy_into(src: Path, folder: Path, name: str = "volume.h5") -> Path:
    """A copy of ``src`` named ``name`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, folder / name)
    return folder / name


def damaged_copy(ws: Workspace, challenge: str, damage: Callable[[h5py.File, str], None], name: str) -> Path:
    """A copy of the fixture volume, alone in a fresh folder, damaged through h5py."""
    path = copy_into(ws.volume(challenge), ws.case_dir() / "data", name)
    with h5py.File(path, "r+") as hf:
        damage(hf, TARGET_KEYS[challenge])
    return path


def byte_damaged_copy(src: Path, folder: Path, rng: np.random.Generator, truncate: float | None = None) -> Path:
    """A copy of ``src`` with 1 to 16 random bytes written at a random offset (or cut at ``truncate``)."""
    data = bytearray(src.read_bytes())
    if truncate is not None:
        data, where = data[: int(truncate * len(data))], f"cut{int(truncate * len(data))}"
    else:
        start, length = int(rng.integers(len(data))), int(rng.integers(1, 17))
        data[start : start + length] = rng.bytes(min(length, len(data) - start))
        where = f"at{start}+{length}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"damaged_{where}_{src.name}"  # the name says what was damaged
    path.write_bytes(bytes(data))
    return path


# ============================================================== kind 1: code execution
class Payload:
    """Unpickling it creates ``marker``: through ``os.system``, ``pathlib.Path.touch`` or ``exec``."""

    def __init__(self, marker: Path, how: str) -> None:
        self.marker, self.how = str(marker), how

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        if self.how == "os.system":
            return os.system, (f"touch {shlex.quote(self.marker)}",)
        if self.how == "pathlib":
            return pathlib.Path.touch, (pathlib.Path(self.marker),)
        return exec, (f"open({self.marker!r}, 'w').close()",)


def payload_files(ws: Workspace) -> dict[str, Path]:
    """Crafted checkpoint files (zip and legacy torch formats, a raw pickle), whole or inside a valid-looking
    checkpoint of each format."""
    folder = ws.fixtures / "payloads"
    folder.mkdir(exist_ok=True)
    marker = ws.marker
    files: dict[str, tuple[Any, str]] = {
        "zip whole (os.system)": (Payload(marker, "os.system"), "zip"),
        "zip agent dict (pathlib)": (
            {"format": "mri_rl.agent", "algorithm": "dqn", "checksum": "0", "state": Payload(marker, "pathlib")},
            "zip",
        ),
        "zip reconstructor dict (exec)": (
            {"format": "mri_rl.reconstructor", "kind": "unet", "checksum": "0", "state_dict": Payload(marker, "exec")},
            "zip",
        ),
        "legacy torch format (exec)": (Payload(marker, "exec"), "legacy"),
        "raw pickle (os.system)": (Payload(marker, "os.system"), "pickle"),
        "lightning dict (os.system)": (
            {"epoch": 0, "state_dict": {}, "hyper_parameters": Payload(marker, "os.system"), "checksum": "0"},
            "zip",
        ),
    }
    if ws.quick:
        files = {k: v for k, v in files.items() if k.startswith(("zip whole", "zip agent", "raw", "lightning"))}
    paths = {}
    for label, (obj, how) in files.items():
        path = folder / (re.sub(r"\W+", "_", label).strip("_") + ".pt")
        if not path.exists():
            if how == "pickle":
                path.write_bytes(pickle.dumps(obj))
            else:
                torch.save(obj, path, _use_new_zipfile_serialization=how == "zip")
        paths[label] = path
    return paths


def _loader_call(loader: str, path: Path, ws: Workspace) -> Verdict:
    """Load ``path`` through one of the package's loaders (or commands)."""
    from mri_rl import checkpointing

    loaded_check = lambda result: "loaded a crafted file without error"  # noqa: E731
    apis: dict[str, Callable[[], Any]] = {
        "checkpointing.load_checkpoint": lambda: _load_checkpoint_any(checkpointing, path),
        "reconstruct.load_reconstructor": lambda: _api("mri_rl.reconstruct", "load_reconstructor")(path),
        "reconstruct.read_reconstructor_record": lambda: _api(
            "mri_rl.reconstruct.checkpoint", "read_reconstructor_record"
        )(path),
        "agents.DQN.load": lambda: _api("mri_rl.agents", "DQN").load(path),
        "agents.REINFORCE.load": lambda: _api("mri_rl.agents", "REINFORCE").load(path),
        "evaluation.load_agent": lambda: _api("mri_rl.evaluation.evaluate", "load_agent")(path),
        "lightning.load_module": lambda: _api("mri_rl.reconstruct.lightning", "load_module")(path),
        "env reconstructor=PATH": lambda: ActiveAcquisitionEnv(
            ws.data_root() / "singlecoil_test", reconstructor=path, budget=2, initial_lines=2
        ),
    }
    if loader in apis:
        return judge_call(apis[loader], [path.name], check=loaded_check)
    root, out = ws.data_root(), ws.case_dir() / "out"
    commands = {
        "cli evaluate --policies p=PATH": [
            "evaluate",
            "--data",
            root,
            "--out",
            out,
            *EVAL_ARGS[2:],
            "--policies",
            f"p={path}",
        ],
        "cli evaluate --reconstructor PATH": [
            "evaluate",
            "--data",
            root,
            "--out",
            out,
            *EVAL_ARGS,
            "--reconstructor",
            path,
        ],
        "cli eval-recon --reconstructor PATH": eval_recon_args(root, path),
    }
    if loader in commands:
        return judge_cli(commands[loader], [path.name], check=lambda run: "accepted a crafted file")
    return _resume_with(loader, path, ws)


def _resume_with(loader: str, path: Path, ws: Workspace) -> Verdict:
    """``--resume`` of a finished run whose checkpoint was replaced by ``path``."""
    if loader == "cli train --resume (checkpoint.pt)":
        run = ws.copy_run(ws.train_run())
        shutil.copyfile(path, run / "checkpoint.pt")
        return judge_cli(
            ["train", *TRAIN_ARGS[:4], "--out", run, "--resume", "--no-progress"],
            ["checkpoint.pt"],
        )
    run = ws.copy_run(ws.recon_run())
    shutil.copyfile(path, run / "checkpoints" / "last.ckpt")
    argv = ["train-recon", "--data", ws.data_root(), *RECON_ARGS, "--max-epochs", "2", "--out", run, "--resume"]
    return judge_cli(argv, ["last.ckpt"])


LOADERS = (
    "checkpointing.load_checkpoint",
    "reconstruct.load_reconstructor",
    "reconstruct.read_reconstructor_record",
    "agents.DQN.load",
    "agents.REINFORCE.load",
    "evaluation.load_agent",
    "lightning.load_module",
    "env reconstructor=PATH",
    "cli evaluate --policies p=PATH",
    "cli evaluate --reconstructor PATH",
    "cli eval-recon --reconstructor PATH",
    "cli train --resume (checkpoint.pt)",
    "cli train-recon --resume (last.ckpt)",
)


def _api(module: str, name: str) -> Any:
    """``module.name``, imported when used (a missing one is a setup error of that case)."""
    import importlib

    return getattr(importlib.import_module(module), name)


def _load_checkpoint_any(checkpointing: Any, path: Path) -> Any:
    """``load_checkpoint`` of an agent, with the ``weights`` argument when this version has one."""
    if "weights" in inspect.signature(checkpointing.load_checkpoint).parameters:
        return checkpointing.load_checkpoint(path, "mri_rl.agent", ("state",))
    return checkpointing.load_checkpoint(path, "mri_rl.agent")


def payload_control(path: Path, ws: Workspace) -> Verdict:
    """The payload is live: an unsafe ``torch.load`` (or ``pickle.load``) of it creates the marker."""

    ws.marker.unlink(missing_ok=True)
    with contextlib.suppress(Exception):
        torch.load(path, weights_only=False)  # noqa: S614  (the point: the unsafe load runs the payload)
    if not ws.marker.exists():
        with contextlib.suppress(Exception):
            pickle.loads(path.read_bytes())  # noqa: S301
    live = ws.marker.exists()
    ws.marker.unlink(missing_ok=True)
    return Verdict(CORRECT if live else SETUP, "live" if live else "INERT (the cases with it prove nothing)")


def kind1_cases(ws: Workspace) -> list[Case]:
    """Crafted pickles through every loader; crafted YAML through every config reader."""
    cases = []
    lightning_loaders = [loader for loader in LOADERS if "lightning" in loader or "last.ckpt" in loader]
    for label, path in payload_files(ws).items():
        for loader in lightning_loaders if "lightning" in label else LOADERS:
            cases.append(Case(1, f"{label} -> {loader}", lambda p=path, lo=loader: _loader_call(lo, p, ws)))
    cases.append(
        Case(1, "dataset_cache.pkl payload in the working folder -> data check, evaluate", lambda: _cache_payload(ws))
    )
    cases += [
        Case(1, f"YAML payload -> {label}", lambda a=argv: _yaml_payload(ws, a)) for label, argv in _yaml_commands(ws)
    ]
    for case in cases:
        case.allowed_in_cwd = ("dataset_cache.pkl",)
    return cases


def _cache_payload(ws: Workspace) -> Verdict:
    """fastmri's dataset cache (a pickle) in the working folder must never be read."""
    Path("dataset_cache.pkl").write_bytes(pickle.dumps(Payload(ws.marker, "os.system")))
    check = judge_cli(["data", "check", ws.data_root() / "singlecoil_train", "--challenge", "singlecoil"])
    out = ws.case_dir() / "out"
    evaluate = judge_cli(["evaluate", "--data", ws.data_root(), "--out", out, *EVAL_ARGS])
    return worst([check, evaluate])


def _yaml_commands(ws: Workspace) -> list[tuple[str, list[Any]]]:
    """The commands that read a config: (label, argv with {out} {yaml} {set} placeholders)."""
    root = ws.data_root()
    return [
        ("train --config", ["train", *TRAIN_ARGS, "--out", "{out}", "--config", "{yaml}"]),
        ("train-recon --config", ["train-recon", "--data", root, *RECON_ARGS, "--out", "{out}", "--config", "{yaml}"]),
        (
            "eval-recon --config",
            [
                *eval_recon_args(root, "zero_filled"),
                "--config",
                "{yaml}",
            ],
        ),
        (
            "quickstart --config",
            ["quickstart", "--out", "{out}", "--data", "{out}/data", "--config", "{yaml}", "--no-progress"],
        ),
        (
            "train-recon --set seed=!!python/object/apply",
            ["train-recon", "--data", root, *RECON_ARGS, "--out", "{out}", "--set", "{set}"],
        ),
    ]


def _yaml_payload(ws: Workspace, argv: list[Any]) -> Verdict:
    """A config whose YAML would run ``touch`` if loaded unsafely."""
    folder = ws.case_dir()
    tag = f"!!python/object/apply:os.system [{json.dumps('touch ' + shlex.quote(str(ws.marker)))}]"
    (folder / "evil.yaml").write_text(f"seed: {tag}\nagent: dqn\nenv_id: CartPole-v1\ntotal_steps: 64\n")
    filled = fill(argv, {"out": folder / "out", "yaml": folder / "evil.yaml", "set": f"seed={tag}"})
    return judge_cli(filled, ["evil.yaml"] if "{yaml}" in map(str, argv) else ["seed"])


# ================================================================= kind 2: max attribute
DELETE, BRIGHTER_MIDDLE = "delete", "brighter middle"
#: (label, the max attribute from the target's maximum ``peak``).
MAX_TABLE: list[tuple[str, Callable[[float], Any]]] = [
    ("0.0", lambda p: 0.0),
    ("-0.0", lambda p: -0.0),
    ("-5.0", lambda p: -5.0),
    ("nan", lambda p: math.nan),
    ("inf", lambda p: math.inf),
    ("-inf", lambda p: -math.inf),
    ("1e-30", lambda p: 1e-30),
    ("5e-324", lambda p: 5e-324),
    ("1e10", lambda p: 1e10),
    ("1e30", lambda p: 1e30),
    ("1e300", lambda p: 1e300),
    ("1e308", lambda p: 1e308),
    ("float32 max", lambda p: float(np.finfo(np.float32).max)),
    ("peak * 0.5", lambda p: p * 0.5),
    ("peak * 0.998", lambda p: p * 0.998),
    ("peak * 0.9995", lambda p: p * 0.9995),
    ("peak", lambda p: p),
    ("peak * 1.0005", lambda p: p * 1.0005),
    ("peak * 2", lambda p: p * 2),
    ("peak * 1e6", lambda p: p * 1e6),
    ("int 0", lambda p: 0),
    ("int 1", lambda p: 1),
    ("int64 max", lambda p: np.int64(2**63 - 1)),
    ("uint64 max", lambda p: np.uint64(2**64 - 1)),
    ("float16 of peak", lambda p: np.float16(p)),
    ("float32 of peak", lambda p: np.float32(p)),
    ("bool True", lambda p: True),
    ("string 'large'", lambda p: "large"),
    ("string of the peak", lambda p: repr(p)),
    ("bytes b'1.0'", lambda p: b"1.0"),
    ("array [peak, peak]", lambda p: np.array([p, p])),
    ("array [peak]", lambda p: np.array([p])),
    ("0-d array of peak", lambda p: np.array(p)),
    ("empty array", lambda p: np.array([])),
    ("complex peak", lambda p: complex(p, 0)),
    ("absent", lambda p: DELETE),
    ("max of first/last slices, brighter middle slice", lambda p: BRIGHTER_MIDDLE),
]


def _set_max(value_of: Callable[[float], Any]) -> Callable[[h5py.File, str], None]:
    """A damage that sets (or deletes) the ``max`` attribute from the target's maximum."""

    def damage(hf: h5py.File, target_key: str) -> None:
        target = hf[target_key]
        value = value_of(float(np.max(target[()])))
        if isinstance(value, str) and value == DELETE:
            del hf.attrs["max"]
        elif isinstance(value, str) and value == BRIGHTER_MIDDLE:
            ends = max(float(np.max(target[0])), float(np.max(target[-1])))
            middle = target[1]
            target[1] = middle * (2 * ends / max(float(np.max(middle)), 1e-30))
            hf.attrs["max"] = ends
        else:
            hf.attrs["max"] = value

    return damage


def max_entrypoints(path: Path, challenge: str) -> dict[str, Callable[[], Verdict]]:
    """The ways a file reaches its ``max``: data check (API and CLI), the reader, the env, eval-recon."""
    folder, names = path.parent, [path.name]
    return {
        "inspect_volume": lambda: judge_call(
            lambda: inspect_volume(path, challenge, check_values=True), [*names, "max"], (FastMRIDataError,)
        ),
        "data check": lambda: judge_cli(
            ["data", "check", folder, "--challenge", challenge, "--require-target"], [*names, "max"]
        ),
        "reader": lambda: judge_call(
            lambda: read_all(folder, challenge), names, (FastMRIDataError,), lambda items: slice_problem(items, False)
        ),
        "env": lambda: judge_call(lambda: env_numbers(folder, challenge), names, (ValueError,), env_metric_problem),
        "eval-recon": lambda: judge_call(
            lambda: eval_recon_rows(folder, challenge), names, (ValueError,), rows_problem
        ),
    }


def kind2_cases(ws: Workspace) -> list[Case]:
    """Every value of :data:`MAX_TABLE` through every entry point of :func:`max_entrypoints`."""
    challenges = ["singlecoil"] if ws.quick else ["singlecoil", "multicoil"]
    entrypoints = ["inspect_volume", "data check", "reader", "env"] + ([] if ws.quick else ["eval-recon"])
    cases = []
    for challenge in challenges:
        for label, value_of in MAX_TABLE:
            for entry in entrypoints:

                def run(c: str = challenge, v: Callable[[float], Any] = value_of, e: str = entry) -> Verdict:
                    return max_entrypoints(damaged_copy(ws, c, _set_max(v), "max_volume.h5"), c)[e]()

                cases.append(Case(2, f"{challenge} max={label} -> {entry}", run))
    return cases


# ====================================================== kind 3: passes data check, then fails
def _scaled(factor: float) -> Callable[[h5py.File, str], None]:
    """A damage that scales k-space, target and ``max`` alike."""

    def damage(hf: h5py.File, target_key: str) -> None:
        hf["kspace"][...] = hf["kspace"][()] * factor
        hf[target_key][...] = hf[target_key][()] * factor
        hf.attrs["max"] = float(np.max(hf[target_key][()]))

    return damage


def _retyped(key: str, dtype: Any) -> Callable[[h5py.File, str], None]:
    """A damage that stores a dataset with another dtype."""

    def damage(hf: h5py.File, target_key: str) -> None:
        name = target_key if key == "target" else key
        data = hf[name][()]
        del hf[name]
        hf[name] = data.astype(dtype)

    return damage


def _rewrite(key: str, **options: Any) -> Callable[[h5py.File, str], None]:
    """A damage that rewrites a dataset with other storage options (chunks, filters)."""

    def damage(hf: h5py.File, target_key: str) -> None:
        name = target_key if key == "target" else key
        data = hf[name][()]
        del hf[name]
        hf.create_dataset(name, data=data, **options)

    return damage


def _header_edit(old: str, new: str | Callable[[re.Match[str]], str]) -> Callable[[h5py.File, str], None]:
    """A damage that substitutes ``old`` (a regex) by ``new`` in the header XML."""

    def damage(hf: h5py.File, target_key: str) -> None:
        header = hf["ismrmrd_header"][()].decode()
        del hf["ismrmrd_header"]
        hf["ismrmrd_header"] = np.bytes_(re.sub(old, new, header).encode())

    return damage


def _set(key: str, value: Any, index: Any = Ellipsis) -> Callable[[h5py.File, str], None]:
    """A damage that writes ``value`` into ``index`` of a dataset."""

    def damage(hf: h5py.File, target_key: str) -> None:
        dataset = hf[target_key if key == "target" else key]
        dataset[index] = value

    return damage


def _attrs(change: Callable[[Any], None]) -> Callable[[h5py.File, str], None]:
    """A damage of the file attributes."""
    return lambda hf, target_key: change(hf.attrs)


KIND3_TABLE: list[tuple[str, Callable[[h5py.File, str], None]]] = [
    ("target all zero ('max' kept)", _set("target", 0.0)),
    ("target constant ('max' kept)", lambda hf, t: _set("target", float(hf.attrs["max"]))(hf, t)),
    ("target negated ('max' kept)", lambda hf, t: _set("target", -hf[t][()])(hf, t)),
    ("target slice 1 all zero", _set("target", 0.0, 1)),
    ("k-space all zero", _set("kspace", 0.0)),
    ("k-space constant 1", _set("kspace", 1.0)),
    ("k-space one value 3e38", _set("kspace", 3e38, (1, ..., 5, 5))),
    ("k-space one value 1e30", _set("kspace", 1e30, (1, ..., 5, 5))),
    ("k-space one value 1e-45", _set("kspace", 1e-45, (1, ..., 5, 5))),
    ("k-space -0.0 everywhere", _set("kspace", -0.0)),
    ("volume scaled by 1e30 (max too)", _scaled(1e30)),
    ("volume scaled by 1e-30 (max too)", _scaled(1e-30)),
    ("volume scaled by 1e-40 (max too)", _scaled(1e-40)),
    ("k-space complex128", _retyped("kspace", np.complex128)),
    ("target float64", _retyped("target", np.float64)),
    ("target float16", _retyped("target", np.float16)),
    ("k-space chunked + gzip", _rewrite("kspace", chunks=True, compression="gzip")),
    ("target chunked + lzf", _rewrite("target", chunks=True, compression="lzf")),
    ("k-space fletcher32", _rewrite("kspace", chunks=True, fletcher32=True)),
    ("extra 'mask' dataset", lambda hf, t: hf.create_dataset("mask", data=np.ones(16, bool))),
    ("extra 'mask' of another width", lambda hf, t: hf.create_dataset("mask", data=np.ones(7, bool))),
    (
        "the other challenge's target too",
        lambda hf, t: hf.create_dataset(
            "reconstruction_rss" if t == "reconstruction_esc" else "reconstruction_esc",
            data=np.zeros((2, 8, 8), np.float32),
        ),
    ),
    ("header ints with spaces", _header_edit(r"<x>(\d+)</x>", r"<x> \1 </x>")),
    ("header ints with '+'", _header_edit(r"<y>(\d+)</y>", r"<y>+\1</y>")),
    (
        "header center shifted by 1",
        _header_edit(r"(<kspace_encoding_step_1>.*?<center>)(\d+)", lambda m: f"{m[1]}{int(m[2]) - 1}"),
    ),
    (
        "header maximum reduced by 1",
        _header_edit(r"(<kspace_encoding_step_1>.*?<maximum>)(\d+)", lambda m: f"{m[1]}{int(m[2]) - 1}"),
    ),
    ("no 'norm' attribute", _attrs(lambda a: a.__delitem__("norm"))),
    ("'max' float32", _attrs(lambda a: a.__setitem__("max", np.float32(a["max"])))),
    ("'max' as a 1-element list attribute", _attrs(lambda a: a.__setitem__("max", [float(a["max"])]))),
    ("attribute 'padding_left' = -5", _attrs(lambda a: a.__setitem__("padding_left", -5))),
    ("attribute 'recon_size' = [1, 1]", _attrs(lambda a: a.__setitem__("recon_size", [1, 1]))),
    ("attribute 'encoding_size' = 'x'", _attrs(lambda a: a.__setitem__("encoding_size", "x"))),
]


def _reader_verdicts(folder: Path, challenge: str, quick: bool) -> list[Verdict]:
    """Every reader of a folder that data check passed: each must read it cleanly."""
    info = inspect_volume(next(folder.glob("*.h5")), challenge, check_values=True)
    readers: dict[str, Callable[[], str | None]] = {
        "FastMRISliceDataset": lambda: slice_problem(read_all(folder, challenge), True),
        "FastMRISliceDataset(on_bad_file='skip')": lambda: _skip_problem(folder, challenge, info.num_slices),
        "env": lambda: env_metric_problem(env_numbers(folder, challenge)),
    }
    if not quick:
        readers["batched env"] = lambda: _batched_env_problem(folder, challenge)
        readers["eval-recon (zero_filled)"] = lambda: rows_problem(eval_recon_rows(folder, challenge))
    verdicts = []
    for name, read in readers.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                problem = read()
        except (ValueError, OSError) as error:
            verdicts.append(
                Verdict(SILENT, f"data check passes; {name} refuses it: {type(error).__name__}: {one_line(error)}")
            )
            continue
        except Exception as error:
            verdicts.append(escaped(error, f"data check passes; {name}: "))
            continue
        verdicts.append(Verdict(SILENT, f"data check passes; {name}: {problem}") if problem else Verdict(CORRECT))
    return verdicts


def _skip_problem(folder: Path, challenge: str, slices: int) -> str | None:
    """A problem when ``on_bad_file='skip'`` leaves anything out of a file data check passed."""
    dataset = FastMRISliceDataset(folder, challenge, on_bad_file="skip")
    if dataset.skipped or len(dataset) != slices:
        first = one_line(dataset.skipped[:1])
        return f"skips {len(dataset.skipped)} item(s) ({first}); {len(dataset)} of {slices} slices kept"
    return None


def _batched_env_problem(folder: Path, challenge: str) -> str | None:
    """A problem when the batched env gives non-finite rewards or metrics on the folder."""
    env = gym.make_vec(
        ENV_ID,
        num_envs=2,
        vectorization_mode="vector_entry_point",
        data_path=folder,
        challenge=challenge,
        budget=2,
        initial_lines=2,
    )
    _, info = env.reset(seed=0)
    numbers = [float(x) for m in METRIC_NAMES for x in info[m]]
    for _ in range(3):
        _, rewards, _, _, info = env.step(np.argmax(info["action_mask"], axis=1))
        numbers += [float(x) for x in rewards] + [float(x) for m in METRIC_NAMES for x in info[m]]
    return non_finite(numbers, "rewards/metrics")


def data_check_then_readers(path: Path, challenge: str, quick: bool) -> Verdict:
    """Data check's verdict on a file (the strict mode ``mri-rl data check`` runs); when it passes the
    file, the readers' verdicts."""
    try:
        info = inspect_volume(path, challenge, True, check_values=True, keep_bad_slices=True)
    except FastMRIDataError as error:
        return named(f"data check: {error}", [path.name])
    except Exception as error:
        return escaped(error, "data check: ")
    if info.bad_slices:
        return named(f"data check: {len(info.bad_slices)} bad slice(s): {info.bad_slices[0]}", [path.name])
    return worst(_reader_verdicts(path.parent, challenge, quick))


#: 9 bytes that, written at offset 20665 of the single-coil fixture volume (seed 0), make HDF5 loop forever
#: when the file's attributes are read (found by random overwrites).
HANG_PATCH = (20665, b"dq\xfb\x1bc\xeaiL\x1e")


def _hang_case(ws: Workspace) -> Verdict:
    """The volume with :data:`HANG_PATCH`: data check and the readers must still answer."""
    offset, patch = HANG_PATCH
    data = bytearray(ws.volume().read_bytes())
    data[offset : offset + len(patch)] = patch
    path = ws.case_dir() / f"damaged_at{offset}+{len(patch)}_volume.h5"
    path.write_bytes(bytes(data))
    return data_check_then_readers(path, "singlecoil", ws.quick)


def kind3_cases(ws: Workspace) -> list[Case]:
    """The files of :data:`KIND3_TABLE`, random byte overwrites and truncations, through data check and the readers."""
    cases = []
    challenges = ["singlecoil"] if ws.quick else ["singlecoil", "multicoil"]
    for challenge in challenges:
        for label, damage in KIND3_TABLE:
            cases.append(
                Case(
                    3,
                    f"{challenge}: {label}",
                    lambda c=challenge, d=damage: data_check_then_readers(
                        damaged_copy(ws, c, d, "volume.h5"), c, ws.quick
                    ),
                )
            )
    rng = np.random.default_rng(ws.seed)
    for index in range(30 if ws.quick else 100):
        challenge = challenges[index % len(challenges)]
        seed = int(rng.integers(2**32))
        cases.append(
            Case(
                3,
                f"{challenge}: random bytes overwritten (seed {seed})",
                lambda c=challenge, s=seed: data_check_then_readers(
                    byte_damaged_copy(ws.volume(c), ws.case_dir(), np.random.default_rng(s)), c, ws.quick
                ),
                timeout=60,
            )
        )
    cases.append(
        Case(3, "singlecoil: 9 bytes at offset 20665 (attribute heap), where HDF5 loops", partial(_hang_case, ws), 30)
    )
    for fraction in (0.5, 0.9, 0.99, 0.999):
        cases.append(
            Case(
                3,
                f"singlecoil: truncated to {fraction:g}",
                lambda f=fraction: data_check_then_readers(
                    byte_damaged_copy(ws.volume(), ws.case_dir(), rng, truncate=f), "singlecoil", ws.quick
                ),
                timeout=60,
            )
        )
    return cases


# ============================================================== kind 4: damaged checkpoints
def _save(content: dict[str, Any], path: Path, checksum: bool = True) -> Path:
    """Write a checkpoint with the package's own writer (a valid checksum), or plain ``torch.save``."""
    from mri_rl import checkpointing

    contents = {k: v for k, v in content.items() if k != "checksum"}
    if checksum and hasattr(checkpointing, "save_checkpoint"):
        return checkpointing.save_checkpoint(contents, path)
    torch.save(contents if not checksum else content, path)
    return path


def _first_tensor_key(state: dict[str, Any]) -> str:
    """The first floating-point weight of a state dict with at least 2 dimensions."""
    return next(k for k, v in state.items() if isinstance(v, torch.Tensor) and v.is_floating_point() and v.ndim >= 2)


def _tensor_variants() -> list[tuple[str, Callable[[torch.Tensor], Any]]]:
    """Ways to damage one weight tensor: (label, change)."""
    return [
        ("transposed", lambda t: t.transpose(0, 1).contiguous()),
        ("an extra dim", lambda t: t[None]),
        ("empty", lambda t: t[:0]),
        ("float64", lambda t: t.double()),
        ("int64", lambda t: t.long()),
        ("bool", lambda t: t.bool()),
        ("complex64", lambda t: t.to(torch.complex64)),
        ("one NaN", lambda t: t.clone().view(-1).index_fill_(0, torch.tensor([0]), math.nan).view(t.shape)),
        ("one Inf", lambda t: t.clone().view(-1).index_fill_(0, torch.tensor([0]), math.inf).view(t.shape)),
        ("all NaN", lambda t: torch.full_like(t, math.nan)),
        ("a list", lambda t: t.tolist()),
    ]


TOP_LEVEL_VALUES: list[tuple[str, Any]] = [("None", None), ("3", 3), ("'x'", "x"), ("[]", []), ("{}", {})]


def checkpoint_variants(kind: str, original: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """(label, contents) of degenerate checkpoints: every top-level key deleted or of a wrong type, a weight
    tensor of the wrong shape, dtype or values, and a few semantic ones; None: without its checksum."""
    base = {k: v for k, v in original.items() if k != "checksum"}
    for key in base:
        yield f"'{key}' deleted", {k: v for k, v in base.items() if k != key}
        for label, value in TOP_LEVEL_VALUES:
            yield f"'{key}' = {label}", {**base, key: value}
    state = base["state_dict"] if kind == "reconstructor" else base["state"]["q_network"]
    name = _first_tensor_key(state)
    for label, change in _tensor_variants():
        changed = {**state, name: change(state[name])}
        yield f"weight '{name}' {label}", _with_state(base, kind, changed)
    yield f"weight '{name}' missing", _with_state(base, kind, {k: v for k, v in state.items() if k != name})
    yield "an extra weight", _with_state(base, kind, {**state, "extra.weight": torch.zeros(3)})
    yield from _semantic_variants(kind, base)
    yield "no checksum (plain torch.save)", None


def _with_state(base: dict[str, Any], kind: str, state: dict[str, Any]) -> dict[str, Any]:
    """``base`` with the weights (agent: its Q-network's) replaced by ``state``."""
    if kind == "reconstructor":
        return {**base, "state_dict": state}
    return {**base, "state": {**base["state"], "q_network": state}}


def _semantic_variants(kind: str, base: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Contents of the right types but wrong meaning (sizes, kinds, settings, counters)."""
    if kind == "reconstructor":
        chans: tuple[Any, ...] = (0, -1, "x", 2.5, 10**6)
        for value in chans:
            yield f"hparams chans = {value!r}", {**base, "hparams": {**base["hparams"], "chans": value}}
        sizes: tuple[Any, ...] = ([0, 0], [-16, 16], [16], "x", [16.5, 16])
        for value in sizes:
            yield f"recon_size = {value!r}", {**base, "recon_size": value}
        yield "challenge = 'x'", {**base, "challenge": "x"}
        yield "kind = 'varnet' (U-Net weights)", {**base, "kind": "varnet"}
        yield "normalization = 'x'", {**base, "normalization": "x"}
        yield "format = 'mri_rl.agent'", {**base, "format": "mri_rl.agent"}
        return
    settings = base["settings"]
    pairs: tuple[tuple[str, Any], ...] = (
        ("gamma", 2.0),
        ("net_arch", [0]),
        ("learning_rate", math.nan),
        ("unknown", 1),
        ("batch_size", 0),
    )
    for key, value in pairs:
        yield f"settings {key} = {value!r}", {**base, "settings": {**settings, key: value}}
    yield "algorithm = 'reinforce'", {**base, "algorithm": "reinforce"}
    yield "algorithm = 'x'", {**base, "algorithm": "x"}
    for value in (0, -1, 3):
        yield f"action_space n = {value}", {**base, "action_space": {**base["action_space"], "n": value}}
    yield "observation_space type = 'x'", {**base, "observation_space": {"type": "x"}}
    yield "counters num_timesteps = -1", {**base, "counters": {**base["counters"], "num_timesteps": -1}}
    yield "counters num_timesteps = 'x'", {**base, "counters": {**base["counters"], "num_timesteps": "x"}}
    yield "rng numpy state = 'x'", {**base, "rng": {**base["rng"], "numpy": {**base["rng"]["numpy"], "state": "x"}}}
    yield "rng torch = zeros(3)", {**base, "rng": {**base["rng"], "torch": torch.zeros(3, dtype=torch.uint8)}}
    yield "episode_returns NaN", {**base, "episode_returns": torch.tensor([math.nan], dtype=torch.float64)}
    yield "optimizer state NaN", _nan_optimizer(base)
    yield "format = 'mri_rl.reconstructor'", {**base, "format": "mri_rl.reconstructor"}


def _nan_optimizer(base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with NaN in the optimiser's state."""
    optimizer = base["state"]["optimizer"]
    states = {
        k: {n: torch.full_like(v, math.nan) if v.is_floating_point() and v.ndim else v for n, v in s.items()}
        for k, s in optimizer["state"].items()
    }
    return {**base, "state": {**base["state"], "optimizer": {**optimizer, "state": states}}}


def used(use: Callable[[], str | None]) -> str | Verdict | None:
    """The check of a loaded model: ``use()``'s problem; a ValueError there means the loader accepted
    contents that only fail at use (silent), another exception is a traceback."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return use()
    except ValueError as error:
        return Verdict(
            SILENT, f"loads without complaint, refused only when used: {type(error).__name__}: {one_line(error)}"
        )
    except Exception as error:
        return escaped(error, "loads without complaint, then when used: ")


def _agent_use_problem(agent: Any, ws: Workspace) -> str | None:
    """A loaded agent must act: finite weights, a legal action for an observation of its env."""
    modules = [v for v in vars(agent).values() if isinstance(v, torch.nn.Module)]
    if any(not bool(torch.isfinite(p).all()) for m in modules for p in m.parameters()):
        return "loaded with non-finite weights"
    env = ActiveAcquisitionEnv(ws.data_root() / "singlecoil_test", budget=2, initial_lines=2)
    obs, info = env.reset(seed=0)
    action, _ = agent.predict(obs, action_mask=info["action_mask"].astype(bool))
    width = env.episodes.width
    return None if 0 <= int(action) < width else f"acts {action}, outside [0, {width})"


def _reconstructor_use_problem(model: Any, ws: Workspace) -> str | None:
    """A loaded reconstructor must reconstruct: finite weights and finite rewards in the env."""
    if any(not bool(torch.isfinite(p).all()) for p in model.parameters()):
        return "loaded with non-finite weights"
    return env_metric_problem(env_numbers(ws.data_root() / "singlecoil_test", reconstructor=model))


#: Degenerate contents no loader should accept even when the model still runs: (part of the label, why).
MUST_REFUSE = {
    "int64": "weights stored as int64 (cast to float without a word)",
    "bool": "weights stored as bool (cast to 0/1 floats without a word)",
    "complex64": "complex weights (the imaginary part dropped without a word)",
    "'version'": "an unknown or missing format version (the loader ignores the version)",
    "normalization": "an input normalization other than the model's (the loader ignores it)",
    "num_timesteps = -1": "a negative step counter",
    "episode_returns NaN": "NaN in the saved episode returns",
}


def refusal_reason(label: str) -> str | None:
    """Why a loader must refuse the variant ``label`` (see :data:`MUST_REFUSE`), or None."""
    return next((why for part, why in MUST_REFUSE.items() if part in label), None)


def _weights_of(kind: str, checkpoint_or_model: Any) -> dict[str, torch.Tensor]:
    """The weights a checkpoint holds, or a loaded model (agent: its Q-network) has."""
    if isinstance(checkpoint_or_model, dict):
        return (
            checkpoint_or_model["state_dict"] if kind == "reconstructor" else checkpoint_or_model["state"]["q_network"]
        )
    model = checkpoint_or_model.q_network if kind == "agent" else checkpoint_or_model
    return model.state_dict()


def _same_weights(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> bool:
    """Bitwise equal state dicts (NaN included)."""
    bits = lambda t: (t.dtype, tuple(t.shape), t.detach().cpu().contiguous().reshape(-1).view(torch.uint8))  # noqa: E731
    return first.keys() == second.keys() and all(
        bits(first[k])[:2] == bits(second[k])[:2] and torch.equal(bits(first[k])[2], bits(second[k])[2]) for k in first
    )


def _load_and_use(
    kind: str, path: Path, ws: Workspace, loader: str, refuse: str | None = None, reference: dict | None = None
) -> Verdict:
    """Load a damaged checkpoint through ``loader``: a clear error, or a model that works (with exactly the
    ``reference`` weights when given); contents with a ``refuse`` reason must not load at all."""
    if loader == "cli":
        root, out = ws.data_root(), ws.case_dir() / "out"
        if kind == "agent":
            argv = ["evaluate", "--data", root, "--out", out, *EVAL_ARGS[2:], "--policies", f"p={path}"]
        else:
            argv = ["eval-recon", "--data", root, "--challenge", "singlecoil", "--reconstructor", path]
        return judge_cli(argv, [path.name])
    if kind == "agent":
        load = _api("mri_rl.agents", "DQN").load if loader == "DQN.load" else _api(
            "mri_rl.evaluation.evaluate", "load_agent"
        )  # fmt: skip
    else:
        load = _api("mri_rl.reconstruct", "load_reconstructor")
    use = _agent_use_problem if kind == "agent" else _reconstructor_use_problem

    def check(model: Any) -> str | Verdict | None:
        problem = used(lambda: use(model, ws))
        if problem:
            return problem
        if refuse:
            return f"loads {refuse}"
        if reference is not None and not _same_weights(_weights_of(kind, model), reference):
            return "loads with weights other than the saved ones: the damage went unnoticed"
        return None

    return judge_call(lambda: load(path), [path.name], check=check)


def _variant_file(ws: Workspace, kind: str, contents: dict[str, Any] | None) -> Path:
    """``contents`` written with a valid checksum (None: the original, without one)."""
    source = ws.agent() if kind == "agent" else ws.reconstructor()
    path = ws.case_dir() / f"degenerate_{source.name}"
    original = torch.load(source, weights_only=True)
    return _save(original, path, checksum=False) if contents is None else _save(contents, path)


def _variant_case(
    ws: Workspace, kind: str, contents: dict[str, Any] | None, loader: str, refuse: str | None
) -> Verdict:
    """Write a degenerate checkpoint and load it."""
    return _load_and_use(kind, _variant_file(ws, kind, contents), ws, loader, refuse)


def _bytes_case(ws: Workspace, kind: str, seed: int, loader: str, truncate: float | None = None) -> Verdict:
    """A copy with random bytes overwritten (or truncated): refused, or loaded with the original weights."""
    source = ws.agent() if kind == "agent" else ws.reconstructor()
    damaged = byte_damaged_copy(source, ws.case_dir(), np.random.default_rng(seed), truncate)
    reference = _weights_of(kind, torch.load(source, weights_only=True))
    return _load_and_use(kind, damaged, ws, loader, reference=reference)


def kind4_cases(ws: Workspace) -> list[Case]:
    """Degenerate contents, random byte damage and truncation of an agent and a reconstructor, and Lightning resume."""
    cases = []
    rng = np.random.default_rng(ws.seed + 4)
    for kind, source in (("agent", ws.agent()), ("reconstructor", ws.reconstructor())):
        loaders = ["DQN.load", "evaluation.load_agent"] if kind == "agent" else ["load_reconstructor"]
        for index, (label, contents) in enumerate(checkpoint_variants(kind, torch.load(source, weights_only=True))):
            loader = "cli" if "'record'" in label else loaders[index % len(loaders)]
            run = partial(_variant_case, ws, kind, contents, loader, refusal_reason(label))
            cases.append(Case(4, f"{kind}: {label} -> {loader}", run))
        for index in range(10 if ws.quick else 30):
            seed, loader = int(rng.integers(2**32)), loaders[index % len(loaders)]
            run = partial(_bytes_case, ws, kind, seed, loader)
            cases.append(Case(4, f"{kind}: random bytes overwritten (seed {seed}) -> {loader}", run, timeout=60))
        for fraction in (0.0, 0.5, 0.99):
            run = partial(_bytes_case, ws, kind, 0, loaders[0], fraction)
            cases.append(Case(4, f"{kind}: truncated to {fraction:g} -> {loaders[0]}", run, timeout=60))
        cases.append(Case(4, f"{kind}: random bytes -> cli", partial(_bytes_case, ws, kind, ws.seed, "cli")))
        cases.append(Case(4, f"{kind}: weight NaN -> cli", partial(_nan_weight_case, ws, kind)))
    return cases + _lightning_damage_cases(ws)


def _nan_weight_case(ws: Workspace, kind: str) -> Verdict:
    """A checkpoint with one NaN weight (and a valid checksum) through the command line."""
    original = torch.load(ws.agent() if kind == "agent" else ws.reconstructor(), weights_only=True)
    contents = dict(checkpoint_variants(kind, original))[f"weight '{_weights_name(kind, original)}' one NaN"]
    return _load_and_use(kind, _variant_file(ws, kind, contents), ws, "cli")


def _weights_name(kind: str, original: dict[str, Any]) -> str:
    """The name of the weight :func:`checkpoint_variants` damages."""
    return _first_tensor_key(original["state_dict"] if kind == "reconstructor" else original["state"]["q_network"])


def _lightning_damage_cases(ws: Workspace) -> list[Case]:
    """``train-recon --resume`` from a damaged ``last.ckpt``."""

    def resume(damage: str) -> Verdict:
        run = ws.copy_run(ws.recon_run())
        last = run / "checkpoints" / "last.ckpt"
        if damage == "truncated":
            last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
        elif damage == "random bytes":
            shutil.copyfile(byte_damaged_copy(last, ws.case_dir(), np.random.default_rng(ws.seed)), last)
        else:  # NaN weights, saved with a valid checksum
            contents = torch.load(last, weights_only=True)
            state = contents["state_dict"]
            name = _first_tensor_key(state)
            _save({**contents, "state_dict": {**state, name: torch.full_like(state[name], math.nan)}}, last)
        argv = ["train-recon", "--data", ws.data_root(), *RECON_ARGS, "--max-epochs", "2", "--out", run, "--resume"]
        return judge_cli(argv, ["last.ckpt"])

    damages = ["truncated"] if ws.quick else ["truncated", "random bytes", "NaN weights"]
    return [
        Case(4, f"Lightning last.ckpt {d} -> cli train-recon --resume", lambda d=d: resume(d), 180) for d in damages
    ]


# ====================================================================== kind 5: bad values
def _synth_problem(spec: Any, ws: Workspace) -> str | None:
    """A spec that was accepted must write volumes that data check passes."""
    folder = ws.case_dir()
    paths = write_synthetic_dataset(folder, spec, {"train": 1}, seed=0, progress=False)
    for path in paths:
        try:
            inspect_volume(path, spec.challenge, check_values=True)
        except FastMRIDataError as error:
            return f"writes a volume data check refuses: {one_line(error.problem)}"
    return None


SPEC_VALUES: dict[str, list[Any]] = {
    "noise_level": [math.nan, math.inf, -1.0, 1e308, 1e30, "0.1", None, True],
    "size": [0, -1, 2.5, 7, math.nan, "16", None, True, np.int64(16)],
    "num_slices": [0, -1, 2.5, None, True, np.int8(2)],
    "num_coils": [0, 1, 2.5, -3],
    "padding": [-1, 8, 2.5],
    "kspace_width": [8, 2.5, 0],
    "striation": [math.nan, -1.0, math.inf, 1e308],
}


def _spec_cases(ws: Workspace) -> list[Case]:
    """``SyntheticSpec`` with each value of :data:`SPEC_VALUES`."""
    cases = []
    for field_name, values in SPEC_VALUES.items():
        for value in values:
            challenge = "multicoil" if field_name == "num_coils" else "singlecoil"

            def run(f: str = field_name, v: Any = value, c: str = challenge) -> Verdict:
                options = {"challenge": c, "num_slices": 2, "size": 16, f: v}
                check = lambda spec: _synth_problem(spec, ws)  # noqa: E731
                if is_numpy_int(v):
                    return judge_valid(lambda: SyntheticSpec(**options), check)
                return judge_call(lambda: SyntheticSpec(**options), [f], check=check)

            cases.append(Case(5, f"SyntheticSpec({field_name}={value!r})", run))
    return cases


ENV_VALUES: dict[str, list[Any]] = {
    "budget": [2.5, math.nan, 0, -1, True, "3", np.int64(3), 10**9],
    "initial_lines": [0, 16, 2.5, math.nan, True, -1, np.int8(2)],
    "reward_metric": ["SSIM", "", None],
    "slice_cache_mb": [math.nan, -1, math.inf],
    "look_ahead_batch_size": [0, 2.5],
    "device": ["cuda:7", "tpu", "", "mps"],
    "column_spectrum": ["yes", 1, None],
    "column_energy": ["yes", 1, None],
    "on_bad_file": ["ignore"],
    "challenge": ["multicoil"],
    "kspace_shape": [(32, 15), (1, 2, 3), "32x16"],
}


def _env_value_case(folder: Path, key: str, value: Any) -> Verdict:
    """The single env with one option (or task field) set to ``value``; a numpy integer count is valid."""
    options = {"challenge": "singlecoil", key: value}

    def run() -> list[float]:
        return env_numbers(folder, **options)

    if is_numpy_int(value):
        return judge_valid(run, env_metric_problem)
    return judge_call(run, [(key, str(value))], check=env_metric_problem)


def _reset_index_case(folder: Path, value: Any) -> Verdict:
    """``reset(options={"index": value})``: an integer slice index (numpy's too), never a bool."""

    def run() -> Any:
        return ActiveAcquisitionEnv(folder, budget=2, initial_lines=2).reset(seed=0, options={"index": value})

    if is_numpy_int(value):
        return judge_valid(run)
    bool_problem = "accepted a bool as the slice index" if isinstance(value, bool) else None
    return judge_call(run, ["index"], check=lambda result: bool_problem)


def _env_value_cases(ws: Workspace) -> list[Case]:
    """The env with each value of :data:`ENV_VALUES`, the batched env's count, ``reset``'s index."""
    folder = lambda: ws.data_root() / "singlecoil_train"  # noqa: E731
    cases = [
        Case(5, f"env {key}={value!r}", lambda k=key, v=value: _env_value_case(folder(), k, v))
        for key, values in ENV_VALUES.items()
        for value in values
    ]
    for value in (0, -1, 2.5, True):
        make = lambda v=value: gym.make_vec(  # noqa: E731
            ENV_ID, num_envs=v, vectorization_mode="vector_entry_point", data_path=folder()
        )
        cases.append(Case(5, f"batched env num_envs={value!r}", lambda m=make: judge_call(m, ["num_envs"])))
    cases += [
        Case(5, f"reset options index={value!r}", lambda v=value: _reset_index_case(folder(), v))
        for value in (-1, 3, 2.5, "0", True, np.int8(1))
    ]
    return cases


def _step_single(action: Any, folder: Path) -> tuple[Any, ...]:
    """One step of ``action`` from slice 0 of a fresh single env."""
    env = ActiveAcquisitionEnv(folder, budget=4, initial_lines=2)
    env.reset(seed=0, options={"index": 0})
    return env.step(action)


def _step_batched(actions: Any, folder: Path) -> tuple[Any, ...]:
    """One step of ``actions`` from a fresh batched env of 2 episodes."""
    env = gym.make_vec(
        ENV_ID, num_envs=2, vectorization_mode="vector_entry_point", data_path=folder, budget=4, initial_lines=2
    )
    env.reset(seed=0)
    return env.step(actions)


def _same(first: Any, second: Any) -> bool:
    """Step results alike (nested tuples, dicts and arrays)."""
    if isinstance(first, dict):
        return first.keys() == second.keys() and all(_same(first[k], second[k]) for k in first)
    if isinstance(first, tuple):
        return len(first) == len(second) and all(_same(a, b) for a, b in zip(first, second))
    return bool(np.array_equal(np.asarray(first), np.asarray(second)))


def _like_int64(step: Callable[[Any, Path], Any], action: Any, reference: Any, folder: Path) -> Verdict:
    """An integer action of any numpy dtype must act exactly as the same int64."""
    expected = step(reference, folder)
    return judge_call(
        lambda: step(action, folder),
        ["action"],
        check=lambda got: None if _same(got, expected) else (f"acts unlike int64: reward {got[1]} vs {expected[1]}"),
    )


INT_DTYPES = (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.intp, np.longlong)
BAD_ACTIONS: list[tuple[str, Any]] = [
    ("np.array([1, 2])", np.array([1, 2])),
    ("[[3]]", [[3]]),
    ("np.zeros((1, 1), int)", np.zeros((1, 1), int)),
    ("[]", []),
    ("np.array([])", np.array([])),
    ("2.0", 2.0),
    ("nan", math.nan),
    ("True", True),
    ("np.True_", np.True_),
    ("-1", -1),
    ("16", 16),
    ("2**70", 2**70),
    ("np.uint64(2**64 - 1)", np.uint64(2**64 - 1)),
    ("'3'", "3"),
    ("None", None),
    ("3+0j", 3 + 0j),
]
BAD_BATCH_ACTIONS: list[tuple[str, Any]] = [
    ("shape (1,)", np.array([3])),
    ("shape (2, 1)", np.array([[3], [4]])),
    ("shape (1, 2)", np.array([[3, 4]])),
    ("shape (3,)", np.array([3, 4, 5])),
    ("0-d", np.array(3)),
    ("floats", np.array([3.0, 4.0])),
    ("bools", np.array([True, False])),
    ("[3, 16]", np.array([3, 16])),
    ("[3, -1]", np.array([3, -1])),
    ("list with a bool [3, True]", [3, True]),
]


def _action_cases(ws: Workspace) -> list[Case]:
    """Bad actions, numpy integer actions of every dtype (must act as int64), bad look-ahead candidates."""
    folder = lambda: ws.data_root() / "singlecoil_train"  # noqa: E731
    cases = [
        Case(
            5,
            f"single env action {label}",
            lambda a=action: judge_call(
                lambda: _step_single(a, folder()), ["action"], check=lambda r: non_finite([r[1]], "reward")
            ),
        )
        for label, action in BAD_ACTIONS
    ]
    cases += [
        Case(
            5,
            f"batched env actions {label}",
            lambda a=action: judge_call(
                lambda: _step_batched(a, folder()), ["action"], check=lambda r: non_finite(list(r[1]), "rewards")
            ),
        )
        for label, action in BAD_BATCH_ACTIONS
    ]
    for dtype in INT_DTYPES:
        cases.append(
            Case(
                5,
                f"single env action np.{dtype.__name__}(5)",
                lambda d=dtype: _like_int64(_step_single, d(5), np.int64(5), folder()),
            )
        )
        cases.append(
            Case(
                5,
                f"batched env actions {dtype.__name__} [5, 6]",
                lambda d=dtype: _like_int64(
                    _step_batched, np.array([5, 6], dtype=d), np.array([5, 6], dtype=np.int64), folder()
                ),
            )
        )
    for label, candidates in (
        ("[1.5]", [1.5]),
        ("[-1]", [-1]),
        ("[[1]]", [[1]]),
        ("empty floats", np.array([], float)),
    ):
        cases.append(
            Case(5, f"look_ahead candidates {label}", lambda c=candidates: judge_call(lambda: _look_ahead(c, folder())))
        )
    return cases


def _look_ahead(candidates: Any, folder: Path) -> np.ndarray:
    """``look_ahead(candidates)`` of a fresh single env."""
    env = ActiveAcquisitionEnv(folder, budget=2, initial_lines=2)
    env.reset(seed=0)
    return env.look_ahead(candidates)


#: Values of ``EvaluationSetup`` and of ``evaluate_reconstructor``'s keywords.
SETUP_VALUES: dict[str, list[Any]] = {
    "batch_size": [0, -1, 2.5, math.nan, True, "4"],
    "seeds": [[], [-1], [0, 0], "0", [1.5]],
    "lbcs_slices": [0],
    "device": ["cuda:7", "tpu"],
    "split": ["dev"],
}
EVAL_RECON_VALUES: dict[str, list[Any]] = {
    "batch_size": [0, -1, 2.5, math.nan, True],
    "seed": [-1, 2.5],
    "device": ["cuda:7"],
}
AGENT_SETTINGS: list[tuple[str, Any]] = [
    ("learning_rate", math.nan),
    ("learning_rate", -1.0),
    ("learning_rate", 0.0),
    ("learning_rate", "1e-3"),
    ("gamma", 1.5),
    ("gamma", math.nan),
    ("batch_size", 0),
    ("batch_size", 2.5),
    ("net_arch", []),
    ("net_arch", [0]),
    ("net_arch", [-1]),
    ("net_arch", "64"),
    ("buffer_size", 0),
    ("tau", 0.0),
    ("exploration_fraction", math.inf),
]


def _other_value_cases(ws: Workspace) -> list[Case]:
    """Agent settings, ``EvaluationSetup``, ``evaluate_reconstructor`` keywords and ``data_range``."""
    from mri_rl.agents import DQN

    cases = [
        Case(
            5,
            f"DQN({key}={value!r})",
            lambda k=key, v=value: judge_call(lambda: DQN(gym.make("CartPole-v1"), **{k: v}), [k]),
        )
        for key, value in AGENT_SETTINGS
    ]
    for key, values in SETUP_VALUES.items():
        for value in values:
            cases.append(
                Case(
                    5,
                    f"EvaluationSetup({key}={value!r})",
                    lambda k=key, v=value: judge_call(
                        lambda: _api("mri_rl.evaluation.evaluate", "EvaluationSetup")(data=ws.data_root(), **{k: v}),
                        [k],
                    ),
                )
            )
    for key, values in EVAL_RECON_VALUES.items():
        for value in values:
            cases.append(
                Case(
                    5,
                    f"evaluate_reconstructor({key}={value!r})",
                    lambda k=key, v=value: judge_call(lambda: _eval_recon_with(ws, **{k: v}), [k], check=rows_problem),
                )
            )
    for value in (0.0, -1.0, math.nan, math.inf):
        cases.append(
            Case(5, f"data_range({value})", lambda v=value: judge_call(lambda: data_range(v, torch.ones(2)), []))
        )
    return cases


def _eval_recon_with(ws: Workspace, **options: Any) -> list[dict[str, Any]]:
    """``evaluate_reconstructor`` of zero-filled on the val split with ``options``."""
    from mri_rl.reconstruct.train import evaluate_reconstructor
    from mri_rl.reconstruct.training_masks import build_mask_sampler
    from mri_rl.task import DEFAULT_TASK

    masks = {"initial": build_mask_sampler({"kind": "acquisition", "budget": 0}, DEFAULT_TASK)}
    return evaluate_reconstructor("zero_filled", ws.data_root(), "singlecoil", "val", masks, **options)


def kind5_cases(ws: Workspace) -> list[Case]:
    """Bad values through the Python API."""
    return _spec_cases(ws) + _env_value_cases(ws) + _action_cases(ws) + _other_value_cases(ws)


# ================================================================== kind 6: paths and files
def _outside_writes(base: Path, out: Path) -> str | None:
    """Files written under ``base`` but outside ``out``."""
    stray = [p for p in base.rglob("*") if p.is_file() and out not in p.parents]
    return f"wrote outside the output folder: {[str(p.relative_to(base)) for p in stray[:5]]}" if stray else None


def _policy_name_case(ws: Workspace, name: str) -> Verdict:
    """``evaluate --policies NAME=CHECKPOINT``: the name names files inside the output folder."""
    base = ws.case_dir()
    out = base / "deep" / "out"

    def check(run: CliRun) -> str | None:
        return _outside_writes(base, out) or finite_output(run)

    argv = ["evaluate", "--data", ws.data_root(), "--out", out, *EVAL_ARGS[2:], "--policies", f"{name}={ws.agent()}"]
    return judge_cli(argv, [(name, repr(name)[1:-1])] if name.strip() else ["policy"], check)


POLICY_NAMES = ["../evil", "a/b", "..", ".hidden", "/tmp/absolute", "a\\b", "", " ", "name with space", "ok-name_1.0"]


def _mode_problems(root: Path, umask: int) -> str | None:
    """Files and folders under ``root`` whose mode is not what ``open``/``mkdir`` give under ``umask``."""
    wrong = []
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        wanted = (0o777 if path.is_dir() else 0o666) & ~umask
        if mode != wanted:
            wrong.append(f"{path.relative_to(root.parent)} {mode:o} (want {wanted:o})")
    return f"modes ignore umask {umask:03o}: {wrong[:4]}{' ...' if len(wrong) > 4 else ''}" if wrong else None


def _umask_case(ws: Workspace, umask: int, what: str) -> Verdict:
    """Write outputs under ``umask``; every file must follow it (atomic writes included)."""
    os.umask(umask)
    out = ws.case_dir() / "out"
    writers: dict[str, Callable[[], Any]] = {
        "data synth": lambda: _must(run_cli(synth_args(out))),
        "evaluate": lambda: _must(run_cli(["evaluate", "--data", ws.data_root(), "--out", out, *EVAL_ARGS])),
        "train": lambda: _must(run_cli(["train", *TRAIN_ARGS, "--out", out])),
        "train-recon": lambda: _must(
            run_cli(["train-recon", "--data", ws.data_root(), *RECON_ARGS, "--max-epochs", "1", "--out", out])
        ),
        "agent.save": lambda: _api("mri_rl.agents", "DQN").load(ws.agent()).save(out / "agent.pt"),
        "export_reconstructor": lambda: _api("mri_rl.reconstruct", "export_reconstructor")(
            _api("mri_rl.reconstruct", "load_reconstructor")(ws.reconstructor()), out / "unet.pt"
        ),
    }
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o777 & ~umask)
    return judge_call(writers[what], [], check=lambda result: _mode_problems(out, umask))


def eval_recon_args(root: Any, reconstructor: Any) -> list[Any]:
    """``mri-rl eval-recon`` of ``reconstructor`` on the single-coil data under ``root``."""
    return ["eval-recon", "--data", root, "--challenge", "singlecoil", "--reconstructor", reconstructor]


def synth_args(out: Path) -> list[Any]:
    """``mri-rl data synth`` of one tiny volume into ``out``."""
    tiny = ["--volumes", "1", "--val-volumes", "0", "--test-volumes", "0", "--slices", "2", "--size", "16"]
    return ["data", "synth", out, *tiny, "--no-progress"]


def _unwritable_cases(ws: Workspace) -> list[Case]:
    """Output folders that cannot be written: under a regular file, a regular file itself, under /proc, and
    (when not root) a folder without write permission."""

    def target(where: str) -> Path:
        base = ws.case_dir()
        (base / "a_file").write_text("x")
        if where == "read-only folder":
            (base / "ro").mkdir()
            os.chmod(base / "ro", 0o500)
            return base / "ro" / "out"
        return {
            "under a file": base / "a_file" / "out",
            "a file": base / "a_file",
            "/proc": Path("/proc/bad_inputs_out"),
        }[where]

    commands: dict[str, Callable[[Path], list[Any]]] = {
        "data synth": synth_args,
        "evaluate": lambda out: ["evaluate", "--data", ws.data_root(), "--out", out, *EVAL_ARGS],
        "train": lambda out: ["train", *TRAIN_ARGS, "--out", out],
        "train-recon": lambda out: [
            "train-recon",
            "--data",
            ws.data_root(),
            *RECON_ARGS,
            "--max-epochs",
            "1",
            "--out",
            out,
        ],
    }
    wheres = ["under a file", "a file", "/proc"] + ([] if os.geteuid() == 0 else ["read-only folder"])
    cases = []
    for where in wheres:
        for command, argv in commands.items():
            cases.append(
                Case(
                    6,
                    f"{command} --out {where}",
                    lambda w=where, a=argv: (
                        lambda out: judge_cli(a(out), [out.name], check=lambda run: f"status 0 writing to {out}")
                    )(target(w)),
                )
            )
    return cases


def _data_path_cases(ws: Workspace) -> list[Case]:
    """Folders of data that are not: missing, a file, empty, only other files, an .h5 that is a folder, a
    broken link, a link loop, a FIFO."""

    def folder(kind: str) -> Path:
        base = ws.case_dir() / "data"
        base.mkdir()
        if kind == "missing":
            return base / "no_such_folder"
        makers: dict[str, Callable[[], Any]] = {
            "a file": lambda: None,
            "empty": lambda: None,
            "only .txt files": lambda: (base / "notes.txt").write_text("x"),
            "an .h5 that is a folder": lambda: (base / "x.h5").mkdir(),
            "a broken link x.h5": lambda: (base / "x.h5").symlink_to(base / "nowhere.h5"),
            "a link loop x.h5": lambda: (base / "x.h5").symlink_to(base / "x.h5"),
            "a FIFO x.h5": lambda: os.mkfifo(base / "x.h5"),
            "an unreadable x.h5": lambda: os.chmod(copy_into(ws.volume(), base, "x.h5"), 0o000),
        }
        makers[kind]()
        if kind == "a file":
            (base / "file.h5").write_text("x")
            return base / "file.h5"
        return base

    kinds = [
        "missing",
        "a file",
        "empty",
        "only .txt files",
        "an .h5 that is a folder",
        "a broken link x.h5",
        "a link loop x.h5",
        "a FIFO x.h5",
        "an unreadable x.h5",
    ]
    cases = []
    for kind in kinds:
        cases.append(
            Case(
                6,
                f"data check on {kind}",
                lambda k=kind: (lambda f: judge_cli(["data", "check", f, "--challenge", "singlecoil"], [f.name]))(
                    folder(k)
                ),
            )
        )
        cases.append(
            Case(
                6,
                f"FastMRISliceDataset on {kind}",
                lambda k=kind: (
                    lambda f: judge_call(
                        lambda: read_all(f, "singlecoil"), [f.name], check=lambda items: slice_problem(items, False)
                    )
                )(folder(k)),
            )
        )
    return cases


def _config_path_cases(ws: Workspace) -> list[Case]:
    """``--config`` paths that are not a config."""
    contents = {
        "missing": None,
        "a folder": "DIR",
        "a YAML list": "- 1\n- 2\n",
        "invalid YAML": "a: [1\n",
        "empty": "",
        "binary": "\x00\xff\xfe",
        "a scalar": "3\n",
    }
    cases = []
    for label, text in contents.items():

        def run(t: str | None = text) -> Verdict:
            base = ws.case_dir()
            path = base / "my_config.yaml"
            if t == "DIR":
                path.mkdir()
            elif t is not None:
                path.write_text(t)
            argv = [
                "eval-recon",
                "--data",
                ws.data_root(),
                "--challenge",
                "singlecoil",
                "--reconstructor",
                "zero_filled",
            ]
            return judge_cli([*argv, "--config", path], ["my_config.yaml"])

        cases.append(Case(6, f"--config {label}", run))
    return cases


def kind6_cases(ws: Workspace) -> list[Case]:
    """Policy names, file modes under several umasks, unwritable outputs, data and config paths."""
    cases = [
        Case(6, f"evaluate policy name {name!r}", lambda n=name: _policy_name_case(ws, n)) for name in POLICY_NAMES
    ]
    umasks = [0o027, 0o077] if ws.quick else [0o022, 0o027, 0o077, 0o002]
    writers = ["data synth", "evaluate", "train", "agent.save", "export_reconstructor", "train-recon"]
    for umask in umasks:
        for what in writers if umask == 0o027 or not ws.quick else writers[:3]:
            cases.append(Case(6, f"umask {umask:03o}: {what}", lambda u=umask, w=what: _umask_case(ws, u, w)))
    return cases + _unwritable_cases(ws) + _data_path_cases(ws) + _config_path_cases(ws)


# ======================================================================= kind 7: the CLI
#: Base command lines of kind 7; each row below appends to one (argparse: the last value of a flag wins).
CLI_BASES = {
    "{train}": "train " + " ".join(TRAIN_ARGS) + " --out {out}",
    "{recon}": "train-recon --data {root} " + " ".join(RECON_ARGS) + " --out {out}",
    "{evaluate}": "evaluate --data {root} --out {out} " + " ".join(EVAL_ARGS),
    "{eval_recon}": "eval-recon --data {root} --challenge singlecoil --reconstructor zero_filled",
    "{quickstart}": "quickstart --out {out} --data {out}/data --no-progress",
}
MRI_ENV = f"--env {ENV_ID} --set num_envs=1"
#: (command line, what the one error line must name): a missing path, a file where a folder is expected (and
#: the reverse), bad --set values, bad flags. Placeholders: {out} {file} {dir} {missing} {root} {agent} {unet}.
CLI_TABLE: list[tuple[str, str]] = [
    ("", "COMMAND"),
    ("data", "data"),
    ("data synth {file} --volumes 1 --no-progress", "a_file"),
    ("data synth {file}/sub --volumes 1 --no-progress", "a_file"),
    ("data synth {out} --volumes 1 --slices 2 --size 16 --no-progress --noise 1e308", "noise"),
    ("data synth {out} --volumes 1 --slices 2 --size 16 --no-progress --striation 1e308", "striation"),
    ("data check {missing} --challenge singlecoil", "no_such_thing"),
    ("data check {file} --challenge singlecoil", "a_file"),
    ("data check {root}/singlecoil_train --challenge multicoil", "BAD"),
    ("{train} --out {file}", "a_file"),
    ("{train} --config {missing}", "no_such_thing"),
    ("{train} --config {dir}", "a_dir"),
    ("{train} --set hyperparameters.learning_rate=nan", "learning_rate"),
    ("{train} --set hyperparameters.learning_rate=-1", "learning_rate"),
    ("{train} --set hyperparameters.learning_rate=abc", "learning_rate"),
    ("{train} --set total_steps=0", "total_steps"),
    ("{train} --set hyperparameters=5", "hyperparameters"),
    ("{train} --set nosuchkey=1", "nosuchkey"),
    ("{train} --set novalue", "novalue"),
    ("{train} --total-steps 0", "--total-steps"),
    ("{train} --env-kwargs '{bad'", "--env-kwargs"),
    ("{train} --env-kwargs '[1]'", "--env-kwargs"),
    ("{train} --env Nope-v0", "Nope-v0"),
    ("{train} --agent nope", "nope"),
    ("{train} " + MRI_ENV + """ --env-kwargs '{"data_path": "{missing}"}'""", "no_such_thing"),
    ("{train} " + MRI_ENV + """ --env-kwargs '{"data_path": "{root}/singlecoil_train", "budget": 2.5}'""", "budget"),
    ("{train} --resume", "checkpoint"),
    ("{train} --num-envs 0", "--num-envs"),
    ("{recon} --max-epochs 1 --data {missing}", "no_such_thing"),
    ("{recon} --max-epochs 1 --data {file}", "a_file"),
    ("{recon} --max-epochs 1 --val-data {missing}", "no_such_thing"),
    ("{recon} --max-epochs 1 --out {file}", "a_file"),
    ("{recon} --max-epochs 1 --config {missing}", "no_such_thing"),
    ("{recon} --max-epochs 1 --set optimization.lr=-1", "lr"),
    ("{recon} --max-epochs 1 --set optimization.lr=nan", "lr"),
    ("{recon} --max-epochs 1 --set optimization.lr=abc", "lr"),
    ("{recon} --set trainer.max_epochs=nan", "max_epochs"),
    ("{recon} --max-epochs 1 --set data.batch_size=0", "batch_size"),
    ("{recon} --max-epochs 1 --set model.chans=0", "chans"),
    ("{recon} --max-epochs 1 --set model.kind=[]", "kind"),
    ("{recon} --max-epochs 1 --set masks.train.components=5", "masks"),
    ("{recon} --max-epochs 1 --set masks.train.kind=random", "masks"),
    ("{recon} --max-epochs 1 --set masks.evaluation.4x=5", "masks"),
    ("{recon} --max-epochs 0", "--max-epochs"),
    ("{recon} --max-epochs -1", "--max-epochs"),
    ("{recon} --max-epochs 1 --devices 0", "devices"),
    ("{recon} --max-epochs 1 --accelerator gpu", "gpu"),
    ("{recon} --max-epochs 1 --precision 7", "7"),
    ("{recon} --max-epochs 1 --resume", "last.ckpt"),
    ("{recon} --max-epochs 1 --model varnet", "varnet"),
    ("{eval_recon} --data {missing}", "no_such_thing"),
    ("{eval_recon} --data {file}", "a_file"),
    ("{eval_recon} --reconstructor {missing}", "no_such_thing"),
    ("{eval_recon} --reconstructor {dir}", "a_dir"),
    ("{eval_recon} --reconstructor {file}", "a_file"),
    ("{eval_recon} --reconstructor {agent}", "dqn.pt"),
    ("{eval_recon} --set masks.evaluation.4x.accelerations=[0]", "accelerations"),
    ("{eval_recon} --set masks.evaluation.4x.accelerations={0}", "accelerations"),
    ("{eval_recon} --set 'masks.evaluation.4x={kind: nope}'", "nope"),
    ("{eval_recon} --set masks.evaluation.4x.center_fractions=[2.0]", "center_fractions"),
    ("{eval_recon} --batch-size 0", "--batch-size"),
    ("{eval_recon} --seed 18446744073709551616", "seed"),
    ("{eval_recon} --data {root}/singlecoil_train --split val", "train"),
    ("{evaluate} --data {missing}", "no_such_thing"),
    ("{evaluate} --data {file}", "a_file"),
    ("{evaluate} --out {file}", "a_file"),
    ("{evaluate} --policies lbcs --lbcs-train-data {missing}", "no_such_thing"),
    ("{evaluate} --policies p={missing}", "no_such_thing"),
    ("{evaluate} --policies p={dir}", "a_dir"),
    ("{evaluate} --policies p={file}", "a_file"),
    ("{evaluate} --policies p={unet}", "unet.pt"),
    ("{evaluate} --policies bogus", "bogus"),
    ("{evaluate} --policies random random", "random"),
    ("{evaluate} --device cuda:9", "cuda:9"),
    ("{evaluate} --device tpu", "tpu"),
    ("{evaluate} --reconstructor {missing}", "no_such_thing"),
    ("{evaluate} --seeds 0 0", "seeds"),
    ("{evaluate} --budget 0", "--budget"),
    ("{evaluate} --initial-lines 16", "initial_lines"),
    ("{evaluate} --data {root}/singlecoil_test --split val", "val"),
    ("{quickstart} --config {missing}", "no_such_thing"),
    ("{quickstart} --set data.size=2", "size"),
    ("{quickstart} --set task.budget=0", "budget"),
    ("{quickstart} --set evaluation.policies=[bogus]", "bogus"),
    ("{quickstart} --set agents.dqn.config=nope", "nope"),
    ("{quickstart} --set reconstructor.max_epochs=0", "max_epochs"),
    ("{quickstart} --set 'reconstructor.model={chans: -1}'", "chans"),
    ("{quickstart} --set 'agents.dqn.hyperparameters={gamma: 7}'", "gamma"),
    ("{quickstart} --data {file}", "a_file"),
]


def command_line(template: str, places: dict[str, Any]) -> list[str]:
    """A row of :data:`CLI_TABLE` as argv: base commands expanded, split as a shell would, paths filled in."""
    for name, base in CLI_BASES.items():
        template = template.replace(name, base)
    return fill(shlex.split(template), places)


def fill(argv: Sequence[Any], places: dict[str, Any]) -> list[str]:
    """``argv`` as strings with each ``{name}`` of ``places`` replaced (other braces, as in JSON, kept)."""
    filled = []
    for arg in map(str, argv):
        for name, value in places.items():
            arg = arg.replace("{" + name + "}", str(value))
        filled.append(arg)
    return filled


def _cli_case(ws: Workspace, template: str, name: str) -> Verdict:
    """One row of :data:`CLI_TABLE` in a fresh folder holding a file, a folder and a missing path."""
    base = ws.case_dir()
    (base / "a_file").write_text("not what was expected\n")
    (base / "a_dir").mkdir()
    places = {"out": base / "out", "file": base / "a_file", "dir": base / "a_dir", "missing": base / "no_such_thing"}
    places |= {"root": ws.data_root(), "agent": ws.agent(), "unet": ws.reconstructor()}
    return judge_cli(command_line(template, places), [name], check=lambda run: f"status 0: {one_line(run.out, 160)}")


def kind7_cases(ws: Workspace) -> list[Case]:
    """The rows of :data:`CLI_TABLE` (every other one with ``--quick``)."""
    table = CLI_TABLE[::2] if ws.quick else CLI_TABLE
    started = "still running at the time limit: the bad value was not refused before the pipeline started"
    return [
        Case(7, template or "(no command)", lambda t=template, n=name: _cli_case(ws, t, n), 60.0, on_timeout=started)
        for template, name in table
    ]


CASE_BUILDERS: dict[int, Callable[[Workspace], list[Case]]] = {
    1: kind1_cases,
    2: kind2_cases,
    3: kind3_cases,
    4: kind4_cases,
    5: kind5_cases,
    6: kind6_cases,
    7: kind7_cases,
}


# =============================================================================== running
@dataclass
class Result:
    """The verdict of one input."""

    kind: int
    name: str
    verdict: Verdict


@dataclass
class Tally:
    """All verdicts, and the cases this script could not set up."""

    results: list[Result] = field(default_factory=list)
    setup_errors: list[Result] = field(default_factory=list)


def run_case(case: Case, ws: Workspace, timeout_cap: float) -> Verdict:
    """One case in a forked child, in a fresh working folder; then the checks every case gets: no payload
    marker, nothing left in the working folder."""
    ws.marker.unlink(missing_ok=True)
    cwd = Path(tempfile.mkdtemp(prefix="cwd-", dir=ws.root))

    def in_cwd() -> Verdict:
        os.chdir(cwd)
        return case.run()

    verdict = in_child(in_cwd, min(case.timeout, timeout_cap), ws.log)
    if verdict.detail.startswith("HANG") and case.on_timeout:
        verdict = Verdict(SILENT, case.on_timeout)
    if ws.marker.exists():
        verdict = Verdict(
            SILENT, f"a crafted payload RAN CODE ({ws.marker.name} created); then {verdict.outcome}: {verdict.detail}"
        )
        ws.marker.unlink()
    stray = sorted(p.name for p in cwd.iterdir() if p.name not in case.allowed_in_cwd)
    if stray and verdict.outcome != SETUP:
        verdict = Verdict(
            SILENT, f"wrote {stray[:4]} into the working folder; then {verdict.outcome}: {verdict.detail}"
        )
    shutil.rmtree(cwd, ignore_errors=True)
    return verdict


def run_kind(kind: int, ws: Workspace, timeout_cap: float, progress: bool) -> list[Result]:
    """Every case of one kind, each in its forked child."""
    try:
        cases = CASE_BUILDERS[kind](ws)
    except Exception as error:
        return [
            Result(kind, "building the cases", Verdict(SETUP, f"{type(error).__name__} at {_where(error)}: {error}"))
        ]
    results = []
    start = time.monotonic()
    for index, case in enumerate(cases):
        results.append(Result(kind, case.name, run_case(case, ws, timeout_cap)))
        if progress and (index + 1) % 25 == 0:
            print(
                f"  kind {kind}: {index + 1}/{len(cases)} ({time.monotonic() - start:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    return results


def payload_subprocess(ws: Workspace, timeout_cap: float) -> list[Result]:
    """Kind 1 again, in a fresh interpreter with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1."""
    command = [sys.executable, __file__, "--kind", "1", "--json", "--workspace", str(ws.root), "--seed", str(ws.seed)]
    command += ["--timeout", str(timeout_cap)] + (["--quick"] if ws.quick else [])
    env = {**os.environ, FORCE_UNSAFE: "1"}
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600, check=False)
        rows = json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as error:
        return [
            Result(1, f"[{FORCE_UNSAFE}=1] subprocess", Verdict(SETUP, f"{type(error).__name__}: {one_line(error)}"))
        ]
    return [Result(1, f"{row['name']} [{FORCE_UNSAFE}=1]", Verdict(row["outcome"], row["detail"])) for row in rows]


def report(tally: Tally, kinds: Sequence[int], seconds: float) -> str:
    """The markdown table, then every case that is not clean, then the setup errors."""
    lines = [
        "| kind | inputs tried | clear errors | correct results | tracebacks/unclear | silent wrong |",
        "|---|---|---|---|---|---|",
    ]
    totals: Counter[str] = Counter()
    for kind in kinds:
        counts = Counter(r.verdict.outcome for r in tally.results if r.kind == kind)
        totals.update(counts)
        lines.append(_row(f"{kind}. {KINDS[kind]}", counts))
    lines.append(_row("**all**", totals))
    lines.append(f"\n{sum(totals.values())} inputs in {seconds:.0f} s.")
    bad = [r for r in tally.results if r.verdict.outcome in (TRACEBACK, UNCLEAR, SILENT)]
    lines.append(f"\n## Cases that are not clean ({len(bad)})\n")
    lines += [f"- [kind {r.kind}] **{r.verdict.outcome}** `{r.name}`: {r.verdict.detail}" for r in bad] or ["(none)"]
    if tally.setup_errors:
        lines.append(f"\n## Cases this script could not run ({len(tally.setup_errors)}; not tallied)\n")
        lines += [f"- [kind {r.kind}] `{r.name}`: {r.verdict.detail}" for r in tally.setup_errors]
    return "\n".join(lines)


def _row(label: str, counts: Counter[str]) -> str:
    """One row of the report's table."""
    tried = sum(counts.values())
    problems = counts[TRACEBACK] + counts[UNCLEAR]
    return f"| {label} | {tried} | {counts[CLEAR]} | {counts[CORRECT]} | {problems} | {counts[SILENT]} |"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The script's options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kind", type=int, choices=sorted(KINDS), default=None, help="run one kind (default: all)")
    parser.add_argument("--quick", action="store_true", help="fewer inputs (about a third)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    parser.add_argument(
        "--workspace", type=Path, default=None, help="folder for fixtures and cases (default: a temporary one)"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="most seconds one input may take")
    parser.add_argument("--list", action="store_true", help="also list every input with its outcome")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # the kind-1 subprocess answers in JSON
    return parser.parse_args(argv)


def main_script(argv: Sequence[str] | None = None) -> int:
    """Run the selected kinds and print the report."""
    args = parse_args(argv)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    root = args.workspace or Path(tempfile.mkdtemp(prefix="bad_inputs-"))  # a temporary one is removed at the end
    ws = Workspace(root.resolve(), args.quick, args.seed)
    kinds = [args.kind] if args.kind else sorted(KINDS)
    if args.json:
        results = [r for kind in kinds for r in run_kind(kind, ws, args.timeout, progress=False)]
        print(json.dumps([{"name": r.name, "outcome": r.verdict.outcome, "detail": r.verdict.detail} for r in results]))
        return 0
    _preload()
    start, tally = time.monotonic(), Tally()
    controls = {}
    for kind in kinds:
        print(f"kind {kind}: {KINDS[kind]} ...", file=sys.stderr, flush=True)
        results = run_kind(kind, ws, args.timeout, progress=True)
        if kind == 1:
            controls = {
                label: in_child(lambda p=p: payload_control(p, ws), 60, ws.log)
                for label, p in payload_files(ws).items()
            }
            results += payload_subprocess(ws, args.timeout)
        tally.results += [r for r in results if r.verdict.outcome != SETUP]
        tally.setup_errors += [r for r in results if r.verdict.outcome == SETUP]
    print(report(tally, kinds, time.monotonic() - start))
    if args.list:
        print("\n## Every input\n")
        print(
            "\n".join(f"- [kind {r.kind}] {r.verdict.outcome}: `{r.name}`: {r.verdict.detail}" for r in tally.results)
        )
    if controls:
        live = ", ".join(f"{label}: {v.detail}" for label, v in controls.items())
        print(f"\nPayload controls (an unsafe torch.load / pickle.load of each crafted file): {live}")
    if args.workspace is None:
        shutil.rmtree(ws.root, ignore_errors=True)
    else:
        print(f"\nWorkspace: {ws.root} (children's output in {ws.log.name})")
    return 0


def _preload() -> None:
    """Import the heavy modules once, before the children fork (each child then starts at once)."""
    import matplotlib

    matplotlib.use("Agg")
    import mri_rl.evaluation.evaluate  # noqa: F401
    import mri_rl.reconstruct.train  # noqa: F401
    import mri_rl.runs.training  # noqa: F401


if __name__ == "__main__":
    sys.exit(main_script())
