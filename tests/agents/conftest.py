"""Fixtures of the agent tests: toy environments with known answers, MRI env factories."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.wrappers import TimeLimit

import mri_rl  # noqa: F401  (registers the MRI environment)
from mri_rl.envs import ENV_ID


class ChainEnv(gym.Env):
    """States 0..n-1 in a line, start at 0; action 0 = left (0 stays at 0), 1 = right.

    Reaching state n-1 gives reward 1 and terminates; every other step gives 0. The
    observation is the one-hot state. With discount gamma the optimal values are
    V*(s) = gamma^(n-2-s) for s < n-1 (n-1-s steps to the goal, the reward on the last),
    so V*(0) = Q*(0, right) = gamma^(n-2).
    """

    def __init__(self, n: int = 5) -> None:
        self.n = n
        self.observation_space = spaces.Box(0.0, 1.0, (n,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.state = 0

    def _obs(self) -> np.ndarray:
        return np.eye(self.n, dtype=np.float32)[self.state]

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.state = 0
        return self._obs(), {}

    def step(self, action: int):
        self.state = min(self.state + 1, self.n - 1) if int(action) == 1 else max(self.state - 1, 0)
        terminated = self.state == self.n - 1
        return self._obs(), float(terminated), terminated, False, {}


def make_chain(n: int = 5, max_steps: int = 20) -> gym.Env:
    return TimeLimit(ChainEnv(n), max_episode_steps=max_steps)


def one_hot_states(n: int = 5) -> np.ndarray:
    """(n, n) float32: the observation of every state."""
    return np.eye(n, dtype=np.float32)


class MaskedEnv(gym.Env):
    """Four actions, a legal set that changes every step (``info["action_mask"]``).

    The reward of an action is its index, so an agent that ignored the mask would pick
    action 3 whenever it could. Each step draws a new mask with 1 to 3 legal actions
    (action 3 is illegal on odd steps). Illegal actions are counted in ``violations``
    (and given reward -10). Episodes last ``length`` steps; the observation is the
    one-hot step index concatenated with the mask.
    """

    def __init__(self, length: int = 6) -> None:
        self.length = length
        self.observation_space = spaces.Box(0.0, 1.0, (length + 4,), np.float32)
        self.action_space = spaces.Discrete(4)
        self.violations = 0
        self.steps_taken = 0
        self.t = 0
        self.mask = np.ones(4, dtype=bool)

    def _draw_mask(self) -> None:
        while True:
            mask = self.np_random.random(4) < 0.5
            if self.t % 2 == 1:
                mask[3] = False
            if mask.any():
                break
        self.mask = mask

    def _obs(self) -> np.ndarray:
        obs = np.zeros(self.length + 4, dtype=np.float32)
        obs[min(self.t, self.length - 1)] = 1.0
        obs[self.length :] = self.mask
        return obs

    def _info(self) -> dict[str, Any]:
        return {"action_mask": self.mask.astype(np.int8)}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        self._draw_mask()
        return self._obs(), self._info()

    def step(self, action: int):
        action = int(action)
        self.steps_taken += 1
        legal = bool(self.mask[action])
        if not legal:
            self.violations += 1
        reward = float(action) if legal else -10.0
        self.t += 1
        terminated = self.t >= self.length
        self._draw_mask()
        return self._obs(), reward, terminated, False, self._info()


@pytest.fixture
def chain_factory() -> Callable[..., gym.Env]:
    """``chain_factory(n=5, max_steps=20)``: a :class:`ChainEnv` under a TimeLimit."""
    return make_chain


@pytest.fixture
def masked_env_class() -> type[MaskedEnv]:
    return MaskedEnv


MRI_KWARGS = dict(
    challenge="singlecoil",
    reconstructor="zero_filled",
    budget=4,
    initial_lines=2,
    reward_metric="mse",
    on_bad_file="raise",
)


@pytest.fixture(scope="session")
def mri_train_folder(singlecoil_root: Path) -> Path:
    """singlecoil_train of the tiny synthetic root: 16 x 16 targets, 16 k-space columns."""
    return singlecoil_root / "singlecoil_train"


@pytest.fixture
def make_mri_env(mri_train_folder: Path) -> Callable[..., gym.Env]:
    """``make_mri_env(**overrides)``: the single MRI env (budget 4, 2 initial lines)."""

    def factory(**overrides: Any) -> gym.Env:
        return gym.make(ENV_ID, data_path=mri_train_folder, **{**MRI_KWARGS, **overrides})

    return factory


@pytest.fixture
def make_mri_vec_env(mri_train_folder: Path) -> Callable[..., gym.vector.VectorEnv]:
    """``make_mri_vec_env(num_envs, **overrides)``: the batched MRI env."""

    def factory(num_envs: int = 2, **overrides: Any) -> gym.vector.VectorEnv:
        return gym.make_vec(
            ENV_ID,
            num_envs=num_envs,
            vectorization_mode="vector_entry_point",
            data_path=mri_train_folder,
            **{**MRI_KWARGS, **overrides},
        )

    return factory


def _guard_steps(env: Any, legal: Callable[[], np.ndarray]) -> list[tuple[int, int]]:
    """Replace ``env.step`` by one that records every illegal action before stepping.

    Args:
        env: a single env (action int) or a vector env (actions (N,)).
        legal: returns the legal actions now, bool (A,) or (N, A).

    Returns:
        the list that collects (row, action) of each illegal action taken. For a vector
        env, rows that are autoresetting (their action is ignored) are skipped.
    """
    violations: list[tuple[int, int]] = []
    original = env.step
    vector = isinstance(env, gym.vector.VectorEnv)
    needs_reset = {"rows": None}

    def step(action):
        mask = np.atleast_2d(legal())
        actions = np.atleast_1d(np.asarray(action))
        skip = needs_reset["rows"] if vector and needs_reset["rows"] is not None else np.zeros(len(actions), bool)
        for row, a in enumerate(actions):
            if not skip[row] and not mask[row, int(a)]:
                violations.append((row, int(a)))
        result = original(action)
        if vector:
            needs_reset["rows"] = np.asarray(result[2]) | np.asarray(result[3])
        return result

    env.step = step
    return violations


@pytest.fixture
def guard_steps() -> Callable[..., list[tuple[int, int]]]:
    """``guard_steps(env, legal)``: record illegal actions taken in ``env`` (see :func:`_guard_steps`)."""
    return _guard_steps


@pytest.fixture
def chain_observations() -> Callable[[int], np.ndarray]:
    """``chain_observations(n=5)``: the one-hot observations of all chain states, (n, n)."""
    return one_hot_states
