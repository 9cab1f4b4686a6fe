"""A training run of an agent, as ``mri-rl train`` runs it: config, checkpoints, logs, evaluation.

Run folder::

    out/config.yaml       the resolved configuration
    out/checkpoint.pt     latest checkpoint (atomic), what --resume continues from; beside the
                          agent's entries, ``run``: ``solved_at_step`` (None: not solved)
    out/model.pt          the final agent
    out/progress.csv      steps, episodes, return, loss, epsilon, steps/s, eval return
    out/tensorboard/      the same scalars for TensorBoard; for an env that renders rgb_array
                          pictures (the MRI env), the picture of the last evaluation
                          episode at each evaluation, the final one included (image ``eval/picture``)
    out/eval.json         final deterministic evaluation: mean_return, std_return, episodes;
                          and torch's thread counts (:func:`~mri_rl.threads.thread_report`);
                          written last, so it marks a finished run, which --resume leaves as it is
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml
from gymnasium.vector import VectorEnv

import mri_rl.envs  # noqa: F401  (registers the MRI environment by name)
from mri_rl.agents import AGENTS, Agent, evaluate_agent
from mri_rl.agents.base import read_agent_checkpoint
from mri_rl.agents.collect import as_vector_env
from mri_rl.checkpointing import CHECKSUM_KEY, content_checksum, count_entry, save_checkpoint, typed_entry
from mri_rl.checks import resolve_device
from mri_rl.configs import CONFIG_DIR, load_config
from mri_rl.configs.schema import ConfigError, from_mapping
from mri_rl.distributed import Workers
from mri_rl.envs.remote import RemoteVectorEnv
from mri_rl.files import atomic_write_text
from mri_rl.provenance import FRESH_RUN, check_record, checkpoint_fingerprint, data_fingerprint, make_record
from mri_rl.runs.run_logger import RunLogger
from mri_rl.task import AcquisitionTask
from mri_rl.threads import thread_report


@dataclass
class TrainConfig:
    """What ``mri-rl train`` needs; the packaged configs (``mri_rl/configs/``) hold these keys.

    Attributes:
        agent: "dqn", "reinforce", "greedy_reinforce" or "dagger".
        env_id: a registered Gymnasium id.
        total_steps: env steps to train for.
        seed: seeds the agent and the env resets.
        env_kwargs: keyword arguments of ``gymnasium.make`` (for the MRI env: ``data_path``,
            ``task`` or task fields such as ``budget``, ``reconstructor``...).
        num_envs: parallel envs (the MRI env uses its batched vector entry point).
        hyperparameters: the agent's settings (e.g. :class:`~mri_rl.agents.DQNSettings`),
            checked for names, types and ranges.
        eval_episodes: deterministic episodes of the final (and periodic) evaluation.
        eval_interval: env steps between periodic evaluations (None: only at the end).
        stop_at_return: stop as soon as a periodic evaluation reaches this mean return.
        eval_env_kwargs: env kwargs for evaluation (default: ``env_kwargs``), in place of
            ``env_kwargs``, not merged with them: the same task on other data (checked).
        checkpoint_interval: env steps between checkpoints.
        log_interval: env steps between rows of progress.csv.
        device: torch device ("cpu", "cuda", "cuda:1", "mps") of the agent, its replay
            batches and, for the MRI env, of the env's episodes and reconstructions (set it
            here or with ``mri-rl train --device``, not in ``env_kwargs``). Not part of the
            run's record: a run may resume on another device. The precision of the MRI
            env's reconstructor is a task field (``env_kwargs.precision``), recorded.
    """

    agent: str
    env_id: str
    total_steps: int = field(metadata={"min": 1})
    seed: int = field(default=0, metadata={"min": 0})
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    num_envs: int = field(default=1, metadata={"min": 1})
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    eval_episodes: int = field(default=20, metadata={"min": 1})
    eval_interval: int | None = field(default=None, metadata={"min": 1})
    stop_at_return: float | None = None
    eval_env_kwargs: dict[str, Any] | None = None
    checkpoint_interval: int = field(default=10_000, metadata={"min": 1})
    log_interval: int = field(default=1_000, metadata={"min": 1})
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.agent not in AGENTS:
            raise ValueError(f"unknown agent {self.agent!r}; expected one of {sorted(AGENTS)}")
        for name in ("env_kwargs", "eval_env_kwargs"):
            if "device" in (getattr(self, name) or {}):
                raise ValueError(f"{name}.device: set the device with the config key device (or --device)")
        resolve_device(self.device)
        from_mapping(AGENTS[self.agent].settings_class, self.hyperparameters, "", "hyperparameters")

    def settings(self) -> Any:
        """The agent's settings: its ``settings_class`` with :attr:`hyperparameters`."""
        return AGENTS[self.agent].settings_class(**self.hyperparameters)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> TrainConfig:
        """Check keys, types and ranges; every problem is one :class:`ConfigError` line naming ``source``."""
        return from_mapping(cls, values, source)


def read_mri_run(run: str | Path, model: str = "model.pt") -> TrainConfig:
    """The config of a finished ``mri-rl train`` run of the MRI env (folder ``run`` with
    ``config.yaml`` and ``model``), for tools that re-roll its agent.

    Raises:
        ValueError: a missing file, a config that is not a run's, or a run of another env; the
            message names the file.
    """
    run = Path(run)
    for name in ("config.yaml", model):
        if not (run / name).is_file():
            raise ValueError(f"{run / name} does not exist: {run} must be a run folder of mri-rl train")
    try:
        config = TrainConfig.from_dict(yaml.safe_load((run / "config.yaml").read_text()), str(run))
    except (ConfigError, yaml.YAMLError) as error:
        raise ValueError(f"{run / 'config.yaml'} is not a run's config: {error}") from None
    if not is_mri_env(config.env_id):
        raise ValueError(f"{run} was trained on {config.env_id}, not on the MRI env")
    return config


def run_eval_kwargs(config: TrainConfig, eval_data: str | Path | None = None) -> dict[str, Any]:
    """The env kwargs a run evaluates with (``eval_env_kwargs``, default ``env_kwargs``), on the
    folder ``eval_data`` instead of the run's own when given.

    Raises:
        ValueError: an ``eval_data`` that is no folder.
    """
    kwargs = dict(config.eval_env_kwargs or config.env_kwargs)
    if eval_data is not None:
        if not Path(eval_data).is_dir():
            raise ValueError(f"--eval-data {eval_data} is not a folder")
        kwargs["data_path"] = str(eval_data)
    return kwargs


def default_config_path(agent: str, env_id: str) -> Path | None:
    """The packaged ``{agent}_{env}.yaml`` for an env id (``CartPole-v1`` -> ``cartpole``,
    ``mri_rl/ActiveAcquisition-v0`` -> ``mri``) that configures ``agent``, if there is one; greedy
    REINFORCE's is ``reinforce_{env}.yaml`` when that one configures it (``reinforce_mri``)."""
    name = "mri" if env_id.startswith("mri_rl/") else env_id.split("/")[-1].split("-v")[0].lower()
    for stem in dict.fromkeys((agent, agent.removeprefix("greedy_"))):
        path = CONFIG_DIR / f"{stem}_{name}.yaml"
        if path.is_file() and load_config(path)[0].get("agent", agent) == agent:  # with what it extends
            return path
    return None


def run_record(config: TrainConfig, env: Any, resume: bool = False) -> dict[str, Any]:
    """How an agent run is made: its settings, the env options that change what the env gives
    (:func:`env_options`), the fingerprint of the policy it starts from (``init_policy``) and, for
    an env with a task (the MRI env), the task and the fingerprints of the training and evaluation data.

    A resumed run has copied its ``init_policy`` already and never reads it again, so with
    ``resume`` a file that is gone leaves its fingerprint out (the checkpoint keeps the one
    it recorded); a file that is there is fingerprinted and compared as usual.

    Raises:
        FileNotFoundError: an ``init_policy`` that is no file, unless ``resume``.
    """
    # The env kwargs are recorded as the task, the data fingerprints and the other env options. The
    # device is left out: it changes where the run computes, not what, so a run may resume on another device.
    unrecorded = ("env_kwargs", "eval_env_kwargs", "device")
    settings = {key: value for key, value in asdict(config).items() if key not in unrecorded}
    init_policy = config.hyperparameters.get("init_policy")
    if init_policy and Path(init_policy).is_file():
        settings["init_policy_fingerprint"] = checkpoint_fingerprint(init_policy)
    elif init_policy and not resume:
        raise FileNotFoundError(f"init_policy: no file {init_policy} (a saved agent's model.pt)")
    task = getattr(env.unwrapped, "task", None)
    settings["env_options"] = env_options(config.env_kwargs, task is not None)
    settings["eval_env_options"] = env_options(config.eval_env_kwargs or {}, task is not None)
    data = {}
    for role, kwargs in (("train", config.env_kwargs), ("eval", config.eval_env_kwargs)):
        if kwargs and "data_path" in kwargs:
            data[role] = data_fingerprint(kwargs["data_path"])
    return make_record(task, data, settings)


#: Env kwargs that change where or how fast a run computes, or only whether a bad file stops it, not
#: what it computes: left out of its record (:func:`env_options`).
UNRECORDED_ENV_OPTIONS = (
    "data_path",
    "device",
    "render_mode",
    "slice_cache_mb",
    "look_ahead_batch_size",
    "on_bad_file",
)


def env_options(kwargs: dict[str, Any], has_task: bool) -> dict[str, Any]:
    """The env kwargs a run's record keeps as they are: those that change what the env gives (e.g. the
    MRI env's ``auc_weighted_rewards`` or ``column_spectrum``, CartPole's ``max_episode_steps``). Left
    out: :data:`UNRECORDED_ENV_OPTIONS` (the data is fingerprinted instead) and, for an env with a task,
    the task's fields, ``task`` and ``reconstructor`` (the record holds the bound task)."""
    task_keys = ("task", "reconstructor", *AcquisitionTask.field_names()) if has_task else ()
    return {key: value for key, value in kwargs.items() if key not in (*UNRECORDED_ENV_OPTIONS, *task_keys)}


def is_mri_env(env_id: str) -> bool:
    """Whether ``env_id`` is one of this package's envs (``mri_rl/...``), which take ``device``."""
    return env_id.startswith("mri_rl/")


def make_env(config: TrainConfig, kwargs: dict[str, Any] | None = None, num_envs: int | None = None):
    """A single env, or a vector env when ``num_envs > 1`` (the batched entry point when there is one);
    the MRI env on ``config.device``.

    Raises:
        ValueError: an env id Gymnasium does not know, or keyword arguments the env does not take.
    """
    kwargs = dict(config.env_kwargs if kwargs is None else kwargs)
    if is_mri_env(config.env_id):
        kwargs["device"] = config.device
    num_envs = config.num_envs if num_envs is None else num_envs
    try:
        if num_envs == 1:
            return gym.make(config.env_id, **kwargs)
        mode = "vector_entry_point" if gym.spec(config.env_id).vector_entry_point else "sync"
        return gym.make_vec(config.env_id, num_envs=num_envs, vectorization_mode=mode, **kwargs)
    except gym.error.Error as error:  # an unknown id or version
        raise ValueError(f"env {config.env_id!r}: {error}") from None
    except TypeError as error:  # a keyword the env's constructor does not take
        if "argument" not in str(error):
            raise
        raise ValueError(f"env {config.env_id!r} with env_kwargs {sorted(kwargs)}: {error}") from None


def make_vector_env(config: TrainConfig, num_envs: int) -> VectorEnv:
    """:func:`make_env` of ``num_envs`` sub-environments, always as a vector env (what an actor holds)."""
    return as_vector_env(make_env(config, num_envs=num_envs))


def make_training_env(config: TrainConfig, workers: Workers | None = None) -> Any:
    """The env agents train on: :func:`make_env`, or with Ray ``workers`` a
    :class:`~mri_rl.envs.remote.RemoteVectorEnv` of ``workers.count`` actors, each with
    ``num_envs / count`` of the sub-environments.

    Raises:
        ValueError: ``num_envs`` not a multiple of the workers' count (the run would step another
            number of sub-environments than its config records), or a GPU device without GPUs
            for the actors.
    """
    if workers is None or not workers.uses_ray:
        return make_env(config)
    if config.num_envs % workers.count:
        raise ValueError(
            f"num_envs {config.num_envs} is not a multiple of --workers {workers.count}: each actor steps "
            f"as many sub-environments; use num_envs {workers.count * -(-config.num_envs // workers.count)} "
            f"(--num-envs) or a number of workers that divides {config.num_envs}"
        )
    if config.device != "cpu" and not workers.gpus_per_worker:
        raise ValueError(f"--device {config.device} with --workers: give each actor a GPU with --gpus-per-worker")
    return RemoteVectorEnv(functools.partial(make_vector_env, config, config.num_envs // workers.count), workers)


def eval_env_kwargs(config: TrainConfig, env: Any) -> dict[str, Any]:
    """The evaluation env's kwargs: ``eval_env_kwargs`` (default ``env_kwargs``), with
    ``render_mode="rgb_array"`` added for the MRI env (an env with a task), whose picture is
    cheap, so that each evaluation logs one (:meth:`RunMonitor.log_picture`)."""
    kwargs = dict(config.env_kwargs if config.eval_env_kwargs is None else config.eval_env_kwargs)
    if getattr(env.unwrapped, "task", None) is not None and "render_mode" not in kwargs:
        kwargs["render_mode"] = "rgb_array"
    return kwargs


def check_eval_env(agent: Agent, env: Any, eval_env: gym.Env) -> None:
    """Refuse, before any training, an evaluation env that is not the training env's task on other
    data: other observations or actions than the agent's (e.g. ``eval_env_kwargs`` without the
    ``column_spectrum`` of ``env_kwargs``), or, for an env with a task (the MRI env), another task
    (``eval_env_kwargs`` replace ``env_kwargs``, so ones that give only a ``data_path`` would
    silently evaluate on the default budget and reconstructor).

    Raises:
        ValueError: naming both spaces, or what differs between the tasks.
    """
    for name in ("observation", "action"):
        trained, evaluated = getattr(agent, f"{name}_space"), getattr(eval_env, f"{name}_space")
        if trained != evaluated:
            raise ValueError(
                f"eval_env_kwargs make an env with another {name} space than env_kwargs: {evaluated} vs "
                f"{trained}; give eval_env_kwargs the same {name} options (e.g. column_spectrum)"
            )
    task, eval_task = getattr(env.unwrapped, "task", None), getattr(eval_env.unwrapped, "task", None)
    differences = task.differences(eval_task) if task is not None and eval_task is not None else []
    if differences:
        raise ValueError(
            f"eval_env_kwargs make another task than env_kwargs (training vs evaluation): {'; '.join(differences)}; "
            f"give eval_env_kwargs the same task settings (they replace env_kwargs, they are not merged)"
        )


def train_agent(
    config: TrainConfig,
    out_dir: str | Path,
    resume: bool = False,
    progress_bar: bool = True,
    fresh_start: str = FRESH_RUN,
    workers: Workers | None = None,
) -> dict[str, Any]:
    """Train, checkpoint, log and evaluate; returns the content of ``eval.json``.

    The agent's checkpoints carry the run's record (:func:`run_record`); ``resume``
    continues only a run made under the same record, close to the uninterrupted run but not
    identical (the episodes in progress are dropped: :class:`~mri_rl.agents.base.TrainingRun`).
    A run that has finished (its ``eval.json`` is written: it reached ``total_steps`` or
    ``stop_at_return``) is left as it is: ``resume`` trains nothing, writes no file and
    returns its ``eval.json``. A run whose training is over but which has no ``eval.json``
    (stopped before writing it: :func:`training_over`) is not trained further: ``resume`` runs
    its final evaluation and writes ``eval.json``, its checkpoint left as it is (and ``model.pt``,
    written from the checkpoint's agent when it is not that agent already). With Ray ``workers``,
    the env is stepped by actors
    (:func:`make_training_env`); the learner is the same agent, and the record holds the
    workers' count (their sub-environments and seeds are the run's).

    Raises:
        FileNotFoundError: ``resume`` without a checkpoint in ``out_dir``.
        FileExistsError: a finished or started run in ``out_dir`` without ``resume``.
        RecordMismatchError: ``resume`` of a run made under another task, data or settings
            (the message ends with ``fresh_start``).
        ValueError: an agent that cannot act on the env (e.g. DAgger on an env without a look-ahead).
    """
    out_dir = Path(out_dir)
    checkpoint_path = out_dir / "checkpoint.pt"
    if resume and not checkpoint_path.exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {checkpoint_path}")
    if not resume and checkpoint_path.exists():
        raise FileExistsError(f"{out_dir} already holds a run; pass --resume to continue it or choose another --out")
    env = make_training_env(config, workers)
    try:
        record = run_record(config, env, resume)
        if workers is not None and workers.uses_ray:
            record["settings"]["workers"] = workers.count
        agent, solved_at_step = start_agent(config, env, record, checkpoint_path if resume else None, fresh_start)
        finished = finished_result(out_dir) if resume else None
        if finished is not None:
            return finished
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out_dir / "config.yaml", yaml.safe_dump(asdict(config), sort_keys=False))
        eval_env = make_env(config, eval_env_kwargs(config, env), num_envs=1)
        check_eval_env(agent, env, eval_env)
        logger = RunLogger(out_dir, resume_from_step=agent.num_timesteps if resume else None)
        trained, solved_at_step = training_over(config, agent, out_dir, solved_at_step) if resume else (False, None)
        monitor = RunMonitor(config, eval_env, logger, checkpoint_path, agent.num_timesteps, solved_at_step)
        train_rest(agent, config, monitor, out_dir, trained, progress_bar)
        result = final_evaluation(agent, eval_env, config, monitor, out_dir)
        logger.close()
        return result
    finally:
        env.close()  # ends a RemoteVectorEnv's actors (and the Ray it started)


def start_agent(
    config: TrainConfig, env: Any, record: dict[str, Any], checkpoint_path: Path | None, fresh_start: str
) -> tuple[Agent, int | None]:
    """A new agent for the run (with ``record``), or the agent of the run's ``checkpoint_path``
    (its record checked against ``record``) and the step at which the run was solved (None: not
    solved, or a checkpoint written before runs saved it).

    Raises:
        RecordMismatchError: a checkpoint made under another record (the message ends with ``fresh_start``).
        CheckpointError: a checkpoint whose ``run`` entry is no dict or holds no step count.
        ValueError: an agent that cannot act on the env.
    """
    agent_class = AGENTS[config.agent]
    if checkpoint_path is None:
        try:
            agent = agent_class(env, config.settings(), seed=config.seed, device=config.device)
        except TypeError as error:  # an agent that cannot act on this env (its spaces, no look-ahead)
            raise ValueError(f"--agent {config.agent} on {config.env_id}: {error}") from None
        agent.record = record
        return agent, None
    checkpoint = read_agent_checkpoint(checkpoint_path, config.device)
    agent = agent_class.from_checkpoint(checkpoint, checkpoint_path, env, config.device)
    gone = () if "init_policy_fingerprint" in record["settings"] else ("settings.init_policy_fingerprint",)
    check_record(agent.record, record, checkpoint_path, fresh_start, ignore=gone)
    run = typed_entry(checkpoint, checkpoint_path, "run", dict) if "run" in checkpoint else {}
    solved = run.get("solved_at_step")
    return agent, None if solved is None else count_entry(solved, checkpoint_path, "run.solved_at_step")


def train_rest(
    agent: Agent, config: TrainConfig, monitor: RunMonitor, out_dir: Path, over: bool, progress_bar: bool
) -> None:
    """Train ``agent`` to ``total_steps`` (unless its training is ``over``: :func:`training_over`), save
    its final checkpoint and write ``model.pt``; a run that was over but stopped before writing
    ``model.pt`` gets it now."""
    if not over:
        agent.learn(config.total_steps - agent.num_timesteps, monitor, progress_bar, reset_num_timesteps=False)
        monitor.save_checkpoint(agent)
    if not (over and is_saved_agent(out_dir / "model.pt", agent)):
        agent.save(out_dir / "model.pt")


def training_over(
    config: TrainConfig, agent: Agent, out_dir: Path, solved_at_step: int | None
) -> tuple[bool, int | None]:
    """Whether the training of a resumed run is over (its checkpoint is the final one: only the final
    evaluation is left), and the step at which it was solved (None: not solved).

    It is over when the checkpoint says the run was solved (``solved_at_step``), when the agent has
    reached ``total_steps``, or when ``model.pt`` is the checkpoint's agent (a run writes it once
    training is over, from the agent of its final checkpoint, and ``eval.json`` last; a ``model.pt``
    left by an earlier run in the folder holds another agent). A run with its ``model.pt`` that stopped
    before ``total_steps`` with a ``stop_at_return`` was solved at its last step: how a checkpoint
    written before runs saved ``solved_at_step`` tells it (a run stops early only when solved). An older
    run stopped between its final checkpoint and ``model.pt`` cannot be told from an interrupted one.
    """
    if solved_at_step is not None or agent.num_timesteps >= config.total_steps:
        return True, solved_at_step
    if not is_saved_agent(out_dir / "model.pt", agent):
        return False, None
    return True, agent.num_timesteps if config.stop_at_return is not None else None


def is_saved_agent(path: Path, agent: Agent) -> bool:
    """Whether ``path`` is a verified agent file (:meth:`~mri_rl.agents.base.Agent.save`, not resumable) of
    ``agent`` as it is now: the same contents, counters, weights, random states and record (its checksum)."""
    if not path.is_file():
        return False
    saved = read_agent_checkpoint(path)  # on the CPU: the checksum reads tensors there
    return bool(saved[CHECKSUM_KEY] == content_checksum(agent.checkpoint()))


def finished_result(out_dir: str | Path) -> dict[str, Any] | None:
    """The content of the ``eval.json`` of a finished run in ``out_dir``, or None while it has none
    (a run writes it last, after its final checkpoint and ``model.pt``).

    Raises:
        ValueError: an ``eval.json`` that is not JSON, naming the file.
    """
    path = Path(out_dir) / "eval.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not the JSON of a finished run's evaluation: {error}") from None


def final_evaluation(
    agent: Agent, eval_env: Any, config: TrainConfig, monitor: RunMonitor, out_dir: Path
) -> dict[str, Any]:
    """The trained agent's deterministic evaluation, its TensorBoard picture, and ``eval.json``."""
    final_seed = config.seed + 20_000
    mean_return, std_return, returns = evaluate_agent(agent, eval_env, config.eval_episodes, seed=final_seed)
    monitor.log_picture(agent.num_timesteps)
    result: dict[str, Any] = {
        "solved_at_step": monitor.solved_at_step,
        "mean_return": mean_return,
        "std_return": std_return,
        "episodes": config.eval_episodes,
        "returns": returns,
        "num_timesteps": agent.num_timesteps,
        "threads": thread_report(),  # of the process that finished the run
    }
    atomic_write_text(out_dir / "eval.json", json.dumps(result, indent=2))
    return result


class RunMonitor:
    """The training run's callback: periodic evaluation (and early stop), log rows, checkpoints.

    Args:
        config: the run's config (intervals, evaluation episodes, stop threshold, seed).
        eval_env: a single env to evaluate on.
        logger: writes progress.csv and TensorBoard.
        checkpoint_path: where to save the latest checkpoint.
        start_step: the agent's step count when the run (re)starts.
        solved_at_step: the step at which an evaluation reached ``stop_at_return`` (a resumed
            solved run's), or None.
    """

    def __init__(
        self,
        config: TrainConfig,
        eval_env: Any,
        logger: RunLogger,
        checkpoint_path: Path,
        start_step: int,
        solved_at_step: int | None = None,
    ) -> None:
        self.config, self.eval_env, self.logger, self.checkpoint_path = config, eval_env, logger, checkpoint_path
        self.schedule = _RunSchedule(config, start_step)
        self.solved_at_step = solved_at_step

    def __call__(self, agent: Agent) -> bool:
        """After each step: evaluate, log and checkpoint when due; False once solved."""
        config, steps, schedule = self.config, agent.num_timesteps, self.schedule
        eval_return = None
        if schedule.due("eval", steps):
            eval_return, _, _ = evaluate_agent(agent, self.eval_env, config.eval_episodes, seed=config.seed + 10_000)
            self.log_picture(steps)
            if config.stop_at_return is not None and eval_return >= config.stop_at_return:
                self.solved_at_step = steps
        if schedule.due("log", steps) or eval_return is not None:
            recent = agent.episode_returns[-20:]
            self.logger.log(
                {
                    "steps": steps,
                    "episodes": agent.num_episodes,
                    "return": float(np.mean(recent)) if recent else None,
                    "loss": agent.last_loss,
                    "epsilon": getattr(agent, "epsilon", None),
                    "steps_per_s": schedule.rate(steps),
                    "eval_return": eval_return,
                }
            )
        if schedule.due("checkpoint", steps):
            self.save_checkpoint(agent)
        return self.solved_at_step is None

    def save_checkpoint(self, agent: Agent) -> None:
        """The agent's resumable checkpoint, with the run's entry ``run``: ``solved_at_step``, so
        that a resumed run that was solved trains no further."""
        save_checkpoint(
            {**agent.checkpoint(resumable=True), "run": {"solved_at_step": self.solved_at_step}}, self.checkpoint_path
        )

    def log_picture(self, steps: int) -> None:
        """TensorBoard image ``eval/picture``: the eval env's rendering after its last episode, when
        it renders rgb_array pictures (the MRI env: reconstruction, mask and target)."""
        if getattr(self.eval_env, "render_mode", None) != "rgb_array":
            return
        picture = self.eval_env.render()
        if isinstance(picture, np.ndarray) and picture.ndim == 3:
            self.logger.writer.add_image("eval/picture", picture, global_step=steps, dataformats="HWC")
            self.logger.writer.flush()


class _RunSchedule:
    """When a step count crosses the next multiple of an interval; and the steps/s since the last log."""

    def __init__(self, config: TrainConfig, start_step: int) -> None:
        intervals = {
            "log": config.log_interval,
            "checkpoint": config.checkpoint_interval,
            "eval": config.eval_interval,
        }
        self.intervals = {name: every for name, every in intervals.items() if every}  # None: never due
        self.next = {name: (start_step // every + 1) * every for name, every in self.intervals.items()}
        self.last_time, self.last_step = time.perf_counter(), start_step

    def due(self, name: str, steps: int) -> bool:
        if name not in self.next or steps < self.next[name]:
            return False
        every = self.intervals[name]
        self.next[name] = (steps // every + 1) * every
        return True

    def rate(self, steps: int) -> float:
        now = time.perf_counter()
        rate = (steps - self.last_step) / max(now - self.last_time, 1e-9)
        self.last_time, self.last_step = now, steps
        return rate
