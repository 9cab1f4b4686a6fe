"""Recording the acquisition orders a learned policy takes on a folder of slices (``mri-rl orders``):
the masks a reconstructor trained for that policy learns from (``masks: {kind: orders, path: ...}``,
:class:`~mri_rl.reconstruct.training_masks.OrdersMaskSampler`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from gymnasium import spaces

from mri_rl.acquisition_orders import AcquisitionOrders
from mri_rl.evaluation.policy_specs import (
    PolicySpec,
    build_policy,
    check_learned_policy,
    load_agents,
    optional_observations,
    parse_learned_policy,
)
from mri_rl.evaluation.rollout import acquisition_orders, rollout_policy
from mri_rl.evaluation.setup import EvaluationSetup, make_batched_env
from mri_rl.provenance import checkpoint_fingerprint, data_fingerprint, make_record
from mri_rl.task import AcquisitionTask


def record_policy_orders(
    policy: str | Path, folder: str | Path, batch_size: int = 32, device: str = "cpu", progress: bool = True
) -> AcquisitionOrders:
    """Roll the learned policy ``policy`` (greedy, as it is evaluated) once on every slice of ``folder``,
    on the task it was trained on, and keep each episode's order.

    ``policy`` is an agent checkpoint, or ``CHECKPOINT[+CHECKPOINT...][@WEIGHT]`` as in
    ``mri-rl evaluate`` (:func:`~mri_rl.evaluation.policy_specs.parse_learned_policy`): an ensemble and a
    low-to-high frequency prior. Unlike ``mri-rl evaluate``, any folder is accepted, the policy's
    training slices included: the orders are training masks, not results.

    Raises:
        CheckpointError: not an agent checkpoint.
        ValueError: a checkpoint with no record of its task; spaces that do not fit the data; an
            ensemble or prior that ``mri-rl evaluate`` refuses.
    """
    spec = PolicySpec("policy", *parse_learned_policy(str(policy), str(policy)))
    folder = Path(folder)
    agents = load_agents([spec])[spec.name]
    first = spec.checkpoints[0]
    trained = (agents[0].record or {}).get("task")
    if trained is None:
        raise ValueError(f"{first} has no record of the task it was trained on, so its orders cannot be replayed")
    task = AcquisitionTask.from_dict(trained, f"{first}: task")
    setup = EvaluationSetup(data=folder, task=task, split="train", batch_size=batch_size, device=device)
    env = make_batched_env(setup, folder, batch_size, optional_observations(agents))
    for path, agent in zip(spec.checkpoints, agents, strict=True):
        check_learned_policy(path, agent, env)
    acting = build_policy(spec.name, agents, env, 0, None, spec.frequency_prior)
    orders = acquisition_orders(rollout_policy(acting, env, task.budget, first.stem, 0, progress=progress))
    fingerprints = [checkpoint_fingerprint(path) for path in spec.checkpoints]
    settings: dict[str, Any] = {"policy": str(policy), "frequency_prior": spec.frequency_prior}
    if len(fingerprints) == 1:
        settings["policy_fingerprint"] = fingerprints[0]
    else:
        settings["policy_fingerprints"] = fingerprints
    record = make_record(task, {"slices": data_fingerprint(folder)}, settings)
    return AcquisitionOrders(
        width=int(cast(spaces.Discrete, env.single_action_space).n),  # the MRI env's actions are columns
        initial_lines=task.initial_lines,
        names=tuple(orders),
        orders=tuple(tuple(order) for order in orders.values()),
        record=record,
    )
