"""Reading, validating and writing fastMRI ``.h5`` volumes.

A fastMRI volume holds ``kspace`` (complex64; (slices, rows, cols) single-coil or
(slices, coils, rows, cols) multi-coil), a target (``reconstruction_esc`` single-coil,
``reconstruction_rss`` multi-coil; absent in the challenge test splits), a namespaced
``ismrmrd_header`` and attributes such as ``max`` and ``norm``
(Zbontar et al., "fastMRI: An Open Dataset and Benchmarks for Accelerated MRI", 2018).

Reading goes through ``fastmri.data.SliceDataset``. Each file is validated first by
:func:`inspect_volume` (the validation ``mri-rl data check`` runs too), so a bad file gives
one :class:`FastMRIDataError` naming it (and the slice) instead of an h5py traceback, or,
with ``on_bad_file="skip"``, the bad file or just its bad slices are skipped with a warning.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from fastmri.data import SliceDataset
from h5py.h5z import filter_avail

from mri_rl.data.hdf5_global_heap import LENGTH_FORMATS, DamagedGlobalHeap, HeapCheckingReader, read_heap_values
from mri_rl.data.ismrmrd_header import build_header, parse_geometry
from mri_rl.files import atomic_output
from mri_rl.kspace import KspaceGeometry
from mri_rl.task import CHALLENGES, SPLITS

TARGET_KEYS = {"singlecoil": "reconstruction_esc", "multicoil": "reconstruction_rss"}
BAD_FILE_POLICIES = ("raise", "skip")
#: Largest k-space or target slice (bytes, as stored) a file may declare; larger ones are refused
#: before anything is read (a damaged or hostile file could declare terabytes). Real fastMRI slices
#: are far smaller: a multi-coil brain slice (16-20 coils x 640 x 320 complex64) takes about 40 MB.
MAX_SLICE_BYTES = 2 * 2**30
#: Most slices a volume may declare (fastMRI volumes have at most about 50; every slice is one sample).
MAX_SLICES = 10_000
#: How far above the target's maximum (over the slices read) the ``max`` attribute may lie. fastMRI's ``max`` is
#: the volume's own maximum, and the first and last slices, all that the default reader reads, are often dimmer
#: than the middle ones: a factor of 1000 leaves room for that. A larger ``max`` is damage (1e30, an integer's
#: largest value): as the data range of SSIM and PSNR it would make every reconstruction score alike (SSIM ~ 1).
MAX_RANGE_FACTOR = 1e3
#: Relative tolerance of the target's values against the data range (float32 rounding of a stored ``max``).
MAX_TOLERANCE = 1e-3
_ROLE = "it must be the volume's maximum (the data range of the metrics)"
#: The data ranges (``max``, else each target slice's maximum) accepted. Reconstructions and metrics square
#: intensities in float32 (|IFFT| and root-sum-of-squares, SSIM's local moments): within these bounds
#: the squares of values up to the data range, summed over up to ~1e7 pixels, stay between float32's smallest
#: normal number (1.2e-38) and its largest (3.4e38), with 8 orders of magnitude to spare below. fastMRI's
#: data ranges are about 1e-4 (knee) to 1e-3 (brain); imported images up to ~1e4.
MIN_DATA_RANGE, MAX_DATA_RANGE = 1e-15, 1e15
#: How far above the Parseval bound a k-space value may lie. With fastMRI's orthonormal FFT, a k-space sample is
#: at most the L2 norm of its image, itself at most (largest pixel) x sqrt(pixels); the target (the centre crop,
#: or the root-sum-of-squares over the coils) is bounded by the data range, so for a consistent file every sample
#: satisfies ``|k| <= data range x sqrt(rows x cols x coils)``. The factor covers image outside the target's crop
#: (the 2x oversampled readout) and noise; a larger value is a corrupt sample (e.g. 1.7e28 in a 1e-4 volume).
KSPACE_BOUND_FACTOR = 100.0
#: What h5py raises on reading a damaged file: OSError and RuntimeError from HDF5 itself, KeyError for a
#: broken link, ValueError and TypeError for a damaged datatype message (``.dtype`` of an undecodable
#: type; a member name that is not UTF-8, a UnicodeDecodeError).
HDF5_READ_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError)


class FastMRIDataError(ValueError):
    """A fastMRI file (or slice) that cannot be used, with the reason.

    Attributes:
        path: the offending file.
        slice_index: the offending slice, if the problem is in one slice.
        problem: what is wrong and what was expected.
    """

    def __init__(self, path: str | Path, problem: str, slice_index: int | None = None) -> None:
        self.path = Path(path)
        self.slice_index = slice_index
        self.problem = problem
        where = str(self.path) if slice_index is None else f"{self.path}, slice {slice_index}"
        super().__init__(f"{where}: {problem}")

    def __reduce__(self) -> tuple[type[FastMRIDataError], tuple[Path, str, int | None]]:
        """Pickle by the constructor's arguments (DataLoader workers get the dataset, errors included)."""
        return type(self), (self.path, self.problem, self.slice_index)


def check_challenge(challenge: str) -> str:
    """Return ``challenge`` if it is known, else raise a ValueError naming the choices."""
    if challenge not in CHALLENGES:
        raise ValueError(f"unknown challenge {challenge!r}; expected one of {', '.join(CHALLENGES)}")
    return challenge


@dataclass(frozen=True)
class VolumeInfo:
    """What :func:`inspect_volume` found in one file.

    Attributes:
        path: the file.
        num_slices: number of slices.
        slice_shape: k-space shape of one slice, (rows, cols) or (coils, rows, cols).
        num_coils: 1 for single-coil.
        geometry: sizes and padding from the ISMRMRD header.
        has_target: whether the challenge's target dataset is present.
        max_value: the ``max`` attribute (data range for metrics), if present.
        bad_slices: the slices found bad, when :func:`inspect_volume` was asked to keep going.
        fastmri_metadata: what fastmri's ``SliceDataset._retrieve_metadata`` read from the file
            (padding, encoding and recon sizes, file attributes); the reader uses exactly this.
    """

    path: Path
    num_slices: int
    slice_shape: tuple[int, ...]
    num_coils: int
    geometry: KspaceGeometry
    has_target: bool
    max_value: float | None
    bad_slices: tuple[FastMRIDataError, ...] = ()
    fastmri_metadata: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def good_slices(self) -> list[int]:
        """Indices of the slices not in :attr:`bad_slices`."""
        bad = {error.slice_index for error in self.bad_slices}
        return [index for index in range(self.num_slices) if index not in bad]


def inspect_volume(
    path: str | Path,
    challenge: str,
    require_target: bool = True,
    check_values: bool = False,
    keep_bad_slices: bool = False,
) -> VolumeInfo:
    """Validate one fastMRI file and describe it: the one validation of every reader and of
    ``mri-rl data check`` (which uses ``check_values=True, keep_bad_slices=True``).

    Checks, before reading any array, that the file is readable HDF5; that ``kspace`` is a
    complex dataset of the challenge's rank with 1 to :data:`MAX_SLICES` slices of at most
    :data:`MAX_SLICE_BYTES` each; that ``ismrmrd_header`` is one XML string whose geometry both
    mri_rl and fastmri's own ``SliceDataset`` parsing read alike, with padding inside the
    k-space; that the target (when present or ``require_target``) is a float dataset of one
    (recon x, recon y) image per slice, as the header's reconSpace says; and that ``mask``, if
    any, is a small readable dataset; and that the HDF5 global heap, where variable-length
    strings such as the file's string attributes live, is sound before anything reads from it
    (:func:`global_heap_problem`). Then it reads the first and last slices (every slice with
    ``check_values``), each checked by :func:`slice_problem`: readable, finite, a target that is
    not all zero, a data range within [:data:`MIN_DATA_RANGE`, :data:`MAX_DATA_RANGE`] and no
    k-space value above the Parseval bound (:data:`KSPACE_BOUND_FACTOR`). Last, ``max`` must be
    one positive finite number within those bounds, not below the target slices read and at
    most :data:`MAX_RANGE_FACTOR` times their maximum.

    Args:
        keep_bad_slices: a problem within one slice goes into ``bad_slices`` instead of being
            raised; a problem of the whole file still raises.

    Raises:
        FastMRIDataError: naming the file (and slice) and what was expected.
    """
    path = Path(path)
    check_challenge(challenge)
    with _open_volume(path) as hf:
        try:
            return _inspect_open_volume(hf, path, challenge, require_target, check_values, keep_bad_slices)
        except FastMRIDataError:  # a ValueError itself, already naming the file
            raise
        except HDF5_READ_ERRORS as error:  # h5py's errors on a damaged object header or datatype
            problem = f"unreadable HDF5 structure (damaged file?): {type(error).__name__}: {error}"
            raise FastMRIDataError(path, problem) from None


def _open_volume(path: Path) -> h5py.File:
    """``path`` opened for reading, or a FastMRIDataError: a missing file (a link whose target is gone,
    e.g. on a disk not mounted), a file that is not HDF5."""
    if not path.exists():
        missing = "no such file"
        if path.is_symlink():
            missing = f"a link to {path.readlink()}, which does not exist (on a disk not mounted?)"
        raise FastMRIDataError(path, f"{missing}; expected a fastMRI .h5 file")
    try:
        return h5py.File(path, "r")
    except HDF5_READ_ERRORS as error:
        raise FastMRIDataError(path, f"not a readable HDF5 file (corrupt or truncated?): {error}") from None


def _inspect_open_volume(
    hf: h5py.File, path: Path, challenge: str, require_target: bool, check_values: bool, keep_bad_slices: bool
) -> VolumeInfo:
    """:func:`inspect_volume` of an open file."""
    _check_global_heaps(hf, path)
    kspace = _checked_kspace(hf, path, challenge)
    geometry = _checked_geometry(hf, path, kspace.shape[-1])
    metadata = _fastmri_metadata(path, geometry)
    target = _checked_target(hf, path, challenge, kspace.shape[0], geometry, require_target)
    _check_mask(hf, path)
    max_value = _max_attribute(hf, path)
    bad_slices, peak = _check_slices(path, kspace, target, check_values, max_value, keep_bad_slices)
    _check_max_against_targets(path, max_value, peak)
    return VolumeInfo(
        path=path,
        num_slices=int(kspace.shape[0]),
        slice_shape=tuple(int(n) for n in kspace.shape[1:]),
        num_coils=1 if challenge == "singlecoil" else int(kspace.shape[1]),
        geometry=geometry,
        has_target=target is not None,
        max_value=max_value,
        bad_slices=tuple(bad_slices),
        fastmri_metadata=metadata,
    )


def _dataset(hf: h5py.File, path: Path, key: str, expected: str) -> h5py.Dataset | None:
    """``hf[key]``, which must be a dataset (not a group, not empty); None when absent."""
    if key not in hf:
        return None
    try:
        node = hf[key]
    except (KeyError, OSError) as error:  # a dangling soft or external link, a damaged object header
        raise FastMRIDataError(path, f"'{key}' cannot be opened (broken link or damaged file?): {error}") from None
    if not isinstance(node, h5py.Dataset):
        kind = "group" if isinstance(node, h5py.Group) else type(node).__name__
        raise FastMRIDataError(path, f"'{key}' is an HDF5 {kind}; expected a dataset of {expected}")
    if node.shape is None:  # h5py.Empty: a null dataspace, which holds nothing
        raise FastMRIDataError(path, f"'{key}' is an empty dataset (null dataspace); expected a dataset of {expected}")
    return node


def _member_names(group: h5py.Group) -> str:
    """The names in ``group``, sorted and comma-separated, for a message ("nothing" if none). h5py gives a
    name that is not UTF-8 (a damaged or foreign file) as bytes: it is listed as a bytes literal."""
    return ", ".join(sorted(name if isinstance(name, str) else repr(name) for name in group)) or "nothing"


def _check_size(path: Path, dataset: h5py.Dataset, per_slice: bool = True) -> None:
    """Refuse, before reading it, a dataset whose slices (or whole, for one read at once)
    would take more than :data:`MAX_SLICE_BYTES` in memory."""
    shape = dataset.shape[1:] if per_slice else dataset.shape
    nbytes = math.prod(shape) * dataset.dtype.itemsize
    if nbytes > MAX_SLICE_BYTES:
        what, each = ("slices of shape", " each") if per_slice else ("shape", "")
        raise FastMRIDataError(
            path,
            f"'{_name(dataset)}' declares {what} {shape} {dataset.dtype}, {nbytes / 2**30:.1f} GiB{each}; "
            f"the limit is {MAX_SLICE_BYTES / 2**30:g} GiB (MAX_SLICE_BYTES): a damaged file?",
        )


def _check_global_heaps(hf: h5py.File, path: Path) -> None:
    """Read what lives in the global heap (the root's attributes, which fastmri reads with every slice, and a
    variable-length ``ismrmrd_header``) through :class:`HeapCheckingReader`, so that a damaged collection
    is refused instead of hanging HDF5 (found by random byte overwrites). A file without global heap, or
    with another damage, passes here: the checks that follow report it as before."""
    length_size = hf.id.get_create_plist().get_sizes()[1]
    if length_size not in LENGTH_FORMATS:
        return
    with open(path, "rb") as handle, HeapCheckingReader(handle, length_size) as reader:
        try:
            with h5py.File(reader, "r") as checked:
                read_heap_values(checked)
        except DamagedGlobalHeap as error:
            raise FastMRIDataError(path, f"{error}: a damaged file, which HDF5 would loop on or read past") from None
        except Exception:  # any other damage: left to the validation that follows, which names it
            return


def _checked_kspace(hf: h5py.File, path: Path, challenge: str) -> h5py.Dataset:
    """The ``kspace`` dataset: complex, of the challenge's rank, with 1 to MAX_SLICES slices of bounded size."""
    layout = "(slices, rows, cols)" if challenge == "singlecoil" else "(slices, coils, rows, cols)"
    kspace = _dataset(hf, path, "kspace", f"complex64 {layout}")
    if kspace is None:
        raise FastMRIDataError(path, f"no 'kspace' dataset (found {_member_names(hf)})")
    if not np.issubdtype(kspace.dtype, np.complexfloating):
        raise FastMRIDataError(path, f"'kspace' has dtype {kspace.dtype}; expected complex64")
    expected_rank = 3 if challenge == "singlecoil" else 4
    if kspace.ndim != expected_rank:
        raise FastMRIDataError(
            path, f"'kspace' has shape {kspace.shape}; {challenge} expects {expected_rank} dims {layout}"
        )
    if kspace.shape[0] == 0:
        raise FastMRIDataError(path, "'kspace' has no slices")
    if kspace.shape[0] > MAX_SLICES:
        raise FastMRIDataError(
            path, f"'kspace' declares {kspace.shape[0]} slices; the limit is {MAX_SLICES} (MAX_SLICES): a damaged file?"
        )
    if min(kspace.shape) == 0:
        raise FastMRIDataError(path, f"'kspace' has shape {kspace.shape}; expected no empty dimension")
    _check_size(path, kspace)
    return kspace


def _checked_geometry(hf: h5py.File, path: Path, width: int) -> KspaceGeometry:
    """The header's geometry: positive recon sizes, padding that fits the k-space ``width``."""
    header = _dataset(hf, path, "ismrmrd_header", "one XML string")
    if header is None:
        raise FastMRIDataError(path, "no 'ismrmrd_header' dataset (fastMRI files carry one)")
    if header.shape != () or not (header.dtype.kind == "S" or h5py.check_string_dtype(header.dtype)):
        raise FastMRIDataError(
            path, f"'ismrmrd_header' is a dataset of {header.dtype} and shape {header.shape}; expected one XML string"
        )
    _check_size(path, header, per_slice=False)
    try:
        geometry = parse_geometry(header[()])
    except Exception as error:  # malformed XML or a missing field
        raise FastMRIDataError(path, f"unusable ismrmrd_header: {error}") from None
    recon_x, recon_y, _ = geometry.recon_size
    if not (recon_x > 0 and recon_y > 0):
        raise FastMRIDataError(
            path, f"ismrmrd_header's reconSpace matrix size is {recon_x} x {recon_y}; expected positive sizes"
        )
    if not 0 <= geometry.padding_left < geometry.padding_right <= width:
        raise FastMRIDataError(
            path,
            f"header padding [{geometry.padding_left}, {geometry.padding_right}) does not fit "
            f"the k-space width {width}",
        )
    return geometry


def _fastmri_metadata(path: Path, geometry: KspaceGeometry) -> dict[str, Any]:
    """What fastmri's own ``SliceDataset._retrieve_metadata`` (its ``et_query`` header parsing and
    the file attributes) reads from the file, which must agree with ``geometry``."""
    parser = SliceDataset.__new__(SliceDataset)  # the method uses no instance state
    try:
        metadata, _ = parser._retrieve_metadata(path)
    except Exception as error:  # whatever fastmri's parsing raises
        raise FastMRIDataError(
            path, f"fastmri cannot read the file's header or attributes: {type(error).__name__}: {error}"
        ) from None
    ours = (geometry.padding_left, geometry.padding_right, geometry.recon_size)
    theirs = (metadata["padding_left"], metadata["padding_right"], tuple(metadata["recon_size"]))
    if theirs != ours:
        raise FastMRIDataError(path, f"fastmri reads padding and recon size {theirs} from the header, mri_rl {ours}")
    return dict(metadata)


def _checked_target(
    hf: h5py.File, path: Path, challenge: str, num_slices: int, geometry: KspaceGeometry, require_target: bool
) -> h5py.Dataset | None:
    """The target dataset (None if absent and not required): float, one (recon x, recon y) image per slice."""
    target_key = TARGET_KEYS[challenge]
    rows, cols, _ = geometry.recon_size
    expected = f"({num_slices}, {rows}, {cols})"
    target = _dataset(hf, path, target_key, f"float32 {expected}")
    if target is None:
        if require_target:
            raise FastMRIDataError(path, f"no target dataset '{target_key}' ({challenge}); found {_member_names(hf)}")
        return None
    if target.dtype.kind != "f":
        raise FastMRIDataError(path, f"'{target_key}' has dtype {target.dtype}; expected float32 (a real image)")
    if target.ndim != 3 or target.shape[0] != num_slices:
        raise FastMRIDataError(path, f"'{target_key}' has shape {target.shape}; expected ({num_slices}, rows, cols)")
    _check_size(path, target)
    if target.shape[1:] != (rows, cols):
        raise FastMRIDataError(
            path,
            f"'{target_key}' has shape {target.shape}; expected {expected}, the header's reconSpace matrix size",
        )
    return target


def _check_mask(hf: h5py.File, path: Path) -> None:
    """A ``mask`` (fastMRI test files carry one; fastmri reads it whole with every slice) must be a
    small readable dataset."""
    mask = _dataset(hf, path, "mask", "sampled columns")
    if mask is None:
        return
    _check_size(path, mask, per_slice=False)
    _read_slice(path, mask, None)


def slice_problem(
    kspace: np.ndarray, target: np.ndarray | None, target_key: str, max_value: float | None
) -> str | None:
    """What is wrong with one read slice, or None: the slice checks of :func:`inspect_volume`
    (and of the reader, for the slices it did not read).

    Args:
        kspace: complex, (rows, cols) or (coils, rows, cols).
        target: float (rows, cols), or None.
        target_key: the target's dataset name, for the message.
        max_value: the ``max`` attribute; None: the target's own maximum is the data range and must be
            positive and within [:data:`MIN_DATA_RANGE`, :data:`MAX_DATA_RANGE`].
    """
    if not np.isfinite(kspace).all():
        return "'kspace' contains NaN or Inf"
    if not kspace.any():
        return (
            "'kspace' is all zero: no measured sample (a damaged chunk read as zeros, or a virtual dataset "
            "whose source file is missing?)"
        )
    if target is None:
        return None
    if not np.isfinite(target).all():
        return f"'{target_key}' contains NaN or Inf"
    peak = float(target.max())
    if max_value is None:
        if not peak > 0:
            return f"'{target_key}' has no positive value (all zero?) and there is no 'max' attribute: no data range"
        problem = data_range_problem(peak, f"'{target_key}' has maximum {peak:g}, its data range without 'max'")
        if problem is not None:
            return problem
    if not target.any():
        return f"'{target_key}' is all zero: NMSE = ||x - target||^2 / ||target||^2 is undefined"
    # a 'max' below the target's maximum is refused on its own; the larger is the generous scale here
    scale = max(peak, max_value or 0.0)
    lowest = float(target.min())
    if lowest < -(1 + MAX_TOLERANCE) * scale:
        return (
            f"'{target_key}' has a value of {lowest:g}, below minus its data range {scale:g}: fastMRI targets are "
            "magnitude images, within the data range"
        )
    return _kspace_bound_problem(kspace, scale)


def data_range_problem(value: float, what: str) -> str | None:
    """Why ``value`` cannot be a data range (outside [:data:`MIN_DATA_RANGE`, :data:`MAX_DATA_RANGE`]), or None.

    Args:
        what: the start of the message, naming where the value comes from.
    """
    if MIN_DATA_RANGE <= value <= MAX_DATA_RANGE:
        return None
    return (
        f"{what}, outside [{MIN_DATA_RANGE:g}, {MAX_DATA_RANGE:g}] (MIN_DATA_RANGE, MAX_DATA_RANGE): "
        "float32 squares of such intensities under- or overflow; rescale the volume"
    )


def _kspace_bound_problem(kspace: np.ndarray, data_range: float) -> str | None:
    """A k-space value above :data:`KSPACE_BOUND_FACTOR` times the Parseval bound
    ``data_range x sqrt(rows x cols x coils)``, or None.

    The real and imaginary parts are compared (each at most the magnitude, so a consistent
    file passes; no float32 overflow in computing a magnitude).
    """
    largest = float(max(np.abs(kspace.real).max(), np.abs(kspace.imag).max()))
    samples = int(kspace.size)
    bound = KSPACE_BOUND_FACTOR * data_range * math.sqrt(samples)
    if largest <= bound:
        return None
    return (
        f"'kspace' holds a value of magnitude {largest:.3g}, above {bound:.3g} = {KSPACE_BOUND_FACTOR:g} x the data "
        f"range {data_range:.3g} x sqrt({samples} samples): by Parseval's theorem no k-space sample of an image "
        "within the data range exceeds data range x sqrt(samples) (a corrupt value?)"
    )


def _check_slices(
    path: Path,
    kspace: h5py.Dataset,
    target: h5py.Dataset | None,
    check_values: bool,
    max_value: float | None,
    keep_going: bool,
) -> tuple[list[FastMRIDataError], float | None]:
    """Read and check the first and last slices (every slice with ``check_values``) by :func:`slice_problem`.

    Returns:
        (the bad slices, raised at the first unless ``keep_going``; the largest target value
        of the good slices read, None without target or good slice).
    """
    num_slices = kspace.shape[0]
    bad: list[FastMRIDataError] = []
    peak: float | None = None
    for index in range(num_slices) if check_values else sorted({0, num_slices - 1}):
        try:
            kspace_slice = _read_slice(path, kspace, index)
            target_slice = None if target is None else _read_slice(path, target, index)
            problem = slice_problem(kspace_slice, target_slice, _name(target), max_value)
            if problem is not None:
                raise FastMRIDataError(path, problem, index)
        except FastMRIDataError as error:
            if not keep_going:
                raise
            bad.append(error)
            continue
        if target_slice is not None:
            value = float(np.max(target_slice))
            peak = value if peak is None else max(peak, value)
    return bad, peak


def _name(dataset: h5py.Dataset | None) -> str:
    return "" if dataset is None else dataset.name.lstrip("/")


def _read_slice(path: Path, dataset: h5py.Dataset, index: int | None) -> np.ndarray:
    """Slice ``index`` of ``dataset`` (all of it for None), or a FastMRIDataError naming it and, when the
    dataset is compressed with a filter HDF5 cannot load, that filter."""
    try:
        return dataset[() if index is None else index]
    except (OSError, RuntimeError) as error:
        cause = _missing_filter_problem(dataset) or "truncated file or damaged chunk?"
        raise FastMRIDataError(path, f"cannot read '{_name(dataset)}' ({cause}): {error}", index) from None


def _missing_filter_problem(dataset: h5py.Dataset) -> str | None:
    """The compression filters of ``dataset`` that this HDF5 has no plugin for (HDF5 then fails every read of a
    chunk they compressed, with a message about its plugin folder), and the way out; None when it has them all."""
    pipeline = dataset.id.get_create_plist()
    filters = (pipeline.get_filter(i) for i in range(pipeline.get_nfilters()))
    missing = [f"{code} ({name.decode(errors='replace')})" for code, _, _, name in filters if not filter_avail(code)]
    if not missing:
        return None
    return (
        f"compressed with HDF5 filter {', '.join(missing)}, which this HDF5 has no plugin for: point "
        "HDF5_PLUGIN_PATH at one, e.g. hdf5plugin's PLUGIN_PATH, or rewrite the file without it, h5repack -f NONE"
    )


def _max_attribute(hf: h5py.File, path: Path) -> float | None:
    """The ``max`` attribute, the data range of every metric: one positive finite number; None when absent."""
    if "max" not in hf.attrs:
        return None
    raw = hf.attrs["max"]
    value = np.asarray(raw)
    expected = "expected one positive finite number (the data range of the metrics)"
    if value.ndim != 0 or value.dtype.kind not in "iuf":
        raise FastMRIDataError(path, f"attribute 'max' is {raw!r}; {expected}")
    number = float(value)
    if not (np.isfinite(number) and number > 0):
        raise FastMRIDataError(path, f"attribute 'max' is {number}; {expected}")
    return number


def _check_max_against_targets(path: Path, max_value: float | None, peak: float | None) -> None:
    """``max`` must be the volume's maximum: not below ``peak`` (the largest target value of the
    good slices read), at most :data:`MAX_RANGE_FACTOR` times it, and a usable data range."""
    if max_value is None:
        return
    problem = None if peak is None else _max_against_peak_problem(max_value, peak)
    problem = problem or data_range_problem(max_value, f"attribute 'max' is {max_value:g}")
    if problem is not None:
        raise FastMRIDataError(path, problem)


def _max_against_peak_problem(max_value: float, peak: float) -> str | None:
    """What is wrong with ``max`` given the largest target value ``peak`` of the slices read, or None."""
    if peak <= 0:
        return f"attribute 'max' is {max_value:g}, but the target has no positive value (maximum {peak:g}); {_ROLE}"
    if max_value > MAX_RANGE_FACTOR * peak:
        return (
            f"attribute 'max' is {max_value:g}, more than {MAX_RANGE_FACTOR:g} (MAX_RANGE_FACTOR) times the target's "
            f"maximum {peak:g}; {_ROLE}: with it every reconstruction would score alike"
        )
    return max_below_target_problem(max_value, peak)


def max_below_target_problem(max_value: float, peak: float) -> str | None:
    """A ``max`` attribute below ``peak``, a target maximum (beyond :data:`MAX_TOLERANCE`), or None: checked
    over the slices :func:`inspect_volume` reads, and by the reader on each slice it reads later."""
    if peak <= max_value * (1 + MAX_TOLERANCE):
        return None
    return f"attribute 'max' is {max_value:g}, below the target's maximum {peak:g}; {_ROLE}"


def list_volumes(folder: str | Path) -> list[Path]:
    """The ``.h5`` entries of a folder but directories, sorted: a link whose target is missing is listed,
    so that the readers name it as a bad file instead of leaving it out unsaid.

    Raises:
        FileNotFoundError: the folder does not exist or holds no ``.h5`` file.
        NotADirectoryError: ``folder`` is a file.
    """
    folder = Path(folder)
    if not folder.exists():
        raise FileNotFoundError(f"data folder {folder} does not exist")
    if not folder.is_dir():
        raise NotADirectoryError(f"data folder {folder} is not a directory")
    files = sorted(p for p in folder.iterdir() if p.suffix == ".h5" and not p.is_dir())
    if not files:
        raise FileNotFoundError(
            f"data folder {folder} holds no .h5 files; expected fastMRI volumes "
            "(write synthetic ones with `mri-rl data synth`)"
        )
    return files


def resolve_split_folder(data: str | Path, challenge: str, split: str) -> Path:
    """The folder of ``.h5`` files for a split.

    ``data`` is either a fastMRI root holding ``{challenge}_{split}`` folders or a
    folder of ``.h5`` files itself.
    """
    check_challenge(challenge)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    data = Path(data)
    candidate = data / f"{challenge}_{split}"
    if candidate.is_dir():
        return candidate
    if data.is_dir() and any(p.suffix == ".h5" for p in data.iterdir()):
        return data
    raise FileNotFoundError(
        f"{data} is neither a folder of .h5 files nor a fastMRI root with a {candidate.name}/ folder"
    )


@dataclass(frozen=True)
class SliceMetadata:
    """Where a slice comes from and its geometry.

    Attributes:
        file: path of the volume.
        slice_index: slice within the volume.
        padding_left, padding_right: acquired phase-encode columns are [left, right).
        recon_size: (rows, cols) of the target.
        max_value: volume maximum of the target (fastMRI's data range for SSIM/PSNR).
        num_coils: 1 for single-coil.
    """

    file: Path
    slice_index: int
    padding_left: int
    padding_right: int
    recon_size: tuple[int, int]
    max_value: float | None
    num_coils: int


@dataclass(frozen=True)
class KspaceSlice:
    """One slice of a fastMRI volume.

    Attributes:
        kspace: complex64 tensor, (rows, cols) single-coil or (coils, rows, cols) multi-coil.
        target: float32 tensor (recon rows, recon cols), or None when the file has none.
        metadata: file, slice, padding, sizes.
    """

    kspace: torch.Tensor
    target: torch.Tensor | None
    metadata: SliceMetadata


class FastMRISliceDataset(SliceDataset):
    """``fastmri.data.SliceDataset`` over the validated ``.h5`` files of one folder.

    Items are :class:`KspaceSlice` (or ``transform(KspaceSlice)``). Files other than
    ``*.h5`` are ignored. The dataset cache of fastmri (a pickle) is never used. Every file
    goes through :func:`inspect_volume` first, and fastmri uses the header metadata it read.

    Args:
        folder: folder of fastMRI volumes (one split).
        challenge: "singlecoil" or "multicoil".
        require_target: a file without the target dataset is bad.
        on_bad_file: "raise" (default) raises the first :class:`FastMRIDataError`;
            "skip" reads every slice at construction (as ``check_values``), leaves out the
            bad files and the bad slices of otherwise good files, and warns once with the
            counts and the list (also kept in :attr:`skipped`).
        check_values: read every slice at construction and reject files whose slices are
            unreadable, hold NaN or Inf, or lack a data range. Without it (faster on large
            folders) only the first and last slices are read; the others are checked when
            read and raise :class:`FastMRIDataError`.
        transform: applied to each :class:`KspaceSlice`.

    Attributes:
        volumes: the usable files (path -> :class:`VolumeInfo`), sorted.
        skipped: what "skip" left out, in file order: one error per bad file
            (``slice_index`` None) or per bad slice (a file whose slices are all bad is left out).
    """

    def __init__(
        self,
        folder: str | Path,
        challenge: str,
        require_target: bool = True,
        on_bad_file: str = "raise",
        check_values: bool = False,
        transform: Callable[[KspaceSlice], Any] | None = None,
    ) -> None:
        check_challenge(challenge)
        if on_bad_file not in BAD_FILE_POLICIES:
            raise ValueError(f"on_bad_file must be one of {BAD_FILE_POLICIES}, got {on_bad_file!r}")
        self.folder = Path(folder)
        self.require_target = require_target
        self.volumes: dict[Path, VolumeInfo] = {}
        self.skipped: list[FastMRIDataError] = []
        skip = on_bad_file == "skip"
        for path in list_volumes(self.folder):
            try:
                info = inspect_volume(path, challenge, require_target, check_values or skip, keep_bad_slices=skip)
            except FastMRIDataError as error:
                if not skip:
                    raise
                self.skipped.append(error)
                continue
            self.skipped.extend(info.bad_slices)
            if info.good_slices:
                self.volumes[path] = info
        self._bad_slices = {(e.path, e.slice_index) for e in self.skipped if e.slice_index is not None}
        if self.skipped:
            warnings.warn(self._skipped_message(), stacklevel=2)
        if not self.volumes:
            raise FileNotFoundError(f"data folder {self.folder} holds no usable fastMRI volume")
        super().__init__(
            root=self.folder,
            challenge=challenge,
            transform=None,
            use_dataset_cache=False,
            raw_sample_filter=self._is_good_sample,
        )
        self.slice_transform = transform

    def _skipped_message(self) -> str:
        """The one warning of "skip": counts, then one line per bad file or slice."""
        files = len({error.path for error in self.skipped} - set(self.volumes))
        slices = sum(error.path in self.volumes for error in self.skipped)
        partly = len({error.path for error in self.skipped} & set(self.volumes))
        listing = "\n  ".join(str(error) for error in self.skipped)
        return (
            f"skipped {files} bad file(s), and {slices} bad slice(s) of {partly} file(s) whose other "
            f"slices are used, in {self.folder}:\n  {listing}"
        )

    def _is_good_sample(self, raw_sample: Any) -> bool:
        """fastmri's ``raw_sample_filter``: False for the slices left out by "skip"."""
        return (Path(raw_sample.fname), raw_sample.slice_ind) not in self._bad_slices

    def _retrieve_metadata(self, fname: Path) -> tuple[dict, int]:
        """fastmri's header metadata as :func:`inspect_volume` read it; zero slices for any other file."""
        info = self.volumes.get(Path(fname))
        if info is None:
            return {}, 0
        return info.fastmri_metadata, info.num_slices

    def __getitem__(self, index: int) -> Any:
        fname, slice_index, _ = self.raw_samples[index]
        info = self.volumes[Path(fname)]
        try:
            kspace, _, target, attrs, _, _ = super().__getitem__(index)
        except IndexError as error:  # h5py: the slice index is past the k-space's slices now
            raise FastMRIDataError(fname, f"the slice is gone ({error}): {_CHANGED}", slice_index) from None
        except HDF5_READ_ERRORS as error:
            reason = f"cannot read the slice (truncated file or damaged chunk?): {error}"
            raise FastMRIDataError(fname, reason, slice_index) from None
        problem = _changed_problem(info, kspace, target, self.recons_key)
        problem = problem or slice_problem(kspace, target, self.recons_key, info.max_value)
        if problem is None and target is not None and info.max_value is not None:
            problem = max_below_target_problem(info.max_value, float(target.max()))
        if problem is not None:
            raise FastMRIDataError(fname, problem, slice_index)
        metadata = SliceMetadata(
            file=Path(fname),
            slice_index=int(slice_index),
            padding_left=int(attrs["padding_left"]),
            padding_right=int(attrs["padding_right"]),
            recon_size=(int(attrs["recon_size"][0]), int(attrs["recon_size"][1])),
            max_value=info.max_value,
            num_coils=info.num_coils,
        )
        item = KspaceSlice(
            kspace=torch.from_numpy(kspace.astype(np.complex64)),
            target=None if target is None else torch.from_numpy(target.astype(np.float32)),
            metadata=metadata,
        )
        return item if self.slice_transform is None else self.slice_transform(item)


#: Why a slice read later does not fit the file :func:`inspect_volume` checked when the reader was made.
_CHANGED = "the file changed since the reader checked it (rewritten?)"


def _changed_problem(info: VolumeInfo, kspace: np.ndarray, target: np.ndarray | None, target_key: str) -> str | None:
    """How a slice the reader read differs from the file ``info`` describes (rewritten since), or None: the shape
    and complex dtype of the k-space slice, the presence, float dtype and shape of the target slice."""
    if kspace.shape != info.slice_shape or not np.iscomplexobj(kspace):
        return f"'kspace' slice is {kspace.dtype} {kspace.shape}, was complex {info.slice_shape}: {_CHANGED}"
    if (target is None) != (not info.has_target):
        return f"'{target_key}' is {'gone' if target is None else 'new'}: {_CHANGED}"
    recon_size = info.geometry.recon_size[:2]
    if target is not None and (target.dtype.kind != "f" or target.shape != recon_size):
        return f"'{target_key}' slice is {target.dtype} {target.shape}, was float {recon_size}: {_CHANGED}"
    return None


def write_volume(
    path: str | Path,
    kspace: np.ndarray,
    target: np.ndarray | None,
    challenge: str,
    geometry: KspaceGeometry,
    attrs: dict[str, Any] | None = None,
) -> Path:
    """Write one volume in fastMRI's format, atomically (temporary file, then rename).

    Args:
        path: destination ``.h5`` file (parent folders are created).
        kspace: complex (slices, rows, cols) or (slices, coils, rows, cols).
        target: float (slices, recon rows, recon cols), or None (like the challenge test split).
        challenge: decides the target dataset name.
        geometry: recorded in the ISMRMRD header.
        attrs: extra file attributes (``acquisition``, ``patient_id``, ...); ``max`` and
            ``norm`` are computed from the target.

    Returns:
        ``path``.
    """
    check_challenge(challenge)
    num_coils = 1 if challenge == "singlecoil" else kspace.shape[1]
    with atomic_output(path) as temporary, h5py.File(temporary, "w") as hf:
        hf.create_dataset("kspace", data=kspace.astype(np.complex64), track_times=False)
        hf.create_dataset("ismrmrd_header", data=np.bytes_(build_header(geometry, num_coils)), track_times=False)
        if target is not None:
            target = target.astype(np.float32)
            hf.create_dataset(TARGET_KEYS[challenge], data=target, track_times=False)
            hf.attrs["max"] = float(target.max())
            hf.attrs["norm"] = float(np.linalg.norm(target))
        for key, value in (attrs or {}).items():
            hf.attrs[key] = value
    return Path(path)
