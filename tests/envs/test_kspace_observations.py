"""The optional observations (column power spectrum, column energy, the reconstructor's feature
maps, the measured energy): known answers, and the env's ``column_spectrum``, ``column_energy``,
``reconstructor_features`` and ``measured_energy`` options."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from gymnasium import spaces

from mri_rl.envs.spaces import (
    column_data_energy,
    column_energy,
    column_power_spectrum,
    feature_grid,
    measured_column_energy,
    pooled_features,
)
from mri_rl.kspace import ifft2c
from mri_rl.reconstruct import UnetReconstructor


@pytest.mark.parametrize("frequency", [0, 3, 7])
def test_column_power_spectrum_of_a_cosine_peaks_at_its_frequency(frequency):
    columns = torch.arange(16, dtype=torch.float32)
    image = torch.cos(2 * np.pi * frequency * columns / 16).expand(2, 8, 16)  # (N, h, w)
    spectrum = column_power_spectrum(image)
    assert spectrum.shape == (2, 9)
    assert spectrum.argmax(dim=1).tolist() == [frequency, frequency]
    # Orthonormal FFT: a unit cosine has power 16 at DC, 16 / 4 at any other frequency.
    expected = 16.0 if frequency == 0 else 4.0
    assert spectrum[0, frequency].item() == pytest.approx(np.log(expected + 1e-6), rel=1e-5)


def test_spectrum_does_not_depend_on_where_the_pattern_is():
    image = torch.zeros(1, 8, 16)
    image[..., 2:5] = 1.0
    shifted = torch.roll(image, 7, dims=-1)
    torch.testing.assert_close(column_power_spectrum(image), column_power_spectrum(shifted), atol=1e-4, rtol=1e-4)


def test_the_env_observes_the_spectrum_of_its_reconstruction_when_asked(make_env, make_vec_env, singlecoil_train):
    plain, spectral = make_env(singlecoil_train), make_env(singlecoil_train, column_spectrum=True)
    assert set(plain.observation_space.spaces) == {"reconstruction", "acquired"}
    assert spectral.observation_space["column_spectrum"] == spaces.Box(-np.inf, np.inf, (9,), np.float32)
    obs, _ = spectral.reset(seed=0)
    obs, *_ = spectral.step(int(np.flatnonzero(spectral.unwrapped.action_masks())[0]))
    expected = column_power_spectrum(torch.from_numpy(obs["reconstruction"]))[0].numpy()
    np.testing.assert_allclose(obs["column_spectrum"], expected, rtol=1e-5, atol=1e-6)
    assert spectral.observation_space.contains(obs)
    batched, _ = make_vec_env(singlecoil_train, 3, column_spectrum=True).reset(seed=0)
    assert batched["column_spectrum"].shape == (3, 9) and batched["column_spectrum"].dtype == np.float32


@pytest.mark.parametrize("frequency", [1, 5])
def test_column_energy_of_a_cosine_lies_in_the_columns_of_its_frequency(frequency):
    """Centred convention: frequency f sits at columns W // 2 - f and W // 2 + f of the k-space."""
    columns = torch.arange(16, dtype=torch.float32)
    image = torch.cos(2 * np.pi * frequency * columns / 16).expand(2, 8, 16)
    energy = column_energy(image, 16)
    assert energy.shape == (2, 16)
    assert sorted(torch.topk(energy[0], 2).indices.tolist()) == [8 - frequency, 8 + frequency]
    assert energy[0, 8 + frequency].item() == pytest.approx(np.log(4.0 + 1e-6), rel=1e-5)  # 16 / 4, as above


def test_column_energy_pads_a_cropped_reconstruction_to_the_kspace_width():
    """A reconstruction narrower than k-space (fastMRI: 320 of 368 columns) is zero-padded: its
    DC stays at column W // 2 and a cosine of period 4 pixels at W / 4 columns from it."""
    columns = torch.arange(12, dtype=torch.float32)
    image = (1.0 + torch.cos(2 * np.pi * columns / 4)).expand(1, 4, 12)
    energy = column_energy(image, 20)[0]
    assert energy.shape == (20,) and int(energy.argmax()) == 10
    assert {int(energy[:8].argmax()), int(energy[13:].argmax()) + 13} == {5, 15}
    assert column_energy(torch.ones(1, 4, 24), 20).shape == (1, 20)  # wider: cropped


def test_the_env_observes_the_column_energy_of_its_reconstruction_when_asked(make_env, singlecoil_train):
    env = make_env(singlecoil_train, column_energy=True)
    width = env.action_space.n
    assert env.observation_space["column_energy"] == spaces.Box(-np.inf, np.inf, (width,), np.float32)
    assert "column_spectrum" not in env.observation_space.spaces
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(int(np.flatnonzero(env.unwrapped.action_masks())[0]))
    expected = column_energy(torch.from_numpy(obs["reconstruction"]), width)[0].numpy()
    np.testing.assert_allclose(obs["column_energy"], expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="column_energy: expected True or False, got 'yes'"):
        make_env(singlecoil_train, column_energy="yes")


@pytest.mark.parametrize(
    ("recon_size", "grid"), [((16, 16), (16, 16)), ((64, 64), (32, 32)), ((320, 320), (32, 32)), ((100, 64), (50, 32))]
)
def test_feature_grid_averages_blocks_down_to_about_32(recon_size, grid):
    assert feature_grid(recon_size) == grid


def test_pooled_features_are_block_means():
    features = torch.arange(2 * 3 * 64 * 64, dtype=torch.float32).reshape(2, 3, 64, 64)
    pooled = pooled_features(features, (64, 64))
    assert pooled.shape == (2, 3, 32, 32)
    assert pooled[1, 2, 5, 7].item() == pytest.approx(features[1, 2, 10:12, 14:16].mean().item())


def _decoder_features(model: UnetReconstructor, kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The U-Net's last decoder block's output for masked ``kspace`` (B, C, H, W), by a hook of the test's own."""
    outputs: list[torch.Tensor] = []
    hook = model.unet.up_conv[-1][0].register_forward_hook(lambda _m, _i, out: outputs.append(out))
    try:
        with torch.no_grad():
            model(kspace * mask[:, None, None, :], mask, (16, 16))
    finally:
        hook.remove()
    return outputs[0]


def test_the_env_observes_the_unets_feature_maps_of_its_reconstruction(make_vec_env, singlecoil_train):
    torch.manual_seed(0)
    model = UnetReconstructor(chans=4, num_pool_layers=2, recon_size=(16, 16)).eval()
    env = make_vec_env(singlecoil_train, 3, reconstructor=model, reconstructor_features=True)
    assert env.single_observation_space["reconstructor_features"] == spaces.Box(
        -np.inf, np.inf, (4, 16, 16), np.float32
    )
    obs, info = env.reset(seed=0)
    obs, *_ = env.step(np.array([int(np.flatnonzero(mask)[0]) for mask in info["action_mask"]]))
    episodes = env.unwrapped.episodes
    expected = _decoder_features(model, episodes.kspace, episodes.acquired)
    np.testing.assert_allclose(obs["reconstructor_features"], expected.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(obs["reconstructor_features"][0], obs["reconstructor_features"][1])
    env.unwrapped.look_ahead(np.tile(np.arange(4), (3, 1)))  # U-Net calls that do not change the state
    np.testing.assert_array_equal(episodes.observation()["reconstructor_features"], obs["reconstructor_features"])


def test_reconstructor_features_need_a_reconstructor_with_feature_maps(make_env, singlecoil_train):
    with pytest.raises(ValueError, match="ZeroFilledReconstructor reconstructor has no feature maps"):
        make_env(singlecoil_train, reconstructor_features=True)
    with pytest.raises(ValueError, match="reconstructor_features: expected True or False, got 1"):
        make_env(singlecoil_train, reconstructor_features=1)


def test_measured_energy_is_the_acquired_columns_energy_and_tells_a_column_from_its_mirror():
    """Known answer on k-space of constant columns; the magnitude image's column energy is the same
    for a column and its mirror, the measured energy is not."""
    kspace = torch.zeros(1, 2, 4, 8, dtype=torch.complex64)  # (N, C, H, W), centre column 4
    kspace[..., 4] = 3.0
    kspace[..., 5] = 2.0j  # one side of the centre only
    kspace[0, 1, :, 6] = 1.0  # one coil of two: mean |k|^2 = 0.5
    acquired = torch.tensor([[False, False, False, True, True, True, True, False]])
    energy = measured_column_energy(column_data_energy(kspace), acquired, torch.full((1, 1, 1), 2.0))
    expected = [0, 0, 0, np.log(1e-6), np.log(9 / 4 + 1e-6), np.log(4 / 4 + 1e-6), np.log(0.5 / 4 + 1e-6), 0]
    np.testing.assert_allclose(energy[0].numpy(), expected, rtol=1e-5, atol=1e-6)
    assert energy.dtype == torch.float32
    magnitude = ifft2c(kspace[:, 0]).abs()  # what the policy sees of the image, (N, H, W)
    mirrored = column_energy(magnitude, 8)[0]
    assert mirrored[3].item() == pytest.approx(mirrored[5].item(), rel=1e-4)  # blind to the side
    assert energy[0, 5] > energy[0, 3]


@pytest.mark.parametrize("challenge", ["singlecoil", "multicoil"])
def test_the_env_observes_the_measured_energy_of_the_files_kspace(
    make_vec_env, singlecoil_train, multicoil_train, challenge
):
    """The observation is the energy of the k-space stored in the slice's file (read here with h5py),
    mean over coils and rows, relative to the square of the initial zero-filled image's maximum."""
    folder = singlecoil_train if challenge == "singlecoil" else multicoil_train
    env = make_vec_env(folder, 2, challenge=challenge, measured_energy=True)
    width = env.single_action_space.n
    assert env.single_observation_space["measured_energy"] == spaces.Box(-np.inf, np.inf, (width,), np.float32)
    obs, info = env.reset(seed=0)
    obs, _, _, _, info = env.step(np.array([int(np.flatnonzero(mask)[0]) for mask in info["action_mask"]]))
    episodes = env.unwrapped.episodes
    dataset = episodes.source.dataset
    for row, slice_id in enumerate(info["slice_id"]):
        path, index, _ = dataset.raw_samples[int(slice_id)]
        with h5py.File(path, "r") as f:
            kspace = torch.from_numpy(np.asarray(f["kspace"][index])).reshape(episodes.kspace.shape[1:])
        acquired = obs["acquired"][row].astype(bool)
        scale = episodes.observation_scale[row].item()
        energy = (kspace.abs() ** 2).mean(dim=(0, 1)).numpy() / scale**2
        expected = np.where(acquired, np.log(energy + 1e-6), 0.0)
        np.testing.assert_allclose(obs["measured_energy"][row], expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(obs["measured_energy"][0], obs["measured_energy"][1])
