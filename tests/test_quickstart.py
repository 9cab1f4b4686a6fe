"""``mri-rl quickstart`` end to end on a tiny config: every stage, the report, and a rerun
that skips finished stages."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from collections.abc import Callable
from itertools import chain
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mri_rl.agents import DQN, GreedyREINFORCE
from mri_rl.agents.base import read_agent_checkpoint
from mri_rl.cli import main
from mri_rl.configs import ConfigError
from mri_rl.data.anatomy import read_anatomy_settings
from mri_rl.data.fastmri_files import inspect_volume
from mri_rl.data.synthetic import SyntheticSpec, read_synthetic_settings, write_synthetic_dataset
from mri_rl.evaluation.report import paired_differences, read_rows_csv, read_summary, room_share
from mri_rl.provenance import RecordMismatchError, checkpoint_fingerprint
from mri_rl.reconstruct.checkpoint import read_reconstructor_record
from mri_rl.runs.quickstart import FRESH_START, Quickstart, QuickstartConfig, lightning_device, run_quickstart

RECONSTRUCTOR = {
    "seed": 0,
    "model": {"kind": "unet", "chans": 32, "num_pool_layers": 2, "drop_prob": 0.0},
    "optimization": {"loss": "l1", "lr": 0.01, "lr_step_size": 10, "lr_gamma": 0.5, "weight_decay": 0.0},
    "data": {"batch_size": 2, "num_workers": 0},
    "trainer": {
        "max_epochs": 5,
        "deterministic": True,
        "log_every_n_steps": 1,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    },
    "masks": {
        "train": {"kind": "acquisition", "initial_lines": 2, "budget": 4},
        "evaluation": {"initial": {"kind": "acquisition", "initial_lines": 2, "budget": 0}},
    },
}
AGENTS = {
    "dqn": {
        "agent": "dqn",
        "env_id": "mri_rl/ActiveAcquisition-v0",
        "total_steps": 48,
        "num_envs": 2,
        "eval_episodes": 2,
        "checkpoint_interval": 24,
        "log_interval": 24,
        "hyperparameters": {
            "learning_starts": 16,
            "buffer_size": 64,
            "batch_size": 8,
            "net_arch": [8],
        },
        "env_kwargs": {"column_spectrum": True},
    },
    "reinforce": {
        "agent": "greedy_reinforce",
        "env_id": "mri_rl/ActiveAcquisition-v0",
        "total_steps": 48,
        "num_envs": 2,
        "eval_episodes": 2,
        "checkpoint_interval": 24,
        "log_interval": 24,
        "hyperparameters": {"samples": 2, "episodes_per_update": 2, "net_arch": [8]},
    },
}
POLICIES = ["random", "lowtohigh", "equispaced", "lbcs", "oracle"]


def write_tiny_config(folder: Path, root: Path, seed: int = 0) -> Path:
    """A quick-start config: 16 x 16 phantoms, 2/1/1 volumes of 2 slices, budget 3."""
    (folder / "recon.yaml").write_text(yaml.safe_dump(RECONSTRUCTOR))
    for name, values in AGENTS.items():
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(values))
    config = {
        "seed": seed,
        "data": {
            "source": "phantoms",
            "root": str(root),
            "volumes": {"train": 2, "val": 1, "test": 1},
            "slices": 2,
            "size": 16,
            "striation": 0.2,
        },
        "task": {"budget": 3, "initial_lines": 2, "reward_metric": "ssim"},
        "reconstructor": {"config": str(folder / "recon.yaml"), "max_epochs": 1, "model": {"chans": 4}},
        "agents": {name: {"config": str(folder / f"{name}.yaml")} for name in AGENTS},
        "evaluation": {"policies": POLICIES, "seeds": [0, 1], "lbcs_slices": 2, "batch_size": 2},
    }
    path = folder / "quickstart.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def finished_quickstart(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    folder = tmp_path_factory.mktemp("quickstart")
    config = write_tiny_config(folder, folder / "data")
    summary = run_quickstart(folder / "run", config, progress=False)
    return folder, config, summary


def test_quickstart_runs_every_stage_and_writes_the_report(finished_quickstart):
    folder, _, summary = finished_quickstart
    run = folder / "run"
    assert set(summary) == {*POLICIES, "dqn", "reinforce"}
    for name in (
        "reconstructor/reconstructor.pt",
        "dqn/model.pt",
        "reinforce/model.pt",
        "timings.yaml",
        "evaluation/metrics.csv",
        "evaluation/summary.json",
        "evaluation/summary.md",
        "evaluation/curves.png",
        "evaluation/masks.png",
        "evaluation/examples.png",
    ):
        assert (run / name).is_file(), name
    assert read_summary(run / "evaluation" / "summary.json") == summary
    recorded = read_reconstructor_record(run / "reconstructor" / "reconstructor.pt")
    assert recorded["task"]["budget"] == 3 and recorded["settings"]["max_epochs"] == 1
    assert recorded["data"]["train"]["files"] == sorted(
        p.name for p in (folder / "data" / "singlecoil_train").iterdir()
    )
    trained = DQN.load(run / "dqn" / "model.pt").record
    assert trained["task"]["reconstructor_fingerprint"] == checkpoint_fingerprint(
        run / "reconstructor" / "reconstructor.pt"
    )
    assert trained["settings"]["total_steps"] == 48
    timings = yaml.safe_load((run / "timings.yaml").read_text())
    assert list(timings) == [
        "phantoms data",
        "reconstructor training",
        "dqn training",
        "reinforce training",
        "evaluation",
        "total",
    ]
    assert read_synthetic_settings(folder / "data") == {"seed": 0, **vars(SyntheticSpec(num_slices=2, size=16))}


def test_a_rerun_skips_finished_stages_and_gives_the_same_summary(finished_quickstart, capsys):
    folder, config, summary = finished_quickstart
    model = folder / "run" / "dqn" / "model.pt"
    stamp = model.stat().st_mtime_ns
    assert run_quickstart(folder / "run", config, progress=False) == summary
    assert model.stat().st_mtime_ns == stamp
    assert "note" not in capsys.readouterr().out


def reuse_stages(finished: Path, run: Path) -> None:
    """Point ``run``'s stages at a finished quick start's (links: nothing is copied or changed)."""
    (run / "evaluation").mkdir(parents=True)
    for stage in ("reconstructor", "dqn", "reinforce"):
        (run / stage).symlink_to(finished / stage)
    (run / "evaluation" / "partial").symlink_to(finished / "evaluation" / "partial")


def test_data_written_with_other_settings_is_refused_then_rewritten_on_overwrite(finished_quickstart, tmp_path):
    folder, _, summary = finished_quickstart
    other = tmp_path / "other_data"
    write_synthetic_dataset(
        other, SyntheticSpec(num_slices=2, size=16, striation=0.0), {"train": 2, "val": 1, "test": 1}, progress=False
    )
    config = write_tiny_config(tmp_path, other)
    run = tmp_path / "run"
    reuse_stages(folder / "run", run)
    with pytest.raises(
        ValueError,
        match=re.escape(f"{other} was not written with this config's data settings (striation 0.0 (config: 0.2))")
        + ".*--overwrite",
    ):
        run_quickstart(run, config, progress=False)
    assert read_synthetic_settings(other)["striation"] == 0.0  # nothing rewritten
    for stage in ("reconstructor", "dqn", "reinforce", "evaluation/partial"):  # --overwrite clears stages: unlink
        (run / stage).unlink()
    run_quickstart(run, config, progress=False, overwrite=True, overrides=["reconstructor.max_epochs=1"])
    assert read_synthetic_settings(other)["striation"] == 0.2
    assert read_summary(run / "evaluation" / "summary.json").keys() == summary.keys()


def interrupt_data_write(root: Path) -> None:
    """Leave ``root`` as a killed write would: no settings record, a volume short, a temporary file."""
    (root / "singlecoil_synthetic_settings.json").unlink()
    next((root / "singlecoil_train").glob("*.h5")).unlink()
    (root / "singlecoil_train" / ".synthetic_s0_train_001.h5.x1_y2.tmp").write_bytes(b"")


def test_an_interrupted_data_root_is_refused_then_rewritten_on_overwrite(tmp_path):
    config = write_tiny_config(tmp_path, tmp_path / "data")
    quickstart = Quickstart(tmp_path / "run", QuickstartConfig.from_file(config), None, progress=False)
    quickstart.data(overwrite=False)
    written = {path.name: path.read_bytes() for path in (tmp_path / "data").rglob("*.h5")}
    interrupt_data_write(tmp_path / "data")
    with pytest.raises(ValueError, match="no record of its settings.*--overwrite to rewrite"):
        quickstart.data(overwrite=False)
    quickstart.data(overwrite=True)
    assert {path.name: path.read_bytes() for path in (tmp_path / "data").rglob("*.h5")} == written
    assert read_synthetic_settings(tmp_path / "data")["striation"] == 0.2


def test_a_refused_overwrite_deletes_nothing(finished_quickstart, tmp_path):
    """A data root holding a file the writer did not name is refused before any stage is cleared."""
    folder, config, _ = finished_quickstart
    data, run = tmp_path / "data", tmp_path / "run"
    shutil.copytree(folder / "data", data)
    shutil.copytree(folder / "run", run, symlinks=True)
    interrupt_data_write(data)
    (data / "singlecoil_val" / "notes.h5").write_bytes(b"mine")
    before = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    with pytest.raises(ValueError, match=re.escape(f"{data / 'singlecoil_val' / 'notes.h5'}") + ".*--data NEW_FOLDER"):
        run_quickstart(run, config, progress=False, overwrite=True, overrides=[f"data.root={data}"])
    assert {path: path.read_bytes() for path in run.rglob("*") if path.is_file()} == before
    assert (data / "singlecoil_val" / "notes.h5").read_bytes() == b"mine"


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("task.budget=2", "task.budget: 3 vs 2"),  # the reconstructor's masks
        ("reconstructor.max_epochs=2", "settings.max_epochs: 1 vs 2"),  # the reconstructor's training
        ("reconstructor.model.chans=8", "settings.config.model.chans: 4 vs 8"),
        ("reconstructor.seed=1", "settings.config.seed: 0 vs 1"),  # another U-Net of the same data
    ],
)
def test_a_finished_stage_made_under_other_settings_is_refused(finished_quickstart, tmp_path, override, named):
    folder, config, _ = finished_quickstart
    run = tmp_path / "run"
    reuse_stages(folder / "run", run)
    with pytest.raises(RecordMismatchError, match=re.escape(named) + ".*--overwrite"):
        run_quickstart(run, config, progress=False, overrides=[override])


def test_a_started_reconstructor_of_other_settings_is_refused_with_the_quick_starts_advice(
    finished_quickstart, tmp_path
):
    folder, config, _ = finished_quickstart
    shutil.copytree(folder / "run" / "reconstructor", tmp_path / "run" / "reconstructor")
    (tmp_path / "run" / "reconstructor" / "reconstructor.pt").unlink()  # started, not finished: resumed
    settings = QuickstartConfig.from_file(config, ["reconstructor.seed=1"])
    with pytest.raises(RecordMismatchError, match="settings.config.seed: 0 vs 1") as refused:
        Quickstart(tmp_path / "run", settings, None, progress=False).reconstructor()
    assert str(refused.value).endswith(f"To start fresh, {FRESH_START}")


def test_another_device_reuses_every_stage(finished_quickstart, tmp_path, capsys):
    folder, config, summary = finished_quickstart
    run = tmp_path / "run"
    reuse_stages(folder / "run", run)
    model = folder / "run" / "dqn" / "model.pt"
    stamp = model.stat().st_mtime_ns
    args = ["quickstart", "--out", str(run), "--config", str(config), "--device", "cpu", "--no-progress"]
    assert main(args) == 0
    assert model.stat().st_mtime_ns == stamp
    assert read_summary(run / "evaluation" / "summary.json") == summary
    assert "device" not in DQN.load(model).record["settings"]  # where it ran is no setting of the stage
    capsys.readouterr()


def test_another_precision_keeps_the_reconstructor_and_refuses_the_agents(finished_quickstart, tmp_path):
    folder, config, _ = finished_quickstart
    run = tmp_path / "run"
    reuse_stages(folder / "run", run)
    assert read_reconstructor_record(run / "reconstructor" / "reconstructor.pt")["task"]["precision"] == "32"
    with pytest.raises(RecordMismatchError, match=r"dqn/model.pt was made under other.*task.precision: 32 vs bf16"):
        run_quickstart(run, config, progress=False, precision="bf16")
    with pytest.raises(RecordMismatchError, match=r"dqn/model.pt .*task.precision: 32 vs bf16"):
        run_quickstart(run, config, progress=False, overrides=["task.precision=bf16"])


def test_the_device_becomes_lightnings_accelerator(monkeypatch):
    import torch

    assert lightning_device("cpu") == {"accelerator": "cpu", "devices": 1}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert lightning_device("cuda:1") == {"accelerator": "gpu", "devices": [1]}
    assert lightning_device("cuda") == {"accelerator": "gpu", "devices": 1}
    with pytest.raises(ValueError, match=r"device 'cuda:7' is not available on this machine"):
        lightning_device("cuda:7")


def test_an_agent_trained_for_other_steps_is_refused(finished_quickstart, tmp_path):
    folder, _, _ = finished_quickstart
    (tmp_path / "agents").mkdir()
    config = write_tiny_config(tmp_path / "agents", folder / "data")
    values = yaml.safe_load((tmp_path / "agents" / "dqn.yaml").read_text())
    (tmp_path / "agents" / "dqn.yaml").write_text(yaml.safe_dump({**values, "total_steps": 64}))
    run = tmp_path / "run"
    reuse_stages(folder / "run", run)
    with pytest.raises(
        RecordMismatchError,
        match=r"dqn/model.pt was made under other settings.*"
        r"settings.total_steps: 48 vs 64",
    ):
        run_quickstart(run, config, progress=False)


def test_a_bad_config_value_is_one_clear_line_before_anything_runs(tmp_path):
    config = write_tiny_config(tmp_path, tmp_path / "data")
    for override, message in (
        ("task.budget=2.5", "task.budget: expected an integer or null, got 2.5"),
        ("evaluation.batch_size=0", "evaluation.batch_size: must be >= 1, got 0"),
        ("data.volumes.train=many", "data.volumes.train: expected an integer, got 'many'"),
        ("task.bogus=1", "task: unknown key(s) ['bogus']"),
    ):
        with pytest.raises(ConfigError, match=re.escape(f"{config} (with --set {override}): {message}")):
            run_quickstart(tmp_path / "run", config, progress=False, overrides=[override])
    assert not (tmp_path / "data").exists() and not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag", ["--out", "--data"])
@pytest.mark.parametrize("below", ["", "run"])
def test_an_out_that_is_a_file_is_one_line_naming_it_before_anything_runs(tmp_path, capsys, below, flag):
    """``--out FILE`` or ``--data FILE`` (or a folder below a file) named on one line, before the data are
    written; the data root was named as FILE/singlecoil_train, a folder that is not there."""
    config = write_tiny_config(tmp_path, tmp_path / "data")
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where the run folder should be")
    folders = {"--out": str(tmp_path / "run"), "--data": str(tmp_path / "data"), flag: str(blocker / below)}
    assert main(["quickstart", *chain(*folders.items()), "--config", str(config), "--no-progress"]) == 2
    line = capsys.readouterr().err.strip()
    assert line == f"mri-rl: error: not a folder ({blocker}): expected a folder to write in, found a file"
    assert not (tmp_path / "data").exists() and not (tmp_path / "run").exists()
    assert blocker.read_text() == "a file where the run folder should be"


def test_agent_settings_of_the_quickstart_config_override_the_agent_config(tmp_path):
    config = write_tiny_config(tmp_path, tmp_path / "data")
    with pytest.raises(
        ConfigError,
        match=r"dqn.yaml \(with the quick start's agent settings\): "
        r"hyperparameters.gamma: expected a finite number, got 'high'",
    ):
        run_quickstart(tmp_path / "run", config, progress=False, overrides=["agents.dqn.hyperparameters.gamma=high"])
    with pytest.raises(ConfigError, match=r"agents.reinforce.total_steps: must be >= 1, got 0"):
        run_quickstart(tmp_path / "run", config, progress=False, overrides=["agents.reinforce.total_steps=0"])


def test_the_anatomy_source_writes_template_slices_and_refuses_a_changed_root(tmp_path):
    """The default source: MNI152 template slices, recorded and checked like the phantoms."""
    config = write_tiny_config(tmp_path, tmp_path / "anatomy")
    values = yaml.safe_load(config.read_text())
    del values["data"]["source"], values["data"]["striation"]  # the defaults: anatomy
    config.write_text(yaml.safe_dump(values))
    quickstart = Quickstart(tmp_path / "run", QuickstartConfig.from_file(config), None, progress=False)
    quickstart.data(overwrite=False)
    recorded = read_anatomy_settings(tmp_path / "anatomy")
    assert recorded is not None and recorded["source"].startswith("MNI152") and recorded["size"] == 16
    assert inspect_volume(next((tmp_path / "anatomy" / "singlecoil_test").glob("*.h5")), "singlecoil").num_slices == 2
    changed = Quickstart(tmp_path / "run", QuickstartConfig.from_file(config, ["data.slices=3"]), None, progress=False)
    with pytest.raises(ValueError, match=r"num_slices 2 \(config: 3\)"):
        changed.data(overwrite=False)


def test_striation_is_refused_for_the_anatomy_source(tmp_path):
    config = write_tiny_config(tmp_path, tmp_path / "anatomy")
    with pytest.raises(ConfigError, match="only the phantoms have a striation"):
        run_quickstart(tmp_path / "run", config, progress=False, overrides=["data.source=anatomy"])


def test_a_data_settings_difference_is_one_short_line_even_for_nested_settings(tmp_path):
    from mri_rl.data.simulated_kspace import SimulationSpec
    from mri_rl.runs.quickstart import DataSource, data_differences

    blocks = {o: {s: [[i, i + 3] for i in range(0, 90, 10)] for s in ("train", "val", "test")} for o in "abc"}
    source = DataSource(
        write=lambda *args, **kwargs: [],
        read_settings=lambda root, challenge: {"seed": 0},
        settings=lambda spec, seed: {"seed": 0, "layout": "interleaved", "blocks": blocks},
        prefix="anatomy",
    )
    (difference,) = data_differences(tmp_path, source, SimulationSpec(), 0, {})
    assert "layout None (config: 'interleaved')" in difference and "blocks None" in difference
    assert len(difference) < 250 and "\n" not in difference


def test_a_setting_recorded_only_in_the_folder_is_named(tmp_path):
    from mri_rl.data.simulated_kspace import SimulationSpec
    from mri_rl.runs.quickstart import DataSource, data_differences

    source = DataSource(
        write=lambda *args, **kwargs: [],
        read_settings=lambda root, challenge: {"seed": 0, "slice_offset": "random"},
        settings=lambda spec, seed: {"seed": 0},  # centre, the default, is not recorded
        prefix="anatomy",
    )
    assert data_differences(tmp_path, source, SimulationSpec(), 0, {}) == [
        f"{tmp_path} was not written with this config's data settings (slice_offset 'random' (config: None))"
    ]


def edited_config(config: Path, path: Path, edit: Callable[[dict], None]) -> Path:
    """``config``'s values changed in place by ``edit``, written to ``path``."""
    values = yaml.safe_load(config.read_text())
    edit(values)
    path.write_text(yaml.safe_dump(values))
    return path


def pooled_config(folder: Path, config: Path, ensembles: dict[str, str]) -> Path:
    """The tiny config with two greedy REINFORCE agents of one config, seeds 0 and 1, and ``ensembles``."""
    agent = str(folder / "reinforce.yaml")

    def pool(values: dict) -> None:
        values["agents"] = {"a": {"config": agent, "seed": 0}, "b": {"config": agent, "seed": 1}}
        values["evaluation"]["ensembles"] = ensembles

    return edited_config(config, folder / "pooled.yaml", pool)


def test_agents_of_one_config_train_with_their_own_seeds_and_are_pooled(finished_quickstart, tmp_path):
    folder, config, summary = finished_quickstart
    pooled = pooled_config(folder, config, {"ab": "a+b", "ab_prior": "a+b@0.1"})
    run = tmp_path / "run"
    shutil.copytree(folder / "run" / "reconstructor", run / "reconstructor")  # reused: made the same way
    pooled_summary = run_quickstart(run, pooled, progress=False)
    assert set(pooled_summary) == {*POLICIES, "a", "b", "ab", "ab_prior"}
    seeds = [GreedyREINFORCE.load(run / name / "model.pt").record["settings"]["seed"] for name in ("a", "b")]
    assert seeds == [0, 1]
    # seed 0 is the quick start's own: agent a is the first run's reinforce, to the last bit
    weights = {name: read_agent_checkpoint(run / name / "model.pt")["state"]["policy"] for name in ("a", "b")}
    first = read_agent_checkpoint(folder / "run" / "reinforce" / "model.pt")["state"]["policy"]
    assert all(torch.equal(weights["a"][key], first[key]) for key in first)
    assert not all(torch.equal(weights["b"][key], first[key]) for key in first)
    assert pooled_summary["a"] == summary["reinforce"]
    # summary.md gives the spread of the pooled agents' shares, the members of both ensembles in one row
    rows = read_rows_csv(run / "evaluation" / "metrics.csv")
    shares = [room_share(paired_differences(rows), name) for name in ("a", "b")]
    spread = f"{np.mean(shares):+.1%} ± {np.std(shares, ddof=1):.1%}"
    row = f"| ab, ab_prior | a, b | {shares[0]:+.1%}, {shares[1]:+.1%} | {spread} |"
    assert row in (run / "evaluation" / "summary.md").read_text()


def test_a_reference_chosen_on_val_rolls_the_fixed_orders_there_and_lends_the_test_its_lbcs_order(
    finished_quickstart, tmp_path
):
    folder, config, _ = finished_quickstart
    run = tmp_path / "run"
    run.mkdir()
    for stage in ("reconstructor", "dqn", "reinforce"):
        (run / stage).symlink_to(folder / "run" / stage)
    run_quickstart(run, config, progress=False, overrides=["evaluation.reference_on_val=true"])
    on_val = read_summary(run / "val_reference" / "summary.json")
    assert set(on_val) == {"lowtohigh", "equispaced", "lbcs"}  # the fixed orders of POLICIES
    strongest = max(on_val, key=lambda name: on_val[name]["ssim_auc"]["mean"])
    record = json.loads((run / "evaluation" / "summary.json").read_text())["record"]
    assert record["settings"]["reference"]["policy"] == strongest
    assert (
        f"## Share of the room above the reference chosen on val ({strongest})"
        in (run / "evaluation" / "summary.md").read_text()
    )
    lent = (run / "evaluation" / "lbcs_order.json").read_bytes()
    assert lent == (run / "val_reference" / "lbcs_order.json").read_bytes()
    timings = list(yaml.safe_load((run / "timings.yaml").read_text()))
    assert timings[-3:] == ["fixed orders on val", "evaluation", "total"]


def test_a_reference_on_val_without_a_fixed_order_to_choose_is_refused_on_load(tmp_path):
    config = write_tiny_config(tmp_path, tmp_path / "data")
    overrides = ["evaluation.reference_on_val=true", "evaluation.policies=[random, oracle]"]
    with pytest.raises(ConfigError, match=r"reference_on_val: it is chosen among the fixed orders .* has none"):
        QuickstartConfig.from_file(config, overrides)


@pytest.mark.parametrize(
    ("ensembles", "message"),
    [
        ({"ab": "a+c"}, "evaluation.ensembles.ab: ['c'] are not agents of this config; its agents: ['a', 'b']"),
        ({"ab": "a+a"}, "evaluation.ensembles.ab: policy 'ab=a+a': an ensemble's checkpoints, joined by '+', must be"),
        ({"a": "a+b"}, "evaluation.ensembles.a: the name must be new"),
        ({"lbcs": "a+b"}, "evaluation.ensembles.lbcs: the name must be new"),
        ({"ab": "a+b@-1"}, "evaluation.ensembles.ab: policy 'ab=a+b@-1': the frequency prior's weight after '@' must"),
    ],
)
def test_an_ensemble_of_unknown_agents_or_with_a_taken_name_is_refused_on_load(tmp_path, ensembles, message):
    config = write_tiny_config(tmp_path, tmp_path / "data")
    with pytest.raises(ConfigError, match=re.escape(message)):
        QuickstartConfig.from_file(pooled_config(tmp_path, config, ensembles))


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ({"ab": "a+c"}, "evaluation.groups.ab: expected two or more different agents of this config joined by '+'"),
        ({"ab": "a"}, "evaluation.groups.ab: expected two or more different agents"),
        ({"ab": "a+a"}, "evaluation.groups.ab: expected two or more different agents"),
        ({"a": "a+b"}, "evaluation.groups.a: the name must be new"),
        ({"oracle": "a+b"}, "evaluation.groups.oracle: the name must be new"),
        ({"pooled": "a+b"}, "evaluation.groups.pooled: the name must be new"),
    ],
)
def test_a_group_of_unknown_agents_or_with_a_taken_name_is_refused_on_load(tmp_path, groups, message):
    config = write_tiny_config(tmp_path, tmp_path / "data")
    overrides = [f"evaluation.groups.{name}={members}" for name, members in groups.items()]
    with pytest.raises(ConfigError, match=re.escape(message)):
        QuickstartConfig.from_file(pooled_config(tmp_path, config, {"pooled": "a+b"}), overrides)


def test_ensembles_become_evaluate_specs_of_the_agents_models(tmp_path):
    config = write_tiny_config(tmp_path, tmp_path / "data")
    settings = QuickstartConfig.from_file(pooled_config(tmp_path, config, {"ab": "b+a", "ab_prior": "a+b@0.1"}))
    models = {"a": Path("run/a/model.pt"), "b": Path("run/b/model.pt")}
    assert settings.ensemble_specs(models) == [
        "ab=run/b/model.pt+run/a/model.pt",
        "ab_prior=run/a/model.pt+run/b/model.pt@0.1",
    ]


def tuned_config(folder: Path, config: Path, tuned: dict) -> Path:
    """The tiny config with one more agent, ``tuned``, after the other two."""
    return edited_config(config, folder / "tuned.yaml", lambda values: values["agents"].update(tuned=tuned))


def test_an_agent_started_from_another_copies_its_policy_and_records_its_fingerprint(finished_quickstart, tmp_path):
    folder, config, _ = finished_quickstart
    # a step size so small that the tuned policy stays its starting point to float precision
    tuned = {"config": str(folder / "reinforce.yaml"), "start_from": "reinforce", "seed": 1}
    tuned["hyperparameters"] = {"learning_rate": 1e-12}
    run = tmp_path / "run"
    run.mkdir()
    for stage in ("reconstructor", "dqn", "reinforce"):
        (run / stage).symlink_to(folder / "run" / stage)
    group = ["evaluation.groups.rl=reinforce+tuned"]
    summary = run_quickstart(run, tuned_config(tmp_path, config, tuned), progress=False, overrides=group)
    assert summary["tuned"] == summary["reinforce"]  # the same policy, to float precision, rolls the same orders
    share = f"{room_share(paired_differences(read_rows_csv(run / 'evaluation' / 'metrics.csv')), 'tuned'):+.1%}"
    assert (
        f"| rl | reinforce, tuned | {share}, {share} | {share} ± 0.0% |"
        in (run / "evaluation" / "summary.md").read_text()
    )
    started = read_agent_checkpoint(run / "reinforce" / "model.pt")["state"]["policy"]
    weights = read_agent_checkpoint(run / "tuned" / "model.pt")["state"]["policy"]
    assert all(torch.allclose(weights[key], started[key], atol=1e-6) for key in started)
    settings = GreedyREINFORCE.load(run / "tuned" / "model.pt").record["settings"]
    assert settings["hyperparameters"]["init_policy"] == str(run / "reinforce" / "model.pt")
    assert settings["init_policy_fingerprint"] == checkpoint_fingerprint(run / "reinforce" / "model.pt")
    assert settings["seed"] == 1  # so its own initial weights were not those of the seed-0 agent it starts from


@pytest.mark.parametrize(
    ("tuned", "message"),
    [
        ({"start_from": "later"}, "agents.tuned.start_from: 'later' is not an agent listed before tuned"),
        ({"start_from": "tuned"}, "agents.tuned.start_from: 'tuned' is not an agent listed before tuned"),
        (
            {"start_from": "dqn", "config": "DQN"},
            "agents.tuned.start_from: a dqn agent (DQN) cannot start from a policy",
        ),
        (
            {"start_from": "dqn", "hyperparameters": {"init_policy": "x.pt"}},
            "agents.tuned: start_from and hyperparameters.init_policy both name a policy",
        ),
    ],
)
def test_a_start_from_that_is_no_earlier_agent_or_no_policy_gradient_agent_is_refused(tmp_path, tuned, message):
    config = write_tiny_config(tmp_path, tmp_path / "data")
    agent_config = {"DQN": str(tmp_path / "dqn.yaml")}.get(tuned.pop("config", ""), str(tmp_path / "reinforce.yaml"))
    message = message.replace("(DQN)", f"({tmp_path / 'dqn.yaml'})")
    with pytest.raises(ConfigError, match=re.escape(message)):
        run_quickstart(
            tmp_path / "run", tuned_config(tmp_path, config, {"config": agent_config, **tuned}), progress=False
        )
    assert not (tmp_path / "data").exists() and not (tmp_path / "run").exists()


def test_the_packaged_dagger_ensembles_pool_three_seeds_of_dagger_mri():
    standard, harder = (QuickstartConfig.from_file(name) for name in ("dagger_ensemble", "dagger_ensemble_harder"))
    students = {f"student{seed}": ("dagger_mri", seed, None) for seed in range(3)}
    tuned = {f"tuned{seed}": ("finetune_mri", seed, f"student{seed}") for seed in range(3)}
    for settings, agents in ((standard, students), (harder, {**students, **tuned})):
        assert {name: (stage.config, stage.seed, stage.start_from) for name, stage in settings.agents.items()} == agents
        assert settings.data.layout == "interleaved" and settings.evaluation.lbcs_slices == 16
        assert settings.evaluation.ensembles["students_prior"] == "student0+student1+student2@0.1"
    assert (standard.task.initial_lines, standard.task.budget) == (4, 16)
    assert (harder.task.initial_lines, harder.task.budget) == (2, 24)
    assert {harder.agents[name].hyperparameters["beta_fraction"] for name in students} == {0.064}
    # the students are pooled, not their fine-tuned policies (chosen on val); those are reported as a group
    assert harder.evaluation.ensembles == standard.evaluation.ensembles
    assert (standard.evaluation.groups, harder.evaluation.groups) == ({}, {"tuned": "tuned0+tuned1+tuned2"})
    made = Quickstart(Path("run"), harder, None, progress=False).agent_configs["tuned1"]
    assert (made["agent"], made["hyperparameters"]["init_policy"]) == ("reinforce", "run/student1/model.pt")
    # the harder regime's U-Net trains to convergence (chosen on val); the rest of the reconstructor stage is shared
    assert (standard.reconstructor.max_epochs, harder.reconstructor.max_epochs) == (15, 40)
    assert dataclasses.replace(harder.reconstructor, max_epochs=15) == standard.reconstructor
    # the harder regime's data read more of the template, in a folder of their own; the rest is shared
    assert (standard.data.slice_offset or "centre", harder.data.slice_offset) == ("centre", "random")
    assert harder.data.root != standard.data.root
    assert dataclasses.replace(harder.data, root=standard.data.root, slice_offset=standard.data.slice_offset) == (
        standard.data
    )
