"""What DQN and REINFORCE share: environment handling, prediction, saving and loading.

The habits are Stable-Baselines3's: ``Agent(env, **hyperparameters)``, ``learn``,
``predict(obs, deterministic=True) -> (action, None)``, ``save``, ``Class.load(path, env)``.
Any single Gymnasium env is wrapped into a one-env ``SyncVectorEnv``; vector envs
(including the batched MRI env) are used as they are, with next-step autoreset.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv

from mri_rl.checkpointing import atomic_save, load_checkpoint

AGENT_FORMAT = "mri_rl.agent"
Callback = Callable[["Agent"], bool | None]


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


def space_to_dict(space: spaces.Space) -> dict[str, Any]:
    """A ``weights_only``-loadable description of a Box, MultiBinary, Discrete or Dict space."""
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "low": torch.from_numpy(np.asarray(space.low)),
            "high": torch.from_numpy(np.asarray(space.high)),
            "dtype": str(space.dtype),
        }
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": [int(n) for n in np.atleast_1d(space.n)]}  # no numpy scalars
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n)}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {key: space_to_dict(sub) for key, sub in space.spaces.items()}}
    raise TypeError(f"unsupported space {space}")


def space_from_dict(description: dict[str, Any]) -> spaces.Space:
    """Inverse of :func:`space_to_dict`."""
    kind = description["type"]
    if kind == "Box":
        return spaces.Box(description["low"].numpy(), description["high"].numpy(), dtype=np.dtype(description["dtype"]))
    if kind == "MultiBinary":
        n = description["n"]
        return spaces.MultiBinary(n[0] if len(n) == 1 else n)
    if kind == "Discrete":
        return spaces.Discrete(description["n"])
    return spaces.Dict({key: space_from_dict(sub) for key, sub in description["spaces"].items()})


class Agent:
    """Base class: holds the env, spaces, seeding, counters and the save/load format.

    Subclasses set :attr:`algorithm`, build their networks in ``_build`` and implement
    ``learn``, ``_act`` and ``_state``/``_load_state``.
    """

    algorithm: ClassVar[str] = ""

    def __init__(
        self,
        env: gym.Env | VectorEnv | None,
        hyperparameters: dict[str, Any],
        seed: int = 0,
        device: str = "cpu",
        observation_space: spaces.Space | None = None,
        action_space: spaces.Space | None = None,
    ) -> None:
        self.env = None if env is None else as_vector_env(env)
        if self.env is not None:
            observation_space = self.env.single_observation_space
            action_space = self.env.single_action_space
        if observation_space is None or action_space is None:
            raise ValueError("give an env, or both observation_space and action_space")
        if not isinstance(action_space, spaces.Discrete):
            raise TypeError(f"{type(self).__name__} needs a Discrete action space, got {action_space}")
        self.observation_space = observation_space
        self.action_space = action_space
        self.num_actions = int(action_space.n)
        self.hyperparameters = dict(hyperparameters)
        self.seed = seed
        self.device = torch.device(device)
        self.rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        random.seed(seed)
        self.num_timesteps = 0
        self.num_episodes = 0
        self.episode_returns: list[float] = []
        self.last_loss = float("nan")
        #: How the agent was made (task, data, settings; :mod:`mri_rl.provenance`), saved
        #: with it: the env's own ``record()`` when it has one (the MRI envs), and whatever
        #: a training run sets; plain JSON-like values.
        env_record = getattr(env.unwrapped, "record", None) if env is not None else None
        self.record: dict[str, Any] | None = env_record() if callable(env_record) else None
        self._build()

    # --------------------------------------------------------------- subclass hooks
    def _build(self) -> None:
        raise NotImplementedError

    def _act(
        self, obs: torch.Tensor | dict[str, torch.Tensor], action_mask: torch.Tensor | None, deterministic: bool
    ) -> np.ndarray:
        """Actions (B,) for a batch of observations."""
        raise NotImplementedError

    def _state(self) -> dict[str, Any]:
        """Network and optimiser state dicts, and algorithm counters."""
        raise NotImplementedError

    def _load_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ prediction
    def _is_batched(self, obs: Any) -> bool:
        space = self.observation_space
        if isinstance(space, spaces.Dict):  # compare one key's value with that key's space
            key = next(iter(space.spaces))  # (Dict sorts its keys: not the order of obs)
            space, obs = space[key], obs[key]
        return np.ndim(obs) == len(space.shape) + 1

    def to_tensor(self, obs: Any) -> torch.Tensor | dict[str, torch.Tensor]:
        """Observation(s) as tensors on the agent's device (dtype kept); tensors pass through."""

        def convert(value: Any) -> torch.Tensor:
            return torch.as_tensor(value if isinstance(value, torch.Tensor) else np.asarray(value), device=self.device)

        if isinstance(obs, dict):
            return {key: convert(value) for key, value in obs.items()}
        return convert(obs)

    @torch.no_grad()
    def predict(
        self, obs: Any, deterministic: bool = True, action_mask: np.ndarray | None = None, state: Any = None
    ) -> tuple[np.ndarray | int, None]:
        """Action(s) for one observation or a batch, as SB3's ``predict``.

        Args:
            obs: one observation or a batch (leading dimension B).
            deterministic: greedy action instead of exploring / sampling.
            action_mask: bool (A,) or (B, A), True where an action is legal.

        Returns:
            (action, None): an int for one observation, an int64 array (B,) for a batch.
        """
        batched = self._is_batched(obs)
        if not batched:
            obs = {k: np.asarray(v)[None] for k, v in obs.items()} if isinstance(obs, dict) else np.asarray(obs)[None]
            action_mask = None if action_mask is None else np.asarray(action_mask)[None]
        mask = None if action_mask is None else torch.as_tensor(np.asarray(action_mask, dtype=bool), device=self.device)
        if mask is not None and not mask.any(dim=1).all():
            raise ValueError("action_mask allows no action for some observation")
        actions = self._act(self.to_tensor(obs), mask, deterministic)
        return (actions, None) if batched else (int(actions[0]), None)

    def action_masks(self, infos: dict[str, Any]) -> np.ndarray | None:
        """Legal actions (N, A) from ``infos["action_mask"]`` or the env's ``action_masks()``."""
        if "action_mask" in infos:
            return np.asarray(infos["action_mask"]).astype(bool)
        unwrapped = self.env.unwrapped if self.env is not None else None
        if unwrapped is not None and hasattr(unwrapped, "action_masks"):
            return np.asarray(unwrapped.action_masks(), dtype=bool).reshape(self.env.num_envs, -1)
        return None

    def legal_actions(self, infos: dict[str, Any]) -> np.ndarray:
        """bool (N, A) from :meth:`action_masks`, every action legal when the env has no masks.

        A final observation may allow no action (the MRI env without a budget ends when every
        column is acquired); the next-step autoreset ignores its action, so such rows allow
        every action rather than leave nothing to choose or sample from.
        """
        masks = self.action_masks(infos)
        if masks is None:
            return np.ones((self.env.num_envs, self.num_actions), dtype=bool)
        masks = masks.copy()
        masks[~masks.any(axis=1)] = True
        return masks

    # --------------------------------------------------------------- save and load
    def checkpoint(self) -> dict[str, Any]:
        """Everything needed to resume: weights, optimiser, counters and RNG states."""
        return {
            "format": AGENT_FORMAT,
            "algorithm": self.algorithm,
            "hyperparameters": self.hyperparameters,
            "seed": self.seed,
            "observation_space": space_to_dict(self.observation_space),
            "action_space": space_to_dict(self.action_space),
            "counters": {"num_timesteps": self.num_timesteps, "num_episodes": self.num_episodes},
            "episode_returns": torch.tensor(self.episode_returns, dtype=torch.float64),
            "rng": {"numpy": _generator_state(self.rng), "torch": torch.get_rng_state()},
            "state": self._state(),
            "record": self.record,
        }

    def save(self, path: str | Path) -> Path:
        """Write :meth:`checkpoint` atomically."""
        return atomic_save(self.checkpoint(), path)

    @classmethod
    def load(cls, path: str | Path, env: gym.Env | VectorEnv | None = None, device: str = "cpu") -> Agent:
        """Rebuild an agent saved with :meth:`save` (``torch.load(weights_only=True)``).

        Raises:
            ValueError: not an agent checkpoint, another algorithm, or ``env`` with
                spaces other than those the agent was trained on.
        """
        checkpoint = load_checkpoint(path, AGENT_FORMAT, map_location=device)
        if checkpoint["algorithm"] != cls.algorithm:
            raise ValueError(f"{path} holds a {checkpoint['algorithm']} agent, not {cls.algorithm}")
        observation_space = space_from_dict(checkpoint["observation_space"])
        action_space = space_from_dict(checkpoint["action_space"])
        if env is not None:
            vector = as_vector_env(env)
            if vector.single_observation_space != observation_space or vector.single_action_space != action_space:
                raise ValueError(
                    f"{path} was trained on observation space {observation_space} and action space "
                    f"{action_space}; the env has {vector.single_observation_space} and "
                    f"{vector.single_action_space}"
                )
        agent = cls(
            env,
            seed=checkpoint["seed"],
            device=device,
            observation_space=observation_space,
            action_space=action_space,
            **checkpoint["hyperparameters"],
        )
        agent.num_timesteps = int(checkpoint["counters"]["num_timesteps"])
        agent.num_episodes = int(checkpoint["counters"]["num_episodes"])
        agent.episode_returns = checkpoint["episode_returns"].tolist()
        agent.record = checkpoint.get("record")
        agent.rng.bit_generator.state = _generator_state_from(checkpoint["rng"]["numpy"])
        torch.set_rng_state(checkpoint["rng"]["torch"])
        agent._load_state(checkpoint["state"])
        return agent


def _generator_state(rng: np.random.Generator) -> dict[str, Any]:
    """A numpy Generator state with its 128-bit integers as strings (weights_only-safe)."""
    state = rng.bit_generator.state
    return {
        "bit_generator": state["bit_generator"],
        "state": str(state["state"]["state"]),
        "inc": str(state["state"]["inc"]),
        "has_uint32": state["has_uint32"],
        "uinteger": state["uinteger"],
    }


def _generator_state_from(saved: dict[str, Any]) -> dict[str, Any]:
    return {
        "bit_generator": saved["bit_generator"],
        "state": {"state": int(saved["state"]), "inc": int(saved["inc"])},
        "has_uint32": saved["has_uint32"],
        "uinteger": saved["uinteger"],
    }


class EpisodeTracker:
    """Running returns of N streams; reports the returns of episodes as they end."""

    def __init__(self, num_envs: int) -> None:
        self.returns = np.zeros(num_envs, dtype=np.float64)

    def update(
        self, rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray, valid: np.ndarray
    ) -> list[float]:
        """Add one step; ``valid`` is False for autoreset steps (their reward is ignored)."""
        self.returns += np.where(valid, rewards, 0.0)
        ended = valid & (terminated | truncated)
        finished = self.returns[ended].tolist()
        self.returns[ended] = 0.0
        return finished
