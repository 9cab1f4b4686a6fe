"""Reconstructors: zero-filled known answers, U-Net checkpoints and their errors."""

from __future__ import annotations

import re
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest
import torch
from fastmri.models import VarNet

import mri_rl  # noqa: F401  (registers the environment)
from mri_rl.checkpointing import CheckpointError, save_checkpoint
from mri_rl.data import TARGET_KEYS
from mri_rl.envs import ENV_ID
from mri_rl.kspace import apply_mask, initial_mask
from mri_rl.reconstruct import (
    Reconstructor,
    UnetReconstructor,
    VarNetReconstructor,
    ZeroFilledReconstructor,
    build_reconstructor,
    export_reconstructor,
    load_reconstructor,
    zero_filled_image,
)
from mri_rl.reconstruct.checkpoint import CHECKPOINT_FORMAT
from mri_rl.reconstruct.train import evaluate_reconstructor
from mri_rl.reconstruct.training_masks import build_mask_samplers


def read_volume(path: Path, challenge: str) -> tuple[torch.Tensor, np.ndarray]:
    """K-space as complex (slices, coils, rows, cols) and the target (slices, h, w)."""
    with h5py.File(path, "r") as hf:
        kspace = torch.from_numpy(hf["kspace"][()])
        target = hf[TARGET_KEYS[challenge]][()]
    if challenge == "singlecoil":
        kspace = kspace.unsqueeze(1)
    return kspace, target


def tiny_unet(recon_size=(16, 16), challenge="singlecoil", seed=0) -> UnetReconstructor:
    torch.manual_seed(seed)
    return UnetReconstructor(chans=4, num_pool_layers=2, challenge=challenge, recon_size=recon_size).eval()


@pytest.fixture
def exported_unet(tmp_path) -> Path:
    return export_reconstructor(tiny_unet(), tmp_path / "unet.pt")


# ----------------------------------------------------------------- zero-filled
@pytest.mark.parametrize("challenge", ["singlecoil", "multicoil"])
def test_zero_filled_of_fully_sampled_kspace_is_the_target(request, challenge):
    path = request.getfixturevalue(f"{challenge}_volume")
    kspace, target = read_volume(path, challenge)
    mask = torch.ones(kspace.shape[0], kspace.shape[-1], dtype=torch.bool)
    with torch.no_grad():
        images = ZeroFilledReconstructor()(kspace, mask, target.shape[-2:])
    assert images.shape == target.shape
    np.testing.assert_allclose(images.numpy(), target, rtol=1e-4, atol=1e-5 * target.max())


def test_zero_filled_of_partial_kspace_is_not_the_target(singlecoil_volume):
    kspace, target = read_volume(singlecoil_volume, "singlecoil")
    mask = torch.zeros(kspace.shape[0], kspace.shape[-1], dtype=torch.bool)
    mask[:, 6:10] = True
    masked = kspace * mask[:, None, None, :]
    images = zero_filled_image(masked, target.shape[-2:])
    error = np.mean((images.numpy() - target) ** 2) / target.max() ** 2
    assert error > 1e-4
    assert torch.equal(zero_filled_image(torch.zeros_like(kspace), (16, 16)), torch.zeros(kspace.shape[0], 16, 16))


# ----------------------------------------------------------------- U-Net checkpoints
def test_unet_round_trip_gives_identical_outputs(singlecoil_volume, tmp_path):
    model = tiny_unet()
    path = export_reconstructor(model, tmp_path / "sub" / "unet.pt")
    assert path.is_file() and not list(path.parent.glob("*.tmp"))
    loaded = load_reconstructor(path)
    assert isinstance(loaded, UnetReconstructor) and not loaded.training
    assert loaded.hparams == {"chans": 4, "num_pool_layers": 2, "drop_prob": 0.0}
    assert loaded.recon_size == (16, 16) and loaded.challenge == "singlecoil"
    kspace, _ = read_volume(singlecoil_volume, "singlecoil")
    mask = torch.zeros(kspace.shape[0], kspace.shape[-1], dtype=torch.bool)
    mask[:, 5:11] = True
    masked = kspace * mask[:, None, None, :]
    with torch.no_grad():
        expected = model(masked, mask, (16, 16))
        got = loaded(masked, mask, (16, 16))
    assert got.shape == (kspace.shape[0], 16, 16)
    assert torch.equal(got, expected)
    # a differently initialised network gives other outputs: the weights were really restored
    with torch.no_grad():
        other = tiny_unet(seed=1)(masked, mask, (16, 16))
    assert not torch.allclose(other, expected)
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["format"] == CHECKPOINT_FORMAT and checkpoint["kind"] == "unet"
    assert checkpoint["recon_size"] == [16, 16]


def test_unet_normalisation_uses_observed_data_only(singlecoil_volume):
    model = tiny_unet()
    kspace, _ = read_volume(singlecoil_volume, "singlecoil")
    mask = torch.ones(kspace.shape[0], kspace.shape[-1], dtype=torch.bool)
    with torch.no_grad():
        out = model(kspace, mask, (16, 16))
        scaled = model(3.0 * kspace, mask, (16, 16))
    # instance normalisation makes the network equivariant to the scale of the data
    torch.testing.assert_close(scaled, 3.0 * out, rtol=1e-4, atol=1e-6 * float(out.abs().max()))


def test_env_runs_with_exported_unet(singlecoil_root, exported_unet):
    env = gym.make(
        ENV_ID,
        data_path=singlecoil_root / "singlecoil_train",
        challenge="singlecoil",
        reconstructor=str(exported_unet),
        budget=4,
        initial_lines=2,
        reward_metric="mse",
        on_bad_file="raise",
    )
    assert isinstance(env.unwrapped.episodes.reconstructions.reconstructor, UnetReconstructor)
    obs, info = env.reset(seed=0)
    first = info["mse"]
    rewards, terminated = [], False
    while not terminated:
        column = int(np.flatnonzero(info["action_mask"])[0])
        obs, reward, terminated, _, info = env.step(column)
        rewards.append(reward)
        assert np.isfinite(obs["reconstruction"]).all()
    assert len(rewards) == 4
    assert sum(rewards) == pytest.approx(first - info["mse"], rel=1e-9, abs=1e-12)
    # the U-Net's output is what the env reconstructs
    episodes = env.unwrapped.episodes
    with torch.no_grad():
        mask = episodes.acquired[:1]
        expected = load_reconstructor(exported_unet)(apply_mask(episodes.kspace[:1], mask), mask, (16, 16))
    torch.testing.assert_close(episodes.reconstruction[:1], expected, rtol=1e-5, atol=1e-8)


def test_env_accepts_reconstructor_instance(singlecoil_root):
    model = tiny_unet()
    env = gym.make(
        ENV_ID, data_path=singlecoil_root / "singlecoil_train", reconstructor=model, budget=2, initial_lines=2
    )
    assert env.unwrapped.episodes.reconstructions.reconstructor is model
    env.reset(seed=0)
    env.step(0)


# ----------------------------------------------------------------- bad checkpoints
def test_missing_checkpoint_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_reconstructor(tmp_path / "nope.pt")
    with pytest.raises(FileNotFoundError):
        build_reconstructor(tmp_path / "nope.pt")


def test_non_checkpoint_file_raises(tmp_path):
    path = tmp_path / "random.pt"
    path.write_bytes(np.random.default_rng(0).bytes(1000))
    with pytest.raises(ValueError, match="cannot be loaded"):
        load_reconstructor(path)
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(ValueError):
        load_reconstructor(text)


class NotAllowed:
    """A pickled object that ``torch.load(weights_only=True)`` must refuse."""


def test_pickle_with_arbitrary_objects_is_refused(tmp_path):
    path = tmp_path / "pickle.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "kind": "unet", "payload": NotAllowed()}, path)
    with pytest.raises(ValueError, match="weights_only"):
        load_reconstructor(path)


@pytest.mark.parametrize(
    "content, found", [({"format": "mri_rl.agent", "kind": "unet"}, "mri_rl.agent"), ({"kind": "unet"}, "None")]
)
def test_checkpoint_of_another_format_raises(tmp_path, content, found):
    path = save_checkpoint(content, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="format") as error:
        load_reconstructor(path)
    assert found in str(error.value) and CHECKPOINT_FORMAT in str(error.value)


@pytest.mark.parametrize("content", [{"format": CHECKPOINT_FORMAT, "kind": "unet"}, torch.zeros(3)])
def test_torch_file_without_checksum_raises(tmp_path, content):
    path = tmp_path / "plain.pt"
    torch.save(content, path)
    with pytest.raises(CheckpointError, match=r"plain.pt has no content checksum"):
        load_reconstructor(path)


def test_wrong_kind_raises(tmp_path, exported_unet):
    checkpoint = torch.load(exported_unet, weights_only=True)
    checkpoint["kind"] = "transformer"
    path = save_checkpoint(checkpoint, tmp_path / "kind.pt")
    with pytest.raises(ValueError, match="transformer"):
        load_reconstructor(path)


FIRST_WEIGHT = "unet.down_sample_layers.0.layers.0.weight"
#: hparams or weights that do not fit each other: (change, the entry named, the problem stated).
MISFITS = {
    "chans": (lambda c: c["hparams"].update(chans=8), f"state_dict.{FIRST_WEIGHT}", "does not fit"),
    "pool_layers": (lambda c: c["hparams"].update(num_pool_layers=3), "state_dict", "has other weights than the model"),
    "missing_hparams": (lambda c: c.pop("hparams"), "hparams", None),
    "unknown_hparam": (lambda c: c["hparams"].update(depth=3), "hparams", "is unusable (TypeError"),
    "dropped_weight": (lambda c: c["state_dict"].pop(next(iter(c["state_dict"]))), "state_dict", "missing ['unet."),
}  # fmt: skip


@pytest.mark.parametrize("change", MISFITS)
def test_state_dict_not_matching_hparams_raises(tmp_path, exported_unet, change):
    damage, entry, problem = MISFITS[change]
    checkpoint = torch.load(exported_unet, weights_only=True)
    damage(checkpoint)
    path = save_checkpoint(checkpoint, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError) as error:
        load_reconstructor(path)
    named = f"checkpoint {path} has no entry '{entry}'" if problem is None else f"checkpoint {path}: entry '{entry}' "
    assert str(error.value).startswith(named) and (problem is None or problem in str(error.value)), error.value


@pytest.mark.parametrize("record", [3, "x", [], {"mri_rl_version": "0", "data": {"train": 3}}])
def test_evaluating_an_export_with_a_bad_record_is_one_clear_error(tmp_path, singlecoil_root, record):
    """eval-recon reads the export's record (its training data) before anything: a record that is no
    record is refused there, naming the file and the entry, instead of failing as a dict later."""
    path = export_reconstructor(tiny_unet(), tmp_path / "unet.pt", record)
    masks = build_mask_samplers({"4x": {"kind": "random", "center_fractions": [0.08], "accelerations": [4]}})
    with pytest.raises(
        CheckpointError, match=rf"checkpoint {re.escape(str(path))}: entry 'record(\.data\.train)?' is "
    ):
        evaluate_reconstructor(path, singlecoil_root, "singlecoil", "val", masks)


def test_checkpoint_recon_size_must_match_data(singlecoil_root, tmp_path):
    path = export_reconstructor(tiny_unet(recon_size=(32, 32)), tmp_path / "big.pt")
    with pytest.raises(ValueError, match="32x32"):
        gym.make(ENV_ID, data_path=singlecoil_root / "singlecoil_train", reconstructor=path, budget=2, initial_lines=2)


def test_checkpoint_challenge_must_match_data(multicoil_root, exported_unet):
    with pytest.raises(ValueError, match="singlecoil"):
        gym.make(
            ENV_ID,
            data_path=multicoil_root / "multicoil_train",
            challenge="multicoil",
            reconstructor=exported_unet,
            budget=2,
            initial_lines=2,
        )


def test_export_of_untrainable_reconstructor_raises(tmp_path):
    with pytest.raises(ValueError, match="cannot export"):
        export_reconstructor(ZeroFilledReconstructor(), tmp_path / "zf.pt")
    assert not (tmp_path / "zf.pt").exists()


def test_build_reconstructor(exported_unet):
    assert isinstance(build_reconstructor("zero_filled"), ZeroFilledReconstructor)
    model = tiny_unet()
    assert build_reconstructor(model) is model
    assert isinstance(build_reconstructor(exported_unet), UnetReconstructor)
    assert isinstance(build_reconstructor(str(exported_unet)), UnetReconstructor)
    for bad in (3, None, 2.5, ["zero_filled"], torch.nn.Linear(2, 2)):
        with pytest.raises(TypeError, match="reconstructor"):
            build_reconstructor(bad)


def test_reconstructor_is_abstract():
    with pytest.raises(TypeError):
        Reconstructor()


@pytest.mark.parametrize("challenge_fixture", ["singlecoil_root", "multicoil_root"])
@pytest.mark.parametrize("batch_size", [1, 5, 1000])
def test_zero_filled_lookahead_by_linearity_equals_generic(request, challenge_fixture, batch_size):
    """The zero-filled episode reconstructions (kept images plus each candidate's column) give the
    same look-ahead images as masking k-space and transforming it again (the protocol's generic path)."""
    from mri_rl.data import FastMRISliceDataset
    from mri_rl.reconstruct.base import EpisodeReconstructions

    root = request.getfixturevalue(challenge_fixture)
    challenge = challenge_fixture.split("_")[0]
    dataset = FastMRISliceDataset(root / f"{challenge}_train", challenge)
    kspace = torch.stack([dataset[i].kspace.reshape(-1, *dataset[i].kspace.shape[-2:]) for i in range(3)])
    width = kspace.shape[-1]
    generator = torch.Generator().manual_seed(0)
    mask = torch.rand(3, width, generator=generator) < 0.3
    pair_rows = torch.tensor([0, 0, 1, 2, 2, 2])
    pair_columns = torch.tensor([0, width // 2, 3, 1, width - 1, 5])
    mask[pair_rows, pair_columns] = False  # candidates are columns not yet acquired, as in the env
    output = tuple(dataset[0].target.shape)
    zero_filled = ZeroFilledReconstructor()
    kept = zero_filled.episode_reconstructions(3, tuple(kspace.shape[1:]), output, kspace.device)
    kept.update(kspace, mask, torch.arange(3), torch.full((3,), -1))  # the episodes start: images kept
    fast = torch.cat(
        [images for _, images in kept.with_one_more_column(kspace, mask, pair_rows, pair_columns, batch_size)]
    )
    generic_path = EpisodeReconstructions(zero_filled, output)
    generic = torch.cat(
        [images for _, images in generic_path.with_one_more_column(kspace, mask, pair_rows, pair_columns, batch_size)]
    )
    assert fast.shape == (6, *output)
    torch.testing.assert_close(fast, generic, rtol=1e-4, atol=1e-6 * float(generic.abs().max()))


@pytest.mark.parametrize("width", [15, 16, 17, 368, 371])
@pytest.mark.parametrize("lines", [1, 2, 4, 8])
def test_varnet_estimates_coil_sensitivities_from_the_columns_acquired_at_the_centre(width, lines):
    mask = torch.from_numpy(initial_mask(width, 0, width, lines))
    pad, count = VarNetReconstructor(1, 2, 1, 2, 1).varnet.sens_net.get_pad_and_num_low_freqs(
        mask[None, None, None, :, None]
    )
    band = set(range(int(pad), int(pad + count)))
    acquired = set(np.flatnonzero(mask.numpy()).tolist())
    assert band <= acquired and len(band) >= len(acquired) - 1  # fastmri keeps the band symmetric about W // 2


def test_varnet_starts_from_fastmri_s_own_initial_weights():
    torch.manual_seed(3)
    ours = VarNetReconstructor(2, 2, 1, 2, 1).varnet.state_dict()
    after_ours = torch.rand(1)
    torch.manual_seed(3)
    fastmri_varnet = VarNet(num_cascades=2, sens_chans=2, sens_pools=1, chans=2, pools=1).state_dict()
    assert ours.keys() == fastmri_varnet.keys()
    assert all(torch.equal(ours[key], fastmri_varnet[key]) for key in ours)
    assert torch.equal(after_ours, torch.rand(1))
