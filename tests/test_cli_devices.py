"""``--device`` and ``--precision`` of the commands: cpu runs, a device this machine lacks is one
line and exit status 2, the precision is recorded and another one refused, the device is not."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from mri_rl.agents import REINFORCE
from mri_rl.cli import build_parser, main
from mri_rl.runs.training import TrainConfig, make_env, run_record


def commands(tmp_path: Path) -> dict[str, list[str]]:
    """Each command with --device, up to the device: what it needs to parse."""
    data, out = str(tmp_path / "data"), str(tmp_path / "out")
    return {
        "train": ["train", "--agent", "dqn", "--env", "CartPole-v1", "--total-steps", "8", "--out", out],
        "eval-recon": ["eval-recon", "--data", data, "--challenge", "singlecoil", "--reconstructor", "zero_filled"],
        "evaluate": ["evaluate", "--data", data, "--out", out, "--no-progress"],
        "quickstart": ["quickstart", "--out", out, "--no-progress"],
    }


@pytest.mark.parametrize("command", ["train", "eval-recon", "evaluate", "quickstart"])
def test_every_command_takes_a_device_defaulting_to_the_cpu(command, tmp_path):
    args = build_parser().parse_args(commands(tmp_path)[command])
    assert args.device == (None if command == "train" else "cpu")  # train: the config's, else cpu
    assert build_parser().parse_args([*commands(tmp_path)[command], "--device", "cpu"]).device == "cpu"


@pytest.mark.parametrize("command", ["train", "eval-recon", "evaluate", "quickstart"])
@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("cuda:7", "device 'cuda:7' is not available on this machine: torch.cuda.is_available() is False"),
        ("nonsense", "device 'nonsense' is not a torch device name; expected cpu, cuda, cuda:N or mps"),
    ],
)
def test_a_device_this_machine_lacks_is_one_line_and_status_2(command, device, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same on a machine with a GPU
    assert main([*commands(tmp_path)[command], "--device", device]) == 2
    assert capsys.readouterr().err == f"mri-rl: error: {message}\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["train", "evaluate", "quickstart"])
def test_precision_is_a_choice_of_the_agents_env_commands(command, tmp_path, capsys):
    assert build_parser().parse_args([*commands(tmp_path)[command], "--precision", "bf16"]).task_precision == "bf16"
    with pytest.raises(SystemExit) as exit_info:
        main([*commands(tmp_path)[command], "--precision", "fp8"])
    assert exit_info.value.code == 2 and "invalid choice: 'fp8'" in capsys.readouterr().err


def test_train_recon_precision_stays_lightnings():
    args = build_parser().parse_args(
        ["train-recon", "--data", "d", "--challenge", "singlecoil", "--out", "o", "--precision", "bf16-mixed"]
    )
    assert args.precision == "bf16-mixed" and not hasattr(args, "task_precision")


def test_precision_of_an_env_without_a_reconstructor_is_one_line(tmp_path, capsys):
    assert main([*commands(tmp_path)["train"], "--precision", "bf16"]) == 2
    err = capsys.readouterr().err
    assert err == "mri-rl: error: --precision sets the MRI env's reconstructor precision; env 'CartPole-v1' has none\n"
    assert not (tmp_path / "out").exists()


def mri_train_args(tmp_path: Path, folder: Path, *extra: str) -> list[str]:
    config = tmp_path / "mri.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "agent": "reinforce",
                "env_id": "mri_rl/ActiveAcquisition-v0",
                "total_steps": 16,
                "num_envs": 2,
                "env_kwargs": {"data_path": str(folder), "budget": 4, "initial_lines": 2},
                "eval_episodes": 1,
                "checkpoint_interval": 8,
                "log_interval": 8,
                "hyperparameters": {"episodes_per_update": 2, "net_arch": [8]},
            }
        )
    )
    args = ["train", "--agent", "reinforce", "--env", "mri_rl/ActiveAcquisition-v0", "--config", str(config)]
    return [*args, "--out", str(tmp_path / "run"), "--no-progress", *extra]


def test_train_on_cpu_records_the_precision_and_resumes_on_another_device_not_another_precision(
    tmp_path, singlecoil_root, capsys
):
    folder = singlecoil_root / "singlecoil_train"
    args = mri_train_args(tmp_path, folder, "--device", "cpu", "--precision", "bf16")
    assert main(args) == 0
    run = tmp_path / "run"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["device"] == "cpu" and saved["env_kwargs"]["precision"] == "bf16"
    record = REINFORCE.load(run / "checkpoint.pt").record
    assert record["task"]["precision"] == "bf16" and "device" not in record["settings"]
    capsys.readouterr()

    assert main([*args, "--resume", "--precision", "32"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "task.precision: bf16 vs 32" in err

    (run / "eval.json").unlink()  # as if stopped before its final evaluation: a finished run is left as it is
    saved["device"] = "cuda:3"  # as if the run had been made on a GPU
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    resume = mri_train_args(tmp_path, folder)  # no --device, no --precision
    assert main([*resume, "--resume"]) == 2  # its device is not on this machine
    assert "device 'cuda:3' is not available on this machine" in capsys.readouterr().err
    assert main([*resume, "--resume", "--device", "cpu"]) == 0  # resumes on the CPU
    assert yaml.safe_load((run / "config.yaml").read_text())["device"] == "cpu"


def test_precision_16_on_the_cpu_is_refused_before_training(tmp_path, singlecoil_root, capsys):
    args = mri_train_args(tmp_path, singlecoil_root / "singlecoil_train", "--precision", "16")
    assert main(args) == 2
    assert capsys.readouterr().err == (
        "mri-rl: error: precision 16 (float16 autocast) needs a CUDA or MPS device; on the CPU use bf16\n"
    )
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_the_device_is_no_setting_of_the_run_record(singlecoil_root, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    values = {
        "agent": "dqn",
        "env_id": "mri_rl/ActiveAcquisition-v0",
        "total_steps": 8,
        "env_kwargs": {"data_path": str(singlecoil_root / "singlecoil_train"), "budget": 4, "initial_lines": 2},
    }
    on_cpu = TrainConfig.from_dict(values)
    env = make_env(on_cpu, num_envs=1)
    assert env.unwrapped.episodes.device == torch.device("cpu")
    assert run_record(TrainConfig.from_dict({**values, "device": "cuda:0"}), env) == run_record(on_cpu, env)
    half = TrainConfig.from_dict({**values, "env_kwargs": {**values["env_kwargs"], "precision": "bf16"}})
    assert run_record(half, make_env(half, num_envs=1))["task"]["precision"] == "bf16"


def test_the_device_is_set_with_its_key_not_in_the_env_kwargs():
    with pytest.raises(ValueError, match=r"env_kwargs.device: set the device with the config key device"):
        TrainConfig.from_dict(
            {"agent": "dqn", "env_id": "CartPole-v1", "total_steps": 8, "env_kwargs": {"device": "cpu"}}
        )


def test_eval_recon_and_evaluate_run_on_the_cpu(singlecoil_root, tmp_path, capsys):
    recon = ["eval-recon", "--data", str(singlecoil_root / "singlecoil_train"), "--challenge", "singlecoil"]
    recon += ["--split", "val", "--any-folder", "--reconstructor", "zero_filled", "--initial-lines", "2"]
    assert main([*recon, "--device", "cpu"]) == 0
    assert "| initial | 0.125 | zero_filled |" in capsys.readouterr().out

    out = tmp_path / "results"
    evaluate = ["evaluate", "--data", str(singlecoil_root), "--budget", "2", "--initial-lines", "2"]
    evaluate += ["--policies", "random", "--seeds", "0", "--out", str(out), "--no-progress", "--device", "cpu"]
    assert main([*evaluate, "--precision", "bf16"]) == 0
    summary = yaml.safe_load((out / "summary.json").read_text())
    assert summary["record"]["task"]["precision"] == "bf16" and "device" not in summary["record"].get("settings", {})
    capsys.readouterr()
    assert main([*evaluate, "--precision", "32"]) == 2  # results made at another precision are not reused
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "task.precision: bf16 vs 32" in err
