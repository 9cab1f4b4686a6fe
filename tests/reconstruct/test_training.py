"""Reconstructor training: mask samplers, Lightning modules, export, resume, evaluation, errors."""

from __future__ import annotations

import copy
import functools
import json
import re
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader

import mri_rl  # noqa: F401  (registers the environment)
from mri_rl.checkpointing import CheckpointError, content_checksum, read_checkpoint
from mri_rl.cli import main
from mri_rl.data.fastmri_files import FastMRISliceDataset, resolve_split_folder
from mri_rl.data.synthetic import SyntheticSpec, write_synthetic_dataset
from mri_rl.envs import ENV_ID
from mri_rl.provenance import RecordMismatchError, data_fingerprint
from mri_rl.reconstruct import UnetReconstructor, VarNetReconstructor, export_reconstructor, load_reconstructor
from mri_rl.reconstruct.checkpoint import read_reconstructor_record
from mri_rl.reconstruct.lightning import LIGHTNING_WEIGHTS, ReconstructionDataModule, ReconstructionModule, load_module
from mri_rl.reconstruct.masked_slices import MaskedSlices
from mri_rl.reconstruct.train import (
    evaluate_reconstructor,
    format_evaluation_table,
    train_reconstructor,
)
from mri_rl.reconstruct.training_masks import (
    AcquisitionMaskSampler,
    FastMRIMaskSampler,
    MixtureMaskSampler,
    build_mask_sampler,
    build_mask_samplers,
)
from mri_rl.task import AcquisitionTask

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*LeafSpec.*is deprecated",  # inside pytorch_lightning with torch >= 2.9
    "ignore:Checkpoint directory .* exists and is not empty",  # resuming into a run folder
)

QUIET = {"enable_progress_bar": False, "enable_model_summary": False, "accelerator": "cpu", "devices": 1}
MODELS = {
    "unet": {"kind": "unet", "chans": 4, "num_pool_layers": 2},
    "varnet": {"kind": "varnet", "num_cascades": 2, "sens_chans": 2, "sens_pools": 1, "chans": 4, "pools": 2},
}
EVALUATION_MASKS = {
    "4x": {"kind": "random", "center_fractions": [0.08], "accelerations": [4]},
    "initial": {"kind": "acquisition", "initial_lines": 2, "budget": 0},
}


TASKS = {
    challenge: AcquisitionTask(challenge=challenge, initial_lines=2, budget=6)
    for challenge in ("singlecoil", "multicoil")
}


def tiny_config(model: str) -> dict[str, Any]:
    """A config that trains in about a second on the 16 x 16 session fixtures."""
    return {
        "seed": 0,
        "model": dict(MODELS[model]),
        "optimization": {"loss": "l1", "lr": 0.01, "lr_step_size": 10, "lr_gamma": 0.5, "weight_decay": 0.0},
        "data": {"batch_size": 2, "num_workers": 0},
        "trainer": {"max_epochs": 1, "deterministic": True, "log_every_n_steps": 1},
        "masks": {
            "train": {
                "kind": "mixture",
                "components": [
                    {"weight": 0.7, "kind": "acquisition", "initial_lines": 2, "budget": 6},
                    {"weight": 0.3, **EVALUATION_MASKS["4x"]},
                ],
            },
            "evaluation": EVALUATION_MASKS,
        },
    }


@pytest.fixture(scope="module")
def trained_unet(singlecoil_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run folder of one epoch of U-Net training on ``singlecoil_root``."""
    out = tmp_path_factory.mktemp("unet_run")
    train_reconstructor(singlecoil_root, TASKS["singlecoil"], out, tiny_config("unet"), trainer_kwargs=QUIET)
    return out


@pytest.fixture(scope="module")
def trained_varnet(multicoil_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run folder of one epoch of VarNet training on ``multicoil_root``."""
    out = tmp_path_factory.mktemp("varnet_run")
    train_reconstructor(
        multicoil_root, TASKS["multicoil"], out, tiny_config("varnet"), model="varnet", trainer_kwargs=QUIET
    )
    return out


def first_batch(root: Path, challenge: str, split: str = "val", batch_size: int = 3):
    sampler = build_mask_sampler(EVALUATION_MASKS["4x"])
    slices = FastMRISliceDataset(resolve_split_folder(root, challenge, split), challenge)
    return next(iter(DataLoader(MaskedSlices(slices, sampler, (0,)), batch_size)))


# ----------------------------------------------------------------- mask samplers
def test_acquisition_masks_are_seeded_keep_initial_lines_and_span_the_budget():
    width, left, right, initial_lines, budget = 24, 3, 21, 2, 6
    sampler = AcquisitionMaskSampler(initial_lines, budget)
    initial = np.zeros(width, dtype=bool)
    initial[:left] = initial[right:] = True
    initial[[11, 12]] = True  # the two lowest frequencies around the centre column 12
    counts = set()
    for seed in range(200):
        mask = sampler(width, left, right, (7, seed))
        assert mask.dtype == bool and mask.shape == (width,)
        assert mask[initial].all()
        np.testing.assert_array_equal(mask, sampler(width, left, right, (7, seed)))
        counts.add(int(mask.sum() - initial.sum()))
    assert counts == set(range(budget + 1))
    assert len({sampler(width, left, right, seed).tobytes() for seed in range(20)}) > 10
    np.testing.assert_array_equal(AcquisitionMaskSampler(initial_lines, 0)(width, left, right, 5), initial)
    full = AcquisitionMaskSampler(initial_lines, None)
    assert max(full(width, left, right, s).sum() for s in range(100)) > initial.sum() + budget


def test_fastmri_masks_are_seeded_keep_centre_and_padding():
    sampler = FastMRIMaskSampler("random", [0.08], [4])
    masks = np.stack([sampler(64, 2, 62, (0, seed)) for seed in range(200)])
    np.testing.assert_array_equal(masks[5], sampler(64, 2, 62, (0, 5)))
    assert masks[:, :2].all() and masks[:, 62:].all()
    assert masks[:, 30:35].all()  # round(64 * 0.08) = 5 centre columns
    assert abs(masks[:, 2:62].mean() - 0.25) < 0.05
    equispaced = FastMRIMaskSampler("equispaced", [0.04], [8])(64, 0, 64, 1)
    assert 7 <= equispaced.sum() <= 9


def test_mixture_and_config_factory():
    mixture = build_mask_sampler(tiny_config("unet")["masks"]["train"])
    assert isinstance(mixture, MixtureMaskSampler) and np.isclose(mixture.weights.sum(), 1.0)
    masks = [mixture(16, 0, 16, (0, seed)) for seed in range(50)]
    np.testing.assert_array_equal(masks[3], mixture(16, 0, 16, (0, 3)))
    named = build_mask_samplers(EVALUATION_MASKS)
    assert isinstance(named["4x"], FastMRIMaskSampler) and isinstance(named["initial"], AcquisitionMaskSampler)
    with pytest.raises(ValueError, match="unknown mask kind"):
        build_mask_sampler({"kind": "spiral"})
    with pytest.raises(ValueError, match="bad acquisition mask config"):
        build_mask_sampler({"kind": "acquisition", "initial_lines": 2})
    with pytest.raises(ValueError, match="non-negative"):
        AcquisitionMaskSampler(2, 3)(16, 0, 16, -1)


def test_acquisition_masks_take_the_task_s_budget_and_refuse_one_below_it():
    task = AcquisitionTask(initial_lines=2, budget=6)
    assert build_mask_sampler({"kind": "acquisition"}, task).budget == 6
    assert build_mask_sampler({"kind": "acquisition", "budget": 9}, task).budget == 9
    too_few = {"kind": "mixture", "components": [{"weight": 1.0, "kind": "acquisition", "budget": 5}]}
    message = r"cover at most 5 columns .* the task acquires 6: set the mask budget to at least 6"
    with pytest.raises(ValueError, match=message):
        build_mask_sampler(too_few, task)
    every_column = AcquisitionTask(initial_lines=2, budget=None)  # --budget all
    message = r"cover at most 5 columns .* the task acquires every column \(budget all\): set the mask budget to null"
    with pytest.raises(ValueError, match=message):
        build_mask_sampler(too_few, every_column)
    assert build_mask_sampler({"kind": "acquisition", "budget": None}, every_column).budget is None
    assert build_mask_sampler({"kind": "acquisition", "budget": 0}, every_column).budget == 0  # the initial mask


@pytest.mark.parametrize(
    "config, message",
    [
        ({"kind": "random", "center_fractions": [0.08], "accelerations": [0]}, "be integers >= 1"),
        ({"kind": "random", "center_fractions": [0.08], "accelerations": [2.5]}, "be integers >= 1"),
        ({"kind": "random", "center_fractions": [2.0], "accelerations": [4]}, "must lie in (0, 1)"),
        ({"kind": "equispaced", "center_fractions": [0.08], "accelerations": [4, 8]}, "of the same length"),
        ({"kind": "random", "center_fractions": {None: None}, "accelerations": [4]}, "non-empty lists"),
        ({"kind": "random", "center_fractions": [], "accelerations": []}, "non-empty lists"),
        ({"kind": "random", "center_fractions": [True], "accelerations": [4]}, "non-empty lists"),
        ({"kind": ["random"]}, "mask kind must be a string, got ['random']"),
        (["random"], "a mask sampler config must be a mapping"),
    ],
)
def test_bad_mask_configs_are_refused_before_any_mask_is_drawn(config, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build_mask_sampler(config)


@pytest.mark.parametrize("challenge, coils", [("singlecoil", 1), ("multicoil", 3)])
def test_masked_slices_give_masked_kspace_and_targets(request, challenge, coils):
    batch = first_batch(request.getfixturevalue(f"{challenge}_root"), challenge)
    assert batch.masked_kspace.shape == (3, coils, 32, 16) and batch.masked_kspace.dtype == torch.complex64
    assert batch.mask.shape == (3, 16) and batch.mask.dtype == torch.bool
    assert batch.target.shape == (3, 16, 16) and batch.data_range.shape == (3,)
    unacquired = ~batch.mask[:, None, None, :].expand_as(batch.masked_kspace)
    assert (batch.masked_kspace[unacquired] == 0).all()
    assert (batch.masked_kspace[~unacquired] != 0).any()


def test_training_masks_and_order_change_every_epoch_and_validation_masks_do_not(singlecoil_root):
    data = ReconstructionDataModule(
        singlecoil_root / "singlecoil_train",
        singlecoil_root / "singlecoil_val",
        "singlecoil",
        AcquisitionMaskSampler(2, 6),
        batch_size=6,
    )
    data.setup("fit")

    def masks(loader: DataLoader) -> torch.Tensor:
        return next(iter(loader)).mask

    def train_masks(epoch: int) -> torch.Tensor:
        data.trainer = SimpleNamespace(current_epoch=epoch, reload_dataloaders_every_n_epochs=1)
        return masks(data.train_dataloader())

    assert torch.equal(train_masks(1), train_masks(1))
    loader = data.train_dataloader()  # Lightning iterates an epoch's loader once or twice: the same order each time
    assert torch.equal(masks(loader), masks(loader))
    assert not torch.equal(train_masks(0), train_masks(1))
    assert torch.equal(masks(data.val_dataloader()), masks(data.val_dataloader()))
    data.trainer = SimpleNamespace(current_epoch=0, reload_dataloaders_every_n_epochs=0)
    with pytest.warns(UserWarning, match="reload_dataloaders_every_n_epochs"):
        data.train_dataloader()


# ----------------------------------------------------------------- training
def test_one_epoch_lowers_the_loss(singlecoil_root, tmp_path):
    config = tiny_config("unet")
    pl.seed_everything(0)
    data = ReconstructionDataModule(
        singlecoil_root / "singlecoil_train",
        singlecoil_root / "singlecoil_val",
        "singlecoil",
        build_mask_sampler(config["masks"]["train"]),
        batch_size=2,
    )
    data.setup("fit")
    model_hparams = {k: v for k, v in config["model"].items() if k != "kind"}
    module = ReconstructionModule("unet", model_hparams, "singlecoil", data.recon_size, **config["optimization"])
    batch = next(iter(data.train_dataloader()))
    with torch.no_grad():
        before = module.loss(module(batch), batch.target, batch.data_range).item()
    trainer = pl.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
        reload_dataloaders_every_n_epochs=1,
        **QUIET,
    )
    trainer.fit(module, datamodule=data)
    with torch.no_grad():
        after = module.loss(module(batch), batch.target, batch.data_range).item()
    assert trainer.global_step == 3  # 6 slices, batches of 2
    assert after < before


def test_ssim_loss_trains(singlecoil_root, tmp_path):
    config = tiny_config("unet")
    config["optimization"]["loss"] = "ssim"
    train_reconstructor(singlecoil_root, TASKS["singlecoil"], tmp_path, config, trainer_kwargs=QUIET)
    assert (tmp_path / "reconstructor.pt").is_file()


def test_training_writes_logs_checkpoints_and_export(trained_unet):
    assert (trained_unet / "checkpoints" / "last.ckpt").is_file()
    assert list((trained_unet / "checkpoints").glob("best-*.ckpt"))
    assert list((trained_unet / "tensorboard").glob("events.out.tfevents.*"))
    model = load_reconstructor(trained_unet / "reconstructor.pt")
    assert isinstance(model, UnetReconstructor) and model.recon_size == (16, 16) and model.challenge == "singlecoil"


@pytest.mark.parametrize(
    "run, root, challenge, kind",
    [
        ("trained_unet", "singlecoil_root", "singlecoil", UnetReconstructor),
        ("trained_varnet", "multicoil_root", "multicoil", VarNetReconstructor),
    ],
)
def test_export_load_round_trip_gives_identical_outputs(request, tmp_path, run, root, challenge, kind):
    out = request.getfixturevalue(run)
    batch = first_batch(request.getfixturevalue(root), challenge)
    best = next((out / "checkpoints").glob("best-*.ckpt"))
    trained = load_module(best).reconstructor.eval()
    loaded = load_reconstructor(out / "reconstructor.pt")
    again = load_reconstructor(export_reconstructor(loaded, tmp_path / "again.pt"))
    assert isinstance(loaded, kind)
    with torch.no_grad():
        expected = trained(batch.masked_kspace, batch.mask, (16, 16))
        assert expected.shape == (3, 16, 16)
        assert torch.equal(loaded(batch.masked_kspace, batch.mask, (16, 16)), expected)
        assert torch.equal(again(batch.masked_kspace, batch.mask, (16, 16)), expected)


@pytest.mark.parametrize(
    "run, root, challenge",
    [
        ("trained_unet", "singlecoil_root", "singlecoil"),
        ("trained_varnet", "multicoil_root", "multicoil"),
    ],
)
def test_env_runs_an_episode_with_the_exported_reconstructor(request, run, root, challenge):
    path = request.getfixturevalue(run) / "reconstructor.pt"
    data_path = request.getfixturevalue(root) / f"{challenge}_val"
    env = gym.make(ENV_ID, data_path=data_path, challenge=challenge, reconstructor=path, budget=3, initial_lines=2)
    observation, info = env.reset(seed=0)
    steps, terminated = 0, False
    rng = np.random.default_rng(0)
    while not terminated:
        action = int(rng.choice(np.flatnonzero(info["action_mask"])))
        observation, reward, terminated, truncated, info = env.step(action)
        assert np.isfinite(reward) and np.isfinite(observation["reconstruction"]).all()
        steps += 1
    assert steps == 3
    env.close()


def test_resume_continues_from_the_saved_step(singlecoil_root, tmp_path):
    config = tiny_config("unet")
    train_reconstructor(singlecoil_root, TASKS["singlecoil"], tmp_path, config, trainer_kwargs=QUIET)
    last = tmp_path / "checkpoints" / "last.ckpt"
    first = read_checkpoint(last, LIGHTNING_WEIGHTS)
    assert first["global_step"] == 3 and first["epoch"] == 0
    with pytest.raises(FileExistsError, match="resume"):
        train_reconstructor(singlecoil_root, TASKS["singlecoil"], tmp_path, config, trainer_kwargs=QUIET)
    train_reconstructor(
        singlecoil_root, TASKS["singlecoil"], tmp_path, config, max_epochs=2, resume=True, trainer_kwargs=QUIET
    )
    second = read_checkpoint(last, LIGHTNING_WEIGHTS)
    assert second["global_step"] == 6 and second["epoch"] == 1
    # the resumed run trained steps 3-5 only (a restart would log steps 0-5 again)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert sorted(event.step for event in events.Scalars("train_loss_step")) == list(range(6))
    assert not torch.equal(
        first["state_dict"]["reconstructor.unet.down_sample_layers.0.layers.0.weight"],
        second["state_dict"]["reconstructor.unet.down_sample_layers.0.layers.0.weight"],
    )


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(singlecoil_root, tmp_path):
    """2 epochs straight and 1 epoch + ``resume`` to 2 give the same weights, bit for bit: the
    shuffle, the training masks and the dropout of epoch 1 do not depend on how the run got there."""
    config = tiny_config("unet")
    config["model"]["drop_prob"] = 0.2
    train = functools.partial(
        train_reconstructor, singlecoil_root, TASKS["singlecoil"], config=config, trainer_kwargs=QUIET
    )
    train(tmp_path / "straight", max_epochs=2)
    train(tmp_path / "cut", max_epochs=1)
    train(tmp_path / "cut", max_epochs=2, resume=True)
    straight, resumed = (
        read_checkpoint(tmp_path / run / "checkpoints" / "last.ckpt", LIGHTNING_WEIGHTS) for run in ("straight", "cut")
    )
    assert straight["global_step"] == resumed["global_step"] == 6
    for entry in LIGHTNING_WEIGHTS:  # the weights and Adam's moments
        torch.testing.assert_close(resumed[entry], straight[entry], rtol=0, atol=0)
    exports = [load_reconstructor(tmp_path / run / "reconstructor.pt").state_dict() for run in ("straight", "cut")]
    torch.testing.assert_close(exports[1], exports[0], rtol=0, atol=0)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"optimization": {"lr_step_size": 1, "lr_gamma": 0.0}}, id="val-ssim-flat-after-epoch-0"),
        pytest.param({"trainer": {"check_val_every_n_epoch": 2}}, id="validating-every-2nd-epoch"),
    ],
)
def test_last_checkpoint_is_each_epochs_and_resumes_as_the_uninterrupted_run(singlecoil_root, tmp_path, change):
    """``last.ckpt`` is written at every epoch's end, also when val SSIM stops improving (the
    learning rate 0 after epoch 0) or when an epoch is not validated; it names the best checkpoint
    kept, and a run resumed from it ends as the uninterrupted one."""
    config = tiny_config("unet")
    for section, values in change.items():
        config[section].update(values)
    train = functools.partial(
        train_reconstructor, singlecoil_root, TASKS["singlecoil"], config=config, trainer_kwargs=QUIET
    )
    train(tmp_path / "straight", max_epochs=3)
    train(tmp_path / "cut", max_epochs=2)
    cut = read_checkpoint(tmp_path / "cut" / "checkpoints" / "last.ckpt", LIGHTNING_WEIGHTS)
    assert (cut["epoch"], cut["global_step"]) == (1, 6)
    (best,) = [state["best_model_path"] for key, state in cut["callbacks"].items() if key.startswith("ModelCheckpoint")]
    assert [Path(best)] == sorted((tmp_path / "cut" / "checkpoints").glob("best-*.ckpt"))
    train(tmp_path / "cut", max_epochs=3, resume=True)
    straight, resumed = (
        read_checkpoint(tmp_path / run / "checkpoints" / "last.ckpt", LIGHTNING_WEIGHTS) for run in ("straight", "cut")
    )
    assert straight["epoch"] == resumed["epoch"] == 2 and straight["global_step"] == resumed["global_step"] == 9
    for entry in LIGHTNING_WEIGHTS:
        torch.testing.assert_close(resumed[entry], straight[entry], rtol=0, atol=0)


def test_resume_refuses_a_crafted_last_checkpoint(singlecoil_root, tmp_path):
    """A ``last.ckpt`` whose unpickling would create a file: resume refuses it and runs nothing
    (tests/test_checkpointing.py reruns this with torch's default forced unsafe)."""
    config = tiny_config("unet")
    train_reconstructor(singlecoil_root, TASKS["singlecoil"], tmp_path, config, trainer_kwargs=QUIET)
    last = tmp_path / "checkpoints" / "last.ckpt"
    marker = tmp_path / "pwned"
    crafted = {**read_checkpoint(last, LIGHTNING_WEIGHTS), "payload": _Payload(marker)}
    crafted["checksum"] = content_checksum({k: v for k, v in crafted.items() if k != "payload"})
    torch.save(crafted, last)
    with pytest.raises(CheckpointError, match="last.ckpt cannot be loaded safely"):
        train_reconstructor(
            singlecoil_root, TASKS["singlecoil"], tmp_path, config, max_epochs=2, resume=True, trainer_kwargs=QUIET
        )
    assert not marker.exists()


class _Payload:
    """Unpickling this creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return exec, (f"import pathlib; pathlib.Path({str(self.marker)!r}).touch()",)


@pytest.mark.parametrize(
    "options, message",
    [
        pytest.param(
            {"accelerator": "cuda"},
            "can not run on your system",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU"),
        ),
        ({"devices": 0}, "devices=0"),
        ({"precision": "bogus"}, "Precision 'bogus' is invalid"),
        ({"bogus_option": 1}, "bogus_option"),
    ],
)
def test_trainer_settings_this_machine_cannot_run_are_one_error(singlecoil_root, tmp_path, options, message):
    with pytest.raises(ValueError, match=r"Lightning Trainer settings .*" + re.escape(message)):
        train_reconstructor(
            singlecoil_root, TASKS["singlecoil"], tmp_path, tiny_config("unet"), trainer_kwargs={**QUIET, **options}
        )


@pytest.mark.parametrize(
    "options, message",
    [
        ({"batch_size": 0}, "batch_size: expected an integer >= 1, got 0"),
        ({"batch_size": 2.5}, "batch_size: expected an integer >= 1, got 2.5"),
        ({"seed": -1}, "seed: expected an integer >= 0, got -1"),
        ({"device": "nonsense"}, "device 'nonsense' is not a torch device name"),
    ],
)
def test_evaluate_reconstructor_refuses_bad_settings(singlecoil_root, options, message):
    masks = build_mask_samplers(EVALUATION_MASKS, TASKS["singlecoil"])
    with pytest.raises(ValueError, match=re.escape(message)):
        evaluate_reconstructor("zero_filled", singlecoil_root, "singlecoil", "val", masks, **options)


def test_eval_recon_refuses_initial_lines_that_leave_no_column_to_acquire(singlecoil_root, tmp_path, capsys):
    """``--initial-lines`` at or above the measurable columns is refused as the env refuses it, not
    evaluated as an "initial" mask of sampling rate 1.000."""
    padded = tmp_path / "padded"  # 16 columns, 2 zero-filled on each side: 12 measurable
    write_synthetic_dataset(padded, SyntheticSpec(num_slices=1, size=16, padding=2), {"val": 1}, progress=False)
    for root, lines, measurable in ((singlecoil_root, 16, 16), (singlecoil_root, 40, 16), (padded, 12, 12)):
        args = ["eval-recon", "--data", str(root), "--challenge", "singlecoil", "--reconstructor", "zero_filled"]
        assert main([*args, "--initial-lines", str(lines)]) == 2
        message = f"initial_lines ({lines}) leaves no column to acquire: the slices have {measurable} measurable "
        assert capsys.readouterr().err == f"mri-rl: error: {message}columns of 16\n"
        with pytest.raises(ValueError, match=re.escape(message)):
            gym.make(ENV_ID, data_path=root / "singlecoil_val", budget=1, initial_lines=lines)  # the same words
    assert main([*args, "--initial-lines", "11"]) == 0  # one column left to acquire
    assert "| initial | 0.938 | zero_filled |" in capsys.readouterr().out  # 11 + 4 padding of 16
    fastmri = {"kind": "random", "center_fractions": [0.25], "accelerations": [4]}
    acquisition = {"kind": "acquisition", "initial_lines": 16, "budget": 0}
    mixture = build_mask_sampler({"kind": "mixture", "components": [fastmri, acquisition]})
    assert build_mask_sampler(fastmri).most_initial_lines() is None and mixture.most_initial_lines() == 16
    with pytest.raises(ValueError, match=re.escape("initial_lines (16) leaves no column to acquire")):
        evaluate_reconstructor("zero_filled", singlecoil_root, "singlecoil", "val", {"mixed": mixture})


def test_train_recon_refuses_initial_lines_that_leave_no_column_to_acquire(singlecoil_root, tmp_path, capsys):
    """``--initial-lines`` at or above the measurable columns of the training or validation slices is refused in
    eval-recon's (and the env's) words before anything is written, not trained on fully sampled masks."""
    padded = tmp_path / "padded"  # 16 columns, 2 zero-filled on each side: 12 measurable
    write_synthetic_dataset(padded, SyntheticSpec(num_slices=1, size=16, padding=2), {"val": 1}, progress=False)
    train, val = str(singlecoil_root / "singlecoil_train"), ["--val-data", str(padded / "singlecoil_val")]
    tiny = ["--max-epochs", "1", "--set", "model.chans=4", "--set", "model.num_pool_layers=1"]
    for data, lines, measurable in ((str(singlecoil_root), 16, 16), (str(singlecoil_root), 40, 16), (train, 12, 12)):
        out = tmp_path / f"run{lines}"
        args = ["train-recon", "--data", data, *(val if data == train else []), "--challenge", "singlecoil"]
        assert main([*args, "--out", str(out), *tiny, "--initial-lines", str(lines)]) == 2
        message = f"initial_lines ({lines}) leaves no column to acquire: the slices have {measurable} measurable "
        assert capsys.readouterr().err == f"mri-rl: error: {message}columns of 16\n"
        assert not out.exists()


@pytest.mark.parametrize("epochs", [0, -1])
def test_max_epochs_below_one_is_refused(singlecoil_root, tmp_path, epochs):
    with pytest.raises(ValueError, match=f"max_epochs must be an integer >= 1 .*got {epochs}"):
        train_reconstructor(
            singlecoil_root, TASKS["singlecoil"], tmp_path, tiny_config("unet"), max_epochs=epochs, trainer_kwargs=QUIET
        )


def test_training_is_reproducible(singlecoil_root, tmp_path):
    config = tiny_config("unet")
    paths = [
        train_reconstructor(singlecoil_root, TASKS["singlecoil"], tmp_path / name, config, trainer_kwargs=QUIET)
        for name in ("a", "b")
    ]
    first, second = (load_reconstructor(path).state_dict() for path in paths)
    assert all(torch.equal(first[key], second[key]) for key in first)


# ----------------------------------------------------------------- evaluation
def test_evaluation_rows_compare_with_zero_filled(trained_unet, singlecoil_root):
    masks = build_mask_samplers(EVALUATION_MASKS)
    rows = evaluate_reconstructor(trained_unet / "reconstructor.pt", singlecoil_root, "singlecoil", "val", masks)
    assert [(row["mask"], row["reconstructor"]) for row in rows] == [
        ("4x", "unet"),
        ("4x", "zero_filled"),
        ("initial", "unet"),
        ("initial", "zero_filled"),
    ]
    for row in rows:
        assert row["num_images"] == 3 and 0 < row["sampling_rate"] < 1
        assert all(np.isfinite(row[key]) for key in ("ssim", "psnr", "nmse", "ssim_std", "psnr_std", "nmse_std"))
    assert rows[2]["sampling_rate"] == pytest.approx(2 / 16)
    zero_filled = evaluate_reconstructor("zero_filled", singlecoil_root, "singlecoil", "val", masks)
    assert len(zero_filled) == 2 and zero_filled[0] == rows[1]
    assert "| 4x | " in format_evaluation_table(rows)


def test_evaluation_under_bf16_autocast_changes_the_network_s_figures_only_a_little(trained_unet, singlecoil_root):
    masks = build_mask_samplers(EVALUATION_MASKS)
    path = trained_unet / "reconstructor.pt"
    full = evaluate_reconstructor(path, singlecoil_root, "singlecoil", "val", masks)
    half = evaluate_reconstructor(path, singlecoil_root, "singlecoil", "val", masks, precision="bf16")
    unet = [(a, b) for a, b in zip(full, half, strict=True) if a["reconstructor"] == "unet"]
    assert any(a["ssim"] != b["ssim"] for a, b in unet)  # the forward ran in bfloat16
    for a, b in unet:
        assert b["ssim"] == pytest.approx(a["ssim"], abs=0.02) and b["psnr"] == pytest.approx(a["psnr"], abs=0.5)
    with pytest.raises(ValueError, match="precision 16 .* needs a CUDA or MPS device"):
        evaluate_reconstructor(path, singlecoil_root, "singlecoil", "val", masks, precision="16")


# ----------------------------------------------------------------- errors
def test_varnet_checkpoint_on_singlecoil_data_is_refused(trained_varnet, singlecoil_root):
    path = trained_varnet / "reconstructor.pt"
    with pytest.raises(ValueError, match="multicoil"):
        gym.make(ENV_ID, data_path=singlecoil_root / "singlecoil_val", reconstructor=path, budget=3, initial_lines=2)
    with pytest.raises(ValueError, match="multicoil"):
        evaluate_reconstructor(path, singlecoil_root, "singlecoil", "val", build_mask_samplers(EVALUATION_MASKS))


def test_a_lightning_checkpoint_given_as_a_reconstructor_names_the_export_to_use(
    trained_unet, singlecoil_root, tmp_path, capsys
):
    """``last.ckpt`` where the export is expected: the error says what it is and names ``reconstructor.pt``."""
    last = trained_unet / "checkpoints" / "last.ckpt"
    lightning = f"checkpoint {last} looks like a Lightning training checkpoint of mri-rl train-recon"
    use = f"not an exported reconstructor; use {trained_unet / 'reconstructor.pt'}, that run's export"
    with pytest.raises(CheckpointError, match=re.escape(f"{lightning}, {use}")):
        load_reconstructor(last)
    with pytest.raises(CheckpointError, match=re.escape(f"{lightning}, {use}")):
        read_reconstructor_record(last)
    args = ["eval-recon", "--data", str(singlecoil_root), "--challenge", "singlecoil", "--reconstructor", str(last)]
    assert main(args) == 2 and capsys.readouterr().err == f"mri-rl: error: {lightning}, {use}\n"
    moved = tmp_path / "last.ckpt"  # out of its run folder: the export's place is said
    moved.write_bytes(last.read_bytes())
    with pytest.raises(
        CheckpointError, match=re.escape(f"{moved} looks like a Lightning training checkpoint")
    ) as refused:
        load_reconstructor(moved)
    assert str(refused.value).endswith("; use OUT/reconstructor.pt, the export of train-recon --out OUT")


def test_bad_training_requests_raise_clear_errors(singlecoil_root, tmp_path):
    config = tiny_config("unet")
    with pytest.raises(ValueError, match="describes a 'unet'"):
        train_reconstructor(singlecoil_root, TASKS["singlecoil"], tmp_path / "a", config, model="varnet")
    with pytest.raises(FileNotFoundError, match="cannot resume"):
        train_reconstructor(singlecoil_root, TASKS["singlecoil"], tmp_path / "b", config, resume=True)
    with pytest.raises(ValueError, match="'masks' section"):
        train_reconstructor(singlecoil_root, TASKS["singlecoil"], tmp_path / "c", {**config, "masks": None})
    with pytest.raises(ValueError, match="sets the Trainer arguments"):
        train_reconstructor(
            singlecoil_root, TASKS["singlecoil"], tmp_path / "d", config, trainer_kwargs={"logger": False}
        )
    bad_loss = copy.deepcopy(config)
    bad_loss["optimization"]["loss"] = "l2"
    with pytest.raises(ValueError, match="unknown loss"):
        train_reconstructor(singlecoil_root, TASKS["singlecoil"], tmp_path / "e", bad_loss)


# ----------------------------------------------------------------- splits and records
def test_a_training_folder_as_the_only_data_is_refused(singlecoil_root, tmp_path, copy_volume):
    train, val = singlecoil_root / "singlecoil_train", singlecoil_root / "singlecoil_val"
    task, config = TASKS["singlecoil"], tiny_config("unet")
    with pytest.raises(FileNotFoundError, match="not a fastMRI root with a singlecoil_train/ folder.*--val-data"):
        train_reconstructor(train, task, tmp_path / "a", config, trainer_kwargs=QUIET)
    with pytest.raises(ValueError, match="the validation folder .* is the training folder"):
        train_reconstructor(train, task, tmp_path / "b", config, val_data=train, trainer_kwargs=QUIET)
    with pytest.raises(ValueError, match="singlecoil_val is named as the val split, but the train split"):
        train_reconstructor(val, task, tmp_path / "c", config, val_data=train, trainer_kwargs=QUIET)
    shared = tmp_path / "held_out"
    shared.mkdir()
    copy_volume(next(train.glob("*.h5")), shared)  # a training file among the validation files
    copy_volume(next(val.glob("*.h5")), shared)
    with pytest.raises(ValueError, match="1 file.* also in the training set of this run") as refused:
        train_reconstructor(train, task, tmp_path / "d", config, val_data=shared, trainer_kwargs=QUIET)
    assert str(refused.value).count(str(train.resolve())) == 1  # the training folder named once
    no_val = tmp_path / "root"
    (no_val / "singlecoil_train").mkdir(parents=True)
    copy_volume(next(train.glob("*.h5")), no_val / "singlecoil_train")
    with pytest.raises(FileNotFoundError, match="no validation folder"):
        train_reconstructor(no_val, task, tmp_path / "e", config, trainer_kwargs=QUIET)
    assert not any((tmp_path / name).exists() for name in "abcde")


def test_the_export_records_its_task_data_and_config(trained_unet, singlecoil_root):
    record = read_reconstructor_record(trained_unet / "reconstructor.pt")
    assert AcquisitionTask.from_dict(record["task"]) == TASKS["singlecoil"].with_changes(
        reconstructor="(this reconstructor)", kspace_shape=(32, 16)
    )
    assert record["data"]["train"]["files"] == sorted(p.name for p in (singlecoil_root / "singlecoil_train").iterdir())
    assert record["data"]["val"]["digest"] == data_fingerprint(singlecoil_root / "singlecoil_val")["digest"]
    assert record["settings"]["config"]["model"] == MODELS["unet"] and record["settings"]["max_epochs"] == 1
    stored = json.loads((trained_unet / "record.json").read_text())
    assert stored["record"] == record
    assert torch.get_num_threads() in stored["threads"]["torch_threads"]  # said beside the record, not in it
    assert stored["threads"]["cpu"]["torch_capability"] == torch.backends.cpu.get_cpu_capability()


def test_evaluating_a_reconstructor_on_its_training_files_is_refused(trained_unet, singlecoil_root):
    export, masks = trained_unet / "reconstructor.pt", build_mask_samplers(EVALUATION_MASKS)
    train = singlecoil_root / "singlecoil_train"
    with pytest.raises(ValueError, match="named as the train split, but the val split.*--any-folder"):
        evaluate_reconstructor(export, train, "singlecoil", "val", masks)
    with pytest.raises(
        ValueError,
        match=r"2 file\(s\) of .*singlecoil_train are also in the training set of the "
        r"reconstructor",
    ):
        evaluate_reconstructor(export, train, "singlecoil", "val", masks, any_folder=True)
    assert len(evaluate_reconstructor("zero_filled", train, "singlecoil", "val", masks, any_folder=True)) == 2


def test_ctrl_c_in_training_is_a_keyboard_interrupt_and_gives_sigint_back(singlecoil_root, tmp_path, monkeypatch):
    """Lightning catches the interrupt and exits with status 1; the CLI needs the interrupt (status 130)."""

    def interrupted(self, batch, batch_index):
        raise KeyboardInterrupt

    monkeypatch.setattr(ReconstructionModule, "training_step", interrupted)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        train_reconstructor(
            singlecoil_root, TASKS["singlecoil"], tmp_path / "run", tiny_config("unet"), trainer_kwargs=QUIET
        )
    assert signal.getsignal(signal.SIGINT) is handler  # Lightning had set it to SIG_IGN


def test_resuming_with_other_data_is_refused(singlecoil_root, tmp_path, copy_volume):
    config = tiny_config("unet")
    train_reconstructor(singlecoil_root, TASKS["singlecoil"], tmp_path / "run", config, trainer_kwargs=QUIET)
    other = tmp_path / "other"
    for split in ("train", "val"):
        (other / f"singlecoil_{split}").mkdir(parents=True)
        for volume in (singlecoil_root / f"singlecoil_{split}").glob("*.h5"):
            copy_volume(volume, other / f"singlecoil_{split}")
    next((other / "singlecoil_train").glob("*.h5")).unlink()
    with pytest.raises(RecordMismatchError, match="data.train.digest") as refused:
        train_reconstructor(
            other, TASKS["singlecoil"], tmp_path / "run", config, max_epochs=2, resume=True, trainer_kwargs=QUIET
        )
    assert str(refused.value).endswith("To start fresh, choose another --out, or delete the run folder")
    with pytest.raises(RecordMismatchError, match="To start fresh, pass --overwrite$"):  # a caller's own advice
        train_reconstructor(
            other, TASKS["singlecoil"], tmp_path / "run", config, resume=True, fresh_start="pass --overwrite"
        )
