"""Simulated complex k-space from magnitude images: the one simulation path of every source that is
not raw fastMRI k-space (the synthetic phantoms, imported NIfTI/DICOM/image stacks, the MNI152 template).

Most MRI data outside fastMRI are magnitude images. Like Bakker et al. ("Experimental design for
MRI by greedy policy search", NeurIPS 2020), who trained on k-space simulated from magnitude
images, k-space is simulated from them, in the layout of the fastMRI knee data (Zbontar et al.,
"fastMRI: An Open Dataset and Benchmarks for Accelerated MRI", 2018):

1. the magnitude of each slice lies on the *encoded grid* of 2N readout rows (the readout is
   oversampled 2x) by W phase-encode columns; an image from elsewhere is resized to fit the
   centre N x N, keeping its aspect ratio, and zero-padded (:func:`fit_to_grid`);
2. it is multiplied by a smooth random phase (:func:`smooth_phase`), so that its k-space has no
   Hermitian symmetry, and for multicoil by smooth complex coil sensitivities (:func:`coil_sensitivities`);
3. k-space is its centred orthonormal FFT (:func:`mri_rl.kspace.fft2c`, fastMRI's convention), plus
   complex Gaussian noise of standard deviation ``noise_level`` times the volume's largest image
   magnitude, with the phase-encode edges outside ``[padding, W - padding)`` zero-filled (and recorded
   in the ISMRMRD header by :func:`mri_rl.data.fastmri_files.write_volume`);
4. the target is the centre N x N crop of |IFFT| of the stored k-space (root-sum-of-squares over the
   coils for multicoil), exactly as fastMRI defines its targets (:func:`target_from_kspace`).

Coordinates ``(v, u)`` of the encoded grid are in units of half the target size, so the target
spans [-1, 1) on both axes (:func:`encoded_coordinates`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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

#: Relative weights of the smooth phase's terms: constant, u, v, u*v, u^2, v^2, slice depth.
PHASE_WEIGHTS = np.array([np.pi, 1.0, 1.0, 0.5, 0.5, 0.5, 1.0])
#: Largest ``noise_level`` (k-space noise std relative to the largest image magnitude): at 10 the image is
#: already buried in noise; far larger values (1e308) overflow complex64 and write non-finite k-space.
MAX_NOISE_LEVEL = 10.0


def check_relative_amplitude(name: str, value: Any, maximum: float, meaning: str) -> float:
    """``value`` as a float in [0, ``maximum``].

    Raises:
        ValueError: not a finite number >= 0 (:func:`mri_rl.checks.check_number`'s message), or
            ``"{name}: expected a number in [0, {maximum}] ({meaning}), got {value}"``.
    """
    number = check_number(name, value, 0)
    if number > maximum:
        raise ValueError(f"{name}: expected a number in [0, {maximum:g}] ({meaning}), got {number:g}")
    return number


@dataclass(frozen=True)
class SimulationSpec:
    """The acquisition every simulated volume shares: challenge, geometry, coils and noise.

    Attributes:
        challenge: "singlecoil" or "multicoil".
        num_slices: slices per volume; None (imports and the anatomy source): every usable slice.
        size: target image size N (N x N); k-space has 2N readout rows.
        kspace_width: phase-encode columns W of the k-space (default N).
        padding: zero-filled phase-encode columns on each side, recorded in the header.
        num_coils: receiver coils for multicoil (ignored for singlecoil).
        noise_level: k-space noise standard deviation relative to the largest image magnitude,
            at most :data:`MAX_NOISE_LEVEL`.
    """

    challenge: str = DEFAULT_TASK.challenge
    num_slices: int | None = 8
    size: int = 64
    kspace_width: int | None = None
    padding: int = 0
    num_coils: int = 4
    noise_level: float = 0.01

    def __post_init__(self) -> None:
        if self.challenge not in CHALLENGES:
            raise ValueError(f"challenge must be one of {CHALLENGES}, got {self.challenge!r}")
        # The checked values (numpy numbers made Python ones, for the JSON settings) replace the given ones.
        checked = {
            "num_slices": None if self.num_slices is None else check_int("num_slices", self.num_slices, 1),
            "size": check_int("size", self.size, 8),
            "kspace_width": None if self.kspace_width is None else check_int("kspace_width", self.kspace_width, 1),
            "padding": check_int("padding", self.padding, 0),
            "num_coils": check_int(
                "num_coils" + (" of a multicoil volume" if self.challenge == "multicoil" else ""),
                self.num_coils,
                2 if self.challenge == "multicoil" else 1,
            ),
            "noise_level": check_relative_amplitude(
                "noise_level", self.noise_level, MAX_NOISE_LEVEL, "k-space noise std relative to the image maximum"
            ),
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


def encoded_coordinates(spec: SimulationSpec) -> tuple[np.ndarray, np.ndarray]:
    """Positions on the encoded grid in units of half the target size: v (rows) and u (columns), each (2N, W)."""
    height, width = 2 * spec.size, spec.width
    pixels_per_unit = spec.size / 2
    rows = (np.arange(height) - height / 2) / pixels_per_unit
    cols = (np.arange(width) - width / 2) / pixels_per_unit
    v, u = np.meshgrid(rows, cols, indexing="ij")
    return v, u


def draw_phase_coefficients(rng: np.random.Generator) -> np.ndarray:
    """Coefficients (7,) of a smooth random phase (see :func:`smooth_phase`)."""
    return rng.uniform(-1, 1, 7) * PHASE_WEIGHTS


def smooth_phase(coefficients: np.ndarray, u: np.ndarray, v: np.ndarray, depth: float) -> np.ndarray:
    """Phase (radians) on the grid (H, W): a quadratic in (u, v) plus a term linear in the slice ``depth``."""
    c = coefficients
    return c[0] + c[1] * u + c[2] * v + c[3] * u * v + c[4] * u**2 + c[5] * v**2 + c[6] * depth


def coil_sensitivities(rng: np.random.Generator, u: np.ndarray, v: np.ndarray, num_coils: int) -> np.ndarray:
    """Smooth complex coil maps around the object, shape (coils, H, W): Gaussian magnitude around
    coils on a ring outside the target, linear phase."""
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


def draw_sensitivities(
    rng: np.random.Generator, spec: SimulationSpec, u: np.ndarray, v: np.ndarray
) -> np.ndarray | None:
    """:func:`coil_sensitivities` (coils, H, W) for multicoil; None (and no draw) for singlecoil."""
    return coil_sensitivities(rng, u, v, spec.num_coils) if spec.challenge == "multicoil" else None


def modulate(
    magnitudes: np.ndarray,
    depths: np.ndarray,
    phase_coefficients: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    sensitivities: np.ndarray | None,
) -> np.ndarray:
    """Complex images: each magnitude slice times its smooth phase, times the coil maps for multicoil.

    Args:
        magnitudes: real (slices, H, W) on the encoded grid.
        depths: (slices,) slice positions, about [-1, 1], for the phase's depth term.
        phase_coefficients: (7,) from :func:`draw_phase_coefficients`.
        u, v: (H, W) grid positions from :func:`encoded_coordinates`.
        sensitivities: (coils, H, W), or None for singlecoil.

    Returns:
        complex128 (slices, H, W), or (slices, coils, H, W) with sensitivities.
    """
    images = []
    for magnitude, depth in zip(magnitudes, depths):
        image = magnitude * np.exp(1j * smooth_phase(phase_coefficients, u, v, float(depth)))
        images.append(image if sensitivities is None else sensitivities * image)
    return np.stack(images)


def acquire(images: np.ndarray, spec: SimulationSpec, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Fully sampled k-space of complex images and its fastMRI target.

    Args:
        images: complex (slices, 2N, W) or (slices, coils, 2N, W) on the encoded grid.
        spec: noise level, padding and target size.
        rng: draws the noise.

    Returns:
        kspace: complex64 of the images' shape, centred orthonormal FFT plus complex Gaussian noise of
            std ``noise_level * max|images|``, zero outside ``[padding, W - padding)``.
        target: float32 (slices, N, N), :func:`target_from_kspace` of the stored k-space.

    Raises:
        ValueError: the k-space or target is not finite (image values beyond float32's range), which
            no file may be written with.
    """
    kspace = fft2c(torch.from_numpy(images)).numpy()
    noise_std = spec.noise_level * np.abs(images).max()
    kspace = kspace + noise_std * (rng.standard_normal(kspace.shape) + 1j * rng.standard_normal(kspace.shape))
    geometry = spec.geometry
    kspace[..., : geometry.padding_left] = 0
    kspace[..., geometry.padding_right :] = 0
    with np.errstate(over="ignore", invalid="ignore"):  # refused below
        kspace = kspace.astype(np.complex64)
    target = target_from_kspace(kspace, spec.challenge, (spec.size, spec.size))
    if not (np.isfinite(kspace).all() and np.isfinite(target).all()):
        largest = float(np.abs(images).max())
        raise ValueError(
            f"the simulated k-space or target is not finite (largest image magnitude {largest:g}, noise_level "
            f"{spec.noise_level:g}): values beyond float32's range; refusing to write it"
        )
    return kspace, target


def simulate_kspace(
    magnitudes: np.ndarray, depths: np.ndarray, spec: SimulationSpec, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """K-space and target of magnitude slices on the encoded grid: phase, coils, FFT, noise, padding.

    Args:
        magnitudes: real, non-negative (slices, 2N, W), e.g. from :func:`fit_to_grid`.
        depths: (slices,) slice positions, about [-1, 1].
        spec: the acquisition.
        rng: draws the phase, the coil maps (multicoil) and the noise, in that order.

    Returns:
        (kspace, target) as :func:`acquire`.
    """
    v, u = encoded_coordinates(spec)
    phase_coefficients = draw_phase_coefficients(rng)
    sensitivities = draw_sensitivities(rng, spec, u, v)
    return acquire(modulate(magnitudes, depths, phase_coefficients, u, v, sensitivities), spec, rng)


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


def fit_to_grid(slices: np.ndarray, spacing: tuple[float, float], spec: SimulationSpec) -> np.ndarray:
    """Magnitude slices resized into the target's N x N square, aspect ratio kept, and zero-padded onto
    the encoded grid, centred where :func:`target_from_kspace` crops.

    Args:
        slices: real (slices, rows, cols), non-negative.
        spacing: physical (row, column) pixel spacing, e.g. mm; only their ratio matters.
        spec: the target size N and k-space width W.

    Returns:
        float64 (slices, 2N, W); zero outside the resized images. The longer physical side spans N pixels.
    """
    from skimage.transform import resize

    size = spec.size
    extent = (slices.shape[1] * spacing[0], slices.shape[2] * spacing[1])
    scale = size / max(extent)
    rows, cols = (min(size, max(1, round(side * scale))) for side in extent)
    grid = np.zeros((slices.shape[0], 2 * size, spec.width))
    top = (2 * size - size) // 2 + (size - rows) // 2
    left = (spec.width - size) // 2 + (size - cols) // 2
    for index, image in enumerate(slices):
        resized = resize(image.astype(np.float64), (rows, cols), order=1, anti_aliasing=True, preserve_range=True)
        grid[index, top : top + rows, left : left + cols] = np.clip(resized, 0.0, None)
    return grid


#: Makes volume ``index`` of ``split``: (kspace, target, file attributes) from its own generator.
VolumeMaker = Callable[[str, int, np.random.Generator], tuple[np.ndarray, np.ndarray, dict[str, Any]]]


def volume_file_name(prefix: str, seed: int, split: str, index: int) -> str:
    """The file name of a written volume: ``{prefix}_s{seed}_{split}_{index:03d}.h5``."""
    return f"{prefix}_s{seed}_{split}_{index:03d}.h5"


def volume_name_pattern(prefix: str, splits: Sequence[str]) -> str:
    """A regular expression of :func:`volume_file_name`'s names for ``prefix`` and ``splits``, any seed and index."""
    return rf"{re.escape(prefix)}_s\d+_(?:{'|'.join(map(re.escape, splits))})_\d{{3,}}\.h5"


def write_simulated_dataset(
    out_dir: str | Path,
    spec: SimulationSpec,
    volumes: dict[str, int],
    seed: int,
    make_volume: VolumeMaker,
    naming: tuple[str, str],
    settings: dict[str, Any],
    progress: bool = True,
) -> list[Path]:
    """Write simulated volumes into fastMRI's folder layout ``out_dir/{challenge}_{split}`` and a settings record.

    Volume ``i`` of split ``s`` is made from ``numpy.random.default_rng([seed, challenge, s, i])`` (the
    indices of the challenge and split), so it does not depend on how many volumes are written.

    Args:
        out_dir: root folder (created if needed).
        spec: the acquisition (its challenge names the folders).
        volumes: number of volumes per split, e.g. ``{"train": 8, "val": 2, "test": 2}``.
        seed: base seed.
        make_volume: makes one volume.
        naming: (file name prefix, settings file name): files are ``{prefix}_s{seed}_{split}_{i:03d}.h5``;
            the settings file name may hold ``{challenge}``.
        settings: written as JSON to the settings file, after the volumes.
        progress: show a progress bar.

    Returns:
        Paths of the written files, in order.

    Raises:
        FileExistsError: before anything is written, a split folder being written holds ``.h5`` files this
            write would not replace; or, where the root's settings record is not ``settings``, any split
            folder does (a split left as it was would be another data set's under this record).
    """
    unknown = set(volumes) - set(SPLITS)
    if unknown:
        raise ValueError(f"unknown split(s) {sorted(unknown)}; expected some of {SPLITS}")
    prefix, settings_file = naming
    jobs = [(split, index) for split in SPLITS for index in range(volumes.get(split, 0))]
    paths = {job: Path(out_dir) / f"{spec.challenge}_{job[0]}" / volume_file_name(prefix, seed, *job) for job in jobs}
    settings_path = Path(out_dir) / settings_file.format(challenge=spec.challenge)
    folders = {path.parent for path in paths.values()}
    try:
        recorded = read_settings_record(out_dir, settings_file, spec.challenge)
    except ValueError:  # not JSON: no record of these settings either
        recorded = None
    if recorded != json.loads(json.dumps(settings)):  # the other splits are another data set
        folders |= {Path(out_dir) / f"{spec.challenge}_{split}" for split in SPLITS}
    _check_one_data_set(set(paths.values()), folders)
    written = []
    for split, index in tqdm(jobs, desc=f"{prefix} volumes", unit="vol", disable=not progress):
        rng = np.random.default_rng([seed, CHALLENGES.index(spec.challenge), SPLITS.index(split), index])
        kspace, target, attrs = make_volume(split, index, rng)
        path = paths[(split, index)]
        write_volume(path, kspace, target, spec.challenge, spec.geometry, attrs)
        written.append(path)
    atomic_write_text(settings_path, json.dumps(settings, indent=1) + "\n")
    return written


def read_settings_record(root: str | Path, settings_file: str, challenge: str) -> dict | None:
    """What ``root``'s ``challenge`` volumes were last written with: the JSON record
    ``settings_file`` (a format with ``{challenge}``), or None when there is none.

    Raises:
        ValueError: a record that is not JSON (``json.JSONDecodeError``).
    """
    path = Path(root) / settings_file.format(challenge=challenge)
    return json.loads(path.read_text()) if path.is_file() else None


def _check_one_data_set(paths: set[Path], folders: set[Path]) -> None:
    """Refuse to write into split folders that hold ``.h5`` files this write would not replace: the
    folder would mix two data sets under one settings record.

    Raises:
        FileExistsError: naming the folder and one such file.
    """
    for folder in sorted(folders):
        others = sorted(p for p in folder.glob("*.h5") if p not in paths) if folder.is_dir() else []
        if others:
            raise FileExistsError(
                f"{folder} already holds {len(others)} .h5 file(s) this write would not replace (e.g. "
                f"{others[0].name}): a folder holds one data set; write into another folder or empty this one"
            )
