"""``mri-rl evaluate``: every policy over every slice of a split, then the report.

Rollouts of each (policy, seed) are stored in ``out/partial/`` as they finish, so an
interrupted evaluation rerun with the same arguments skips what is done and writes the
same files. Only ``random`` depends on the seed; the other baselines and the learned
policies (greedy actions) are rolled out once, with the first seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from mri_rl.agents import AGENTS
from mri_rl.checkpointing import load_checkpoint
from mri_rl.agents.base import AGENT_FORMAT
from mri_rl.data.fastmri_files import resolve_split_folder
from mri_rl.envs import ENV_ID
from mri_rl.envs.slice_source import SliceSource
from mri_rl.evaluation.report import read_rows_csv, write_report, write_rows_csv
from mri_rl.evaluation.rollout import rollout_policy
from mri_rl.policies import (
    EquispacedPolicy,
    LBCSPolicy,
    LowToHighPolicy,
    OraclePolicy,
    RandomPolicy,
    cached_lbcs_order,
    learn_lbcs_order,
)

BASELINE_NAMES = ("random", "lowtohigh", "equispaced", "lbcs", "oracle")


@dataclass
class EvaluationSetup:
    """The acquisition task every policy is evaluated on.

    Attributes:
        data: a folder of ``.h5`` files or a fastMRI root with ``{challenge}_{split}``.
        split: which split when ``data`` is a root.
        challenge: "singlecoil" or "multicoil".
        reconstructor: "zero_filled" or an exported reconstructor checkpoint.
        budget: acquisition steps per episode.
        initial_lines: low-frequency columns acquired at the start.
        reward_metric: the metric the oracle and LBCS greedily improve.
        seeds: evaluation seeds.
        batch_size: slices stepped together.
        lbcs_train_data: where LBCS learns its order (default: the root's train split).
        lbcs_slices: training slices LBCS averages over.
        device: torch device of the reconstructor.
    """

    data: Path
    split: str = "test"
    challenge: str = "singlecoil"
    reconstructor: str = "zero_filled"
    budget: int = 16
    initial_lines: int = 4
    reward_metric: str = "mse"
    seeds: tuple[int, ...] = (0, 1, 2)
    batch_size: int = 32
    lbcs_train_data: Path | None = None
    lbcs_slices: int = 32
    device: str = "cpu"

    def env_kwargs(self, folder: Path) -> dict[str, Any]:
        return {"data_path": folder, "challenge": self.challenge, "reconstructor": self.reconstructor,
                "budget": self.budget, "initial_lines": self.initial_lines, "reward_metric": self.reward_metric,
                "device": self.device}


def parse_policy_specs(specs: list[str]) -> list[tuple[str, Path | None]]:
    """``["random", "dqn=runs/a/model.pt"]`` -> ``[("random", None), ("dqn", Path(...))]``."""
    parsed = []
    for spec in specs:
        name, _, path = spec.partition("=")
        if path:
            parsed.append((name, Path(path)))
        elif name in BASELINE_NAMES:
            parsed.append((name, None))
        else:
            raise ValueError(f"unknown policy {spec!r}; expected one of {BASELINE_NAMES} or NAME=CHECKPOINT")
    names = [name for name, _ in parsed]
    if len(set(names)) != len(names):
        raise ValueError(f"policy names must be unique, got {names}")
    return parsed


def make_batched_env(setup: EvaluationSetup, folder: Path, num_slices: int | None = None) -> gym.vector.VectorEnv:
    count = len(SliceSource(folder, setup.challenge)) if num_slices is None else num_slices
    return gym.make_vec(ENV_ID, num_envs=max(1, min(setup.batch_size, count)),
                        vectorization_mode="vector_entry_point", **setup.env_kwargs(folder))


def lbcs_order(setup: EvaluationSetup, cache_file: Path, progress: bool) -> list[int]:
    """The LBCS order learned on training slices (cached in ``cache_file``)."""
    if setup.lbcs_train_data is not None:
        folder = resolve_split_folder(setup.lbcs_train_data, setup.challenge, "train")
    else:
        candidate = Path(setup.data) / f"{setup.challenge}_train"
        if not candidate.is_dir():
            raise ValueError(f"lbcs learns on training slices: {candidate} does not exist; pass --lbcs-train-data")
        folder = candidate
    total = len(SliceSource(folder, setup.challenge))
    indices = np.unique(np.linspace(0, total - 1, min(setup.lbcs_slices, total)).round().astype(int)).tolist()
    key = {"train_folder": str(folder.resolve()), "reconstructor": str(setup.reconstructor),
           "budget": setup.budget, "initial_lines": setup.initial_lines, "reward_metric": setup.reward_metric,
           "slices": indices}

    def learn() -> list[int]:
        env = gym.make_vec(ENV_ID, num_envs=len(indices), vectorization_mode="vector_entry_point",
                           **setup.env_kwargs(folder))
        return learn_lbcs_order(env, indices, setup.budget, progress)

    return cached_lbcs_order(cache_file, key, learn)


def load_learned_policy(path: Path, env: gym.vector.VectorEnv):
    """An agent checkpoint (any algorithm) checked against the env's spaces."""
    algorithm = load_checkpoint(path, AGENT_FORMAT).get("algorithm")
    if algorithm not in AGENTS:
        raise ValueError(f"{path} holds an agent of unknown algorithm {algorithm!r}")
    agent = AGENTS[algorithm].load(path)
    if agent.observation_space != env.single_observation_space or agent.action_space != env.single_action_space:
        raise ValueError(f"{path} was trained on other observation/action spaces than this data's "
                         f"({agent.observation_space} vs {env.single_observation_space})")
    return agent


def build_policy(name: str, path: Path | None, setup: EvaluationSetup, env: gym.vector.VectorEnv, seed: int,
                 out_dir: Path, progress: bool):
    width = env.single_action_space.n
    if path is not None:
        return load_learned_policy(path, env)
    if name == "random":
        return RandomPolicy(width, seed)
    if name == "lowtohigh":
        return LowToHighPolicy(width)
    if name == "equispaced":
        return EquispacedPolicy(width, setup.budget)
    if name == "lbcs":
        return LBCSPolicy(width, lbcs_order(setup, out_dir / "lbcs_order.json", progress))
    return OraclePolicy(env)


def evaluate_policies(setup: EvaluationSetup, policy_specs: list[str], out_dir: str | Path,
                      progress: bool = True) -> dict[str, Any]:
    """Roll every policy, write metrics.csv, summary.json, summary.md and curves.png.

    Returns:
        The summary (see :func:`mri_rl.evaluation.report.summarize`).
    """
    out_dir = Path(out_dir)
    policies = parse_policy_specs(policy_specs)
    if not setup.seeds:
        raise ValueError("give at least one seed")
    folder = resolve_split_folder(setup.data, setup.challenge, setup.split)
    env = make_batched_env(setup, folder)
    rows: list[dict[str, Any]] = []
    for name, path in policies:
        for seed in setup.seeds if name == "random" else setup.seeds[:1]:
            partial = out_dir / "partial" / f"{name}_seed{seed}.csv"
            if partial.is_file():
                rows += read_rows_csv(partial)
                continue
            policy = build_policy(name, path, setup, env, seed, out_dir, progress)
            policy_rows = rollout_policy(policy, env, setup.budget, name, seed, progress=progress)
            write_rows_csv(partial, policy_rows)
            rows += read_rows_csv(partial)  # the same parsed values whether computed now or resumed
    title = (f"{setup.challenge} {folder.name}, {setup.reconstructor} reconstructor, budget {setup.budget}, "
             f"{setup.initial_lines} initial lines")
    return write_report(out_dir, rows, title)
