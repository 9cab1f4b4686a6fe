"""The policies an evaluation rolls, by name: ``NAME=CHECKPOINT[+CHECKPOINT...][@WEIGHT]`` specs
parsed into :class:`PolicySpec`, their agents loaded from checkpoints and checked against the
evaluation env, and the policy objects built (a baseline, one agent, or a product of experts:
:class:`~mri_rl.policies.product_of_experts.ProductOfExpertsPolicy`). Shared by ``mri-rl evaluate``
(:mod:`mri_rl.evaluation.evaluate`) and ``mri-rl orders`` (:mod:`mri_rl.evaluation.policy_orders`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import gymnasium as gym
from gymnasium import spaces

from mri_rl.agents import AGENTS
from mri_rl.agents.base import Agent, read_agent_checkpoint
from mri_rl.checkpointing import entry_error
from mri_rl.checks import is_valid
from mri_rl.envs.spaces import OPTIONAL_OBSERVATIONS
from mri_rl.policies import (
    BalancedOraclePolicy,
    EquispacedPolicy,
    LBCSByKindPolicy,
    LBCSPolicy,
    LowToHighPolicy,
    OraclePolicy,
    RandomPolicy,
    RolloutOraclePolicy,
)
from mri_rl.policies.product_of_experts import ProductOfExpertsPolicy
from mri_rl.policies.rollout_oracle import DEFAULT_CANDIDATES
from mri_rl.task import AcquisitionTask

if TYPE_CHECKING:
    from mri_rl.envs.vector import BatchedActiveAcquisitionEnv

BASELINE_NAMES = (
    "random",
    "lowtohigh",
    "equispaced",
    "lbcs",
    "lbcs_kind",
    "oracle",
    "oracle_ssim_psnr",
    "oracle_rollout",
)
#: The baselines ``mri-rl evaluate`` rolls when given no --policies (not the per-kind LBCS, which needs
#: ``--lbcs-by``, nor the second oracle).
DEFAULT_BASELINES = ("random", "lowtohigh", "equispaced", "lbcs", "oracle")
#: The baselines that follow orders learned on training slices (their training data is recorded and held out).
LBCS_NAMES = ("lbcs", "lbcs_kind")
#: The baselines that need the LBCS order: ``lbcs``, and ``oracle_rollout``, whose base policy it is.
LBCS_ORDER_USERS = ("lbcs", "oracle_rollout")
#: The baselines whose rollouts rest on orders learned on training slices: those slices' folder is held out
#: from the evaluated files and recorded with the rollout.
LBCS_TRAINED = (*LBCS_NAMES, "oracle_rollout")
POLICY_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


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


def ensemble_members(policies: Sequence[PolicySpec]) -> dict[str, tuple[str, ...]]:
    """Each ensemble whose members were also rolled one by one: ensemble name -> the members' policy
    names, in the ensemble's order. A member counts as rolled alone when some policy is its checkpoint,
    the same file (paths compared resolved), without a frequency prior; ``a=x.pt b=y.pt e=x.pt+y.pt@0.1``
    gives ``{"e": ("a", "b")}``. An ensemble with a member not rolled alone is left out."""
    singles = (spec for spec in policies if len(spec.checkpoints) == 1 and not spec.frequency_prior)
    alone = {spec.checkpoints[0].resolve(): spec.name for spec in singles}
    return {
        spec.name: tuple(alone[path.resolve()] for path in spec.checkpoints)
        for spec in policies
        if len(spec.checkpoints) > 1 and all(path.resolve() in alone for path in spec.checkpoints)
    }


def check_groups(groups: Mapping[str, Sequence[str]], policies: Sequence[PolicySpec]) -> None:
    """Refuse a group (name -> policy names, e.g. one agent per training seed, whose spread summary.md
    prints beside the ensembles' members) that is not two or more of ``policies`` under a new name.

    Raises:
        ValueError: naming the group and what was expected.
    """
    names = [spec.name for spec in policies]
    for group, members in groups.items():
        if group in names:
            raise ValueError(f"group {group!r}: the name is taken by a policy; choose a new one")
        if len(set(members)) < 2 or len(set(members)) != len(members):
            raise ValueError(f"group {group!r}: two or more different policies are needed, got {list(members)}")
        unknown = [member for member in members if member not in names]
        if unknown:
            raise ValueError(f"group {group!r}: {unknown} are not among the policies rolled ({names})")


def optional_observations(agents: Iterable[Agent]) -> tuple[str, ...]:
    """The optional observation keys (:data:`~mri_rl.envs.spaces.OPTIONAL_OBSERVATIONS`) that any of
    ``agents`` reads, so that one evaluation env serves them all (a key an agent does not read is
    ignored by its network)."""
    read = {key for agent in agents for key in getattr(agent.observation_space, "spaces", {})}
    return tuple(key for key in OPTIONAL_OBSERVATIONS if key in read)


def acquisition_env(env: gym.vector.VectorEnv) -> BatchedActiveAcquisitionEnv:
    """The MRI env under ``env`` (a batched one, e.g. of
    :func:`~mri_rl.evaluation.setup.make_batched_env`)."""
    return cast("BatchedActiveAcquisitionEnv", env.unwrapped)


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
        differences = AcquisitionTask.from_dict(trained_task).differences(acquisition_env(env).task)
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
    lbcs_kind: tuple[Mapping[str, Sequence[int]], Sequence[str]] | None = None,
    rollout_candidates: int = DEFAULT_CANDIDATES,
):
    """The policy called ``name``: its ``agents`` when it is a learned one (one agent as it is; with a
    low-to-high prior of weight ``frequency_prior`` > 0 or several agents, their product of experts),
    else a baseline (``lbcs``: the LBCS order, learned beforehand by
    :func:`~mri_rl.evaluation.lbcs_orders.lbcs_order`, also the base order of ``oracle_rollout``;
    ``lbcs_kind``: the orders per kind and each slice's kind,
    :func:`~mri_rl.evaluation.lbcs_orders.lbcs_kind_orders`; ``oracle_weights``: those of
    ``oracle_ssim_psnr``; ``rollout_candidates``: the greedy oracle's columns ``oracle_rollout`` scores
    besides LBCS's next one)."""
    width = int(cast(spaces.Discrete, env.single_action_space).n)  # the MRI env's actions are columns
    if len(agents) == 1 and not frequency_prior:
        return agents[0]
    if agents:
        return ProductOfExpertsPolicy(agents, width, frequency_prior)
    task = acquisition_env(env).task
    if name == "random":
        return RandomPolicy(width, seed)
    if name == "lowtohigh":
        return LowToHighPolicy(width)
    if name == "equispaced":
        return EquispacedPolicy(width, task.budget)
    if name in LBCS_ORDER_USERS:
        if lbcs is None:
            raise ValueError(f"the {name} policy needs the LBCS order: learn it with lbcs_order first")
        return LBCSPolicy(width, lbcs) if name == "lbcs" else RolloutOraclePolicy(env, lbcs, rollout_candidates)
    if name == "lbcs_kind":
        if lbcs_kind is None:
            raise ValueError("the lbcs_kind policy needs its orders: learn them with lbcs_kind_orders first")
        return LBCSByKindPolicy(width, *lbcs_kind)
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
