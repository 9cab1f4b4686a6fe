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
import shutil
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from tqdm.auto import tqdm

from mri_rl.checks import check_int
from mri_rl.data.fastmri_files import resolve_split_folder
from mri_rl.data.splits import check_disjoint, check_split_folder
from mri_rl.distributed import Workers, run_tasks
from mri_rl.evaluation.figures import Example, plot_examples
from mri_rl.evaluation.lbcs_orders import (
    KIND_ORDERS,
    KindOrders,
    kind_attribute,
    lbcs_kind_orders,
    lbcs_order,
    lbcs_train_folder,
)
from mri_rl.evaluation.policy_specs import (
    LBCS_ORDER_USERS,
    LBCS_TRAINED,
    PolicySpec,
    acquisition_env,
    build_policy,
    check_groups,
    ensemble_members,
    load_agent,
    load_agents,
    optional_observations,
    parse_policy_specs,
    task_mismatches,
)
from mri_rl.evaluation.reference_choice import ChosenReference, check_same_lbcs_orders, choose_reference
from mri_rl.evaluation.report import RoomReference, read_rows_csv, write_report, write_rows_csv
from mri_rl.evaluation.resampling_units import resampling_units
from mri_rl.evaluation.rollout import replay_orders, rollout_policy
from mri_rl.evaluation.setup import FRESH_START, EvaluationSetup, make_batched_env
from mri_rl.evaluation.shards import Shard, join_shards, plan_shards, stale_shard_files
from mri_rl.files import atomic_write_text
from mri_rl.policies import BalancedOraclePolicy
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
from mri_rl.task import ZERO_FILLED, AcquisitionTask

#: What evaluate_policies writes into its folder; --overwrite deletes exactly these.
OUTPUTS = (
    "partial",
    "lbcs_order.json",
    KIND_ORDERS,
    "metrics.csv",
    "metrics.csv.record.json",
    "summary.json",
    "summary.md",
    "curves.png",
    "masks.png",
    "examples.png",
)


def check_held_out(setup: EvaluationSetup, agents: dict[str, tuple[Any, ...]], evaluated: dict[str, Any]) -> None:
    """No evaluated file may be in the training set of the reconstructor, LBCS or an agent.

    Raises:
        ValueError: naming the files and whose training set holds them.
    """
    if setup.task.reconstructor != ZERO_FILLED:
        recon_data = (read_reconstructor_record(setup.task.reconstructor) or {}).get("data") or {}
        check_disjoint(recon_data.get("train"), evaluated, f"the reconstructor {setup.task.reconstructor}")
    for name, members in agents.items():
        if not members and name in LBCS_TRAINED:
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
    if name in LBCS_TRAINED and not learned:
        data["lbcs_train"] = data_fingerprint(lbcs_train_folder(setup))
        settings["lbcs_slices"] = setup.lbcs_slices
    if name == "oracle_rollout" and not learned:
        settings["rollout_candidates"] = setup.rollout_candidates
    if name == "lbcs_kind" and not learned:
        settings["lbcs_by"] = setup.lbcs_by
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
    unwrapped = acquisition_env(env)
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
        lbcs_kind: the LBCS orders per kind of volume (for ``lbcs_kind`` only).
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
    lbcs_kind: KindOrders | None
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
        shard.policy,
        agents,
        env,
        shard.seed,
        job.lbcs,
        job.frequency_prior,
        job.setup.oracle_weights,
        job.lbcs_kind,
        job.setup.rollout_candidates,
    )
    budget = acquisition_env(env).task.budget
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
    reference: ChosenReference | None = None  # the fixed order chosen on val (setup.reference_from)


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
    order (orders, per kind) first when ``lbcs`` or ``oracle_rollout`` (``lbcs_kind``) must be rolled."""
    setup, task, partial = context.setup, context.task, context.out_dir / "partial"
    num_slices = acquisition_env(env).num_slices
    rollouts: list[Rollout] = []
    jobs: list[ShardJob] = []
    lbcs: tuple[int, ...] | None = None
    lbcs_kind: KindOrders | None = None
    for spec in policies:
        name, learned = spec.name, bool(spec.checkpoints)
        for seed in setup.seeds if name == "random" else setup.seeds[:1]:
            record = policy_record(spec, seed, setup, task, context.evaluated, mismatches.get(name, []))
            whole = partial / f"{name}_seed{seed}.csv"
            if stored_rows(whole, record) is not None:
                rollouts.append(Rollout(whole, [], record, num_slices))
                continue
            if name in LBCS_ORDER_USERS and not learned and lbcs is None:
                cache = context.out_dir / "lbcs_order.json"
                train = lbcs_train_folder(setup)
                lbcs = tuple(lbcs_order(setup, task, train, cache, context.progress, context.workers))
            if name == "lbcs_kind" and not learned and lbcs_kind is None:
                source = acquisition_env(env).episodes.source
                lbcs_kind = lbcs_kind_orders(setup, task, source, context.out_dir, context.progress, context.workers)
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
                            lbcs_kind=lbcs_kind,
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
    mismatches, the oracle's weights when ``oracle_ssim_psnr`` is rolled with unequal ones, the
    roll-out's candidates when ``oracle_rollout`` is rolled) and
    ``title``, which names those weights too."""
    settings: dict[str, Any] = {"split": setup.split, "policies": policy_specs, "seeds": list(setup.seeds)}
    if any(spec.name == "lbcs_kind" and not spec.checkpoints for spec in policies):
        settings["lbcs_by"] = setup.lbcs_by
    if any(spec.name == "oracle_ssim_psnr" and not spec.checkpoints for spec in policies):
        settings |= weighted_oracle_settings(setup)
    if any(spec.name == "oracle_rollout" and not spec.checkpoints for spec in policies):
        settings["rollout_candidates"] = setup.rollout_candidates
    if mismatches:
        settings["task_mismatch"] = mismatches
    weights = settings.get("oracle_weights")
    return settings, title + (f"; oracle_ssim_psnr weighs SSIM {weights[0]:g}, PSNR {weights[1]:g}" if weights else "")


def write_evaluation_report(
    context: RolloutContext,
    rows: list[dict[str, Any]],
    policy_specs: list[str],
    policies: list[PolicySpec],
    mismatches: dict[str, list[str]],
    width: int,
    groups: Mapping[str, Sequence[str]],
) -> dict[str, Any]:
    """:func:`~mri_rl.evaluation.report.write_report` of an evaluation's ``rows``: its title and record,
    its ensembles' members and ``groups``, share intervals that resample the folder's independent units
    (:mod:`~mri_rl.evaluation.resampling_units`) and the shares above the reference chosen on val
    (``context.reference``, recorded as ``settings.reference``, once its LBCS orders are checked
    against those rolled here); returns the summary."""
    title = f"{context.folder.name}: {context.task.describe()}"
    settings, title = report_header(context.setup, policy_specs, policies, mismatches, title)
    reference = context.reference
    if reference is not None:
        check_same_lbcs_orders(reference, context.out_dir)
        settings["reference"] = reference.record()
    record = make_record(context.task, {"evaluated": context.evaluated}, settings)
    units = resampling_units(context.folder, {(row["file"], row["slice"]) for row in rows}, context.task.challenge)
    room_reference = None if reference is None else RoomReference(reference.policy, reference.why())
    members = {**ensemble_members(policies), **groups}
    return write_report(context.out_dir, rows, title, record, width, members, units, room_reference)


def chosen_reference(
    setup: EvaluationSetup, task: AcquisitionTask, evaluated_digest: str, policies: list[PolicySpec]
) -> ChosenReference | None:
    """The fixed order among the baselines rolled that was strongest on the val evaluation
    ``setup.reference_from`` (:func:`~mri_rl.evaluation.reference_choice.choose_reference`); None without one."""
    if setup.reference_from is None:
        return None
    baselines = [spec.name for spec in policies if not spec.checkpoints]
    return choose_reference(setup.reference_from, task, evaluated_digest, baselines)


def checked_policies(
    setup: EvaluationSetup, policy_specs: list[str], groups: Mapping[str, Sequence[str]]
) -> list[PolicySpec]:
    """The parsed ``policy_specs``, refused before anything is read if ``groups`` are not two or more of
    them under new names (:func:`~mri_rl.evaluation.policy_specs.check_groups`) or ``lbcs_kind`` has no
    ``setup.lbcs_by``."""
    policies = parse_policy_specs(policy_specs)
    check_groups(groups, policies)
    if any(spec.name == "lbcs_kind" and not spec.checkpoints for spec in policies):
        kind_attribute(setup.lbcs_by)
    return policies


def evaluate_policies(
    setup: EvaluationSetup,
    policy_specs: list[str],
    out_dir: str | Path,
    progress: bool = True,
    overwrite: bool = False,
    workers: Workers | None = None,
    shards_per_rollout: int | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """Roll every policy; write metrics.csv (+ record), summary.json/.md, curves/masks/examples.png.

    Rollouts are split into shards of whole batches (:mod:`~mri_rl.evaluation.shards`) rolled by
    ``workers``: the files are byte-identical to a single-process run's.

    Args:
        setup: data, task and settings.
        policy_specs: baselines and ``NAME=CHECKPOINT[+CHECKPOINT...][@WEIGHT]``
            (:func:`~mri_rl.evaluation.policy_specs.parse_policy_specs`).
        out_dir: the results folder.
        progress: show progress bars.
        overwrite: delete the folder's earlier rollouts and report first.
        workers: where shards run (default: this process; :class:`~mri_rl.distributed.Workers`).
        shards_per_rollout: shards per (policy, seed) (default: the workers' count).
        groups: name -> two or more policies' names (e.g. one per training seed): summary.md gives their spread.

    Returns:
        The summary (see :func:`mri_rl.evaluation.report.summarize`).

    Raises:
        RecordMismatchError: a stored rollout or LBCS order of another task, data or policy.
        ValueError: bad arguments, another split's folder, a policy of another task, files a model was trained on,
            or a bad ``setup.reference_from`` (:mod:`~mri_rl.evaluation.reference_choice`).
    """
    out_dir, workers = Path(out_dir), workers or Workers()
    parts = check_int("shards_per_rollout", shards_per_rollout or workers.count)
    policies = checked_policies(setup, policy_specs, groups or {})
    folder = resolve_split_folder(setup.data, setup.task.challenge, setup.split)
    check_split_folder(folder, setup.split, setup.any_folder)
    evaluated = data_fingerprint(folder)
    agents = load_agents(policies)
    observations = optional_observations(agent for members in agents.values() for agent in members)
    try:
        env = evaluation_env(setup, folder, observations, evaluated["digest"])
        task = acquisition_env(env).task
        mismatches = task_mismatches(policies, agents, env, setup.allow_task_mismatch)
        check_held_out(setup, agents, evaluated)
        if overwrite:
            clear_outputs(out_dir)
        reference = chosen_reference(setup, task, evaluated["digest"], policies)
        context = RolloutContext(setup, folder, observations, evaluated, task, out_dir, progress, workers, reference)
        rollouts, jobs = plan_rollouts(context, policies, mismatches, env, parts)
        roll_shards(jobs, workers, progress)
        rows = [row for rollout in rollouts for row in rollout.finish()]
        width = int(cast(spaces.Discrete, env.single_action_space).n)
        summary = write_evaluation_report(context, rows, policy_specs, policies, mismatches, width, groups or {})
        write_examples(env, rows, setup, [spec.name for spec in policies], out_dir / "examples.png")
    finally:
        _ENVS.clear()
    return summary


__all__ = ["EvaluationSetup", "RecordMismatchError", "evaluate_policies"]
