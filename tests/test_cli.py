"""The ``mri-rl`` command line as a whole: version, a fast light --help, task flags over the one
set of task defaults, and ``--set`` overrides checked on load."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from mri_rl import __version__
from mri_rl.cli import build_parser, main
from mri_rl.cli.arguments import task_of
from mri_rl.task import DEFAULT_TASK

HEAVY_MODULES = ("torch", "pytorch_lightning", "fastmri", "h5py", "matplotlib")


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"mri-rl {__version__}"


def test_the_parser_loads_no_heavy_module():
    """``mri-rl --help`` stays fast: building the parser imports neither torch nor Lightning."""
    code = (
        "import sys; from mri_rl.cli import build_parser; build_parser().format_help(); "
        f"print([m for m in {HEAVY_MODULES!r} if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def evaluate_namespace(*flags: str):
    return build_parser().parse_args(["evaluate", "--data", "d", "--out", "o", *flags])


def test_task_flags_change_only_what_they_name():
    assert task_of(evaluate_namespace()) == DEFAULT_TASK
    task = task_of(evaluate_namespace("--budget", "7", "--reward-metric", "psnr"))
    assert task == DEFAULT_TASK.with_changes(budget=7, reward_metric="psnr")
    assert task_of(evaluate_namespace("--budget", "all")).budget is None
    recon = build_parser().parse_args(
        ["train-recon", "--data", "d", "--out", "o", "--challenge", "multicoil", "--initial-lines", "2"]
    )
    assert task_of(recon) == DEFAULT_TASK.with_changes(challenge="multicoil", initial_lines=2)


@pytest.mark.parametrize("budget", ["0", "-3", "2.5", "lots"])
def test_a_bad_budget_is_a_usage_error(budget, capsys):
    with pytest.raises(SystemExit) as exit_info:
        evaluate_namespace("--budget", budget)
    assert exit_info.value.code == 2
    assert "expected a positive integer or 'all'" in capsys.readouterr().err


def train_args(out, *extra):
    return [
        "train",
        "--agent",
        "dqn",
        "--env",
        "CartPole-v1",
        "--total-steps",
        "64",
        "--out",
        str(out),
        "--no-progress",
        "--set",
        "eval_episodes=1",
        "--set",
        "hyperparameters.learning_starts=32",
        *extra,
    ]


def test_set_overrides_the_packaged_config(tmp_path):
    out = tmp_path / "run"
    assert (
        main(train_args(out, "--set", "hyperparameters.learning_rate=3e-4", "--set", "hyperparameters.net_arch=[16]"))
        == 0
    )
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["hyperparameters"]["learning_rate"] == 3e-4  # a number, not the string "3e-4"
    assert saved["hyperparameters"]["net_arch"] == [16]
    assert saved["hyperparameters"]["buffer_size"] == 100_000  # the rest from the packaged dqn_cartpole
    assert saved["eval_episodes"] == 1


@pytest.mark.parametrize(
    ("agent", "env_id", "expected"),
    [
        ("dqn", "CartPole-v1", "dqn_cartpole"),
        ("reinforce", "CartPole-v1", "reinforce_cartpole"),
        ("dqn", "mri_rl/ActiveAcquisition-v0", "dqn_mri"),
        ("dagger", "mri_rl/ActiveAcquisition-v0", "dagger_mri"),
        ("greedy_reinforce", "mri_rl/ActiveAcquisition-v0", "reinforce_mri"),  # it configures greedy REINFORCE
        ("reinforce", "mri_rl/ActiveAcquisition-v0", None),  # no packaged config of plain REINFORCE there
        ("dagger", "CartPole-v1", None),
    ],
)
def test_the_default_config_is_a_packaged_one_of_that_agent(agent, env_id, expected):
    """``mri-rl train`` without --config takes the packaged config of that agent on that env, never
    one that configures another agent (``--agent reinforce`` on the MRI env was refused for it)."""
    from mri_rl.runs.training import default_config_path

    path = default_config_path(agent, env_id)
    assert (path.stem if path else None) == expected
    if path:
        assert yaml.safe_load(path.read_text())["agent"] == agent


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("hyperparameters.learning_rate=fast", "hyperparameters.learning_rate: expected a finite number, got 'fast'"),
        ("total_steps=0", "total_steps: must be >= 1, got 0"),
        ("hyperparameters.net_arch=[16, x]", "hyperparameters.net_arch[1]: expected an integer, got 'x'"),
        ("hyperparameters.bogus=1", "hyperparameters: unknown key(s) ['bogus']"),
        ("seed", "--set 'seed': expected KEY=VALUE"),
    ],
)
def test_a_bad_config_value_is_one_line_naming_the_file_and_key(tmp_path, capsys, override, message):
    assert main(train_args(tmp_path / "run", "--set", override)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("mri-rl: error: ")
    if "=" in override:
        assert "dqn_cartpole.yaml" in err
    assert not (tmp_path / "run").exists()


def test_eval_recon_refuses_training_files_as_the_val_split(singlecoil_root, capsys):
    args = [
        "eval-recon",
        "--data",
        str(singlecoil_root / "singlecoil_train"),
        "--challenge",
        "singlecoil",
        "--split",
        "val",
        "--reconstructor",
        "zero_filled",
        "--initial-lines",
        "2",
    ]
    assert main(args) == 2
    assert "named as the train split, but the val split was asked for" in capsys.readouterr().err
    assert main([*args, "--any-folder"]) == 0
    assert "| initial | 0.125 | zero_filled |" in capsys.readouterr().out


def test_eval_recon_takes_the_precision_and_refuses_float16_on_the_cpu(singlecoil_root, capsys):
    args = ["eval-recon", "--data", str(singlecoil_root), "--challenge", "singlecoil", "--reconstructor", "zero_filled"]
    assert main([*args, "--precision", "bf16"]) == 0
    assert "| initial |" in capsys.readouterr().out
    assert main([*args, "--precision", "16"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "precision 16 (float16 autocast) needs a CUDA or MPS device" in err


def test_quickstart_checks_its_config_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "quickstart",
                "--out",
                str(out),
                "--data",
                str(tmp_path / "data"),
                "--no-progress",
                "--set",
                "task.initial_lines=0",
            ]
        )
        == 2
    )
    assert "task: task initial_lines must be an integer >= 1, got 0" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "data").exists()


# ------------------------------------------------------------------ numbers and devices at the edge
SYNTH = ["data", "synth", "out"]
EVALUATE = ["evaluate", "--data", "d", "--out", "o"]
EVAL_RECON = ["eval-recon", "--data", "d", "--challenge", "singlecoil", "--reconstructor", "zero_filled"]
TRAIN = ["train", "--agent", "dqn", "--env", "CartPole-v1", "--out", "o"]
TRAIN_RECON = ["train-recon", "--data", "d", "--challenge", "singlecoil", "--out", "o"]
COUNT, NON_NEGATIVE, FINITE = "an integer >= 1", "an integer >= 0", "a finite number"
SEED = "an integer in [0, 4294967295]"


@pytest.mark.parametrize(
    ("command", "flag", "value", "expected"),
    [
        (SYNTH, "--noise", "nan", FINITE),
        (SYNTH, "--noise", "inf", FINITE),
        (SYNTH, "--striation", "-inf", FINITE),
        (SYNTH, "--striation", "NaN", FINITE),
        (SYNTH, "--slices", "0", COUNT),
        (SYNTH, "--size", "-16", COUNT),
        (SYNTH, "--size", "16.0", COUNT),
        (SYNTH, "--kspace-width", "0", COUNT),
        (SYNTH, "--coils", "0", COUNT),
        (SYNTH, "--padding", "-1", NON_NEGATIVE),
        (SYNTH, "--seed", "-1", SEED),
        (SYNTH, "--volumes", "-1", NON_NEGATIVE),
        (SYNTH, "--val-volumes", "-2", NON_NEGATIVE),
        (EVALUATE, "--batch-size", "0", COUNT),
        (EVALUATE, "--batch-size", "-1", COUNT),
        (EVALUATE, "--lbcs-slices", "0", COUNT),
        (EVALUATE, "--seeds", "-1", SEED),
        (EVALUATE, "--seeds", "1.5", SEED),
        (EVALUATE, "--seeds", str(2**32), SEED),
        (EVAL_RECON, "--seed", str(2**64), SEED),
        (TRAIN, "--seed", "-2", SEED),
        (EVALUATE, "--initial-lines", "0", COUNT),
        (EVAL_RECON, "--batch-size", "0", COUNT),
        (EVAL_RECON, "--seed", "-1", SEED),
        (TRAIN, "--total-steps", "0", COUNT),
        (TRAIN, "--num-envs", "0", COUNT),
        (TRAIN_RECON, "--max-epochs", "0", COUNT),
        (TRAIN_RECON, "--num-nodes", "0", COUNT),
    ],
)
def test_a_bad_number_is_a_usage_error_naming_the_flag_and_value(capsys, command, flag, value, expected):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, f"{flag}={value}"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"argument {flag}: expected {expected}, got {value!r}")


def numeric_flags(parser) -> dict[str, object]:
    """``"PROG --flag"`` -> ``type`` for every flag that takes values, of the parser and its subcommands."""
    found = {}
    for action in parser._actions:
        if isinstance(action.choices, dict):  # a subcommand's parsers
            for sub in action.choices.values():
                found.update(numeric_flags(sub))
        elif action.option_strings and action.nargs != 0:
            found[f"{parser.prog} {action.option_strings[-1]}"] = action.type
    return found


def test_every_numeric_flag_has_a_checked_type():
    """No plain ``type=int`` / ``type=float`` is left."""
    flags = numeric_flags(build_parser())
    assert "mri-rl data synth --volumes" in flags and "mri-rl train --seed" in flags
    assert sorted(flag for flag, kind in flags.items() if kind in (int, float)) == []


def test_good_numbers_still_parse():
    args = build_parser().parse_args([*SYNTH, "--noise", "0", "--striation", "1e-1", "--padding", "0", "--seed", "0"])
    assert (args.noise, args.striation, args.padding, args.seed) == (0.0, 0.1, 0, 0)
    assert evaluate_namespace("--seeds", "0", "5", "--batch-size", "1").seeds == [0, 5]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--device", "nonsense"], "device 'nonsense' is not a torch device name; expected cpu, cuda, cuda:N or mps"),
        (["--device", "cuda"], "device 'cuda' is not available on this machine: torch.cuda.is_available() is False"),
        (
            ["--device", "cuda:7"],
            "device 'cuda:7' is not available on this machine: torch.cuda.is_available() is False",
        ),
        (["--seeds", "0", "1", "0"], "seeds: expected distinct seeds, got [0, 1, 0]"),
    ],
)
def test_evaluate_refuses_a_bad_device_or_seeds_in_one_line(tmp_path, capsys, monkeypatch, flags, message):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same on a machine with a GPU
    out = tmp_path / "out"
    assert main(["evaluate", "--data", str(tmp_path / "data"), "--out", str(out), "--no-progress", *flags]) == 2
    assert capsys.readouterr().err == f"mri-rl: error: {message}\n"
    assert not out.exists()


@pytest.mark.parametrize("text", ["[1]", "3", "not json", '"a string"'])
def test_env_kwargs_must_be_a_json_object(capsys, text):
    with pytest.raises(SystemExit) as exit_info:
        main([*TRAIN, "--env-kwargs", text])
    assert exit_info.value.code == 2
    assert "argument --env-kwargs: expected a JSON object" in capsys.readouterr().err
