"""Recording the acquisition orders a learned policy takes on a folder of slices (``mri-rl orders``):
the masks a reconstructor trained for that policy learns from (``masks: {kind: orders, path: ...}``,
:class:`~mri_rl.reconstruct.training_masks.OrdersMaskSampler`)."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from gymnasium import spaces

from mri_rl.acquisition_orders import AcquisitionOrders
from mri_rl.evaluation.evaluate import (
    EvaluationSetup,
    check_learned_policy,
    load_agent,
    make_batched_env,
    optional_observations,
)
from mri_rl.evaluation.rollout import acquisition_orders, rollout_policy
from mri_rl.provenance import checkpoint_fingerprint, data_fingerprint, make_record
from mri_rl.task import AcquisitionTask


def record_policy_orders(
    checkpoint: str | Path, folder: str | Path, batch_size: int = 32, device: str = "cpu", progress: bool = True
) -> AcquisitionOrders:
    """Roll the agent in ``checkpoint`` (greedy, as it is evaluated) once on every slice of ``folder``,
    on the task it was trained on, and keep each episode's order.

    Unlike ``mri-rl evaluate``, any folder is accepted, the policy's training slices included: the
    orders are training masks, not results.

    Raises:
        CheckpointError: not an agent checkpoint.
        ValueError: a checkpoint with no record of its task; spaces that do not fit the data.
    """
    checkpoint, folder = Path(checkpoint), Path(folder)
    agent = load_agent(checkpoint)
    trained = (agent.record or {}).get("task")
    if trained is None:
        raise ValueError(f"{checkpoint} has no record of the task it was trained on, so its orders cannot be replayed")
    task = AcquisitionTask.from_dict(trained, f"{checkpoint}: task")
    setup = EvaluationSetup(data=folder, task=task, split="train", batch_size=batch_size, device=device)
    env = make_batched_env(setup, folder, batch_size, optional_observations([agent]))
    check_learned_policy(checkpoint, agent, env)
    rows = rollout_policy(agent, env, task.budget, checkpoint.stem, 0, progress=progress)
    orders = acquisition_orders(rows)
    record = make_record(
        task,
        {"slices": data_fingerprint(folder)},
        {"policy": str(checkpoint), "policy_fingerprint": checkpoint_fingerprint(checkpoint)},
    )
    return AcquisitionOrders(
        width=int(cast(spaces.Discrete, env.single_action_space).n),  # the MRI env's actions are columns
        initial_lines=task.initial_lines,
        names=tuple(orders),
        orders=tuple(tuple(order) for order in orders.values()),
        record=record,
    )
