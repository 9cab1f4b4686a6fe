"""mri_rl.task.AcquisitionTask: defaults, validation, round trips, differences and descriptions."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest

from mri_rl.task import DEFAULT_TASK, ZERO_FILLED, AcquisitionTask, TaskError


def test_defaults():
    task = AcquisitionTask()
    assert task == DEFAULT_TASK
    assert task.challenge == "singlecoil"
    assert task.budget == 16
    assert task.initial_lines == 4
    assert task.reward_metric == "ssim"
    assert task.reconstructor == ZERO_FILLED == "zero_filled"
    assert task.kspace_shape is None
    assert task.reconstructor_fingerprint is None
    assert task.precision == "32"


@pytest.mark.parametrize("budget", [0, -1, 2.5, float("nan"), True, np.bool_(True), "8", np.float32(2.5)])
def test_bad_budget_names_the_field(budget):
    with pytest.raises(TaskError, match=r"task budget must be an integer >= 1"):
        AcquisitionTask(budget=budget)


@pytest.mark.parametrize(
    "changes, field_name",
    [
        ({"initial_lines": 0}, "initial_lines"),
        ({"challenge": "triplecoil"}, "challenge"),
        ({"challenge": np.array([64, 32])}, "challenge"),
        ({"challenge": ["singlecoil"]}, "challenge"),
        ({"reward_metric": {"ssim": 1}}, "reward_metric"),
        ({"reward_metric": "mae"}, "reward_metric"),
        ({"reconstructor": ""}, "reconstructor"),
        ({"kspace_shape": (64,)}, "kspace_shape"),
        ({"kspace_shape": (64, 0)}, "kspace_shape"),
        ({"kspace_shape": [0, 64, 32]}, "kspace_shape"),
        ({"kspace_shape": np.array("ssim")}, "kspace_shape"),  # 0-d: no len()
        ({"reconstructor_fingerprint": 12}, "reconstructor_fingerprint"),
        ({"precision": "fp8"}, "precision"),
        ({"precision": 8}, "precision"),
        ({"precision": True}, "precision"),
        ({"precision": "bf16-mixed"}, "precision"),
    ],
)
def test_bad_values_name_the_field(changes, field_name):
    with pytest.raises(TaskError, match=rf"^task {field_name} must be"):
        AcquisitionTask(**changes)


def test_unknown_choice_lists_the_choices():
    with pytest.raises(TaskError, match=r"challenge must be one of singlecoil, multicoil, got 'x'"):
        AcquisitionTask(challenge="x")
    with pytest.raises(TaskError, match=r"reward_metric must be one of mse, nmse, psnr, ssim, got 'l1'"):
        AcquisitionTask(reward_metric="l1")


def test_accepted_values_are_normalised(tmp_path):
    assert AcquisitionTask(budget=None).budget is None
    task = AcquisitionTask(budget=8.0)
    assert task.budget == 8 and type(task.budget) is int
    path = tmp_path / "reconstructor.pt"
    task = AcquisitionTask(reconstructor=path)
    assert task.reconstructor == str(path) and isinstance(task.reconstructor, str)
    task = AcquisitionTask(kspace_shape=[4, 32, 16])
    assert task.kspace_shape == (4, 32, 16) and isinstance(task.kspace_shape, tuple)
    assert AcquisitionTask(kspace_shape=[32.0, 16]).kspace_shape == (32, 16)
    task = AcquisitionTask(budget=np.int64(3), initial_lines=np.uint8(2), kspace_shape=np.array([32, 16]))
    assert (task.budget, task.initial_lines, task.kspace_shape) == (3, 2, (32, 16))
    assert type(task.budget) is int and type(task.initial_lines) is int


def test_precision_takes_the_yaml_integers_and_is_compared_and_described():
    assert AcquisitionTask(precision=16).precision == "16" and AcquisitionTask(precision=np.int64(32)).precision == "32"
    assert AcquisitionTask.from_dict({"precision": "bf16"}).precision == "bf16"
    half = DEFAULT_TASK.with_changes(precision="bf16")
    assert DEFAULT_TASK.differences(half) == ["precision: 32 vs bf16"]
    assert half.describe().endswith("zero_filled reconstructor in bf16 precision")
    assert "precision" not in DEFAULT_TASK.describe()
    older = {key: value for key, value in half.to_dict().items() if key != "precision"}  # a record before the field
    assert AcquisitionTask.from_dict(older) == DEFAULT_TASK


def test_tasks_are_frozen():
    with pytest.raises(AttributeError):
        DEFAULT_TASK.budget = 4


def full_task() -> AcquisitionTask:
    return AcquisitionTask(
        challenge="multicoil",
        budget=8,
        initial_lines=2,
        reward_metric="psnr",
        reconstructor="runs/x/reconstructor.pt",
        kspace_shape=(4, 32, 16),
        reconstructor_fingerprint="sha256:0123456789abcdef",
    )


def test_dict_round_trip_through_json():
    task = full_task()
    values = task.to_dict()
    assert values["kspace_shape"] == [4, 32, 16]
    assert values["reconstructor_fingerprint"] == "sha256:0123456789abcdef"
    assert AcquisitionTask.from_dict(values) == task
    reloaded = AcquisitionTask.from_dict(json.loads(json.dumps(values)))
    assert reloaded == task
    assert reloaded.kspace_shape == (4, 32, 16)
    assert AcquisitionTask.from_dict(DEFAULT_TASK.to_dict()) == DEFAULT_TASK


def test_from_dict_takes_defaults_for_missing_keys():
    assert AcquisitionTask.from_dict({"budget": 4}) == DEFAULT_TASK.with_changes(budget=4)


def test_from_dict_unknown_key_names_key_and_source():
    with pytest.raises(TaskError, match=r"^run\.yaml: unknown task key\(s\) \['bugdet'\]; known: .*'budget'"):
        AcquisitionTask.from_dict({"bugdet": 8}, source="run.yaml")


def test_from_dict_bad_value_names_source_and_field():
    with pytest.raises(TaskError, match=r"^run\.yaml: task initial_lines must be an integer >= 1, got 0"):
        AcquisitionTask.from_dict({"initial_lines": 0}, source="run.yaml")
    with pytest.raises(TaskError, match=r"^run\.yaml: the task must be a mapping"):
        AcquisitionTask.from_dict([("budget", 8)], source="run.yaml")


def test_with_changes():
    task = DEFAULT_TASK.with_changes(budget=8, reward_metric="nmse")
    assert (task.budget, task.reward_metric, task.initial_lines) == (8, "nmse", 4)
    assert DEFAULT_TASK.budget == 16
    with pytest.raises(TaskError, match=r"unknown task setting\(s\) \['bugdet'\]"):
        DEFAULT_TASK.with_changes(bugdet=8)
    with pytest.raises(TaskError, match=r"task budget must be"):
        DEFAULT_TASK.with_changes(budget=0)


def test_differences_empty_for_equal_tasks():
    assert full_task().differences(full_task()) == []
    assert DEFAULT_TASK.differences(AcquisitionTask()) == []


def test_differences_name_each_field():
    found = DEFAULT_TASK.differences(DEFAULT_TASK.with_changes(budget=8))
    assert found == ["budget: 16 vs 8"]
    assert DEFAULT_TASK.with_changes(budget=8).differences(DEFAULT_TASK) == ["budget: 8 vs 16"]
    other = AcquisitionTask(challenge="multicoil", budget=None, initial_lines=2, reward_metric="psnr")
    assert DEFAULT_TASK.differences(other) == [
        "challenge: singlecoil vs multicoil",
        "budget: 16 vs every column",
        "initial_lines: 4 vs 2",
        "reward_metric: ssim vs psnr",
    ]
    shapes = AcquisitionTask(kspace_shape=(32, 16)).differences(AcquisitionTask(kspace_shape=(64, 16)))
    assert shapes == ["kspace_shape: 32x16 vs 64x16"]


def test_kspace_shape_none_matches_any_shape():
    bound = AcquisitionTask(kspace_shape=(32, 16))
    assert bound.differences(DEFAULT_TASK) == []
    assert DEFAULT_TASK.differences(bound) == []


def test_reconstructors_compared_by_fingerprint_when_both_have_one():
    here = AcquisitionTask(reconstructor="a/reconstructor.pt", reconstructor_fingerprint="sha256:aaaa")
    moved = AcquisitionTask(reconstructor="b/copy.pt", reconstructor_fingerprint="sha256:aaaa")
    assert here.differences(moved) == []
    retrained = here.with_changes(reconstructor_fingerprint="sha256:bbbb")
    found = here.differences(retrained)
    assert len(found) == 1
    assert found[0].startswith("reconstructor: ")
    assert "sha256:aaaa" in found[0] and "sha256:bbbb" in found[0]


def test_reconstructors_compared_by_path_otherwise():
    with_print = AcquisitionTask(reconstructor="a/reconstructor.pt", reconstructor_fingerprint="sha256:aaaa")
    same_path = AcquisitionTask(reconstructor="a/reconstructor.pt")
    other_path = AcquisitionTask(reconstructor="b/reconstructor.pt")
    assert with_print.differences(same_path) == []
    assert same_path.differences(other_path) == ["reconstructor: a/reconstructor.pt vs b/reconstructor.pt"]
    assert with_print.differences(other_path) == ["reconstructor: a/reconstructor.pt vs b/reconstructor.pt"]
    assert DEFAULT_TASK.differences(other_path) == ["reconstructor: zero_filled vs b/reconstructor.pt"]


def test_describe():
    text = full_task().describe()
    assert text == (
        "multicoil 4x32x16, budget 8 from 2 initial lines, psnr reward, runs/x/reconstructor.pt reconstructor"
    )
    default = DEFAULT_TASK.describe()
    for part in ("budget 16", "4 initial lines", "ssim reward", "zero_filled reconstructor"):
        assert part in default
    assert "every column" in DEFAULT_TASK.with_changes(budget=None).describe()


def test_torch_save_weights_only_round_trip(tmp_path):
    import torch

    task = full_task()
    path = tmp_path / "task.pt"
    torch.save({"task": task.to_dict()}, path)
    loaded = torch.load(path, weights_only=True)
    assert AcquisitionTask.from_dict(loaded["task"]) == task
    torch.save({"task": DEFAULT_TASK.to_dict()}, path)
    assert AcquisitionTask.from_dict(torch.load(Path(path), weights_only=True)["task"]) == DEFAULT_TASK


def test_the_task_defaults_live_only_in_the_task():
    """Envs, evaluation, the quick start and the reconstructor masks take the task's defaults, none of their own."""
    from mri_rl.configs import load_config
    from mri_rl.envs import ActiveAcquisitionEnv, BatchedActiveAcquisitionEnv
    from mri_rl.evaluation.evaluate import EvaluationSetup

    for env_class in (ActiveAcquisitionEnv, BatchedActiveAcquisitionEnv):
        assert not {"challenge", "budget", "initial_lines", "reward_metric"} & set(
            inspect.signature(env_class).parameters
        )
    assert EvaluationSetup.__dataclass_fields__["task"].default is DEFAULT_TASK
    assert load_config("quickstart")[0]["task"] == {}
    for name in ("recon_unet", "recon_varnet"):
        masks = load_config(name)[0]["masks"]
        assert "initial_lines" not in str(masks)  # the acquisition masks take the task's
