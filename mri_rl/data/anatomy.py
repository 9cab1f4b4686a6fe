"""Real anatomy without a download: the MNI152 T1 template in nilearn's wheel, as fastMRI-format volumes.

nilearn ships the ICBM 2009a symmetric MNI152 T1 template (1 mm, skull-stripped; read by
``nilearn.datasets.load_mni152_template(resolution=1)``; the optional extra ``mri_rl[anatomy]``).
Each output volume is that brain under a small random affine, sliced in one orientation
(axial, coronal, sagittal, in turn by volume index; :data:`mri_rl.data.image_import.ORIENTATIONS`),
and simulated into complex k-space by the path every magnitude source shares
(:mod:`mri_rl.data.simulated_kspace`; Bakker et al., NeurIPS 2020, trained on k-space simulated
from magnitude images; fastMRI's layout and targets, Zbontar et al., 2018).

The affine keeps the slicing axis: a rotation about it (up to :data:`MAX_ROTATION_DEGREES`), zooms
of the two in-plane axes (up to :data:`MAX_ZOOM` either way) and an in-plane shift (up to
:data:`MAX_SHIFT_MM`), drawn per volume (``scipy.ndimage.affine_transform`` of each template slice).
So every output slice reads exactly one template slice. With ``deform_mm`` > 0 each kept slice is then
warped by a smooth random displacement field of its own (:func:`displacement_field`): the same template
slice as another brain's might look, an augmentation for training volumes (elastic distortions, Simard
et al., ICDAR 2003), not a new subject either.

Splits. There is one template brain, so splits are by slab: along each orientation's slicing axis
the template's usable slices (at least :data:`MIN_FOREGROUND` of their voxels in the brain) are cut
into consecutive slabs, train, val and test in that order (:data:`SLAB_FRACTIONS`), with
:data:`GUARD_SLICES` slices left out between neighbours; a volume's slices come from its split's slab
only, evenly spaced through those still usable after its affine. The template is exactly left-right
symmetric, so sagittal slabs cover the left hemisphere and the midline only (a right-hemisphere
slice is the mirror image of a left one). Be clear about what this holds out: slabs of different
orientations cross (an axial test slab and a coronal train slab share template voxels), so the
held-out slices are other slices of the same brain, not a new subject. The settings file
``{challenge}_anatomy_settings.json`` says so and records the slabs.

Another brain. ``template`` names another 3-D T1 volume in MNI space (NIfTI, e.g. the Colin27 single-subject
brain, Holmes et al., J Comput Assist Tomogr 1998, that Debian's ``mricron-data`` ships as
``/usr/share/mricron/templates/ch2bet.nii.gz``), read by :func:`mri_rl.data.image_sources.load_source`. Every
rule above applies to it unchanged, the sagittal half included (its middle slice taken as the midline), so that
the same arguments on two brains give splits of the same kind: a second subject, not a second contrast.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
from collections.abc import Callable
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np

from mri_rl.data.image_import import (
    FOREGROUND_LEVEL,
    IMAGE_SCALE,
    ORIENTATIONS,
    evenly_spaced,
    foreground_fractions,
    oriented_slices,
    slab_ranges,
    slice_depths,
)
from mri_rl.data.simulated_kspace import (
    SimulationSpec,
    fit_to_grid,
    read_settings_record,
    simulate_kspace,
    write_simulated_dataset,
)
from mri_rl.task import DEFAULT_TASK

P = ParamSpec("P")
R = TypeVar("R")

SETTINGS_FILE = "{challenge}_anatomy_settings.json"
#: Orientation of volume i: ``ORIENTATION_CYCLE[i % 3]``.
ORIENTATION_CYCLE = ("axial", "coronal", "sagittal")
#: Share of each slicing axis's usable slices per split.
SLAB_FRACTIONS = {"train": 0.6, "val": 0.2, "test": 0.2}
#: Template slices (1 mm) left out between neighbouring slabs.
GUARD_SLICES = 4
#: How the splits share each slicing axis: "slabs" (one slab per split, train, val, test in that
#: order) or "interleaved" (short blocks of each split in turn, :data:`INTERLEAVE_BLOCKS`, so that
#: every split spans the whole brain).
LAYOUTS = ("slabs", "interleaved")
#: Interleaved layout: the slices of one period, train, val, test in turn, each block followed by
#: :data:`INTERLEAVE_GUARD` slices left out.
INTERLEAVE_BLOCKS = {"train": 9, "val": 3, "test": 3}
INTERLEAVE_GUARD = 2
#: Where each volume's evenly spaced slices lie within their intervals (:func:`evenly_spaced`'s offset):
#: "centre", the middle of each, so that every volume of a split reads the same template slices up to
#: its affine; or "random", an offset drawn per volume, so that the volumes of a split read different
#: slices and together cover all of its usable ones (a stratified sample).
SLICE_OFFSETS = ("centre", "random")
#: A slice is usable when at least this fraction of its pixels is brain (above 5% of the maximum).
MIN_FOREGROUND = 0.1
MAX_ROTATION_DEGREES = 10.0
MAX_ZOOM = 0.1
MAX_SHIFT_MM = 4.0
#: Gaussian sigma (mm) that smooths the white noise of a slice's displacement field (:func:`displacement_field`).
DEFORM_SMOOTHNESS_MM = 16.0
#: Background kept around the brain's bounding box (mm).
MARGIN_MM = 12.0
#: The settings' note; :func:`split_note` fills it for the MNI152 template or another brain.
NOTE = (
    "one {brain}: splits are slabs along each orientation's slicing axis with guard gaps (sagittal: left hemisphere "
    "and midline only, {why}). Slabs of different orientations cross and share {voxels}: the splits hold different "
    "slices of the same brain, not different subjects."
)
MISSING = "the MNI152 source needs nilearn: pip install mri_rl[anatomy]"
MNI152_SOURCE = "MNI152 ICBM 2009a symmetric T1 template, 1 mm (nilearn.datasets.load_mni152_template)"


def file_stamp(path: str) -> tuple[int, int]:
    """A file's size and modification time (ns): what changes when it is rewritten."""
    stat = Path(path).stat()
    return stat.st_size, stat.st_mtime_ns


def cached_per_brain_file(function: Callable[P, R]) -> Callable[P, R]:
    """A cache for a function of the brain (its ``template`` argument) that holds, per argument set, the result
    for the brain file's current :func:`file_stamp` only: a file rewritten in place within one process is read
    again, as its SHA-256 in the settings is, and the earlier version's arrays are released. ``cache_clear``
    empties the cache."""
    signature = inspect.signature(function)
    held: dict[tuple[Any, ...], tuple[tuple[int, int] | None, R]] = {}  # arguments -> (stamp, result)

    @functools.wraps(function)
    def cached(*args: P.args, **kwargs: P.kwargs) -> R:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        template = bound.arguments["template"]
        is_file = template is not None and Path(template).is_file()  # else load_template names the problem
        stamp = file_stamp(template) if is_file else None
        entry = held.get(bound.args)
        if entry is None or entry[0] != stamp:
            entry = held[bound.args] = (stamp, function(*bound.args))  # type: ignore[call-arg]
        return entry[1]

    cached.cache_clear = held.clear  # type: ignore[attr-defined]
    return cached


@cached_per_brain_file
def load_template(template: str | None = None) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The brain volume: read-only float32 (x, y, z) in RAS+ order, scaled to a maximum of 1, and its voxel
    sizes (mm). ``template`` None: the MNI152 T1 template from nilearn's wheel (no download); else the path of
    another brain's 3-D NIfTI file (see the module docstring).

    Raises:
        ImportError: nilearn (or nibabel) is missing, saying how to install them.
        mri_rl.data.image_sources.ImageImportError: ``template`` is unreadable, not 3-D, not finite or all zero,
            naming the file.
    """
    if template is not None:
        from mri_rl.data.image_sources import load_source

        source = load_source(template)
        data, zooms = source.data.copy(), tuple(source.zooms)
    else:
        try:
            import nibabel
            from nilearn.datasets import load_mni152_template
        except ImportError:
            raise ImportError(MISSING) from None
        image = nibabel.as_closest_canonical(load_mni152_template(resolution=1))
        data = np.array(image.get_fdata(dtype=np.float32))  # a copy: nibabel caches, and may share, its array
        zooms = tuple(float(z) for z in image.header.get_zooms()[:3])
    data /= data.max()
    data.flags.writeable = False
    return data, (zooms[0], zooms[1], zooms[2])


@cached_per_brain_file
def template_slices(
    orientation: str, template: str | None = None
) -> tuple[np.ndarray, tuple[float, float], np.ndarray]:
    """The slices of :func:`load_template`'s brain in ``orientation``, cropped to the brain's bounding box plus
    :data:`MARGIN_MM` (the template's field of view is about twice the brain's).

    Returns:
        (a read-only view (slices, rows, cols), the (row, column) spacing in mm, the (row, column) centre
        of the brain's bounding box in the crop).
    """
    slices, spacing = oriented_slices(*load_template(template), orientation)
    brain = slices > FOREGROUND_LEVEL
    box = []
    for axis, other in ((1, (0, 2)), (2, (0, 1))):
        inside = np.flatnonzero(brain.any(axis=other))
        margin = int(np.ceil(MARGIN_MM / spacing[axis - 1]))
        box.append((max(0, inside[0] - margin), min(slices.shape[axis], inside[-1] + 1 + margin)))
    (top, bottom), (left, right) = box
    centre = np.array([(bottom - 1 - top) / 2, (right - 1 - left) / 2])
    return slices[:, top:bottom, left:right], spacing, centre


@cached_per_brain_file
def template_slabs(orientation: str, template: str | None = None) -> dict[str, tuple[int, int]]:
    """Split -> template slab ``[lo, hi)`` along ``orientation``'s slicing axis (:data:`SLAB_FRACTIONS`,
    :data:`GUARD_SLICES`); for sagittal, of the left hemisphere and the midline."""
    slices, _, _ = template_slices(orientation, template)
    usable = np.flatnonzero(foreground_fractions(slices, 1.0) >= MIN_FOREGROUND)
    first, stop = int(usable[0]), int(usable[-1]) + 1
    if orientation == "sagittal":
        # RAS+: the midline is the middle slice, the left hemisphere below it
        stop = (load_template(template)[0].shape[0] - 1) // 2 + 1
    return slab_ranges(first, stop, SLAB_FRACTIONS, GUARD_SLICES)


@cached_per_brain_file
def template_blocks(orientation: str, template: str | None = None) -> dict[str, list[tuple[int, int]]]:
    """Split -> its blocks ``[lo, hi)`` in the interleaved layout: the usable range of
    :func:`template_slabs` (first slab start to last slab end) cut into periods of
    :data:`INTERLEAVE_BLOCKS`, train, val and test in turn, with :data:`INTERLEAVE_GUARD`
    slices left out after each block; a last, partial period is cut short."""
    slabs = template_slabs(orientation, template)
    position, stop = min(lo for lo, _ in slabs.values()), max(hi for _, hi in slabs.values())
    blocks: dict[str, list[tuple[int, int]]] = {split: [] for split in INTERLEAVE_BLOCKS}
    while position < stop:
        for split, length in INTERLEAVE_BLOCKS.items():
            end = min(position + length, stop)
            if end > position:
                blocks[split].append((position, end))
            position = end + INTERLEAVE_GUARD
    return blocks


def split_ranges(orientation: str, layout: str, template: str | None = None) -> dict[str, list[tuple[int, int]]]:
    """Split -> the template slice ranges ``[lo, hi)`` its volumes draw from, in ``layout``.

    Raises:
        ValueError: an unknown layout.
    """
    if layout == "slabs":
        return {split: [slab] for split, slab in template_slabs(orientation, template).items()}
    if layout == "interleaved":
        return template_blocks(orientation, template)
    raise ValueError(f"layout: expected one of {LAYOUTS}, got {layout!r}")


def draw_affine(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A random in-plane affine: (matrix (2, 2), shift (2,) in mm) of a rotation up to
    :data:`MAX_ROTATION_DEGREES`, zooms of each axis within 1 +- :data:`MAX_ZOOM`, shifts up to :data:`MAX_SHIFT_MM`."""
    angle = np.deg2rad(rng.uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES))
    zooms = rng.uniform(1 - MAX_ZOOM, 1 + MAX_ZOOM, 2)
    shift = rng.uniform(-MAX_SHIFT_MM, MAX_SHIFT_MM, 2)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return rotation @ np.diag(zooms), shift


def transformed_slab(
    orientation: str, ranges: list[tuple[int, int]], matrix: np.ndarray, shift: np.ndarray, template: str | None = None
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """The template slices of ``ranges`` (each ``[lo, hi)``) of ``orientation`` under the in-plane
    affine, the usable ones only, in order.

    Output pixel ``o`` of a slice reads the template slice (cropped, :func:`template_slices`) at
    ``c + matrix (o - c) + shift`` (linear interpolation, zero outside), ``c`` the brain's centre; the
    shift is in mm.

    Returns:
        (float32 (usable slices, rows, cols), their template slice indices, (row, column) spacing in mm).
    """
    from scipy.ndimage import affine_transform

    slices, spacing, centre = template_slices(orientation, template)
    offset = centre - matrix @ centre + shift / np.asarray(spacing)
    indices = np.concatenate([np.arange(lo, hi) for lo, hi in ranges])
    planes = np.stack(
        [affine_transform(slices[q], matrix, offset, output_shape=slices.shape[1:], order=1) for q in indices]
    )
    usable = foreground_fractions(planes, 1.0) >= MIN_FOREGROUND
    return planes[usable], indices[usable], spacing


def displacement_field(
    shape: tuple[int, int], spacing: tuple[float, float], deform_mm: float, rng: np.random.Generator
) -> np.ndarray:
    """A smooth random in-plane displacement field whose largest displacement is ``deform_mm``.

    White noise per axis, smoothed by a Gaussian of :data:`DEFORM_SMOOTHNESS_MM`, scaled so that the longest
    displacement vector is ``deform_mm`` mm (Simard et al., ICDAR 2003, elastic distortions).

    Returns:
        float64 (2, rows, cols): the (row, column) displacement of each pixel, in pixels of ``spacing`` (mm).
    """
    from scipy.ndimage import gaussian_filter

    spacing_mm = np.asarray(spacing, dtype=np.float64)
    sigma = DEFORM_SMOOTHNESS_MM / spacing_mm
    field = np.stack([gaussian_filter(rng.standard_normal(shape), sigma) for _ in range(2)])
    field_mm = field * (deform_mm / np.sqrt((field**2).sum(axis=0)).max())
    return field_mm / spacing_mm[:, None, None]


def deformed(
    planes: np.ndarray, spacing: tuple[float, float], deform_mm: float, rng: np.random.Generator
) -> np.ndarray:
    """Each of ``planes`` (slices, rows, cols) warped by its own :func:`displacement_field`: output pixel ``o``
    reads ``o + field(o)`` (linear interpolation, zero outside). Same shape and dtype."""
    from scipy.ndimage import map_coordinates

    grid = np.indices(planes.shape[1:], dtype=np.float64)
    warped = np.empty_like(planes)
    for k, plane in enumerate(planes):
        field = displacement_field(plane.shape, spacing, deform_mm, rng)
        warped[k] = map_coordinates(plane, grid + field, order=1, cval=0.0)
    return warped


def volume_slices(
    usable: int, num_slices: int | None, slice_offset: str, rng: np.random.Generator, where: str = "the slices"
) -> np.ndarray:
    """Which of a volume's ``usable`` slices it keeps: ``num_slices`` evenly spaced (all for None), at the
    centre of their intervals or at an offset drawn from ``rng`` (:data:`SLICE_OFFSETS`; "centre" draws
    nothing, so its files are those written before the option existed).

    Raises:
        ValueError: fewer usable slices than ``num_slices``, naming ``where`` they come from.
    """
    if num_slices is not None and usable < num_slices:
        raise ValueError(
            f"{where} hold {usable} usable slice(s); ask for at most that many slices per volume (num_slices)"
        )
    offset = 0.5 if slice_offset == "centre" else float(rng.random())
    return evenly_spaced(np.arange(usable), num_slices, offset)


def split_note(template: str | None) -> str:
    """:data:`NOTE` for the MNI152 template (None) or another brain."""
    if template is None:
        return NOTE.format(brain="template brain", why="the template being symmetric", voxels="template voxels")
    return NOTE.format(brain="brain", why="as for the symmetric MNI152 template", voxels="voxels")


def template_name(template: str | None) -> str:
    """A short name of the brain: "mni152", or ``template``'s file name without its suffixes."""
    return "mni152" if template is None else Path(template).name.split(".")[0]


def volume_prefix(template: str | None) -> str:
    """The file-name prefix of the volumes written from a brain: "anatomy", or "anatomy_{name}" for
    another brain than MNI152 (:func:`template_name`)."""
    return "anatomy" if template is None else f"anatomy_{template_name(template)}"


def template_source(template: str | None) -> dict[str, str]:
    """The settings' record of the brain: nilearn's MNI152 and nilearn's version, or the file and its SHA-256."""
    if template is None:
        return {"source": MNI152_SOURCE, "nilearn_version": version("nilearn")}
    digest = hashlib.sha256(Path(template).read_bytes()).hexdigest()
    return {"source": str(Path(template).resolve()), "source_sha256": digest}


def anatomy_settings(
    spec: SimulationSpec,
    seed: int,
    layout: str = "slabs",
    slice_offset: str = "centre",
    deform_mm: float = 0.0,
    template: str | None = None,
) -> dict[str, Any]:
    """What :func:`write_anatomy_dataset` records: the seed, the spec, the source and the slabs, for
    the interleaved layout the layout and its blocks (needs nilearn), a slice offset other than
    "centre" (absent: "centre", as before the option existed) and a deformation (absent: none)."""
    interleaved: dict[str, Any] = {}
    if layout != "slabs":
        blocks = {
            o: {s: [list(r) for r in ranges] for s, ranges in split_ranges(o, layout, template).items()}
            for o in ORIENTATION_CYCLE
        }
        interleaved = {"layout": layout, "interleave_guard": INTERLEAVE_GUARD, "blocks": blocks}
    return {
        "seed": seed,
        **asdict(spec),
        **template_source(template),
        "orientation_cycle": list(ORIENTATION_CYCLE),
        "slab_fractions": SLAB_FRACTIONS,
        "guard_slices": GUARD_SLICES,
        "min_foreground": MIN_FOREGROUND,
        "affine": {"max_rotation_degrees": MAX_ROTATION_DEGREES, "max_zoom": MAX_ZOOM, "max_shift_mm": MAX_SHIFT_MM},
        "slabs": {o: {s: list(r) for s, r in template_slabs(o, template).items()} for o in ORIENTATION_CYCLE},
        "slab_axes": {o: "RAS+ voxel axis " + "xyz"[ORIENTATIONS[o][0]] for o in ORIENTATION_CYCLE},
        "note": split_note(template),
        **interleaved,
        **({} if slice_offset == "centre" else {"slice_offset": slice_offset}),
        **({"deform": {"max_displacement_mm": deform_mm, "smoothness_mm": DEFORM_SMOOTHNESS_MM}} if deform_mm else {}),
    }


def check_options(layout: str, slice_offset: str, deform_mm: float, template: str | None = None) -> None:
    """:func:`write_anatomy_dataset`'s checks, before anything is written.

    Raises:
        ImportError: nilearn is missing. ValueError: an unknown layout or slice offset, or a ``deform_mm`` that is
        not a finite number >= 0, naming the value; a ``template`` that cannot be read as a 3-D brain, naming it.
    """
    if slice_offset not in SLICE_OFFSETS:
        raise ValueError(f"slice_offset: expected one of {SLICE_OFFSETS}, got {slice_offset!r}")
    if not (np.isfinite(deform_mm) and deform_mm >= 0):
        raise ValueError(f"deform_mm: expected a finite number of mm >= 0, got {deform_mm!r}")
    load_template(template)
    split_ranges(ORIENTATION_CYCLE[0], layout, template)


def write_anatomy_dataset(
    out_dir: str | Path,
    spec: SimulationSpec,
    volumes: dict[str, int],
    seed: int = 0,
    progress: bool = True,
    layout: str = "slabs",
    slice_offset: str = "centre",
    deform_mm: float = 0.0,
    template: str | None = None,
) -> list[Path]:
    """Write volumes of the MNI152 template (or of ``template``) in fastMRI's layout ``out_dir/{challenge}_{split}``.

    As :func:`mri_rl.data.synthetic.write_synthetic_dataset` does: volume i of split s is made from its seed only.

    Args:
        out_dir: root folder (created if needed).
        spec: the acquisition; ``num_slices`` slices per volume, evenly spaced through the usable slices
            of the split's slab (None: all of them), where ``slice_offset`` says.
        volumes: number of volumes per split, e.g. ``{"train": 8, "val": 2, "test": 2}``.
        seed, progress: base seed; show a progress bar.
        layout: "slabs" (one slab per split) or "interleaved" (:func:`template_blocks`), see :data:`LAYOUTS`.
        slice_offset: "centre" or "random", see :data:`SLICE_OFFSETS`.
        deform_mm: largest displacement (mm) of each kept slice's random warp (:func:`deformed`), drawn after the
            affine and slice offset (the same slices under the same affine as without it); 0 draws nothing.
        template: None (the MNI152 template) or the path of another brain's NIfTI file (:func:`load_template`).

    Returns:
        Paths of the written files, ``anatomy_s{seed}_{split}_{i:03d}.h5`` (``anatomy_{name}_s...`` for a ``template``,
        :func:`template_name`), in order; ``out_dir/{challenge}_anatomy_settings.json`` holds :func:`anatomy_settings`.

    Raises:
        ImportError, ValueError: as :func:`check_options`, before anything is written; a split with too few slices.
    """
    check_options(layout, slice_offset, deform_mm, template)
    name = template_name(template)

    def make_volume(split: str, index: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        orientation = ORIENTATION_CYCLE[index % len(ORIENTATION_CYCLE)]
        ranges = split_ranges(orientation, layout, template)[split]
        matrix, shift = draw_affine(rng)
        planes, positions, spacing = transformed_slab(orientation, ranges, matrix, shift, template)
        where = f"the {split} slices {[list(r) for r in ranges]} of the {orientation} template (volume {index})"
        chosen = volume_slices(len(planes), spec.num_slices, slice_offset, rng, where)
        kept = deformed(planes[chosen], spacing, deform_mm, rng) if deform_mm else planes[chosen]
        magnitudes = fit_to_grid(kept * IMAGE_SCALE, spacing, spec)
        total = template_slices(orientation, template)[0].shape[0]
        kspace, target = simulate_kspace(magnitudes, slice_depths(positions[chosen], total), spec, rng)
        attrs = {
            "acquisition": f"{name.upper()}_T1",
            "patient_id": f"{name}-{seed}-{split}-{index:03d}",
            "orientation": orientation,
            "template_slices": positions[chosen],
            "simulated_kspace": True,
        }
        return kspace, target, attrs

    naming = (volume_prefix(template), SETTINGS_FILE)
    settings = anatomy_settings(spec, seed, layout, slice_offset, deform_mm, template)
    return write_simulated_dataset(out_dir, spec, volumes, seed, make_volume, naming, settings, progress)


def read_anatomy_settings(root: str | Path, challenge: str = DEFAULT_TASK.challenge) -> dict | None:
    """What a root's ``challenge`` anatomy volumes were last written with (:func:`anatomy_settings`), or None."""
    return read_settings_record(root, SETTINGS_FILE, challenge)
