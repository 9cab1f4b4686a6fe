"""The k-space observations (column power spectrum, column energy): known answers, and the env's
``column_spectrum`` and ``column_energy`` options."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from mri_rl.envs.spaces import column_energy, column_power_spectrum


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
