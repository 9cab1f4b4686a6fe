"""The column power spectrum observation: known answers, and the env's ``column_spectrum`` option."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from mri_rl.envs.spaces import column_power_spectrum


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
