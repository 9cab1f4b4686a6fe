"""A vector env whose sub-environments are stepped by Ray actors, one batch per actor.

Agents train on it unchanged: it is one Gymnasium ``VectorEnv`` of ``workers x n``
sub-environments with next-step autoreset. Each step sends every actor its share of the
actions at once and waits for all of them (synchronous, as one batched env), so the
expensive part, the env step (for the MRI env: the reconstructor), runs in parallel,
while acting stays batched in the learner. This is central inference, as in SEED RL
(Espeholt et al., ICLR 2020), rather than Ape-X's actors with their own network copies
(Horgan et al., ICLR 2018): the policy is never stale and no weights are broadcast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium.vector import VectorEnv
from gymnasium.vector.utils import batch_space

from mri_rl.distributed import Workers, import_ray, ray_results, start_ray


class EnvActor:
    """Holds one vector env in a Ray worker (see :class:`RemoteVectorEnv`). An env that cannot be
    made is reported by :meth:`describe`, as its own exception (a bad data folder stays one line)."""

    def __init__(self, make_env: Callable[[], VectorEnv]) -> None:
        try:
            self.env, self.error = make_env(), None
        except Exception as error:  # raised again by describe, where the caller gets it as itself
            self.error = error

    def describe(self) -> dict[str, Any]:
        """Spaces, size, metadata, and the task and record of an env that has them (the MRI env)."""
        if self.error is not None:
            raise self.error
        base = self.env.unwrapped
        record = getattr(base, "record", None)
        return {
            "single_observation_space": self.env.single_observation_space,
            "single_action_space": self.env.single_action_space,
            "num_envs": self.env.num_envs,
            "metadata": dict(self.env.metadata),
            "task": getattr(base, "task", None),
            "record": record() if callable(record) else None,
        }

    def reset(self, seed: int | None) -> tuple[Any, dict[str, Any]]:
        return self.env.reset(seed=seed)

    def step(self, actions: np.ndarray) -> tuple[Any, ...]:
        return self.env.step(actions)

    def close(self) -> None:
        if self.error is None:
            self.env.close()


class RemoteVectorEnv(VectorEnv):
    """``workers.count`` vector envs made by ``make_env`` in Ray actors, stepped as one.

    Args:
        make_env: builds one actor's vector env (picklable: a module-level function or a
            ``functools.partial`` of one); every actor's must have the same spaces.
        workers: the actors (one CPU each, ``gpus_per_worker`` of a GPU) and the Ray cluster.

    Attributes:
        task: the actors' task, for an env that has one (the MRI env).

    ``reset(seed=s)`` resets actor k with ``s + k * n`` (n: its sub-environments), the seeds
    a ``SyncVectorEnv`` of all the sub-environments would give them; ``options`` are not
    supported.
    """

    def __init__(self, make_env: Callable[[], VectorEnv], workers: Workers) -> None:
        self._started_ray = start_ray(workers)
        actor_class = import_ray().remote(num_cpus=1, num_gpus=workers.gpus_per_worker)(EnvActor)
        self.actors = [actor_class.remote(make_env) for _ in range(workers.count)]
        try:
            descriptions = ray_results([actor.describe.remote() for actor in self.actors])
        except BaseException:
            self.close_extras()
            raise
        first = descriptions[0]
        for other in descriptions[1:]:
            if (other["single_observation_space"], other["single_action_space"]) != (
                first["single_observation_space"],
                first["single_action_space"],
            ):
                raise ValueError("the actors' envs have different observation or action spaces")
        self.sizes = [d["num_envs"] for d in descriptions]
        self.bounds = np.cumsum([0, *self.sizes])
        self.num_envs = int(self.bounds[-1])
        self.single_observation_space = first["single_observation_space"]
        self.single_action_space = first["single_action_space"]
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.metadata = first["metadata"]
        self.task = first["task"]
        self._record = first["record"]

    def record(self) -> dict[str, Any] | None:
        """The actors' env record (see :meth:`BatchedActiveAcquisitionEnv.record`), if their env has one."""
        return self._record

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if options:
            raise ValueError(f"RemoteVectorEnv.reset takes no options, got {sorted(options)}")
        seeds = [None if seed is None else seed + int(start) for start in self.bounds[:-1]]
        results = ray_results([actor.reset.remote(s) for actor, s in zip(self.actors, seeds)])
        observations, infos = zip(*results)
        return _concatenate(list(observations)), _merge_infos(list(infos), self.sizes)

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        if len(actions) != self.num_envs:
            raise ValueError(f"expected {self.num_envs} actions (one per sub-environment), got {len(actions)}")
        parts = [actions[a:b] for a, b in zip(self.bounds[:-1], self.bounds[1:])]
        results = ray_results([actor.step.remote(part) for actor, part in zip(self.actors, parts)])
        observations, rewards, terminated, truncated, infos = zip(*results)
        return (
            _concatenate(list(observations)),
            np.concatenate(rewards),
            np.concatenate(terminated),
            np.concatenate(truncated),
            _merge_infos(list(infos), self.sizes),
        )

    def close_extras(self, **kwargs: Any) -> None:
        """Close the actors' envs, end the actors, and Ray if this env started it."""
        ray = import_ray()
        if not ray.is_initialized():
            return
        ray.get([actor.close.remote() for actor in self.actors], timeout=60)
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []
        if self._started_ray:
            ray.shutdown()


def _concatenate(parts: list[Any]) -> Any:
    """Batches of observations (arrays, or dicts of arrays) joined along their first axis."""
    if isinstance(parts[0], dict):
        return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
    return np.concatenate(parts)


def _merge_infos(infos: list[dict[str, Any]], sizes: list[int]) -> dict[str, Any]:
    """Vector-env infos of consecutive sub-environment batches as one: a key some batches lack is
    filled with zeros there, and its ``_key`` mask False (Gymnasium's convention)."""
    merged: dict[str, Any] = {}
    for key in dict.fromkeys(key for info in infos for key in info):
        present = [info[key] for info in infos if key in info]
        if isinstance(present[0], dict):
            merged[key] = _merge_infos([info.get(key, {}) for info in infos], sizes)
            continue
        template = np.asarray(present[0])
        merged[key] = np.concatenate(
            [
                np.asarray(info[key]) if key in info else np.zeros((size, *template.shape[1:]), dtype=template.dtype)
                for info, size in zip(infos, sizes)
            ]
        )
    return merged


__all__ = ["EnvActor", "RemoteVectorEnv"]
