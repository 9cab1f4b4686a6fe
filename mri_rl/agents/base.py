"""What the agents share: settings, environment handling, prediction, the training run, saving and loading.

The habits are Stable-Baselines3's: ``Agent(env, **settings)``, ``learn(total_timesteps,
callback, progress_bar, reset_num_timesteps)``, ``predict(obs, deterministic=True) ->
(action, None)``, ``save``, ``Class.load(path, env)``, ``get_env()``. Any single Gymnasium
env is wrapped into a one-env ``SyncVectorEnv``; vector envs (including the batched MRI
env) are used as they are, with next-step autoreset (:mod:`mri_rl.agents.collect`).

Each algorithm declares its settings as a frozen dataclass (``settings_class``), checked
on construction and saved with the agent; keyword arguments of the constructor override
single fields, as SB3's hyperparameters do.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar, get_type_hints

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import VectorEnv
from tqdm.auto import tqdm

from mri_rl.agents.collect import Collector, Step, as_vector_env
from mri_rl.checkpointing import (
    CheckpointError,
    count_entry,
    cuda_rng_states,
    entry_error,
    entry_errors,
    load_checkpoint,
    save_checkpoint,
    saved_cuda_rng_states,
    typed_entry,
)
from mri_rl.checks import resolve_device
from mri_rl.configs.schema import check_range, check_value
from mri_rl.provenance import record_problem
from mri_rl.threads import follow_free_cpus

AGENT_FORMAT = "mri_rl.agent"
#: Checkpoint entries that hold weights and optimiser state (which must be finite).
AGENT_WEIGHTS = ("state",)
#: ``callback(agent) -> bool | None`` (False stops training), an object with ``on_step()``
#: (SB3's ``BaseCallback``), or None.
Callback = Callable[["Agent"], bool | None] | Any


def space_to_dict(space: spaces.Space) -> dict[str, Any]:
    """A ``weights_only``-loadable description of a Box, MultiBinary, Discrete or Dict space."""
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "low": torch.from_numpy(np.array(space.low)),  # a copy: a received space may be read-only
            "high": torch.from_numpy(np.array(space.high)),
            "dtype": str(space.dtype),
        }
    if isinstance(space, spaces.MultiBinary):
        return {"type": "MultiBinary", "n": [int(n) for n in np.atleast_1d(space.n)]}  # no numpy scalars
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
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
    if kind == "Discrete":  # checkpoints written before ``start`` was saved have 0
        return spaces.Discrete(description["n"], start=description.get("start", 0))
    return spaces.Dict({key: space_from_dict(sub) for key, sub in description["spaces"].items()})


@dataclass(frozen=True)
class AgentSettings:
    """Base of the algorithms' settings: frozen dataclasses checked on construction
    (:func:`check_settings`: types, and ranges from field metadata)."""

    def __post_init__(self) -> None:
        check_settings(self)


def check_settings(settings: Any) -> None:
    """Check the types and ranges (field metadata ``min``/``max``/``above``) of a frozen
    settings dataclass, in its ``__post_init__``; lists become tuples where tuples are declared.

    Raises:
        ConfigError: one line naming the setting and what was expected.
    """
    name = type(settings).__name__
    hints = get_type_hints(type(settings))
    for f in fields(settings):
        value = check_value(getattr(settings, f.name), hints[f.name], name, f.name)
        check_range(value, f.metadata, f"{name}: {f.name}")
        object.__setattr__(settings, f.name, value)


class Agent:
    """Base class: holds the settings, env, spaces, seeding, counters and the save/load format.

    Subclasses set :attr:`algorithm` and :attr:`settings_class`, build their networks in
    ``_build`` and implement ``learn``, ``_act`` and ``_state``/``_load_state``.

    Args:
        env: a Gymnasium env or vector env (None when only predicting after ``load``).
        settings: the algorithm's settings (default: its defaults).
        seed: seeds numpy, torch and the env resets.
        device: torch device of the networks, of the replay batches and (for an env on the
            same device that can return them, :class:`~mri_rl.agents.collect.Collector`)
            of the observations; checked by :func:`~mri_rl.checks.resolve_device`.
        observation_space, action_space: the spaces, when there is no env.
        **overrides: single settings fields, e.g. ``learning_rate=1e-3``.
    """

    algorithm: ClassVar[str] = ""
    settings_class: ClassVar[type[AgentSettings]] = AgentSettings

    def __init__(
        self,
        env: gym.Env | VectorEnv | None,
        settings: Any = None,
        *,
        seed: int = 0,
        device: str = "cpu",
        observation_space: spaces.Space | None = None,
        action_space: spaces.Space | None = None,
        **overrides: Any,
    ) -> None:
        self.settings = self.make_settings(settings, overrides)
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
        #: The env's first action: the networks index actions 0..A-1, the env gets index + start.
        self.action_start = int(action_space.start)
        self.seed = seed
        self.device = resolve_device(device)
        self.rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        random.seed(seed)
        self.num_timesteps = 0
        self.num_episodes = 0
        #: Steps of the vector env, all sub-environments together and next-step autoreset's reset
        #: steps included (the clock of DQN's train_freq and target_update_interval).
        self.vector_steps = 0
        self.episode_returns: list[float] = []
        self.last_loss = float("nan")
        self.logger = None  # SB3 callbacks read model.logger; this project logs through its training runs
        #: How the agent was made (task, data, settings; :mod:`mri_rl.provenance`), saved
        #: with it: the env's own ``record()`` when it has one (the MRI envs), and whatever
        #: a training run sets; plain JSON-like values.
        env_record = getattr(env.unwrapped, "record", None) if env is not None else None
        self.record: dict[str, Any] | None = env_record() if callable(env_record) else None
        self._build()

    @classmethod
    def make_settings(cls, settings: Any, overrides: dict[str, Any]) -> Any:
        """``settings`` (or the defaults) with ``overrides`` applied.

        Raises:
            TypeError: an override that is no field of :attr:`settings_class`.
            ValueError: a value out of range (from the settings' own checks).
        """
        base = cls.settings_class() if settings is None else settings
        if not isinstance(base, cls.settings_class):
            raise TypeError(f"{cls.__name__} takes {cls.settings_class.__name__}, got {type(base).__name__}")
        known = {f.name for f in fields(cls.settings_class)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"unknown {cls.algorithm} setting(s) {unknown}; known: {sorted(known)}")
        return replace(base, **overrides) if overrides else base

    def get_env(self) -> VectorEnv | None:
        """The (vector) env the agent trains on, as SB3's ``get_env``."""
        return self.env

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

    def _load_state(self, state: dict[str, Any], path: str | Path) -> None:
        """Load :meth:`_state`'s entries, read from the checkpoint ``path`` (through
        :func:`~mri_rl.checkpointing.load_module_state` and ``load_optimizer_state``)."""
        raise NotImplementedError

    def _training_state(self) -> dict[str, Any]:
        """What training needs beyond the learned state to go on as if never interrupted (e.g.
        DAgger's labelled states), for resumable checkpoints only; none by default."""
        return {}

    def _load_training_state(self, state: dict[str, Any], path: str | Path) -> None:
        """Load :meth:`_training_state`'s entries of the checkpoint ``path`` (an agent with an env)."""

    # ------------------------------------------------------------------ prediction
    def _is_batched(self, obs: Any) -> bool:
        space = self.observation_space
        if isinstance(space, spaces.Dict):  # compare one key's value with that key's space
            key = next(iter(space.spaces))  # (Dict sorts its keys: not the order of obs)
            space, obs = space[key], obs[key]
        assert space.shape is not None  # a Box or MultiBinary: the networks refuse other spaces
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
            action_mask: bool (A,) or (B, A), True where an action is legal (entry i: the
                space's action ``start + i``, as Gymnasium's masks).

        Returns:
            (action, None): the env's action (in its Discrete space, from its ``start``), an
            int for one observation, an int64 array (B,) for a batch.
        """
        batched = self._is_batched(obs)
        if not batched:
            obs = {k: np.asarray(v)[None] for k, v in obs.items()} if isinstance(obs, dict) else np.asarray(obs)[None]
            action_mask = None if action_mask is None else np.asarray(action_mask)[None]
        mask = None if action_mask is None else torch.as_tensor(np.asarray(action_mask, dtype=bool), device=self.device)
        if mask is not None and not mask.any(dim=1).all():
            raise ValueError("action_mask allows no action for some observation")
        actions = self._act(self.to_tensor(obs), mask, deterministic) + self.action_start
        return (actions, None) if batched else (int(actions[0]), None)

    # ------------------------------------------------------------------ training
    def learn(
        self,
        total_timesteps: int,
        callback: Callback = None,
        progress_bar: bool = True,
        reset_num_timesteps: bool = True,
    ) -> Agent:
        """Train for ``total_timesteps`` env steps, or until the callback returns False (subclasses implement it)."""
        raise NotImplementedError

    def _training(
        self, total_timesteps: int, callback: Callback, progress_bar: bool, reset_num_timesteps: bool
    ) -> TrainingRun:
        if self.env is None:
            raise RuntimeError("this agent has no env: pass one to the constructor or to load()")
        return TrainingRun(self, total_timesteps, callback, progress_bar, reset_num_timesteps)

    # --------------------------------------------------------------- save and load
    def checkpoint(self, resumable: bool = False) -> dict[str, Any]:
        """Weights, optimiser, counters and RNG states (the agent's numpy generator, torch's CPU generator
        and, when CUDA is available, each CUDA device's: :func:`~mri_rl.checkpointing.cuda_rng_states`);
        with ``resumable``, also what training keeps besides (:meth:`_training_state`), which a final
        model leaves out."""
        training = {"training_state": self._training_state()} if resumable else {}
        return {
            "format": AGENT_FORMAT,
            "algorithm": self.algorithm,
            "settings": settings_to_dict(self.settings),
            "seed": self.seed,
            "observation_space": space_to_dict(self.observation_space),
            "action_space": space_to_dict(self.action_space),
            "counters": {
                "num_timesteps": self.num_timesteps,
                "num_episodes": self.num_episodes,
                "vector_steps": self.vector_steps,
            },
            "episode_returns": torch.tensor(self.episode_returns, dtype=torch.float64),
            "rng": {"numpy": _generator_state(self.rng), "torch": torch.get_rng_state(), **cuda_rng_states()},
            "state": self._state(),
            "record": self.record,
            **training,
        }

    def save(self, path: str | Path, resumable: bool = False) -> Path:
        """Write :meth:`checkpoint` (``resumable`` or not) atomically, with its content checksum."""
        return save_checkpoint(self.checkpoint(resumable), path)

    @classmethod
    def load(cls, path: str | Path, env: gym.Env | VectorEnv | None = None, device: str = "cpu") -> Agent:
        """Rebuild an agent saved with :meth:`save` (read safely and verified, see
        :func:`read_agent_checkpoint`).

        Raises:
            FileNotFoundError: no such file.
            CheckpointError: not a verified agent checkpoint, another algorithm, contents
                that do not make an agent, or settings this version does not know.
            ValueError: ``env`` with spaces other than those the agent was trained on.
        """
        return cls.from_checkpoint(read_agent_checkpoint(path, device), path, env, device)

    @classmethod
    def from_checkpoint(
        cls, checkpoint: dict[str, Any], path: str | Path, env: gym.Env | VectorEnv | None = None, device: str = "cpu"
    ) -> Agent:
        """Rebuild an agent from the checkpoint read from ``path`` (see :meth:`load`), checking every
        entry: a problem is one CheckpointError naming the file and the entry."""
        algorithm = checkpoint.get("algorithm")
        if algorithm != cls.algorithm:
            raise entry_error(path, "algorithm", f"is {algorithm!r}: the file holds no {cls.algorithm!r} agent")
        observation_space = space_entry(checkpoint, path, "observation_space")
        action_space = space_entry(checkpoint, path, "action_space")
        if not isinstance(action_space, spaces.Discrete):
            raise entry_error(path, "action_space", f"is {action_space}; the agents act in a Discrete space")
        if env is not None:
            vector = as_vector_env(env)
            if vector.single_observation_space != observation_space or vector.single_action_space != action_space:
                raise ValueError(
                    f"{path} was trained on observation space {observation_space} and action space "
                    f"{action_space}; the env has {vector.single_observation_space} and "
                    f"{vector.single_action_space}"
                )
        settings = cls._settings_entry(checkpoint, path)
        seed = count_entry(typed_entry(checkpoint, path, "seed"), path, "seed")
        with entry_errors(path, "observation_space"):  # the networks for the spaces
            agent = cls(
                env, settings, seed=seed, device=device, observation_space=observation_space, action_space=action_space
            )
        agent._restore(checkpoint, path)
        return agent

    @classmethod
    def _settings_entry(cls, checkpoint: dict[str, Any], path: str | Path) -> AgentSettings:
        """The checked settings of a checkpoint."""
        saved = typed_entry(checkpoint, path, "settings", dict)
        unknown = sorted(map(str, set(saved) - {f.name for f in fields(cls.settings_class)}))
        if unknown:
            raise CheckpointError(
                f"{path} was written with {cls.algorithm} settings {unknown} that this version of mri_rl "
                f"no longer has (an older checkpoint): train the agent again"
            )
        with entry_errors(path, "settings"):
            return cls.make_settings(None, saved)

    def _restore(self, checkpoint: dict[str, Any], path: str | Path) -> None:
        """Set counters, returns, record, weights, optimiser and RNG states from a checkpoint (each checked)."""
        counters = typed_entry(checkpoint, path, "counters", dict)
        self.num_timesteps = count_entry(counters.get("num_timesteps"), path, "counters.num_timesteps")
        self.num_episodes = count_entry(counters.get("num_episodes"), path, "counters.num_episodes")
        # Checkpoints written before vector_steps was saved have none: their runs restarted it at 0.
        self.vector_steps = count_entry(counters.get("vector_steps", 0), path, "counters.vector_steps")
        returns = typed_entry(checkpoint, path, "episode_returns", torch.Tensor)
        if returns.ndim != 1 or not returns.is_floating_point():
            found = f"is a tensor {returns.dtype} {tuple(returns.shape)}"
            raise entry_error(path, "episode_returns", f"{found}; expected one float return per episode (1-d)")
        if not bool(torch.isfinite(returns).all()):
            raise entry_error(path, "episode_returns", "holds NaN or Inf returns")
        self.episode_returns = returns.tolist()
        problem = record_problem(checkpoint.get("record"))
        if problem is not None:
            raise entry_error(path, *problem)
        self.record = checkpoint.get("record")
        rng = typed_entry(checkpoint, path, "rng", dict)
        with entry_errors(path, "rng.numpy"):
            self.rng.bit_generator.state = _generator_state_from(rng["numpy"])
        cuda = saved_cuda_rng_states(rng.get("cuda"), path, "rng.cuda")  # None: left as they are (see there)
        self._load_state(typed_entry(checkpoint, path, "state", dict), path)
        if "training_state" in checkpoint and self.env is not None:  # without an env, nothing trains
            self._load_training_state(typed_entry(checkpoint, path, "training_state", dict), path)
        with entry_errors(path, "rng.torch"):  # last: the global generators change only for an agent that loads
            torch.set_rng_state(rng["torch"].cpu())
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def space_entry(checkpoint: dict[str, Any], path: str | Path, key: str) -> spaces.Space:
    """The space of checkpoint entry ``key`` (see :func:`space_from_dict`)."""
    with entry_errors(path, key):
        return space_from_dict(typed_entry(checkpoint, path, key, dict))


def read_agent_checkpoint(path: str | Path, device: str = "cpu") -> dict[str, Any]:
    """An agent checkpoint, read with ``weights_only=True``, its checksum verified and its
    weights and optimiser state (``"state"``) finite (:func:`mri_rl.checkpointing.load_checkpoint`)."""
    return load_checkpoint(path, AGENT_FORMAT, AGENT_WEIGHTS, map_location=device)


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


def settings_to_dict(settings: Any) -> dict[str, Any]:
    """A settings dataclass as plain values (tuples as lists), for checkpoints and configs."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(settings).items()}


class TrainingRun:
    """One call of ``learn``: the collector, the step target, the progress bar and the callback.

    ``reset_num_timesteps`` follows SB3: True starts the counters at 0 and trains
    ``total_timesteps`` steps; False continues the counters and trains ``total_timesteps``
    more. Env resets are seeded with ``agent.seed + agent.num_timesteps``, so a resumed
    run does not replay the episodes it already saw. The episodes in progress when a checkpoint
    was saved are not in it: a resumed run starts new ones, so it is not step for step the
    uninterrupted run (its episodes, and the reset steps of the ``vector_steps`` clock, differ).
    """

    def __init__(
        self, agent: Agent, total_timesteps: int, callback: Callback, progress_bar: bool, reset_num_timesteps: bool
    ) -> None:
        assert agent.env is not None  # Agent._training raised otherwise
        if reset_num_timesteps:
            agent.num_timesteps, agent.num_episodes, agent.vector_steps, agent.episode_returns = 0, 0, 0, []
        self.agent = agent
        self.env = agent.env
        self.collector = Collector(agent.env, agent.num_actions, agent.device)  # tensors when on the env's device
        self.target = agent.num_timesteps + total_timesteps
        self.stopped = False
        self.callback = callback
        if hasattr(callback, "init_callback"):  # an SB3 BaseCallback
            callback.init_callback(agent)
        if hasattr(callback, "on_training_start"):
            callback.on_training_start({}, {})
        self.bar = tqdm(
            total=self.target, initial=agent.num_timesteps, disable=not progress_bar, unit="step", desc=agent.algorithm
        )

    def __enter__(self) -> TrainingRun:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.bar.close()
        self.collector.close()
        if hasattr(self.callback, "on_training_end"):
            self.callback.on_training_end()

    @property
    def num_envs(self) -> int:
        return self.env.num_envs

    @property
    def progress(self) -> float:
        """Share of this run's target done, in [0, 1] (for schedules)."""
        return min(self.agent.num_timesteps / max(self.target, 1), 1.0)

    def start(self) -> tuple[Any, np.ndarray]:
        """Reset the env: (observations, legal actions (N, A))."""
        observations, legal, _ = self.collector.reset(seed=self.agent.seed + self.agent.num_timesteps)
        return observations, legal

    def running(self) -> bool:
        return not self.stopped and self.agent.num_timesteps < self.target

    def step(self, actions: np.ndarray) -> Step:
        """Step the env and count its transitions and finished episodes into the agent."""
        follow_free_cpus()
        step = self.collector.step(actions)
        agent = self.agent
        agent.episode_returns += step.finished_returns
        agent.num_episodes += len(step.finished_returns)
        new_steps = int(step.valid.sum())
        agent.num_timesteps += new_steps
        agent.vector_steps += 1
        self.bar.update(new_steps)
        return step

    def report(self) -> None:
        """Call the callback after a step (and its updates); False from it stops the run."""
        if self.callback is None:
            return
        result = self.callback.on_step() if hasattr(self.callback, "on_step") else self.callback(self.agent)
        self.stopped = result is False
