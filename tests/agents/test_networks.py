"""Observation encoders: the column power spectrum and the image encoder that reads it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from mri_rl.agents.networks import ObservationEncoder, column_power_spectrum


@pytest.mark.parametrize("frequency", [0, 3, 7])
def test_column_power_spectrum_of_a_cosine_peaks_at_its_frequency(frequency):
    columns = torch.arange(16, dtype=torch.float32)
    image = torch.cos(2 * np.pi * frequency * columns / 16).expand(2, 1, 8, 16)  # (B, C, H, W)
    spectrum = column_power_spectrum(image)
    assert spectrum.shape == (2, 9)
    assert spectrum.argmax(dim=1).tolist() == [frequency, frequency]
    # Orthonormal FFT: a unit cosine has power 16 at DC, 16 / 4 at any other frequency.
    expected = 16.0 if frequency == 0 else 4.0
    assert spectrum[0, frequency].item() == pytest.approx(np.log(expected + 1e-6), rel=1e-5)


def test_spectrum_does_not_depend_on_where_the_pattern_is():
    image = torch.zeros(1, 1, 8, 16)
    image[..., 2:5] = 1.0
    shifted = torch.roll(image, 7, dims=-1)
    torch.testing.assert_close(column_power_spectrum(image), column_power_spectrum(shifted), atol=1e-4, rtol=1e-4)


def test_image_encoder_feeds_the_spectrum_to_its_output_layer_when_asked():
    space = spaces.Dict(
        {"reconstruction": spaces.Box(-np.inf, np.inf, (1, 8, 16), np.float32), "mask": spaces.MultiBinary(16)}
    )
    plain, spectral = ObservationEncoder(space), ObservationEncoder(space, image_spectrum=True)
    assert plain.output_dim == spectral.output_dim == 64 + 16
    spectrum_inputs = spectral.encoders["reconstruction"].project[0].in_features
    assert spectrum_inputs == plain.encoders["reconstruction"].project[0].in_features + 9
    obs = {"reconstruction": torch.randn(3, 1, 8, 16), "mask": torch.zeros(3, 16)}
    assert spectral(obs).shape == (3, 80)
