"""Synthetic fastMRI-format volumes: anatomy-like complex phantoms and their k-space.

The generator stands in for fastMRI when a user has no access to it. Each volume is a
stack of cross-sections through random ellipsoids (a body with a bright outer layer,
inner "tissues", small details) with band-pass texture and an oriented striation (like
muscle fibres or trabecular bone), times a smooth phase, so the k-space has no Hermitian
symmetry. The striation's spatial frequency and orientation are drawn per volume, so part
of each volume's k-space energy lies in a band of columns away from the centre that
differs from volume to volume: the case where the choice of columns depends on the image.

The phantom is simulated into k-space by the path every non-fastMRI source shares
(:mod:`mri_rl.data.simulated_kspace`): the centred orthonormal FFT (:func:`mri_rl.kspace.fft2c`,
fastMRI's convention) of the complex image, with the readout oversampled 2x like the fastMRI
knee data (the target is the centre crop), optional zero-filled phase-encode edges recorded in
the ISMRMRD header, and complex Gaussian measurement noise. Multi-coil volumes multiply the
image by smooth coil sensitivities and store the root-sum-of-squares target.

Volume ``i`` of split ``s`` depends only on ``(seed, challenge, s, i)`` and the geometry,
so the same seed writes byte-identical files whatever the number of volumes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mri_rl.data.simulated_kspace import (
    SimulationSpec,
    acquire,
    check_relative_amplitude,
    draw_phase_coefficients,
    draw_sensitivities,
    encoded_coordinates,
    modulate,
    read_settings_record,
    write_simulated_dataset,
)
from mri_rl.task import DEFAULT_TASK

SETTINGS_FILE = "{challenge}_synthetic_settings.json"
#: Largest ``striation`` (amplitude relative to the phantom, whose texture is 0.1): at 10 the stripes swamp the
#: anatomy; far larger values (1e308) overflow and write non-finite k-space.
MAX_STRIATION = 10.0


@dataclass(frozen=True)
class SyntheticSpec(SimulationSpec):
    """What to generate: the acquisition (:class:`~mri_rl.data.simulated_kspace.SimulationSpec`) and the phantom.

    Attributes:
        challenge: "singlecoil" or "multicoil".
        num_slices: slices per volume (a number: None is refused).
        size: target image size N (N x N); k-space has 2N readout rows.
        kspace_width: phase-encode columns W of the k-space (default N).
        padding: zero-filled phase-encode columns on each side, recorded in the header.
        num_coils: receiver coils for multicoil (ignored for singlecoil).
        noise_level: k-space noise standard deviation relative to the image scale (at most 10).
        striation: relative amplitude of the oriented striation (0 turns it off), at most :data:`MAX_STRIATION`.
    """

    num_slices: int = 8
    striation: float = 0.2

    def __post_init__(self) -> None:
        if self.num_slices is None:
            raise ValueError("num_slices: expected an integer >= 1 (slices per synthetic volume), got None")
        super().__post_init__()
        striation = check_relative_amplitude(
            "striation", self.striation, MAX_STRIATION, "amplitude of the stripes relative to the phantom"
        )
        object.__setattr__(self, "striation", striation)


def _ellipsoids(
    rng: np.random.Generator,
    count: int,
    centre_spread: float,
    axes: tuple[float, float],
    depth: tuple[float, float],
    values: tuple[float, float],
) -> np.ndarray:
    """Random ellipsoids as rows (cx, cy, cz, ax, ay, az, angle, value)."""
    return np.stack(
        [
            rng.uniform(-centre_spread, centre_spread, count),
            rng.uniform(-centre_spread, centre_spread, count),
            rng.uniform(-0.5, 0.5, count),
            rng.uniform(*axes, count),
            rng.uniform(*axes, count),
            rng.uniform(*depth, count),
            rng.uniform(0, np.pi, count),
            rng.uniform(*values, count),
        ],
        axis=1,
    )


def _draw(u: np.ndarray, v: np.ndarray, z: float, ellipsoid: np.ndarray, pixels_per_unit: float) -> np.ndarray:
    """Cross-section of one ellipsoid at depth z, with a one-pixel soft edge.

    Returns the fill weight in [0, 1] on the (H, W) grid times the ellipsoid's value.
    """
    cx, cy, cz, ax, ay, az, angle, value = ellipsoid
    dz = (z - cz) / az
    if abs(dz) >= 1.0:
        return np.zeros_like(u)
    shrink = np.sqrt(1.0 - dz * dz)
    x = np.cos(angle) * (u - cx) + np.sin(angle) * (v - cy)
    y = -np.sin(angle) * (u - cx) + np.cos(angle) * (v - cy)
    radius = np.sqrt((x / (ax * shrink)) ** 2 + (y / (ay * shrink)) ** 2)
    edge_pixels = (1.0 - radius) * min(ax, ay) * shrink * pixels_per_unit
    return value * np.clip(0.5 + edge_pixels, 0.0, 1.0)


def _filtered_noise(rng: np.random.Generator, shape: tuple[int, int], band: np.ndarray) -> np.ndarray:
    """Gaussian noise filtered by ``band`` (on the FFT grid), real, unit standard deviation, shape ``shape``."""
    field = np.fft.ifft2(np.fft.fft2(rng.standard_normal(shape)) * band).real
    return field / (field.std() + 1e-12)


def _frequency_grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """FFT frequencies in cycles per pixel: fy (H, 1) and fx (1, W)."""
    return np.fft.fftfreq(shape[0])[:, None], np.fft.fftfreq(shape[1])[None, :]


def _texture(rng: np.random.Generator, shape: tuple[int, int], cycles_per_pixel: float) -> np.ndarray:
    """Isotropic band-pass texture around ``cycles_per_pixel``, unit standard deviation."""
    fy, fx = _frequency_grid(shape)
    radial = np.sqrt(fx**2 + fy**2)
    return _filtered_noise(rng, shape, np.exp(-(((radial - cycles_per_pixel) / (0.5 * cycles_per_pixel)) ** 2)))


def _striation(rng: np.random.Generator, shape: tuple[int, int], wavevector: tuple[float, float]) -> np.ndarray:
    """Oriented texture: stripes of wave vector ``(fy, fx)`` cycles per pixel with random phase
    and a 12% relative bandwidth, unit standard deviation."""
    fy, fx = _frequency_grid(shape)
    ky, kx = wavevector
    variance = 2 * (0.12 * np.hypot(ky, kx)) ** 2
    band = np.exp(-((fy - ky) ** 2 + (fx - kx) ** 2) / variance) + np.exp(-((fy + ky) ** 2 + (fx + kx) ** 2) / variance)
    return _filtered_noise(rng, shape, band)


def _body(rng: np.random.Generator) -> tuple[np.ndarray, float, float, float]:
    """The body ellipsoid (centre x, y, z, axes, angle, value), its value, outer layer and layer thickness."""
    body = np.array(
        [
            rng.uniform(-0.05, 0.05),
            rng.uniform(-0.05, 0.05),
            0.0,
            rng.uniform(0.75, 0.9),
            rng.uniform(0.6, 0.85),
            rng.uniform(0.9, 1.3),
            rng.uniform(-0.3, 0.3),
            1.0,
        ]
    )
    return body, rng.uniform(0.3, 0.45), rng.uniform(0.3, 0.5), rng.uniform(0.85, 0.92)


def synthesize_images(spec: SyntheticSpec, rng: np.random.Generator) -> np.ndarray:
    """Complex images of one volume on the full encoded grid: the phantom's magnitude times the
    shared smooth phase and coil maps (:func:`mri_rl.data.simulated_kspace.modulate`).

    Returns:
        complex128 array (slices, H, W) for singlecoil or (slices, coils, H, W) for
        multicoil, with H = 2 * size and W = kspace width.
    """
    height, width = 2 * spec.size, spec.width
    pixels_per_unit = spec.size / 2
    v, u = encoded_coordinates(spec)

    body, body_value, outer_layer, layer_thickness = _body(rng)
    tissues = _ellipsoids(rng, int(rng.integers(4, 8)), 0.4, (0.08, 0.35), (0.2, 0.8), (-0.25, 0.5))
    details = _ellipsoids(rng, int(rng.integers(6, 16)), 0.55, (0.015, 0.05), (0.05, 0.3), (-0.25, 0.35))
    phase_coefficients = draw_phase_coefficients(rng)
    scale = 10 ** rng.uniform(-4.3, -3.7)  # fastMRI knee images are of order 1e-4
    texture_frequency = rng.uniform(0.08, 0.2)
    # Stripes within 45 degrees of varying along the phase-encode direction, 0.12-0.28 cycles/pixel.
    # Drawn (and the striation field below computed) whatever its amplitude, so that the other
    # random draws, and hence the rest of the phantom, do not depend on it.
    striation_angle, striation_frequency = rng.uniform(-np.pi / 4, np.pi / 4), rng.uniform(0.12, 0.28)
    striation_wavevector = (
        striation_frequency * np.sin(striation_angle),
        striation_frequency * np.cos(striation_angle),
    )
    sensitivities = draw_sensitivities(rng, spec, u, v)

    inner = body.copy()
    inner[3:5] *= layer_thickness
    depths = np.linspace(-0.6, 0.6, spec.num_slices)
    magnitudes = []
    for z in depths:
        body_mask = _draw(u, v, z, body, pixels_per_unit)
        magnitude = body_value * body_mask + outer_layer * (body_mask - _draw(u, v, z, inner, pixels_per_unit))
        for ellipsoid in np.concatenate([tissues, details]):
            magnitude += _draw(u, v, z, ellipsoid, pixels_per_unit) * body_mask
        magnitude *= (
            1.0
            + 0.1 * _texture(rng, (height, width), texture_frequency)
            + spec.striation * _striation(rng, (height, width), striation_wavevector)
        )
        magnitudes.append(np.clip(magnitude, 0.0, None) * scale)
    return modulate(np.stack(magnitudes), depths, phase_coefficients, u, v, sensitivities)


def simulate_volume(spec: SyntheticSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """K-space and target of one synthetic volume (:func:`mri_rl.data.simulated_kspace.acquire`).

    Returns:
        kspace: complex64, (slices, 2N, W) or (slices, coils, 2N, W), padded columns zero.
        target: float32 (slices, N, N): centre crop of the magnitude (singlecoil) or of the
            root-sum-of-squares (multicoil) of the IFFT of the stored k-space.
    """
    return acquire(synthesize_images(spec, rng), spec, rng)


_CONTRAST = {"singlecoil": "CORPD_FBK", "multicoil": "AXT2"}


def write_synthetic_dataset(
    out_dir: str | Path, spec: SyntheticSpec, volumes: dict[str, int], seed: int = 0, progress: bool = True
) -> list[Path]:
    """Write synthetic volumes into fastMRI's folder layout ``out_dir/{challenge}_{split}``.

    Args:
        out_dir: root folder (created if needed).
        spec: geometry and content of each volume.
        volumes: number of volumes per split, e.g. ``{"train": 8, "val": 2, "test": 2}``.
        seed: base seed; volume i of split s uses ``(seed, challenge, s, i)``.
        progress: show a progress bar.

    Returns:
        Paths of the written files, in order. ``out_dir/{challenge}_synthetic_settings.json``
        records the spec and seed (see :func:`read_synthetic_settings`).
    """

    def make_volume(split: str, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        kspace, target = simulate_volume(spec, rng)
        attrs = {
            "acquisition": _CONTRAST[spec.challenge],
            "patient_id": f"synthetic-{seed}-{split}-{index:03d}",
            "synthetic": True,
        }
        return kspace, target, attrs

    naming = ("synthetic", SETTINGS_FILE)
    return write_simulated_dataset(
        out_dir, spec, volumes, seed, make_volume, naming, synthetic_settings(spec, seed), progress
    )


def synthetic_settings(spec: SyntheticSpec, seed: int) -> dict[str, Any]:
    """What :func:`write_synthetic_dataset` records: the seed and the spec."""
    return {"seed": seed, **asdict(spec)}


def read_synthetic_settings(root: str | Path, challenge: str = DEFAULT_TASK.challenge) -> dict | None:
    """The spec and seed a synthetic root's ``challenge`` volumes were last written with, or
    None when it holds no record."""
    return read_settings_record(root, SETTINGS_FILE, challenge)
