"""``mri-rl train``: the run folder, refusing to overwrite, resuming after an interruption, config errors."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import mri_rl
from mri_rl.agents import AGENTS, DQN, REINFORCE, Agent, DAgger
from mri_rl.agents.base import read_agent_checkpoint
from mri_rl.checkpointing import CHECKSUM_KEY, save_checkpoint
from mri_rl.cli import main
from mri_rl.configs import load_config
from mri_rl.provenance import checkpoint_fingerprint
from mri_rl.runs.run_logger import PROGRESS_COLUMNS
from mri_rl.runs.training import RunMonitor, TrainConfig, read_mri_run, run_eval_kwargs, train_agent

TINY_DQN = {
    "agent": "dqn",
    "env_id": "CartPole-v1",
    "total_steps": 600,
    "eval_episodes": 2,
    "checkpoint_interval": 200,
    "log_interval": 100,
    "hyperparameters": {
        "learning_starts": 100,
        "buffer_size": 1000,
        "batch_size": 32,
        "train_freq": 4,
        "target_update_interval": 50,
        "net_arch": [32],
    },
}


#: A REINFORCE run on CartPole that is solved at its first evaluation, step 200 of 2000.
SOLVED_AT_200 = {
    "agent": "reinforce",
    "env_id": "CartPole-v1",
    "total_steps": 2000,
    "eval_interval": 200,
    "eval_episodes": 2,
    "stop_at_return": 0,  # met at the first evaluation
    "checkpoint_interval": 1000,
    "log_interval": 200,
    "hyperparameters": {"episodes_per_update": 2, "net_arch": [8]},
}


def write_config(path: Path, **changes) -> Path:
    path.write_text(yaml.safe_dump({**TINY_DQN, **changes}))
    return path


def train_args(out: Path, config: Path, *extra: str, total_steps: int = 600) -> list[str]:
    return [
        "train",
        "--agent",
        "dqn",
        "--env",
        "CartPole-v1",
        "--total-steps",
        str(total_steps),
        "--out",
        str(out),
        "--no-progress",
        "--config",
        str(config),
        *extra,
    ]


def progress_rows(out: Path) -> tuple[list[str], list[dict[str, str]]]:
    with (out / "progress.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def test_train_writes_the_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    config = write_config(tmp_path / "tiny.yaml")
    assert main(train_args(out, config)) == 0
    printed = capsys.readouterr().out
    assert "dqn on CartPole-v1: 600 steps" in printed

    for name in ("checkpoint.pt", "model.pt", "config.yaml", "progress.csv", "eval.json"):
        assert (out / name).is_file(), name
    events = list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0

    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["total_steps"] == 600 and saved["hyperparameters"] == TINY_DQN["hyperparameters"]

    header, rows = progress_rows(out)
    assert (
        header
        == list(PROGRESS_COLUMNS)
        == ["steps", "episodes", "return", "loss", "epsilon", "steps_per_s", "eval_return"]
    )
    steps = [int(row["steps"]) for row in rows]
    assert steps == [100, 200, 300, 400, 500, 600]
    assert all(float(row["epsilon"]) <= 1.0 for row in rows)
    assert rows[-1]["loss"] != "" and int(rows[-1]["episodes"]) > 0

    result = json.loads((out / "eval.json").read_text())
    assert result["episodes"] == 2 and len(result["returns"]) == 2
    assert result["mean_return"] == pytest.approx(sum(result["returns"]) / 2)
    assert result["std_return"] >= 0 and result["num_timesteps"] == 600
    assert result["threads"]["policy"] == mri_rl.THREADS["policy"]
    assert torch.get_num_threads() in result["threads"]["torch_threads"]
    assert result["threads"]["cpu"]["torch_capability"] == torch.backends.cpu.get_cpu_capability()

    model = DQN.load(out / "model.pt")
    assert model.num_timesteps == 600 and model.settings.net_arch == (32,)
    assert DQN.load(out / "checkpoint.pt").num_timesteps == 600

    # The same folder again, without --resume: refused, nothing overwritten.
    before = (out / "model.pt").stat().st_mtime_ns
    assert main(train_args(out, config)) == 2
    assert "--resume" in capsys.readouterr().err
    assert (out / "model.pt").stat().st_mtime_ns == before


def train_until_interrupted(config: TrainConfig, out: Path, monkeypatch, at_step: int) -> None:
    """Train a DQN run as ``train_agent`` does, stopped by Ctrl-C once ``at_step`` steps are taken."""
    original_learn = DQN.learn

    def interrupted_learn(self, total_timesteps, callback=None, progress_bar=True, reset_num_timesteps=True):
        def callback_then_interrupt(agent):
            keep_going = callback(agent)
            if agent.num_timesteps >= at_step:
                raise KeyboardInterrupt
            return keep_going

        return original_learn(self, total_timesteps, callback_then_interrupt, progress_bar, reset_num_timesteps)

    monkeypatch.setattr(DQN, "learn", interrupted_learn)
    with pytest.raises(KeyboardInterrupt):
        train_agent(config, out, progress_bar=False)
    monkeypatch.setattr(DQN, "learn", original_learn)


def test_resume_after_an_interruption_continues_from_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    config_path = write_config(tmp_path / "tiny.yaml")
    config = TrainConfig.from_dict(*load_config(config_path))
    train_until_interrupted(config, out, monkeypatch, at_step=550)

    assert not (out / "model.pt").exists() and not (out / "eval.json").exists()
    assert DQN.load(out / "checkpoint.pt").num_timesteps == 400  # checkpoints every 200 steps
    _, rows = progress_rows(out)
    assert [int(r["steps"]) for r in rows] == [100, 200, 300, 400, 500]  # 500 is past the checkpoint

    loaded_at: list[int] = []
    original_from_checkpoint = DQN.from_checkpoint.__func__

    def recording_from_checkpoint(cls, checkpoint, path, env=None, device="cpu"):
        agent = original_from_checkpoint(cls, checkpoint, path, env=env, device=device)
        loaded_at.append(agent.num_timesteps)
        return agent

    monkeypatch.setattr(DQN, "from_checkpoint", classmethod(recording_from_checkpoint))
    # Options that ask for another config than the saved one are refused, not ignored: one line, nothing read.
    assert main(train_args(out, config_path, "--resume", total_steps=10_000)) == 2
    assert "total_steps: 600 vs 10000" in capsys.readouterr().err and loaded_at == []
    # A bare --resume (no config options) resumes with the saved config.yaml.
    bare = ["train", "--agent", "dqn", "--env", "CartPole-v1", "--out", str(out), "--no-progress", "--resume"]
    assert main(bare) == 0
    assert loaded_at == [400]
    result = json.loads((out / "eval.json").read_text())
    assert result["num_timesteps"] == 600
    assert DQN.load(out / "model.pt").num_timesteps == 600
    _, rows = progress_rows(out)
    steps = [int(r["steps"]) for r in rows]
    assert steps == [100, 200, 300, 400, 500, 600]  # the interrupted run's row 500 was replaced, not repeated
    assert len(list((out / "tensorboard").glob("events.out.tfevents.*"))) >= 1
    # The command that made the run is accepted too (its options match): the finished run is loaded
    # at its last step (its record checked), nothing trained, no file written.
    del loaded_at[:]
    written = {name: (out / name).read_bytes() for name in ("checkpoint.pt", "model.pt", "eval.json")}
    assert main(train_args(out, config_path, "--resume")) == 0
    assert loaded_at == [600]
    assert {name: (out / name).read_bytes() for name in written} == written
    assert "holds a finished run" in capsys.readouterr().out


def test_resuming_a_run_stopped_at_its_return_threshold_trains_nothing_and_changes_no_file(tmp_path, capsys):
    """A run that reached stop_at_return before total_steps has finished: --resume says so and leaves
    its files as they are. Stopped before its eval.json was written, it trains no further: the
    checkpoint says at which step it was solved."""
    config = tmp_path / "stop.yaml"
    config.write_text(yaml.safe_dump(SOLVED_AT_200))
    out = tmp_path / "run"
    args = ["train", "--agent", "reinforce", "--env", "CartPole-v1", "--out", str(out), "--no-progress"]
    assert main([*args, "--config", str(config)]) == 0
    assert "200 steps, solved at step 200" in capsys.readouterr().out
    names = ("checkpoint.pt", "model.pt", "eval.json", "progress.csv", "config.yaml")
    written = {name: (out / name).read_bytes() for name in names}
    assert main([*args, "--resume"]) == 0
    printed = capsys.readouterr().out
    assert f"{out} holds a finished run: --resume trained nothing and changed no file" in printed
    assert "200 steps, solved at step 200" in printed
    assert {name: (out / name).read_bytes() for name in names} == written

    (out / "eval.json").unlink()  # as if stopped after the final checkpoint, before the evaluation
    assert main([*args, "--resume"]) == 0
    printed = capsys.readouterr().out
    assert "200 steps, solved at step 200" in printed and "finished run" not in printed
    assert json.loads((out / "eval.json").read_text()) == json.loads(written["eval.json"])
    assert REINFORCE.load(out / "model.pt").num_timesteps == 200


def without_eval_json_and_run_entry(out: Path) -> None:
    """The run folder as a run from before checkpoints held the ``run`` entry (its ``solved_at_step``),
    stopped after ``model.pt``, before ``eval.json``: the checkpoint without that entry, checksum redone."""
    (out / "eval.json").unlink()
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    del checkpoint["run"], checkpoint["checksum"]
    save_checkpoint(checkpoint, out / "checkpoint.pt")


@pytest.mark.parametrize("config", [SOLVED_AT_200, TINY_DQN], ids=["solved", "at total_steps"])
def test_a_finished_run_without_eval_json_is_only_evaluated(tmp_path, monkeypatch, config):
    """A run whose training is over but that has no eval.json (an old run without the checkpoint's
    ``run`` entry, stopped before its eval.json) is not trained again: its final evaluation is run,
    the same as the run's own, and eval.json written; checkpoint and model are left as they are."""
    out, config = tmp_path / "run", TrainConfig.from_dict(config)
    first = train_agent(config, out, progress_bar=False)
    without_eval_json_and_run_entry(out)
    kept = {name: (out / name).read_bytes() for name in ("checkpoint.pt", "model.pt")}
    learned: list[int] = []
    monkeypatch.setattr(AGENTS[config.agent], "learn", lambda agent, steps, *args, **kwargs: learned.append(steps))
    result = train_agent(config, out, resume=True, progress_bar=False)
    assert learned == []  # not even for 0 steps (which resets the env and ends the replay's streams)
    assert result == json.loads((out / "eval.json").read_text()) == first  # solved at step 200 again
    assert {name: (out / name).read_bytes() for name in kept} == kept


@pytest.mark.parametrize("config", [SOLVED_AT_200, TINY_DQN], ids=["solved", "at total_steps"])
def test_a_run_stopped_between_its_final_checkpoint_and_model_pt_writes_model_pt_on_resume(tmp_path, config):
    """A run killed after its final checkpoint, before ``model.pt`` and ``eval.json``: its resume trains nothing
    more and writes both, ``model.pt`` the checkpoint's agent (as the uninterrupted run wrote it)."""
    out, config = tmp_path / "run", TrainConfig.from_dict(config)
    first = train_agent(config, out, progress_bar=False)
    model = read_agent_checkpoint(out / "model.pt")[CHECKSUM_KEY]  # contents (a reload may save other bytes)
    (out / "model.pt").unlink()
    (out / "eval.json").unlink()
    assert train_agent(config, out, resume=True, progress_bar=False) == first
    assert read_agent_checkpoint(out / "model.pt")[CHECKSUM_KEY] == model


def test_a_model_pt_of_an_earlier_run_does_not_end_a_resumed_run(tmp_path, monkeypatch):
    """A run trained again in a folder whose earlier run's checkpoint and eval.json were removed, but not its
    model.pt, and interrupted: its resume trains on to ``total_steps``; the stale model.pt does not say that
    its training is over."""
    out, config = tmp_path / "run", TrainConfig.from_dict(TINY_DQN)
    train_agent(config, out, progress_bar=False)
    (out / "checkpoint.pt").unlink()
    (out / "eval.json").unlink()
    train_until_interrupted(config, out, monkeypatch, at_step=450)
    assert DQN.load(out / "checkpoint.pt").num_timesteps == 400
    result = train_agent(config, out, resume=True, progress_bar=False)
    assert result["num_timesteps"] == 600 and DQN.load(out / "model.pt").num_timesteps == 600


def test_resume_without_a_checkpoint_fails(tmp_path, capsys):
    config = write_config(tmp_path / "tiny.yaml")
    assert main(train_args(tmp_path / "empty", config, "--resume")) == 2
    assert "checkpoint" in capsys.readouterr().err


def test_unknown_config_keys_are_named(tmp_path, capsys):
    out = tmp_path / "run"
    config = write_config(tmp_path / "typo.yaml", totl_steps=5)
    assert main(train_args(out, config)) == 2
    assert "totl_steps" in capsys.readouterr().err
    config = write_config(tmp_path / "typo_hp.yaml", hyperparameters={"learning_rat": 0.1})
    assert main(train_args(out, config)) == 2
    assert "learning_rat" in capsys.readouterr().err
    assert not (out / "checkpoint.pt").exists()


def test_config_of_another_agent_is_refused(tmp_path, capsys):
    config = write_config(tmp_path / "reinforce.yaml", agent="reinforce", hyperparameters={"baseline": "mean"})
    assert main(train_args(tmp_path / "run", config)) == 2
    error = capsys.readouterr().err
    assert "reinforce" in error and "dqn" in error


def test_train_reinforce_on_the_batched_mri_env_and_resume(tmp_path, mri_train_folder, capsys):
    out = tmp_path / "mri"
    config = tmp_path / "mri.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "agent": "reinforce",
                "env_id": "mri_rl/ActiveAcquisition-v0",
                "total_steps": 80,
                "num_envs": 2,
                "env_kwargs": {"data_path": str(mri_train_folder), "budget": 4, "initial_lines": 2},
                "eval_episodes": 2,
                "checkpoint_interval": 40,
                "log_interval": 40,
                "hyperparameters": {"episodes_per_update": 2, "net_arch": [8]},
            }
        )
    )
    args = [
        "train",
        "--agent",
        "reinforce",
        "--env",
        "mri_rl/ActiveAcquisition-v0",
        "--out",
        str(out),
        "--no-progress",
        "--config",
        str(config),
    ]
    assert main(args) == 0
    result = json.loads((out / "eval.json").read_text())
    assert result["num_timesteps"] >= 80 and result["episodes"] == 2
    assert main([*args, "--resume"]) == 0  # already finished: loads the checkpoint, trains and writes nothing
    _, rows = progress_rows(out)
    steps = [int(r["steps"]) for r in rows]
    assert steps == sorted(set(steps))
    capsys.readouterr()


def tensorboard_images(out: Path) -> dict[str, list]:
    """The images of a run's TensorBoard events, per tag (read back with tensorboard's EventAccumulator)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(out / "tensorboard"), size_guidance={"images": 0})
    accumulator.Reload()
    return {tag: accumulator.Images(tag) for tag in accumulator.Tags()["images"]}


def test_training_on_the_mri_env_logs_a_picture_at_each_evaluation(tmp_path, mri_train_folder):
    config = TrainConfig(
        agent="dqn",
        env_id="mri_rl/ActiveAcquisition-v0",
        total_steps=24,
        env_kwargs={"data_path": str(mri_train_folder), "budget": 4, "initial_lines": 2},
        eval_episodes=1,
        eval_interval=8,
        log_interval=8,
        hyperparameters={"learning_starts": 8, "batch_size": 4, "buffer_size": 50, "net_arch": [8]},
    )
    train_agent(config, tmp_path / "run", progress_bar=False)
    images = tensorboard_images(tmp_path / "run")
    assert list(images) == ["eval/picture"]
    events = images["eval/picture"]
    assert [event.step for event in events] == [8, 16, 24, 24]  # every 8 steps, then the final evaluation
    env = gym.make("mri_rl/ActiveAcquisition-v0", render_mode="rgb_array", **config.env_kwargs)
    env.reset(seed=0)
    height, width, _ = env.render().shape
    for event in events:
        assert (event.height, event.width) == (height, width)
        decoded = np.asarray(Image.open(io.BytesIO(event.encoded_image_string)))
        assert decoded.shape == (height, width, 3) and decoded.dtype == np.uint8
    assert len({event.encoded_image_string for event in events}) > 1  # the episodes differ


def test_training_on_an_env_without_pictures_logs_no_image(tmp_path):
    config = TrainConfig.from_dict({**TINY_DQN, "total_steps": 200, "eval_interval": 100})
    train_agent(config, tmp_path / "run", progress_bar=False)
    assert tensorboard_images(tmp_path / "run") == {}


@pytest.mark.parametrize(
    "env, env_kwargs, message",
    [
        ("NoSuchEnv-v0", "{}", "env 'NoSuchEnv-v0': Environment `NoSuchEnv` doesn't exist"),
        ("CartPole-v1", '{"noise": 1}', "env 'CartPole-v1' with env_kwargs ['noise']: "),
    ],
)
def test_an_unknown_env_or_env_keyword_is_one_line(tmp_path, capsys, env, env_kwargs, message):
    args = train_args(tmp_path / "run", write_config(tmp_path / "tiny.yaml", env_id=env))
    args[args.index("--env") + 1] = env
    assert main([*args, "--env-kwargs", env_kwargs]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


@pytest.mark.parametrize(
    ("train_options", "eval_options", "messages"),
    [
        # no column spectrum: the agent could not read its observations
        ({"column_spectrum": True}, {}, ["another observation space", "column_spectrum"]),
        # no budget: the default, 16, a silent change of task if it were let through
        ({}, {"budget": None}, ["another task than env_kwargs", "budget: 4 vs 16"]),
    ],
)
def test_an_eval_env_that_is_not_the_training_task_is_one_line_before_any_training(
    tmp_path, mri_train_folder, capsys, train_options, eval_options, messages
):
    kwargs = {"data_path": str(mri_train_folder), "budget": 4, "initial_lines": 2}
    eval_kwargs = {key: value for key, value in {**kwargs, **eval_options}.items() if value is not None}
    config = tmp_path / "mri.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "agent": "reinforce",
                "env_id": "mri_rl/ActiveAcquisition-v0",
                "total_steps": 40,
                "num_envs": 2,
                "env_kwargs": {**kwargs, **train_options},
                "eval_env_kwargs": eval_kwargs,
                "hyperparameters": {"episodes_per_update": 2, "net_arch": [8]},
            }
        )
    )
    out = tmp_path / "run"
    args = ["train", "--agent", "reinforce", "--env", "mri_rl/ActiveAcquisition-v0", "--config", str(config)]
    assert main([*args, "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "eval_env_kwargs make" in err
    assert all(message in err for message in messages) and not (out / "checkpoint.pt").exists()


@pytest.mark.parametrize("agent", ["dagger", "greedy_reinforce"])
def test_an_agent_that_needs_a_look_ahead_on_an_env_without_one_is_one_line(tmp_path, capsys, agent):
    args = ["train", "--agent", agent, "--env", "CartPole-v1", "--total-steps", "8", "--out", str(tmp_path / "run")]
    assert main([*args, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--agent {agent} on CartPole-v1: this agent needs an env with look_ahead" in err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_a_resumed_dagger_run_keeps_the_labels_it_paid_for(tmp_path, mri_train_folder, monkeypatch):
    """checkpoint.pt holds DAgger's labelled states and model.pt does not; a run stopped after its
    checkpoint at step 16 of 32 and resumed holds the labels of both halves, not only of the second."""
    config = tmp_path / "dagger.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "agent": "dagger",
                "env_id": "mri_rl/ActiveAcquisition-v0",
                "total_steps": 32,
                "num_envs": 2,
                "checkpoint_interval": 16,
                "env_kwargs": {"data_path": str(mri_train_folder), "budget": 4, "initial_lines": 2},
                "eval_episodes": 1,
                "hyperparameters": {"learning_starts": 4, "batch_size": 4, "net_arch": [8]},
            }
        )
    )
    out = tmp_path / "run"
    args = ["train", "--agent", "dagger", "--env", "mri_rl/ActiveAcquisition-v0", "--config", str(config)]
    args += ["--out", str(out), "--no-progress"]

    def save_then_stop(monitor: RunMonitor, agent: Agent) -> None:
        save_checkpoint(monitor, agent)
        raise KeyboardInterrupt  # as if the process were stopped just after its first checkpoint

    save_checkpoint = RunMonitor.save_checkpoint
    monkeypatch.setattr(RunMonitor, "save_checkpoint", save_then_stop)
    assert main(args) == 130  # mri-rl: interrupted
    monkeypatch.undo()

    def labelled(name: str) -> int:
        saved = torch.load(out / name, weights_only=True)
        return len(saved["training_state"]["aggregate"]["scores"]) if "training_state" in saved else 0

    assert labelled("checkpoint.pt") == 16 and not (out / "model.pt").exists()
    assert main([*args, "--resume"]) == 0
    assert (labelled("checkpoint.pt"), labelled("model.pt")) == (32, 0)


def save_student(path: Path, mri_train_folder: Path, seed: int = 0) -> Path:
    """A DAgger student (untrained, net_arch [8]) of the tiny MRI task, saved at ``path``."""
    env = gym.make_vec("mri_rl/ActiveAcquisition-v0", num_envs=2, **tiny_mri_kwargs(mri_train_folder))
    return DAgger(env, net_arch=(8,), seed=seed).save(path)


def tiny_mri_kwargs(mri_train_folder: Path) -> dict[str, Any]:
    return {"data_path": str(mri_train_folder), "budget": 4, "initial_lines": 2}


def fine_tuning_config(path: Path, mri_train_folder: Path, start: Path, **changes: Any) -> Path:
    """REINFORCE on the tiny MRI task, starting from the policy at ``start``."""
    hyperparameters = {"episodes_per_update": 2, "net_arch": [8], "init_policy": str(start)}
    return write_config(
        path,
        **{
            "agent": "reinforce",
            "env_id": "mri_rl/ActiveAcquisition-v0",
            "total_steps": 16,
            "num_envs": 2,
            "env_kwargs": tiny_mri_kwargs(mri_train_folder),
            "hyperparameters": hyperparameters,
            **changes,
        },
    )


def test_a_fine_tuning_run_records_the_policy_it_starts_from(tmp_path, mri_train_folder, capsys):
    start = save_student(tmp_path / "student.pt", mri_train_folder)
    config = fine_tuning_config(tmp_path / "tune.yaml", mri_train_folder, start)
    args = ["train", "--agent", "reinforce", "--env", "mri_rl/ActiveAcquisition-v0", "--no-progress", "--config"]
    assert main([*args, str(config), "--out", str(tmp_path / "run")]) == 0
    tuned = REINFORCE.load(tmp_path / "run" / "model.pt")
    assert tuned.record["settings"]["init_policy_fingerprint"] == checkpoint_fingerprint(start)
    assert tuned.settings.init_policy == str(start)
    gone = {**yaml.safe_load(config.read_text()), "hyperparameters": {"init_policy": str(tmp_path / "gone.pt")}}
    missing = write_config(tmp_path / "missing.yaml", **gone)
    assert main([*args, str(missing), "--out", str(tmp_path / "run2")]) == 2
    assert f"init_policy: no file {tmp_path / 'gone.pt'}" in capsys.readouterr().err
    assert not (tmp_path / "run2" / "checkpoint.pt").exists()


def test_a_fine_tuning_run_resumes_without_the_policy_it_started_from(tmp_path, mri_train_folder, monkeypatch, capsys):
    """The copy is made at step 0 only: a run stopped after its checkpoint resumes when its
    ``init_policy`` file is gone (keeping the recorded fingerprint), not when another file is there."""
    start = save_student(tmp_path / "student.pt", mri_train_folder)
    fingerprint = checkpoint_fingerprint(start)
    config = fine_tuning_config(
        tmp_path / "tune.yaml", mri_train_folder, start, total_steps=32, checkpoint_interval=16, eval_episodes=1
    )
    out = tmp_path / "run"
    args = ["train", "--agent", "reinforce", "--env", "mri_rl/ActiveAcquisition-v0", "--config", str(config)]
    args += ["--out", str(out), "--no-progress"]

    def save_then_stop(agent: REINFORCE, path: Path, resumable: bool = False) -> Path:
        Agent.save(agent, path, resumable)
        raise KeyboardInterrupt

    monkeypatch.setattr(REINFORCE, "save", save_then_stop)
    assert main(args) == 130
    monkeypatch.undo()
    capsys.readouterr()
    save_student(start, mri_train_folder, seed=1)
    assert checkpoint_fingerprint(start) != fingerprint
    assert main([*args, "--resume"]) == 2  # another file where the run's policy was
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "settings.init_policy_fingerprint" in err
    start.unlink()
    assert main([*args, "--resume"]) == 0
    resumed = REINFORCE.load(out / "model.pt")
    assert resumed.num_timesteps == 32 and resumed.record["settings"]["init_policy_fingerprint"] == fingerprint


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({}, "config.yaml does not exist"),
        ({"config.yaml": "agent: dqn\n"}, "model.pt does not exist"),
        ({"config.yaml": "agent: dqn\nenv_id: CartPole-v1\n", "model.pt": ""}, "missing required key(s)"),
        ({"config.yaml": "agent: [dqn\n", "model.pt": ""}, "is not a run's config"),
        ({"config.yaml": "{agent: dqn, env_id: CartPole-v1, total_steps: 1}", "model.pt": ""}, "on CartPole-v1"),
    ],
)
def test_a_folder_that_is_no_mri_run_is_refused_naming_the_file(tmp_path, files, expected):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ValueError, match=re.escape(expected)):
        read_mri_run(tmp_path)


def test_a_run_is_read_back_and_evaluated_on_its_own_or_another_folder(tmp_path, mri_train_folder):
    start = save_student(tmp_path / "student.pt", mri_train_folder)
    config = fine_tuning_config(tmp_path / "tune.yaml", mri_train_folder, start)
    run = tmp_path / "run"
    assert (
        main(
            ["train", "--agent", "reinforce", "--env", "mri_rl/ActiveAcquisition-v0", "--no-progress"]
            + ["--config", str(config), "--out", str(run)]
        )
        == 0
    )
    read = read_mri_run(run)
    assert read.agent == "reinforce" and read.env_kwargs == tiny_mri_kwargs(mri_train_folder)
    assert run_eval_kwargs(read) == tiny_mri_kwargs(mri_train_folder)  # no eval_env_kwargs: the training data
    assert run_eval_kwargs(read, tmp_path)["data_path"] == str(tmp_path)
    with pytest.raises(ValueError, match=f"--eval-data {tmp_path / 'none'} is not a folder"):
        run_eval_kwargs(read, tmp_path / "none")


def test_env_options_that_change_what_the_env_gives_are_in_the_run_record(tmp_path, mri_train_folder):
    """``auc_weighted_rewards`` changes every reward: a run made without it is not resumed with it (nor
    a quick-start model reused); CartPole's ``max_episode_steps`` changes its episodes likewise."""
    from mri_rl.provenance import RecordMismatchError
    from mri_rl.runs.training import make_env, run_record

    values = {
        "agent": "reinforce",
        "env_id": "mri_rl/ActiveAcquisition-v0",
        "total_steps": 16,
        "env_kwargs": {"data_path": str(mri_train_folder), "budget": 4, "initial_lines": 2},
        "eval_episodes": 1,
        "checkpoint_interval": 8,
        "hyperparameters": {"episodes_per_update": 2, "net_arch": [8]},
    }
    out = tmp_path / "run"
    train_agent(TrainConfig.from_dict(values), out, progress_bar=False)
    (out / "eval.json").unlink()  # as if stopped after its last checkpoint
    weighted = {**values, "env_kwargs": {**values["env_kwargs"], "auc_weighted_rewards": True}}
    with pytest.raises(RecordMismatchError, match=r"settings\.env_options\.auc_weighted_rewards: \(none\) vs True"):
        train_agent(TrainConfig.from_dict(weighted), out, resume=True, progress_bar=False)
    cartpole = {"agent": "dqn", "env_id": "CartPole-v1", "total_steps": 8}
    shorter = {**cartpole, "env_kwargs": {"max_episode_steps": 20}}
    records = [run_record(config, make_env(config)) for config in map(TrainConfig.from_dict, (cartpole, shorter))]
    assert records[0] != records[1]
