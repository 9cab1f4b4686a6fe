"""Synthetic fastMRI-format volumes: anatomy-like complex phantoms and their k-space.

The generator stands in for fastMRI when a user has no access to it. Each volume is a
stack of cross-sections through random ellipsoids (a body with a bright outer layer,
inner "tissues", small details) with band-pass texture and an oriented striation (like
muscle fibres or trabecular bone), times a smooth phase, so the k-space has no Hermitian
symmetry. The striation's spatial frequency and orientation are drawn per volume, so part
of each volume's k-space energy lies in a band of columns away from the centre that
differs from volume to volume: the case where the choice of columns depends on the image.

K-space is the centred orthonormal FFT (:func:`mri_rl.kspace.fft2c`, fastMRI's convention)
of the image, with the readout oversampled 2x like the fastMRI knee data (the target is the centre crop), optional
zero-filled phase-encode edges recorded in the ISMRMRD header, and complex Gaussian
measurement noise. Multi-coil volumes multiply the image by smooth coil sensitivities and
store the root-sum-of-squares target.

Volume ``i`` of split ``s`` depends only on ``(seed, challenge, s, i)`` and the geometry,
so the same seed writes byte-identical files whatever the number of volumes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import fastmri
import numpy as np
import torch
from fastmri.data.transforms import center_crop
from tqdm import tqdm

from mri_rl.checks import check_int, check_number
from mri_rl.data.fastmri_files import CHALLENGES, SPLITS, write_volume
from mri_rl.files import atomic_write_text
from mri_rl.kspace import KspaceGeometry, fft2c, ifft2c
from mri_rl.task import DEFAULT_TASK

SETTINGS_FILE = "{challenge}_synthetic_settings.json"


@dataclass(frozen=True)
class SyntheticSpec:
    """What to generate.

    Attributes:
        challenge: "singlecoil" or "multicoil".
        num_slices: slices per volume.
        size: target image size N (N x N); k-space has 2N readout rows.
        kspace_width: phase-encode columns W of the k-space (default N).
        padding: zero-filled phase-encode columns on each side, recorded in the header.
        num_coils: receiver coils for multicoil (ignored for singlecoil).
        noise_level: k-space noise standard deviation relative to the image scale.
        striation: relative amplitude of the oriented striation (0 turns it off).
    """

    challenge: str = DEFAULT_TASK.challenge
    num_slices: int = 8
    size: int = 64
    kspace_width: int | None = None
    padding: int = 0
    num_coils: int = 4
    noise_level: float = 0.01
    striation: float = 0.2

    def __post_init__(self) -> None:
        if self.challenge not in CHALLENGES:
            raise ValueError(f"challenge must be one of {CHALLENGES}, got {self.challenge!r}")
        # The checked values (numpy numbers made Python ones, for the JSON settings) replace the given ones.
        checked = {
            "num_slices": check_int("num_slices", self.num_slices, 1),
            "size": check_int("size", self.size, 8),
            "kspace_width": None if self.kspace_width is None else check_int("kspace_width", self.kspace_width, 1),
            "padding": check_int("padding", self.padding, 0),
            "num_coils": check_int(
                "num_coils" + (" of a multicoil volume" if self.challenge == "multicoil" else ""),
                self.num_coils,
                2 if self.challenge == "multicoil" else 1,
            ),
            "noise_level": check_number("noise_level", self.noise_level, 0),
            "striation": check_number("striation", self.striation, 0),
        }
        for name, value in checked.items():
            object.__setattr__(self, name, value)
        if self.width < self.size:
            raise ValueError(f"kspace_width ({self.width}) must be at least size ({self.size})")
        if 2 * self.padding >= self.width:
            raise ValueError(f"padding must be in [0, {(self.width - 1) // 2}], got {self.padding}")

    @property
    def width(self) -> int:
        """Phase-encode columns of the stored k-space."""
        return self.kspace_width if self.kspace_width is not None else self.size

    @property
    def geometry(self) -> KspaceGeometry:
        return KspaceGeometry(
            encoded_size=(2 * self.size, self.width, 1),
            recon_size=(self.size, self.size, 1),
            padding_left=self.padding,
            padding_right=self.width - self.padding,
        )


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


def _coil_sensitivities(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, num_coils: int) -> np.ndarray:
    """Smooth complex coil maps around the object, shape (coils, H, W)."""
    angles = 2 * np.pi * np.arange(num_coils) / num_coils + rng.uniform(-0.2, 0.2, num_coils)
    distance = rng.uniform(1.1, 1.4, num_coils)
    width = rng.uniform(0.7, 1.0, num_coils)
    phase0 = rng.uniform(-np.pi, np.pi, num_coils)
    gradient = rng.uniform(-0.5, 0.5, (num_coils, 2))
    maps = []
    for c in range(num_coils):
        cx, cy = distance[c] * np.cos(angles[c]), distance[c] * np.sin(angles[c])
        magnitude = np.exp(-((u - cx) ** 2 + (v - cy) ** 2) / (2 * width[c] ** 2))
        phase = phase0[c] + gradient[c, 0] * u + gradient[c, 1] * v
        maps.append(magnitude * np.exp(1j * phase))
    return np.stack(maps)


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
    """Complex images of one volume on the full encoded grid.

    Returns:
        complex128 array (slices, H, W) for singlecoil or (slices, coils, H, W) for
        multicoil, with H = 2 * size and W = kspace width.
    """
    height, width = 2 * spec.size, spec.width
    pixels_per_unit = spec.size / 2
    rows = (np.arange(height) - height / 2) / pixels_per_unit
    cols = (np.arange(width) - width / 2) / pixels_per_unit
    v, u = np.meshgrid(rows, cols, indexing="ij")

    body, body_value, outer_layer, layer_thickness = _body(rng)
    tissues = _ellipsoids(rng, int(rng.integers(4, 8)), 0.4, (0.08, 0.35), (0.2, 0.8), (-0.25, 0.5))
    details = _ellipsoids(rng, int(rng.integers(6, 16)), 0.55, (0.015, 0.05), (0.05, 0.3), (-0.25, 0.35))
    phase_coefficients = rng.uniform(-1, 1, 7) * np.array([np.pi, 1.0, 1.0, 0.5, 0.5, 0.5, 1.0])
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
    sensitivities = _coil_sensitivities(rng, u, v, spec.num_coils) if spec.challenge == "multicoil" else None

    inner = body.copy()
    inner[3:5] *= layer_thickness
    images = []
    for z in np.linspace(-0.6, 0.6, spec.num_slices):
        body_mask = _draw(u, v, z, body, pixels_per_unit)
        magnitude = body_value * body_mask + outer_layer * (body_mask - _draw(u, v, z, inner, pixels_per_unit))
        for ellipsoid in np.concatenate([tissues, details]):
            magnitude += _draw(u, v, z, ellipsoid, pixels_per_unit) * body_mask
        magnitude *= (
            1.0
            + 0.1 * _texture(rng, (height, width), texture_frequency)
            + spec.striation * _striation(rng, (height, width), striation_wavevector)
        )
        magnitude = np.clip(magnitude, 0.0, None) * scale
        c = phase_coefficients
        phase = c[0] + c[1] * u + c[2] * v + c[3] * u * v + c[4] * u**2 + c[5] * v**2 + c[6] * z
        image = magnitude * np.exp(1j * phase)
        images.append(image if sensitivities is None else sensitivities * image)
    return np.stack(images)


def simulate_volume(spec: SyntheticSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """K-space and target of one synthetic volume.

    Returns:
        kspace: complex64, (slices, 2N, W) or (slices, coils, 2N, W), padded columns zero.
        target: float32 (slices, N, N): centre crop of the magnitude (singlecoil) or of the
            root-sum-of-squares (multicoil) of the IFFT of the stored k-space.
    """
    images = synthesize_images(spec, rng)
    kspace = fft2c(torch.from_numpy(images)).numpy()
    noise_std = spec.noise_level * np.abs(images).max()
    kspace = kspace + noise_std * (rng.standard_normal(kspace.shape) + 1j * rng.standard_normal(kspace.shape))
    geometry = spec.geometry
    kspace[..., : geometry.padding_left] = 0
    kspace[..., geometry.padding_right :] = 0
    kspace = kspace.astype(np.complex64)
    return kspace, target_from_kspace(kspace, spec.challenge, (spec.size, spec.size))


def target_from_kspace(kspace: np.ndarray, challenge: str, size: tuple[int, int]) -> np.ndarray:
    """The fastMRI target of fully sampled k-space: centre-cropped |IFFT| or RSS.

    Args:
        kspace: complex (slices, H, W) singlecoil or (slices, coils, H, W) multicoil.
        challenge: "singlecoil" or "multicoil".
        size: (rows, columns) of the target.

    Returns:
        float32 (slices, rows, columns).
    """
    image = ifft2c(torch.from_numpy(kspace.astype(np.complex128)))
    magnitude = fastmri.complex_abs(torch.view_as_real(image))
    if challenge == "multicoil":
        magnitude = fastmri.rss(magnitude, dim=1)
    return center_crop(magnitude, size).numpy().astype(np.float32)


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
    unknown = set(volumes) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}; expected some of {SPLITS}")
    jobs = [(split, index) for split in SPLITS for index in range(volumes.get(split, 0))]
    written = []
    for split, index in tqdm(jobs, desc="synthetic volumes", unit="vol", disable=not progress):
        rng = np.random.default_rng([seed, CHALLENGES.index(spec.challenge), SPLITS.index(split), index])
        kspace, target = simulate_volume(spec, rng)
        path = Path(out_dir) / f"{spec.challenge}_{split}" / f"synthetic_s{seed}_{split}_{index:03d}.h5"
        attrs = {
            "acquisition": _CONTRAST[spec.challenge],
            "patient_id": f"synthetic-{seed}-{split}-{index:03d}",
            "synthetic": True,
        }
        write_volume(path, kspace, target, spec.challenge, spec.geometry, attrs)
        written.append(path)
    settings = json.dumps({"seed": seed, **asdict(spec)}, indent=1) + "\n"
    atomic_write_text(Path(out_dir) / SETTINGS_FILE.format(challenge=spec.challenge), settings)
    return written


def read_synthetic_settings(root: str | Path, challenge: str = DEFAULT_TASK.challenge) -> dict | None:
    """The spec and seed a synthetic root's ``challenge`` volumes were last written with, or
    None when it holds no record."""
    path = Path(root) / SETTINGS_FILE.format(challenge=challenge)
    return json.loads(path.read_text()) if path.is_file() else None
