"""``mri-rl train --seeds`` and ``--workers``: one run per seed and their spread; Ray actors that step
the env for one learner, recorded, resumed only with the same workers."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from test_train_cli import train_args, write_config  # the same tiny CartPole runs (tests/agents is on sys.path)

from mri_rl.agents import DQN
from mri_rl.cli import main


def test_seeds_train_one_run_each_and_write_the_spread(tmp_path, capsys):
    config = write_config(tmp_path / "tiny.yaml")
    assert main(train_args(tmp_path / "run", config, "--seeds", "3", "5", total_steps=300)) == 0
    summary = json.loads((tmp_path / "run" / "seeds.json").read_text())
    returns = [json.loads((tmp_path / "run" / f"seed{s}" / "eval.json").read_text())["mean_return"] for s in (3, 5)]
    assert summary["seeds"] == [3, 5]
    assert summary["mean_return"] == pytest.approx(np.mean(returns))
    assert summary["std_return"] == pytest.approx(np.std(returns, ddof=1))
    assert DQN.load(tmp_path / "run" / "seed5" / "model.pt").seed == 5
    assert "over seeds" in capsys.readouterr().out
    # a finished sweep is not overwritten without --resume; with it, it completes and agrees
    assert main(train_args(tmp_path / "run", config, "--seeds", "3", "5", total_steps=300)) == 2
    assert main(train_args(tmp_path / "run", config, "--seeds", "3", "5", "--resume", total_steps=300)) == 0
    assert json.loads((tmp_path / "run" / "seeds.json").read_text())["mean_return"] == summary["mean_return"]


def test_seed_and_seeds_together_are_refused(tmp_path, capsys):
    config = write_config(tmp_path / "tiny.yaml")
    assert main(train_args(tmp_path / "run", config, "--seed", "1", "--seeds", "3", "5")) == 2
    assert "not both" in capsys.readouterr().err


def test_seeds_on_ray_workers_match_the_seeds_in_this_process(tmp_path):
    pytest.importorskip("ray")
    config = write_config(tmp_path / "tiny.yaml")
    assert main(train_args(tmp_path / "here", config, "--seeds", "0", "1", total_steps=300)) == 0
    assert main(train_args(tmp_path / "ray", config, "--seeds", "0", "1", "--workers", "2", total_steps=300)) == 0
    for seed in (0, 1):
        here, ray = (DQN.load(tmp_path / run / f"seed{seed}" / "model.pt") for run in ("here", "ray"))
        for a, b in zip(here.q_network.parameters(), ray.q_network.parameters()):
            torch.testing.assert_close(a, b, rtol=0, atol=0)  # one torch thread on both sides


def test_workers_step_the_env_in_actors_and_resume_only_with_as_many(tmp_path, capsys):
    pytest.importorskip("ray")
    config = write_config(tmp_path / "tiny.yaml", checkpoint_interval=100)
    out = tmp_path / "run"
    assert main(train_args(out, config, "--workers", "2", total_steps=400)) == 2  # num_envs 1: not one per actor
    assert "num_envs 1 is not a multiple of --workers 2" in capsys.readouterr().err
    assert main(train_args(out, config, "--workers", "2", "--num-envs", "2", total_steps=400)) == 0
    agent = DQN.load(out / "model.pt")
    assert agent.num_timesteps >= 400 and agent.record["settings"]["workers"] == 2
    capsys.readouterr()
    same = ("--resume", "--num-envs", "2")  # the command's own config options, as when it was made
    assert main(train_args(out, config, *same, total_steps=400)) == 2  # one process: another env
    assert "workers" in capsys.readouterr().err
    assert main(train_args(out, config, *same, "--workers", "2", total_steps=400)) == 0  # already done
    assert yaml.safe_load((out / "config.yaml").read_text())["num_envs"] == 2  # what the actors stepped
    assert DQN.load(out / "model.pt").num_timesteps == agent.num_timesteps


def test_an_env_the_actors_cannot_make_is_one_clear_error_and_ray_is_stopped(tmp_path, capsys):
    ray = pytest.importorskip("ray")
    missing = tmp_path / "nowhere" / "singlecoil_train"
    args = ["train", "--agent", "dqn", "--env", "mri_rl/ActiveAcquisition-v0", "--total-steps", "10"]
    args += ["--env-kwargs", json.dumps({"data_path": str(missing)}), "--workers", "2", "--out", str(tmp_path / "run")]
    assert main([*args, "--no-progress"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and str(missing) in error[0]
    assert not ray.is_initialized()


def test_reinforce_trains_on_mri_env_actors(tmp_path, mri_train_folder):
    """REINFORCE's synchronous batches of episodes over two actors' envs: the same learner code."""
    pytest.importorskip("ray")
    config = {
        "agent": "reinforce",
        "env_id": "mri_rl/ActiveAcquisition-v0",
        "total_steps": 64,
        "num_envs": 4,
        "env_kwargs": {"data_path": str(mri_train_folder), "budget": 4, "initial_lines": 2},
        "eval_episodes": 2,
        "hyperparameters": {"episodes_per_update": 4, "net_arch": [8]},
    }
    path = tmp_path / "mri.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    out = tmp_path / "run"
    args = ["train", "--agent", "reinforce", "--env", "mri_rl/ActiveAcquisition-v0", "--config", str(path)]
    assert main([*args, "--workers", "2", "--out", str(out), "--no-progress"]) == 0
    result = json.loads((out / "eval.json").read_text())
    assert result["num_timesteps"] >= 64 and np.isfinite(result["mean_return"])
