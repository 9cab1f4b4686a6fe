"""``mri-rl evaluate``: every policy over every slice of a split, then the report.

Rollouts of each (policy, seed) are stored in ``out/partial/`` as they finish, each with
a record of how it was made (:mod:`mri_rl.provenance`): the task, the evaluated data's
fingerprint, the policy (and its checkpoint's hash) and the seed. A rerun into the same
folder reuses a stored rollout only when its record matches the current run and
otherwise stops with an error naming what differs, so an interrupted evaluation resumes
and writes the same files while a changed budget or reconstructor never mixes old
numbers into a new report. Only ``random`` depends on the seed; the other baselines and
the learned policies (greedy actions) are rolled out once, with the first seed.

Besides the report (:func:`~mri_rl.evaluation.report.write_report`: metrics.csv,
summary.json, summary.md, curves.png, masks.png), ``examples.png`` shows a few slices
(:func:`example_slices`) as each policy left them at one sampling rate: their
reconstructions are not stored but made again at the end, by replaying the acquisition
order recorded in the rows (their ``column``) on those slices only.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from tqdm.auto import tqdm

from mri_rl.agents import AGENTS
from mri_rl.agents.base import Agent, read_agent_checkpoint
from mri_rl.agents.look_ahead import check_metric_weights
from mri_rl.checkpointing import entry_error
from mri_rl.checks import check_int, check_number, is_valid, resolve_device
from mri_rl.data.fastmri_files import resolve_split_folder
from mri_rl.data.splits import check_disjoint, check_split_folder
from mri_rl.distributed import ActorGroup, Workers, run_tasks
from mri_rl.envs import ENV_ID
from mri_rl.envs.slice_source import SliceSource
from mri_rl.envs.spaces import OPTIONAL_OBSERVATIONS
from mri_rl.evaluation.figures import Example, plot_examples
from mri_rl.evaluation.report import read_rows_csv, write_report, write_rows_csv
from mri_rl.evaluation.rollout import replay_orders, rollout_policy
from mri_rl.evaluation.shards import Shard, join_shards, plan_shards, stale_shard_files
from mri_rl.files import atomic_write_text
from mri_rl.policies import (
    BalancedOraclePolicy,
    EquispacedPolicy,
    LBCSPolicy,
    LowToHighPolicy,
    OraclePolicy,
    RandomPolicy,
    cached_lbcs_order,
)
from mri_rl.policies.lbcs import LBCSEpisodes, greedy_order
from mri_rl.policies.product_of_experts import ProductOfExpertsPolicy
from mri_rl.provenance import (
    RecordMismatchError,
    check_record,
    checkpoint_fingerprint,
    data_fingerprint,
    make_record,
    read_json_record,
    sidecar_path,
)
from mri_rl.reconstruct.checkpoint import read_reconstructor_record
from mri_rl.task import DEFAULT_TASK, SPLITS, ZERO_FILLED, AcquisitionTask

if TYPE_CHECKING:
    from mri_rl.envs.vector import BatchedActiveAcquisitionEnv

BASELINE_NAMES = ("random", "lowtohigh", "equispaced", "lbcs", "oracle", "oracle_ssim_psnr")
#: The baselines ``mri-rl evaluate`` rolls when given no --policies (not the second oracle).
DEFAULT_BASELINES = BASELINE_NAMES[:5]
POLICY_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
FRESH_START = "pass --overwrite (deletes this folder's rollouts and report) or choose a new --out"
#: What evaluate_policies writes into its folder; --overwrite deletes exactly these.
OUTPUTS = (
    "partial",
    "lbcs_order.json",
    "metrics.csv",
    "metrics.csv.record.json",
    "summary.json",
    "summary.md",
    "curves.png",
    "masks.png",
    "examples.png",
)


@dataclass
class EvaluationSetup:
    """What every policy is evaluated on, and how.

    Attributes:
        data: a folder of ``.h5`` files or a fastMRI root with ``{challenge}_{split}``.
        task: the acquisition task (budget, initial lines, reward metric, reconstructor...).
        split: which split; a folder whose name says another split is refused.
        seeds: evaluation seeds.
        batch_size: slices stepped together.
        lbcs_train_data: where LBCS learns its order (default: the root's train split).
        lbcs_slices: training slices LBCS averages over.
        device: torch device of the reconstructor ("cpu", "cuda", "cuda:1", "mps"); one this
            machine does not have is refused at construction.
        allow_task_mismatch: evaluate learned policies trained on another task (the
            summary records what differs) instead of refusing them.
        any_folder: accept a folder whose name says another split than ``split``.
        examples: slices shown in examples.png (:func:`example_slices`).
        examples_sampling_rate: the sampling rate examples.png shows each policy at: the
            first step that reaches it (None: the last step, the end of the budget).
        oracle_weights: ``oracle_ssim_psnr``'s weights of the standardised SSIM and PSNR gains
            (:class:`~mri_rl.policies.baselines.BalancedOraclePolicy`; DAgger's ``teacher_weights``).
    """

    data: Path
    task: AcquisitionTask = field(default=DEFAULT_TASK)
    split: str = "test"
    seeds: tuple[int, ...] = (0, 1, 2)
    batch_size: int = 32
    lbcs_train_data: Path | None = None
    lbcs_slices: int = 32
    device: str = "cpu"
    allow_task_mismatch: bool = False
    any_folder: bool = False
    examples: int = 3
    examples_sampling_rate: float | None = None
    oracle_weights: tuple[float, ...] = BalancedOraclePolicy.equal_weights

    def __post_init__(self) -> None:
        """Check the settings before anything is read: the split, the counts, the seeds and the device.

        Raises:
            ValueError: naming the bad value and what was expected.
        """
        if self.split not in SPLITS:
            raise ValueError(f"split: expected one of {', '.join(SPLITS)}, got {self.split!r}")
        self.batch_size = check_int("batch_size", self.batch_size)
        self.lbcs_slices = check_int("lbcs_slices", self.lbcs_slices)
        if isinstance(self.seeds, (str, bytes)) or not hasattr(self.seeds, "__iter__"):
            raise ValueError(f"seeds: expected a sequence of integers >= 0, got {self.seeds!r}")
        self.seeds = tuple(check_int("seeds", seed, 0) for seed in self.seeds)
        if not self.seeds:
            raise ValueError("seeds: give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: expected distinct seeds, got {list(self.seeds)}")
        self.examples = check_int("examples", self.examples)
        if self.examples_sampling_rate is not None:
            rate = check_number("examples_sampling_rate", self.examples_sampling_rate, 0)
            if not 0 < rate <= 1:
                raise ValueError(f"examples_sampling_rate: expected a number in (0, 1] or None, got {rate}")
            self.examples_sampling_rate = rate
        self.oracle_weights = check_metric_weights("oracle_weights", self.oracle_weights, BalancedOraclePolicy.metrics)
        resolve_device(self.device)

    def env_kwargs(self, folder: Path) -> dict[str, Any]:
        return {"data_path": folder, "task": self.task, "device": self.device}


class PolicySpec(NamedTuple):
    """One policy to evaluate: a baseline (no ``checkpoints``) or a learned one (one checkpoint, or
    several: an ensemble), with the weight of its low-to-high frequency prior
    (:class:`~mri_rl.policies.product_of_experts.ProductOfExpertsPolicy`; 0: none)."""

    name: str
    checkpoints: tuple[Path, ...] = ()
    frequency_prior: float = 0.0


def _frequency_prior_weight(spec: str, text: str) -> float:
    """The WEIGHT of ``NAME=CHECKPOINT@WEIGHT`` (``text``), a finite number >= 0."""
    try:
        weight = float(text)
    except ValueError:
        weight = float("nan")
    if not is_valid(weight, False, 0):
        raise ValueError(f"policy {spec!r}: the frequency prior's weight after '@' must be a number >= 0, got {text!r}")
    return weight


def parse_learned_policy(text: str, spec: str) -> tuple[tuple[Path, ...], float]:
    """``"a.pt+b.pt@0.1"`` -> ``((Path("a.pt"), Path("b.pt")), 0.1)``: the checkpoints of a learned
    policy, joined by '+' for an ensemble, and the weight of its low-to-high frequency prior after
    '@' (0 when absent; an '@' followed by a '/' belongs to the path).

    Raises:
        ValueError: an empty or repeated checkpoint, or a weight that is not a number >= 0, naming
            ``spec`` (what the user wrote).
    """
    checkpoint, at, weight = text.rpartition("@")
    if not at or "/" in weight:  # no '@', or one inside the path
        checkpoint, at = text, ""
    members = checkpoint.split("+")
    if "" in members or len(set(members)) != len(members):
        raise ValueError(f"policy {spec!r}: an ensemble's checkpoints, joined by '+', must be distinct and non-empty")
    return tuple(Path(member) for member in members), _frequency_prior_weight(spec, weight) if at else 0.0


def parse_policy_specs(specs: list[str]) -> list[PolicySpec]:
    """``["random", "dqn=runs/a/model.pt", "dp=runs/b/model.pt@0.1", "e=a.pt+b.pt"]`` ->
    ``PolicySpec("random")``, ``PolicySpec("dqn", (Path("runs/a/model.pt"),))``,
    ``PolicySpec("dp", (Path("runs/b/model.pt"),), 0.1)``, ``PolicySpec("e", (Path("a.pt"), Path("b.pt")))``:
    ``@WEIGHT`` after the checkpoints adds a low-to-high frequency prior of that weight (an '@'
    followed by a '/' belongs to the path), and checkpoints joined by '+' are an ensemble, rolled as
    the product of their policies (:class:`~mri_rl.policies.product_of_experts.ProductOfExpertsPolicy`).

    Raises:
        ValueError: an unknown baseline, a name that is not a plain file name (letters,
            digits, ``_``, ``-``, ``.``), a weight that is not a number >= 0, an empty or repeated
            checkpoint in an ensemble, or a name given twice.
    """
    parsed: list[PolicySpec] = []
    for spec in specs:
        name, _, path = spec.partition("=")
        if path:
            if not POLICY_NAME.fullmatch(name):
                raise ValueError(
                    f"policy name {name!r} must be letters, digits, '_', '-' or '.', not starting "
                    f"with '.' (it names files in the output folder)"
                )
            parsed.append(PolicySpec(name, *parse_learned_policy(path, spec)))
        elif name in BASELINE_NAMES:
            parsed.append(PolicySpec(name))
        else:
            raise ValueError(
                f"unknown policy {spec!r}; expected one of {BASELINE_NAMES} or NAME=CHECKPOINT[+CHECKPOINT...][@WEIGHT]"
            )
    names = [spec.name for spec in parsed]
    if len(set(names)) != len(names):
        raise ValueError(f"policy names must be unique, got {names}")
    return parsed


def optional_observations(agents: Iterable[Agent]) -> tuple[str, ...]:
    """The optional observation keys (:data:`~mri_rl.envs.spaces.OPTIONAL_OBSERVATIONS`) that any of
    ``agents`` reads, so that one evaluation env serves them all (a key an agent does not read is
    ignored by its network)."""
    read = {key for agent in agents for key in getattr(agent.observation_space, "spaces", {})}
    return tuple(key for key in OPTIONAL_OBSERVATIONS if key in read)


def make_batched_env(
    setup: EvaluationSetup, folder: Path, num_envs: int, observations: tuple[str, ...] = ()
) -> gym.vector.VectorEnv:
    """The batched env of the setup's task over ``folder``, at most ``num_envs`` episodes at a
    time: a folder of fewer slices gets one episode per slice (a second, small env), not padding.
    ``observations``: optional observation keys to add (of :data:`~mri_rl.envs.spaces.OPTIONAL_OBSERVATIONS`)."""

    def build(n: int) -> gym.vector.VectorEnv:
        return gym.make_vec(
            ENV_ID,
            num_envs=n,
            vectorization_mode="vector_entry_point",
            **(setup.env_kwargs(folder) | dict.fromkeys(observations, True)),
        )

    env = build(num_envs)
    num_slices = _acquisition_env(env).num_slices
    return env if num_slices >= num_envs else build(num_slices)


def _acquisition_env(env: gym.vector.VectorEnv) -> BatchedActiveAcquisitionEnv:
    """The MRI env under ``env`` (one made by :func:`make_batched_env`)."""
    return cast("BatchedActiveAcquisitionEnv", env.unwrapped)


def lbcs_train_folder(setup: EvaluationSetup) -> Path:
    """Where LBCS learns its order: ``lbcs_train_data``'s train split, or the root's."""
    if setup.lbcs_train_data is not None:
        return resolve_split_folder(setup.lbcs_train_data, setup.task.challenge, "train")
    candidate = Path(setup.data) / f"{setup.task.challenge}_train"
    if not candidate.is_dir():
        raise ValueError(f"lbcs learns on training slices: {candidate} does not exist; pass --lbcs-train-data")
    return candidate


class LBCSScorer:
    """The LBCS training episodes of one worker, scoring its share of the columns
    (:class:`~mri_rl.policies.lbcs.LBCSEpisodes` in an env of the setup's task)."""

    def __init__(self, setup: EvaluationSetup, folder: Path, indices: list[int], columns: list[int]) -> None:
        self.episodes = LBCSEpisodes(make_batched_env(setup, folder, setup.lbcs_slices), indices, columns)

    def mean_gains(self, order: list[int]) -> np.ndarray:
        return self.episodes.mean_gains(order)

    def acquire(self, column: int) -> None:
        self.episodes.acquire(column)


def lbcs_order(
    setup: EvaluationSetup,
    task: AcquisitionTask,
    folder: Path,
    cache_file: Path,
    progress: bool,
    workers: Workers | None = None,
) -> list[int]:
    """The LBCS order learned on the training slices of ``folder`` (cached in ``cache_file``); with
    several ``workers``, each scores a contiguous share of the columns at every step.

    Raises:
        RecordMismatchError: the cache was learned under another task, data or slices.
    """
    workers = workers or Workers()
    source = SliceSource(folder, task.challenge)  # headers only: the slices and the width
    total, width = len(source), source.width
    indices = np.unique(np.linspace(0, total - 1, min(setup.lbcs_slices, total)).round().astype(int)).tolist()
    record = make_record(task, {"lbcs_train": data_fingerprint(folder)}, {"lbcs_slices": indices})

    def learn() -> list[int]:
        shares = [part.tolist() for part in np.array_split(np.arange(width), min(workers.count, width))]
        with ActorGroup(LBCSScorer, [(setup, folder, indices, share) for share in shares], workers) as scorers:
            return greedy_order(
                lambda order: np.concatenate(scorers.call("mean_gains", order)),
                lambda column: scorers.call("acquire", column),
                width if task.budget is None else task.budget,
                progress,
            )

    return cached_lbcs_order(cache_file, record, learn, FRESH_START)


def load_agents(policies: list[PolicySpec]) -> dict[str, tuple[Any, ...]]:
    """Each policy's agents, loaded by :func:`load_agent`: one per checkpoint (none for a baseline).

    Raises:
        CheckpointError: as :func:`load_agent`.
        ValueError: a frequency prior or an ensemble of agents without log-probabilities (DQNs), or an
            ensemble whose members were trained on other tasks or data, before any rollout.
    """
    agents = {spec.name: tuple(load_agent(path) for path in spec.checkpoints) for spec in policies}
    for spec in policies:
        members = agents[spec.name]
        if spec.frequency_prior or len(members) > 1:
            ProductOfExpertsPolicy(members, members[0].num_actions, spec.frequency_prior)  # its constructor's checks
        trained = [{key: (member.record or {}).get(key) for key in ("task", "data")} for member in members]
        for path, other in zip(spec.checkpoints[1:], trained[1:], strict=True):
            if other != trained[0]:
                raise ValueError(
                    f"policy {spec.name!r}: the ensemble's members must be trained on one task and data, but "
                    f"{path} and {spec.checkpoints[0]} were not"
                )
    return agents


def load_agent(path: Path) -> Any:
    """An agent checkpoint of any algorithm, without an env.

    Raises:
        CheckpointError: not an agent checkpoint, of an unknown algorithm, or an entry that does not
            make an agent (its record included: a dict of the provenance keys, or None).
    """
    checkpoint = read_agent_checkpoint(path)
    algorithm = checkpoint.get("algorithm")
    if not isinstance(algorithm, str) or algorithm not in AGENTS:
        raise entry_error(path, "algorithm", f"is {algorithm!r}, no known algorithm; known: {sorted(AGENTS)}")
    return AGENTS[algorithm].from_checkpoint(checkpoint, path)


def check_learned_policy(path: Path, agent: Any, env: gym.vector.VectorEnv, allow_task_mismatch: bool = False):
    """Check an agent against the evaluation env: its observation keys are the env's (the env may
    observe more, e.g. the column spectrum for another agent) and its task is the env's.

    Returns:
        What differs between the task the agent was trained on and the env's (empty when they match).

    Raises:
        ValueError: other spaces; or another task unless ``allow_task_mismatch``.
    """
    env_space = cast(spaces.Dict, env.single_observation_space)  # the MRI env observes a Dict
    keys = getattr(agent.observation_space, "spaces", {})
    same_keys = keys and all(key in env_space.spaces and env_space[key] == space for key, space in keys.items())
    if not (same_keys or agent.observation_space == env_space) or agent.action_space != env.single_action_space:
        raise ValueError(
            f"{path} was trained on other observation/action spaces than this data's "
            f"({agent.observation_space} vs {env_space})"
        )
    trained_task = (agent.record or {}).get("task")
    if trained_task is None:
        differences = ["no record of the task it was trained on"]
    else:
        differences = AcquisitionTask.from_dict(trained_task).differences(_acquisition_env(env).task)
    if differences and not allow_task_mismatch:
        raise ValueError(
            f"{path} was trained on another task than this evaluation's ({'; '.join(differences)}; "
            f"trained vs evaluated): pass --allow-task-mismatch to evaluate it anyway"
        )
    return differences


def build_policy(
    name: str,
    agents: Sequence[Any],
    env: gym.vector.VectorEnv,
    seed: int,
    lbcs: Sequence[int] | None,
    frequency_prior: float = 0.0,
    oracle_weights: Sequence[float] = BalancedOraclePolicy.equal_weights,
):
    """The policy called ``name``: its ``agents`` when it is a learned one (one agent as it is; with a
    low-to-high prior of weight ``frequency_prior`` > 0 or several agents, their product of experts),
    else a baseline (``lbcs``: the LBCS order, learned beforehand by :func:`lbcs_order`;
    ``oracle_weights``: those of ``oracle_ssim_psnr``)."""
    width = int(cast(spaces.Discrete, env.single_action_space).n)  # the MRI env's actions are columns
    if len(agents) == 1 and not frequency_prior:
        return agents[0]
    if agents:
        return ProductOfExpertsPolicy(agents, width, frequency_prior)
    task = _acquisition_env(env).task
    if name == "random":
        return RandomPolicy(width, seed)
    if name == "lowtohigh":
        return LowToHighPolicy(width)
    if name == "equispaced":
        return EquispacedPolicy(width, task.budget)
    if name == "lbcs":
        if lbcs is None:
            raise ValueError("the lbcs policy needs its order: learn it with lbcs_order first")
        return LBCSPolicy(width, lbcs)
    return BalancedOraclePolicy(env, oracle_weights) if name == "oracle_ssim_psnr" else OraclePolicy(env)


def task_mismatches(
    policies: list[PolicySpec], agents: dict[str, tuple[Any, ...]], env: gym.vector.VectorEnv, allow: bool
) -> dict[str, list[str]]:
    """Per learned policy trained on another task, what differs (see :func:`check_learned_policy`;
    an ensemble's members share one task, checked by :func:`load_agents`)."""
    mismatches = {}
    for spec in policies:
        for path, agent in zip(spec.checkpoints, agents[spec.name], strict=True):
            differences = check_learned_policy(path, agent, env, allow)
            if differences:
                mismatches[spec.name] = differences
    return mismatches


def check_held_out(setup: EvaluationSetup, agents: dict[str, tuple[Any, ...]], evaluated: dict[str, Any]) -> None:
    """No evaluated file may be in the training set of the reconstructor, LBCS or an agent.

    Raises:
        ValueError: naming the files and whose training set holds them.
    """
    if setup.task.reconstructor != ZERO_FILLED:
        recon_data = (read_reconstructor_record(setup.task.reconstructor) or {}).get("data") or {}
        check_disjoint(recon_data.get("train"), evaluated, f"the reconstructor {setup.task.reconstructor}")
    for name, members in agents.items():
        if not members and name == "lbcs":
            folder = lbcs_train_folder(setup)
            check_disjoint(data_fingerprint(folder), evaluated, f"lbcs ({folder})")
        for agent in members:
            check_disjoint(((agent.record or {}).get("data") or {}).get("train"), evaluated, f"policy {name}")


def policy_record(
    spec: PolicySpec,
    seed: int,
    setup: EvaluationSetup,
    task: AcquisitionTask,
    evaluated: dict[str, Any],
    task_differences: list[str],
) -> dict[str, Any]:
    """The record of one (policy, seed) rollout: what a stored one must match to be reused."""
    name, learned = spec.name, bool(spec.checkpoints)
    data = {"evaluated": evaluated}
    settings: dict[str, Any] = {"policy": name, "seed": seed}
    if learned:
        fingerprints = [checkpoint_fingerprint(path) for path in spec.checkpoints]
        if len(fingerprints) == 1:
            settings["checkpoint"] = fingerprints[0]  # as before ensembles existed, so stored rollouts stay valid
        else:
            settings["checkpoints"] = fingerprints
        if spec.frequency_prior:
            settings["frequency_prior"] = spec.frequency_prior
        if task_differences:
            settings["task_mismatch"] = task_differences
    if name == "lbcs" and not learned:
        data["lbcs_train"] = data_fingerprint(lbcs_train_folder(setup))
        settings["lbcs_slices"] = setup.lbcs_slices
    if name == "oracle_ssim_psnr" and not learned:
        settings.update(weighted_oracle_settings(setup))
    return make_record(task, data, settings)


def weighted_oracle_settings(setup: EvaluationSetup) -> dict[str, Any]:
    """``{"oracle_weights": [ssim, psnr]}`` for records when ``oracle_ssim_psnr``'s weights are not
    the default equal ones (so records made before the weights existed stay valid), else empty."""
    equal = setup.oracle_weights == BalancedOraclePolicy.equal_weights
    return {} if equal else {"oracle_weights": list(setup.oracle_weights)}


def clear_outputs(out_dir: Path) -> None:
    """Delete what an earlier evaluation wrote into ``out_dir`` (nothing else)."""
    for name in OUTPUTS:
        target = out_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def stored_rows(partial: Path, record: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The rows of a finished rollout stored at ``partial``, or None when it must be rolled out (again).

    A CSV without its record was cut off before the record was written, and one without a
    ``column`` was written before acquisition orders were recorded: both are redone.

    Raises:
        RecordMismatchError: a stored rollout made under another task, data or policy.
    """
    stored = read_json_record(sidecar_path(partial)) if partial.is_file() else None
    if stored is None:
        return None
    check_record(stored, record, partial, FRESH_START)
    rows = read_rows_csv(partial)
    return rows if all("column" in row for row in rows) else None


def example_slices(names: list[tuple[str, int]], count: int) -> list[int]:
    """Up to ``count`` slice indices for examples.png, chosen from the names alone (deterministic).

    Files spread evenly over the sorted file names, and within a file its central slices
    (the middle one, or several spread over the middle half: a volume's edge slices hold
    little anatomy).

    Args:
        names: (file, slice) of every slice of the data, by slice index.
        count: how many to choose.
    """
    by_file: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for index, (file, number) in enumerate(names):
        by_file[file].append((number, index))
    files = sorted(by_file)
    picks = Counter(files[i] for i in np.linspace(0, len(files) - 1, count).round().astype(int))
    chosen: list[int] = []
    for file in sorted(picks):
        indices = [index for _, index in sorted(by_file[file])]
        last = len(indices) - 1
        positions = np.linspace(last / 4, 3 * last / 4, picks[file]) if picks[file] > 1 else np.array([last / 2])
        chosen += [indices[p] for p in dict.fromkeys(np.round(positions).astype(int).tolist())]
    return chosen


def order_until(steps: list[dict[str, Any]], rate: float | None) -> tuple[list[int], float]:
    """The columns an episode acquired until its first step at sampling rate ``rate`` or more
    (None, or never reached: all of them), and the sampling rate there.

    Args:
        steps: the episode's rows, in step order (step 0 first).
    """
    last = next((i for i, row in enumerate(steps) if rate is not None and row["sampling_rate"] >= rate - 1e-9), None)
    last = len(steps) - 1 if last is None else last
    return [row["column"] for row in steps[1 : last + 1]], float(steps[last]["sampling_rate"])


def write_examples(
    env: gym.vector.VectorEnv, rows: list[dict[str, Any]], setup: EvaluationSetup, policies: list[str], path: Path
) -> None:
    """Write examples.png: :func:`example_slices` replayed with each policy's recorded order (its first
    seed) to ``setup.examples_sampling_rate``. The env's episodes are overwritten."""
    unwrapped = _acquisition_env(env)
    names = [unwrapped.slice_name(i) for i in range(unwrapped.num_slices)]
    chosen = example_slices(names, setup.examples)
    wanted = {names[i]: i for i in chosen}
    episodes: dict[tuple[str, int], dict[str, list[dict[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row["seed"] == setup.seeds[0] and (row["file"], row["slice"]) in wanted:
            episodes[(row["file"], row["slice"])][row["policy"]].append(row)
    jobs = [(name, policy) for name in wanted for policy in policies]
    orders = [
        order_until(sorted(episodes[name][policy], key=lambda r: r["step"]), setup.examples_sampling_rate)
        for name, policy in jobs
    ]
    replays = replay_orders(unwrapped.episodes, [wanted[name] for name, _ in jobs], [order for order, _ in orders])
    examples = {name: Example(f"{name[0]} slice {name[1]}", {}, {}) for name in wanted}
    for (name, policy), (_, rate), replay in zip(jobs, orders, replays):
        examples[name].replays[policy] = replay
        examples[name].sampling_rates[policy] = rate
    wanted_rate = setup.examples_sampling_rate
    when = (
        "at the end of the budget"
        if wanted_rate is None
        else f"at the first step reaching sampling rate {wanted_rate:.0%}"
    )
    plot_examples(
        list(examples.values()), policies, path, f"{unwrapped.task.describe()}: {when} (seed {setup.seeds[0]})"
    )


@dataclass(frozen=True)
class ShardJob:
    """What a worker needs to roll one shard (picklable): :func:`roll_shard`'s argument.

    Attributes:
        setup, folder, observations, digest: the evaluation env (``digest``: the data's
            fingerprint, so a worker never reuses an env of other data).
        shard: the policy, seed and slices.
        checkpoints: the learned policy's checkpoints (several: an ensemble; none: a baseline).
        frequency_prior: the weight of the learned policy's low-to-high prior (0: none).
        lbcs: the LBCS order (for ``lbcs`` only).
        out: the shard's CSV; its record goes beside it.
        record_text: that record, as written.
        progress: show the rollout's progress bar.
    """

    setup: EvaluationSetup
    folder: Path
    observations: tuple[str, ...]
    digest: str
    shard: Shard
    checkpoints: tuple[Path, ...]
    frequency_prior: float
    lbcs: tuple[int, ...] | None
    out: Path
    record_text: str
    progress: bool


#: One process's evaluation env, kept between the shards it rolls (see :func:`evaluation_env`).
_ENVS: dict[str, gym.vector.VectorEnv] = {}


def evaluation_env(
    setup: EvaluationSetup, folder: Path, observations: tuple[str, ...], digest: str
) -> gym.vector.VectorEnv:
    """The batched env of ``setup`` over ``folder`` (:func:`make_batched_env`), built once per process
    for these arguments and data (``digest``); the previous one is dropped."""
    key = repr((setup, str(folder), observations, digest))
    if key not in _ENVS:
        _ENVS.clear()
        _ENVS[key] = make_batched_env(setup, folder, setup.batch_size, observations)
    return _ENVS[key]


def roll_shard(job: ShardJob) -> Path:
    """Roll one shard and store its rows and record (atomically, record last); returns its CSV."""
    env = evaluation_env(job.setup, job.folder, job.observations, job.digest)
    shard = job.shard
    agents = [load_agent(path) for path in job.checkpoints]
    policy = build_policy(
        shard.policy, agents, env, shard.seed, job.lbcs, job.frequency_prior, job.setup.oracle_weights
    )
    budget = _acquisition_env(env).task.budget
    indices = list(range(shard.start, shard.stop))
    rows = rollout_policy(policy, env, budget, shard.policy, shard.seed, indices, progress=job.progress)
    sidecar_path(job.out).unlink(missing_ok=True)
    write_rows_csv(job.out, rows)
    atomic_write_text(sidecar_path(job.out), job.record_text)
    return job.out


def roll_shards(jobs: list[ShardJob], workers: Workers, progress: bool) -> None:
    """Roll the shards with ``workers`` (a bar counts the shards when they run on Ray)."""
    with tqdm(total=len(jobs), desc="shards", unit="shard", disable=not (progress and workers.uses_ray)) as bar:
        run_tasks(roll_shard, [(job,) for job in jobs], workers, on_done=lambda _: bar.update())


def record_text(record: dict[str, Any]) -> str:
    return json.dumps({"record": record}, indent=1) + "\n"


def shard_record(record: dict[str, Any], shard: Shard, num_slices: int) -> dict[str, Any]:
    """A shard's record: its rollout's, with its slices unless it holds all of them."""
    if shard.start == 0 and shard.stop == num_slices:
        return record
    return {**record, "settings": {**record["settings"], "slices": [shard.start, shard.stop]}}


@dataclass(frozen=True)
class RolloutContext:
    """What every rollout of one evaluation shares (see :func:`plan_rollouts`)."""

    setup: EvaluationSetup
    folder: Path
    observations: tuple[str, ...]
    evaluated: dict[str, Any]
    task: AcquisitionTask
    out_dir: Path
    progress: bool
    workers: Workers


@dataclass
class Rollout:
    """One (policy, seed) rollout: its file, its shards still to join (none: stored) and its record."""

    path: Path
    shards: list[Shard]
    record: dict[str, Any]
    num_slices: int

    def finish(self) -> list[dict[str, Any]]:
        """Join its rolled shards (deleting shard files of other runs) and read its rows."""
        if self.shards:
            partial = self.path.parent
            join_shards(self.shards, partial, self.num_slices, record_text(self.record))
            keep = {shard.path(partial, self.num_slices) for shard in self.shards}
            for stale in stale_shard_files(partial, self.shards[0].policy, self.shards[0].seed, keep):
                stale.unlink()
        return read_rows_csv(self.path)  # the same parsed values whether computed now or resumed


def plan_rollouts(
    context: RolloutContext,
    policies: list[PolicySpec],
    mismatches: dict[str, list[str]],
    env: gym.vector.VectorEnv,
    parts: int,
) -> tuple[list[Rollout], list[ShardJob]]:
    """Every (policy, seed) rollout in report order, and the shards still to roll: a stored rollout
    or shard whose record matches is reused (one of another record is refused). Learns the LBCS
    order first when LBCS must be rolled."""
    setup, task, partial = context.setup, context.task, context.out_dir / "partial"
    num_slices = _acquisition_env(env).num_slices
    rollouts: list[Rollout] = []
    jobs: list[ShardJob] = []
    lbcs: tuple[int, ...] | None = None
    for spec in policies:
        name, learned = spec.name, bool(spec.checkpoints)
        for seed in setup.seeds if name == "random" else setup.seeds[:1]:
            record = policy_record(spec, seed, setup, task, context.evaluated, mismatches.get(name, []))
            whole = partial / f"{name}_seed{seed}.csv"
            if stored_rows(whole, record) is not None:
                rollouts.append(Rollout(whole, [], record, num_slices))
                continue
            if name == "lbcs" and not learned and lbcs is None:
                cache = context.out_dir / "lbcs_order.json"
                train = lbcs_train_folder(setup)
                lbcs = tuple(lbcs_order(setup, task, train, cache, context.progress, context.workers))
            shards = plan_shards(name, seed, num_slices, env.num_envs, parts)
            rollouts.append(Rollout(whole, shards, record, num_slices))
            for shard in shards:
                out, own = shard.path(partial, num_slices), shard_record(record, shard, num_slices)
                if stored_rows(out, own) is None:
                    jobs.append(
                        ShardJob(
                            setup=setup,
                            folder=context.folder,
                            observations=context.observations,
                            digest=context.evaluated["digest"],
                            shard=shard,
                            checkpoints=spec.checkpoints,
                            frequency_prior=spec.frequency_prior,
                            lbcs=lbcs,
                            out=out,
                            record_text=record_text(own),
                            progress=context.progress and not context.workers.uses_ray,
                        )
                    )
    return rollouts, jobs


def report_header(
    setup: EvaluationSetup,
    policy_specs: list[str],
    policies: list[PolicySpec],
    mismatches: dict[str, list[str]],
    title: str,
) -> tuple[dict[str, Any], str]:
    """The settings the report's record holds (split, policies, seeds, learned policies' task
    mismatches, the oracle's weights when ``oracle_ssim_psnr`` is rolled with unequal ones) and
    ``title``, which names those weights too."""
    settings: dict[str, Any] = {"split": setup.split, "policies": policy_specs, "seeds": list(setup.seeds)}
    if any(spec.name == "oracle_ssim_psnr" and not spec.checkpoints for spec in policies):
        settings |= weighted_oracle_settings(setup)
    if mismatches:
        settings["task_mismatch"] = mismatches
    weights = settings.get("oracle_weights")
    return settings, title + (f"; oracle_ssim_psnr weighs SSIM {weights[0]:g}, PSNR {weights[1]:g}" if weights else "")


def evaluate_policies(
    setup: EvaluationSetup,
    policy_specs: list[str],
    out_dir: str | Path,
    progress: bool = True,
    overwrite: bool = False,
    workers: Workers | None = None,
    shards_per_rollout: int | None = None,
) -> dict[str, Any]:
    """Roll every policy; write metrics.csv (+ record), summary.json/.md, curves/masks/examples.png.

    Rollouts are split into shards of whole batches (:mod:`~mri_rl.evaluation.shards`) rolled by
    ``workers``: the files are byte-identical to a single-process run's.

    Args:
        setup: data, task and settings.
        policy_specs: baselines and ``NAME=CHECKPOINT[+CHECKPOINT...][@WEIGHT]`` (:func:`parse_policy_specs`).
        out_dir: the results folder.
        progress: show progress bars.
        overwrite: delete the folder's earlier rollouts and report first.
        workers: where shards run (default: this process; :class:`~mri_rl.distributed.Workers`).
        shards_per_rollout: shards per (policy, seed) (default: the workers' count).

    Returns:
        The summary (see :func:`mri_rl.evaluation.report.summarize`).

    Raises:
        RecordMismatchError: a stored rollout or LBCS order of another task, data or policy.
        ValueError: bad arguments, a folder of another split, a learned policy of another task,
            or evaluation files that a policy or the reconstructor was trained on.
    """
    out_dir, workers = Path(out_dir), workers or Workers()
    parts = check_int("shards_per_rollout", shards_per_rollout or workers.count)
    policies = parse_policy_specs(policy_specs)
    folder = resolve_split_folder(setup.data, setup.task.challenge, setup.split)
    check_split_folder(folder, setup.split, setup.any_folder)
    evaluated = data_fingerprint(folder)
    agents = load_agents(policies)
    observations = optional_observations(agent for members in agents.values() for agent in members)
    try:
        env = evaluation_env(setup, folder, observations, evaluated["digest"])
        task = _acquisition_env(env).task
        mismatches = task_mismatches(policies, agents, env, setup.allow_task_mismatch)
        check_held_out(setup, agents, evaluated)
        if overwrite:
            clear_outputs(out_dir)
        context = RolloutContext(setup, folder, observations, evaluated, task, out_dir, progress, workers)
        rollouts, jobs = plan_rollouts(context, policies, mismatches, env, parts)
        roll_shards(jobs, workers, progress)
        rows = [row for rollout in rollouts for row in rollout.finish()]
        settings, title = report_header(setup, policy_specs, policies, mismatches, f"{folder.name}: {task.describe()}")
        width = int(cast(spaces.Discrete, env.single_action_space).n)
        summary = write_report(out_dir, rows, title, make_record(task, {"evaluated": evaluated}, settings), width)
        write_examples(env, rows, setup, [spec.name for spec in policies], out_dir / "examples.png")
    finally:
        _ENVS.clear()
    return summary


__all__ = [
    "BASELINE_NAMES",
    "DEFAULT_BASELINES",
    "EvaluationSetup",
    "PolicySpec",
    "RecordMismatchError",
    "evaluate_policies",
    "parse_policy_specs",
]
