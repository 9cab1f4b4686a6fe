"""The one collection loop: stepping a vector env with next-step autoreset.

Gymnasium's next-step autoreset (``AutoresetMode.NEXT_STEP``) restarts a finished
sub-environment on the step *after* it ended: that step's action is ignored, its reward
is 0 and it belongs to no episode. :class:`Collector` keeps this bookkeeping in one place
for every consumer — DQN and REINFORCE training, evaluation rollouts and LBCS:

- ``valid``: which rows of a step were real transitions (not autoreset steps);
- the legal actions of each row (``info["action_mask"]`` or the env's ``action_masks()``, a
  Sync or AsyncVectorEnv's from its sub-envs);
- episode returns as episodes end;
- which rows are still in the episode they started at the last reset (rollouts over
  chosen slices stop recording a row when its first episode ends).

Given the device of the policy, a Collector asks an env that can return its observations
as torch tensors on its own device (the batched MRI env's ``tensor_observations``) to do so
when that is the policy's device: the observations then go from the env to the policy
without a copy to the host and back. :meth:`Collector.close` gives the env back its numpy
observations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv, VectorEnv

from mri_rl.checks import same_device


def as_vector_env(env: gym.Env | VectorEnv) -> VectorEnv:
    """A vector env with next-step autoreset: ``env`` itself, or one env wrapped."""
    if isinstance(env, VectorEnv):
        mode = env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if mode != AutoresetMode.NEXT_STEP:
            raise ValueError(f"vector envs must use AutoresetMode.NEXT_STEP, got {mode}")
        return env
    if isinstance(env, gym.Env):
        return SyncVectorEnv([lambda: env], autoreset_mode=AutoresetMode.NEXT_STEP)
    raise TypeError(f"expected a gymnasium Env or VectorEnv, got {type(env).__name__}")


def env_action_masks(env: gym.Env | VectorEnv, infos: dict[str, Any]) -> np.ndarray | None:
    """The legal actions the env gives, bool (A,) for an env or (N, A) for a vector env (a copy),
    or None when it gives none.

    ``infos["action_mask"]``, else the env's ``action_masks()``: a single env's own or one of its
    wrappers'; a vector env's own (the batched MRI env) or, for a Sync or AsyncVectorEnv, each
    sub-env's (through its wrappers, by the vector env's ``call``).
    """
    if "action_mask" in infos:
        return np.array(infos["action_mask"], dtype=bool)
    if not isinstance(env, VectorEnv):
        has_masks = env.has_wrapper_attr("action_masks")
        return np.array(env.get_wrapper_attr("action_masks")(), dtype=bool) if has_masks else None
    base: Any = env.unwrapped  # duck-typed: any vector env with ``action_masks()``
    if hasattr(base, "action_masks"):
        return np.array(base.action_masks(), dtype=bool)
    if not isinstance(base, (SyncVectorEnv, AsyncVectorEnv)) or not all(base.call("has_wrapper_attr", "action_masks")):
        return None
    return np.stack([np.array(masks, dtype=bool) for masks in base.call("action_masks")])


def first_action(space: spaces.Space) -> int:
    """The env's action of index 0: a Discrete ``space``'s ``start``, else 0."""
    return int(space.start) if isinstance(space, spaces.Discrete) else 0


def legal_actions(env: VectorEnv, infos: dict[str, Any], num_actions: int) -> np.ndarray:
    """bool (N, A): the env's masks (:func:`env_action_masks`), else every action legal.

    A final observation may allow no action (the MRI env without a budget ends when every
    column is acquired); the next-step autoreset ignores its action, so such rows allow
    every action rather than leave nothing to choose or sample from.
    """
    masks = env_action_masks(env, infos)
    if masks is None:
        return np.ones((env.num_envs, num_actions), dtype=bool)
    legal = masks.reshape(env.num_envs, -1)
    legal[~legal.any(axis=1)] = True
    return legal


@dataclass
class Step:
    """One step of all N sub-environments (arrays with leading dimension N).

    Attributes:
        observations: what the policy sees next (after autoreset, a new episode's first).
        legal: bool (N, A), legal actions in ``observations``.
        rewards, terminated, truncated: as the env returned them.
        infos: the env's info dictionary.
        valid: bool (N,), False for autoreset steps (no transition).
        in_first_episode: bool (N,), True where this step belonged to the episode the row
            started at the last reset.
        finished_returns: returns of the episodes that ended in this step.
    """

    observations: Any
    legal: np.ndarray
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    infos: dict[str, Any]
    valid: np.ndarray
    in_first_episode: np.ndarray
    finished_returns: list[float]


class Collector:
    """Steps a vector env and keeps the next-step autoreset bookkeeping (module docstring).

    Args:
        env: a vector env with next-step autoreset (see :func:`as_vector_env`).
        num_actions: size of the Discrete action space.
        device: the policy's device; an env on that same device that can return tensor
            observations (``tensor_observations``) returns them from now on, on that device
            (None: the env's observations as they are, numpy for the MRI envs).

    Actions are indices in [0, A), as the networks and the legal masks count them (entry i of a mask
    is the index i): :meth:`step` takes indices and gives the env its own actions, index +
    ``action_start``. A :class:`~mri_rl.agents.Policy`'s ``predict`` returns env actions: subtract
    ``action_start`` before :meth:`step` (:func:`~mri_rl.evaluation.rollout.predicted_indices`).

    Attributes:
        tensor_observations: whether the observations are torch tensors on ``device``.
        action_start: the env's first action (its Discrete space's ``start``, :func:`first_action`),
            which :meth:`step` adds to the action indices.
    """

    def __init__(self, env: VectorEnv, num_actions: int, device: str | torch.device | None = None) -> None:
        self.env = env
        self.num_actions = num_actions
        base: Any = env.unwrapped  # duck-typed: the option is ``tensor_observations`` and ``device``
        self._was_tensors: bool | None = getattr(base, "tensor_observations", None)  # None: no such option
        self.tensor_observations = (
            device is not None and self._was_tensors is not None and same_device(device, base.device)
        )
        if self._was_tensors is not None:
            base.tensor_observations = self.tensor_observations
        self.action_start = first_action(env.single_action_space)
        n = env.num_envs
        self.returns = np.zeros(n, dtype=np.float64)
        self.autoresetting = np.zeros(n, dtype=bool)
        self.in_first_episode = np.ones(n, dtype=bool)

    def close(self) -> None:
        """Give the env back the observations it returned before this Collector (numpy by default)."""
        if self._was_tensors is not None:
            base: Any = self.env.unwrapped
            base.tensor_observations = self._was_tensors

    def reset(self, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, np.ndarray, dict]:
        """Reset every sub-environment: (observations, legal actions (N, A), infos)."""
        observations, infos = self.env.reset(seed=seed, options=options)
        self.returns[:] = 0.0
        self.autoresetting[:] = False
        self.in_first_episode[:] = True
        return observations, legal_actions(self.env, infos, self.num_actions), infos

    def step(self, actions: np.ndarray) -> Step:
        """Step every sub-environment with the action indices ``actions`` (N,) in [0, A), not env actions
        (the env gets ``actions + action_start``, its own actions)."""
        observations, rewards, terminated, truncated, infos = self.env.step(np.asarray(actions) + self.action_start)
        rewards, terminated, truncated = np.asarray(rewards), np.asarray(terminated), np.asarray(truncated)
        valid = ~self.autoresetting
        first = self.in_first_episode & valid
        self.returns += np.where(valid, rewards, 0.0)
        ended = valid & (terminated | truncated)
        finished = self.returns[ended].tolist()
        self.returns[ended] = 0.0
        self.autoresetting = terminated | truncated
        self.in_first_episode &= ~ended
        return Step(
            observations,
            legal_actions(self.env, infos, self.num_actions),
            rewards,
            terminated,
            truncated,
            infos,
            valid,
            first,
            finished,
        )
