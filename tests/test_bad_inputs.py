"""Bad inputs, property-based (issue "Hardening"): a clear error or a correct result, never a traceback.

Hypothesis starts from small valid inputs (fastMRI volumes, task fields, config overrides, env
actions, command lines, checkpoints), damages them, and each property checks the contract:

- the Python API raises the documented ValueError kind (FastMRIDataError, TaskError,
  ConfigError, CheckpointError) or an OSError whose message names the file, key or value;
  otherwise the result is correct and finite. Never another exception type, never a silent
  non-finite metric or reward;
- a volume that passes ``inspect_volume(..., check_values=True)`` (what ``mri-rl data check``
  runs) reads cleanly through ``FastMRISliceDataset`` and the environment;
- the command line answers an expected failure with one ``mri-rl: error:`` line and status 2
  (argparse's usage errors: status 2 too), and a success with finite numbers.

One mutation table (:data:`MUTATIONS`) damages volumes and checkpoints alike, and one helper
(:func:`clear_error_or_result`) judges every outcome. Reading a damaged HDF5 or checkpoint file
can hang or crash inside a C library, so those checks run in a forked child with a time limit
(:func:`in_child`). Examples are derandomized (the same on every run) and few (about a minute
in all); the slow properties do not shrink their failures, to keep that bound.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import select
import signal
import tempfile
import time
import traceback
import warnings
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import h5py
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, Phase, example, given, reject, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mri_rl.agents import DQN
from mri_rl.cli import main
from mri_rl.configs import load_config, packaged_configs
from mri_rl.data.fastmri_files import TARGET_KEYS, FastMRIDataError, FastMRISliceDataset, KspaceSlice, inspect_volume
from mri_rl.envs.acquisition import ActiveAcquisitionEnv
from mri_rl.kspace import data_range
from mri_rl.reconstruct import UnetReconstructor, export_reconstructor, load_reconstructor
from mri_rl.task import CHALLENGES, DEFAULT_TASK, METRIC_NAMES, AcquisitionTask, TaskError

# ------------------------------------------------------------------------------ settings
#: Every property: reproducible (derandomized, no example database), no deadline.
BASE = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
#: The slow properties (files, command lines, checkpoints): report the first failure as found.
NO_SHRINK = settings(BASE, phases=[Phase.explicit, Phase.generate])
#: Seconds a forked check may take before it counts as a hang (a normal one takes well under 1 s).
CHILD_TIMEOUT_S = 30.0
#: Relative tolerance of the ``max`` attribute against the target's maximum (the package's own).
MAX_TOLERANCE = 1e-3


# ------------------------------------------------------------------------ judging outcomes
def _names_in(message: str, names: Sequence[str | tuple[str, ...]]) -> list[str | tuple[str, ...]]:
    """The entries of ``names`` that ``message`` lacks (a tuple is satisfied by any one of its strings)."""
    return [name for name in names if not any(n in message for n in ((name,) if isinstance(name, str) else name))]


def clear_error_or_result(
    run: Callable[[], Any],
    errors: tuple[type[BaseException], ...],
    names: Sequence[str | tuple[str, ...]] = (),
    check: Callable[[Any], None] | None = None,
) -> Any:
    """The one judge of every property: ``run()`` raises one of ``errors`` naming each of ``names``
    (then that error is returned), or returns a result that ``check`` accepts (then it is returned).

    Raises:
        AssertionError: another exception escaped (a user would see a traceback), the error does
            not name what it should, or ``check`` refused the result.
    """
    try:
        result = run()
    except errors as error:
        missing = _names_in(str(error), names)
        assert not missing, f"{type(error).__name__} does not name {missing}: {error}"
        return error
    except Exception as error:
        detail = "".join(traceback.format_exception(type(error), error, error.__traceback__, limit=-4))
        raise AssertionError(
            f"{type(error).__name__} escaped (expected {[e.__name__ for e in errors]} or a result): {error}\n{detail}"
        ) from None
    if check is not None:
        check(result)
    return result


def in_child(check: Callable[[], None], timeout: float = CHILD_TIMEOUT_S) -> None:
    """Run ``check`` in a forked child and fail here as it failed there; a child that hangs (killed
    after ``timeout`` seconds) or dies of a signal fails too. Without ``os.fork``, runs here."""
    if not hasattr(os, "fork"):
        check()
        return
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, then leave without pytest's exit handlers
        os.close(read_end)
        status = 0
        try:
            check()
            report = b""
        except BaseException:
            report, status = traceback.format_exc().encode(errors="replace"), 1
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(report)
        os._exit(status)
    os.close(write_end)
    report, hung = _read_until_eof(read_end, timeout)
    if hung:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    assert not hung, f"the check hung: killed after {timeout:g} s"
    assert not os.WIFSIGNALED(status), f"the check crashed with signal {os.WTERMSIG(status)}"
    assert not report, report.decode(errors="replace")


def _read_until_eof(fd: int, timeout: float) -> tuple[bytes, bool]:
    """Everything written to pipe ``fd`` until its end; (data, True) if ``timeout`` passed first."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    with os.fdopen(fd, "rb") as pipe:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([pipe], [], [], remaining)[0]:
                return b"".join(chunks), True
            chunk = os.read(pipe.fileno(), 65536)
            if not chunk:
                return b"".join(chunks), False
            chunks.append(chunk)


def check_finite(values: Sequence[float]) -> None:
    """Every number of ``values`` is finite."""
    bad = [v for v in values if not math.isfinite(v)]
    assert not bad, f"non-finite numbers {bad[:5]} among {len(values)}"


NON_FINITE_WORD = re.compile(r"(?<![A-Za-z])(nan|inf|infinity)(?![A-Za-z])", re.IGNORECASE)


def check_finite_text(text: str, *paths: Path) -> None:
    """No nan or inf in ``text`` (once the ``paths`` it names are left out)."""
    for path in paths:
        text = text.replace(str(path), "")
    found = NON_FINITE_WORD.search(text)
    assert found is None, f"non-finite number {found.group()!r} in the output:\n{text}"


# ---------------------------------------------------------------------------- the CLI
@dataclass(frozen=True)
class CliRun:
    """What ``main(argv)`` did: its status, stdout, stderr, and whether argparse refused the arguments."""

    status: int | str | None
    out: str
    err: str
    usage_error: bool


def run_cli(argv: list[str]) -> CliRun:
    """``main(argv)`` in-process, stdout and stderr captured (Python warnings left out of stderr)."""
    out, err = io.StringIO(), io.StringIO()
    usage_error = False
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            status: int | str | None = main(argv)
        except SystemExit as exit_:  # argparse: usage and an error line, status 2
            status, usage_error = exit_.code, True
    return CliRun(status, out.getvalue(), err.getvalue(), usage_error)


def check_cli_contract(run: CliRun, check_success: Callable[[CliRun], None]) -> None:
    """Status 0 with what ``check_success`` wants; or status 2 with one ``mri-rl: error:`` line (argparse:
    its usage, then its error line)."""
    lines = run.err.splitlines()
    if run.usage_error:  # status 0: a drawn value was "-h" (help)
        assert run.status == 0 or (run.status == 2 and lines and ": error: " in lines[-1]), f"usage error: {run}"
    elif run.status == 0:
        assert not run.err, f"status 0 but stderr says:\n{run.err}"
        check_success(run)
    else:
        assert run.status == 2, f"status {run.status!r} (expected 0 or 2); stderr:\n{run.err}"
        assert len(lines) == 1 and lines[0].startswith("mri-rl: error: "), f"not one error line:\n{run.err}"


# ------------------------------------------------------------------------ the mutations
@dataclass(frozen=True)
class Mutation:
    """One way to damage a file: its family, the strategy of its parameters, and how it applies
    ``(path, challenge, params)``. Raising ``hypothesis.reject`` skips a damage h5py cannot write."""

    family: str
    params: st.SearchStrategy[Any]
    apply: Callable[[Path, str, Any], None]


def _on_h5(damage: Callable[[h5py.File, str, Any], None]) -> Callable[[Path, str, Any], None]:
    """A mutation of the open HDF5 file (``hf, challenge, params``); a file already too damaged to open is left."""

    def apply(path: Path, challenge: str, params: Any) -> None:
        try:
            hf = h5py.File(path, "r+")
        except OSError:
            return
        with hf:
            damage(hf, challenge, params)

    return apply


def _dataset_key(hf: h5py.File, challenge: str, which: str) -> str | None:
    """The name of ``which`` ("kspace", "target", "ismrmrd_header") if it is a dataset of ``hf``."""
    key = TARGET_KEYS[challenge] if which == "target" else which
    return key if isinstance(hf.get(key), h5py.Dataset) else None


def _write(hf: h5py.File, key: str, value: Any) -> None:
    """``hf[key] = value``, replacing what is there (rejecting values h5py cannot store)."""
    if key in hf:
        del hf[key]
    try:
        hf[key] = value
    except (TypeError, ValueError, OverflowError):
        reject()


def _set_max(hf: h5py.File, challenge: str, value: Any) -> None:
    """``max`` set to ``value`` (a value h5py cannot store is rejected)."""
    try:
        hf.attrs["max"] = value
    except (TypeError, ValueError, OverflowError):
        reject()


def _scale_max(hf: h5py.File, challenge: str, factor: float) -> None:
    """``max`` = the target's own maximum times ``factor`` (around the package's tolerance)."""
    key = _dataset_key(hf, challenge, "target")
    if key is not None:
        hf.attrs["max"] = float(np.max(hf[key][()])) * factor


def _retype_max(hf: h5py.File, challenge: str, dtype: type) -> None:
    """``max`` stored as another numpy type (an int type makes the small synthetic maximum 0)."""
    try:
        value = dtype(hf.attrs.get("max", 1))
    except (TypeError, ValueError, OverflowError):
        reject()
    _set_max(hf, challenge, value)


def _delete_max(hf: h5py.File, challenge: str, params: Any) -> None:
    """No ``max`` attribute."""
    if "max" in hf.attrs:
        del hf.attrs["max"]


def _as_dtype(data: np.ndarray, dtype: Any) -> np.ndarray:
    """``data`` converted to ``dtype`` (the real part when a complex array becomes real)."""
    if np.iscomplexobj(data) and not np.issubdtype(np.dtype(dtype), np.complexfloating):
        data = np.real(data)
    return data.astype(dtype)


def _change_dtype(hf: h5py.File, challenge: str, params: tuple[str, Any]) -> None:
    """A dataset stored with another dtype."""
    which, dtype = params
    key = _dataset_key(hf, challenge, which)
    if key is not None:
        _write(hf, key, _as_dtype(hf[key][()], dtype))


#: Shape changes of a dataset whose first axis is the slices.
RESHAPES: dict[str, Callable[[np.ndarray], Any]] = {
    "no_slices": lambda a: a[:0],
    "one_slice": lambda a: a[:1],
    "drop_last_slice": lambda a: a[:-1],
    "extra_slice": lambda a: np.concatenate([a, a[:1]]),
    "add_axis": lambda a: a[:, None],
    "drop_last_axis": lambda a: a[..., 0],
    "crop_rows": lambda a: a[..., :-1, :],
    "crop_cols": lambda a: a[..., :-1],
    "pad_cols": lambda a: np.concatenate([a, a[..., :1]], axis=-1),
    "swap_rows_cols": lambda a: np.swapaxes(a, -1, -2),
    "no_cols": lambda a: a[..., :0],
    "scalar": lambda a: a.reshape(-1)[0],
}


def _reshape(hf: h5py.File, challenge: str, params: tuple[str, str]) -> None:
    """A dataset of another shape (:data:`RESHAPES`)."""
    which, change = params
    key = _dataset_key(hf, challenge, which)
    if key is not None and hf[key].ndim >= 2:
        _write(hf, key, RESHAPES[change](hf[key][()]))


def _delete(hf: h5py.File, challenge: str, which: str) -> None:
    """A dataset deleted."""
    key = _dataset_key(hf, challenge, which)
    if key is not None:
        del hf[key]


def _as_group(hf: h5py.File, challenge: str, which: str) -> None:
    """A dataset replaced by a group."""
    key = TARGET_KEYS[challenge] if which == "target" else which
    if key in hf:
        del hf[key]
    hf.create_group(key)["data"] = np.zeros(3, np.float32)


def _fill(hf: h5py.File, challenge: str, params: tuple[str, float]) -> None:
    """Every value of a dataset set to one number (an all-zero target, a constant k-space...)."""
    which, value = params
    key = _dataset_key(hf, challenge, which)
    if key is not None and hf[key].dtype.kind in "fc":
        hf[key][...] = value


def _extra_dataset(hf: h5py.File, challenge: str, params: tuple[str, np.ndarray]) -> None:
    """A dataset the reader may look at: ``mask`` (fastMRI test files), the other challenge's target."""
    key, data = params
    _write(hf, key, data)


def _plant(hf: h5py.File, challenge: str, params: tuple[str, int, float, float, bool]) -> None:
    """One value (NaN, Inf, huge, tiny...) in slice ``index`` of a dataset, at relative ``position``."""
    which, index, position, value, imaginary = params
    key = _dataset_key(hf, challenge, which)
    if key is None or hf[key].ndim < 2 or hf[key].dtype.kind not in "fc":
        return
    data = hf[key][()]
    plane = data[min(index, len(data) - 1)].reshape(-1)  # a view into data
    spot = min(int(position * plane.size), plane.size - 1)
    plane[spot] = complex(0.0, value) if imaginary and np.iscomplexobj(data) else value
    hf[key][...] = data


def _header_bytes(hf: h5py.File) -> bytes | None:
    """The header as bytes, or None when it is not one string any more."""
    dataset = hf.get("ismrmrd_header")
    value = dataset[()] if isinstance(dataset, h5py.Dataset) and dataset.shape == () else None
    return value if isinstance(value, bytes) else None


def _edit_header_tree(
    hf: h5py.File, index: int, edit: Callable[[ElementTree.Element, ElementTree.Element], None]
) -> None:
    """Apply ``edit(parent, element)`` to element ``index`` (modulo their number) of the header's XML."""
    header = _header_bytes(hf)
    try:
        root = ElementTree.fromstring(header or b"")
    except ElementTree.ParseError:
        return
    pairs = [(parent, child) for parent in root.iter() for child in parent]
    if pairs:
        edit(*pairs[index % len(pairs)])
        _write(hf, "ismrmrd_header", np.bytes_(ElementTree.tostring(root)))


def _drop_header_element(hf: h5py.File, challenge: str, index: int) -> None:
    """One element of the header XML removed."""
    _edit_header_tree(hf, index, lambda parent, element: parent.remove(element))


def _set_header_text(hf: h5py.File, challenge: str, params: tuple[int, str]) -> None:
    """The text of one element of the header XML replaced."""
    index, text = params

    def edit(parent: ElementTree.Element, element: ElementTree.Element) -> None:
        element.text = text

    _edit_header_tree(hf, index, edit)


def _overwrite_header(hf: h5py.File, challenge: str, params: tuple[float, bytes]) -> None:
    """Bytes of the header overwritten."""
    header = _header_bytes(hf)
    if header is not None:
        _write(hf, "ismrmrd_header", np.bytes_(_overwritten(header, params)))


def _truncate_header(hf: h5py.File, challenge: str, fraction: float) -> None:
    """The header cut short."""
    header = _header_bytes(hf)
    if header is not None:
        _write(hf, "ismrmrd_header", np.bytes_(header[: int(fraction * len(header))]))


def _replace_header(hf: h5py.File, challenge: str, value: Any) -> None:
    """The header replaced by other bytes or another kind of dataset."""
    _write(hf, "ismrmrd_header", value)


def _overwritten(data: bytes, params: tuple[float, bytes]) -> bytes:
    """``data`` with ``params[1]`` written over it at relative offset ``params[0]`` (same length)."""
    fraction, patch = params
    start = min(int(fraction * len(data)), max(len(data) - 1, 0))
    return data[:start] + patch[: len(data) - start] + data[start + len(patch) :]


def _overwrite_file(path: Path, challenge: str, params: tuple[float, bytes]) -> None:
    """Bytes of the file overwritten at a relative offset."""
    path.write_bytes(_overwritten(path.read_bytes(), params))


def _truncate_file(path: Path, challenge: str, fraction: float) -> None:
    """The file cut at a relative length."""
    with open(path, "r+b") as handle:
        handle.truncate(int(fraction * path.stat().st_size))


FRACTION = st.floats(0, 1, exclude_max=True)
PATCH = st.binary(min_size=1, max_size=32)
INT_DTYPES = sorted(
    {np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64, np.intc, np.uintc}
    | {np.intp, np.uintp, np.longlong, np.ulonglong, np.short, np.ushort, np.byte, np.ubyte},
    key=lambda t: t.__name__,
)
SPECIAL_MAX = [
    0.0,
    -0.0,
    -5.0,
    math.nan,
    math.inf,
    -math.inf,
    1e-30,
    5e-324,
    1e300,
    1e308,
    float(np.finfo(np.float32).max),
    3,
    -1,
    np.int64(2**63 - 1),
    np.uint64(2**64 - 1),
    np.float16(1.0),
    True,
    np.True_,
    "large",
    "1.0",
    b"1.0",
    np.array([1.0, 2.0]),
    np.array([5.0]),
    np.array(5.0),
    np.array([]),
    1 + 0j,
]
MAX_VALUES = st.one_of(
    st.sampled_from(SPECIAL_MAX),
    st.floats(),
    st.integers(-(2**63), 2**63 - 1),
    st.text(max_size=5),
    hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=2, max_side=3)),
)
MAX_FACTORS = st.one_of(
    st.sampled_from([0.0, 0.5, 0.998, 0.999, 0.9991, 0.99905, 1.0, 1.0 + 1e-9, 1e10]), st.floats(0, 3)
)
DATASETS = st.sampled_from(["kspace", "target"])
DTYPES = st.sampled_from(
    [np.complex64, np.complex128, np.float16, np.float32, np.float64, np.int16, np.uint8, np.bool_, "S4"]
)
PLANTED = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -1.0, 1e-45, 1e30, 1e38, 3e38, -3e38]), st.floats(width=32)
)
HEADER_TEXTS = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(["", " ", "1.5", "nan", "inf", "1e3", "0x10", "+3", "-0", " 16 ", "1_6", "\u0663", "9" * 5000]),
    st.text(max_size=6),
)
XML_SPECIALS = [
    b"",
    b"<a/>",
    b'<?xml version="1.0"?>',
    b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
    b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><x>&b;&b;&b;</x>',
]
HEADERS = st.one_of(
    st.sampled_from(XML_SPECIALS).map(np.bytes_),
    st.binary(max_size=40).map(np.bytes_),
    st.sampled_from([np.arange(4), np.array([b"<a/>", b"<b/>"]), np.array(3.0)]),
)
EXTRA_DATASETS = st.tuples(
    st.sampled_from(["mask", "reconstruction_esc", "reconstruction_rss", "junk"]),
    hnp.arrays(st.sampled_from([np.float32, np.bool_, np.int64]), hnp.array_shapes(min_dims=1, max_dims=3, max_side=4)),
)

#: Every way the properties damage a file, by family; the "bytes" family works on any file.
MUTATIONS: dict[str, Mutation] = {
    "max_value": Mutation("max", MAX_VALUES, _on_h5(_set_max)),
    "max_scaled": Mutation("max", MAX_FACTORS, _on_h5(_scale_max)),
    "max_dtype": Mutation("max", st.sampled_from(INT_DTYPES + [np.float16, np.float32]), _on_h5(_retype_max)),
    "max_deleted": Mutation("max", st.none(), _on_h5(_delete_max)),
    "dtype": Mutation("datasets", st.tuples(DATASETS, DTYPES), _on_h5(_change_dtype)),
    "shape": Mutation("datasets", st.tuples(DATASETS, st.sampled_from(sorted(RESHAPES))), _on_h5(_reshape)),
    "deleted": Mutation("datasets", st.sampled_from(["kspace", "target", "ismrmrd_header"]), _on_h5(_delete)),
    "group": Mutation("datasets", st.sampled_from(["kspace", "target", "ismrmrd_header"]), _on_h5(_as_group)),
    "extra_dataset": Mutation("datasets", EXTRA_DATASETS, _on_h5(_extra_dataset)),
    "fill": Mutation("values", st.tuples(DATASETS, st.sampled_from([0.0, 1.0, -1.0, 1e-30])), _on_h5(_fill)),
    "plant": Mutation(
        "values", st.tuples(DATASETS, st.integers(0, 2), FRACTION, PLANTED, st.booleans()), _on_h5(_plant)
    ),
    "header_drop": Mutation("header", st.integers(0, 10**4), _on_h5(_drop_header_element)),
    "header_text": Mutation("header", st.tuples(st.integers(0, 10**4), HEADER_TEXTS), _on_h5(_set_header_text)),
    "header_overwrite": Mutation(
        "header", st.tuples(FRACTION, st.binary(min_size=1, max_size=8)), _on_h5(_overwrite_header)
    ),
    "header_truncate": Mutation("header", FRACTION, _on_h5(_truncate_header)),
    "header_replace": Mutation("header", HEADERS, _on_h5(_replace_header)),
    "truncate": Mutation("bytes", FRACTION, _truncate_file),
    "overwrite": Mutation("bytes", st.tuples(FRACTION, PATCH), _overwrite_file),
}
FAMILIES = sorted({mutation.family for mutation in MUTATIONS.values()}) + ["mixed"]


def mutations(family: str, max_size: int = 2) -> st.SearchStrategy[list[tuple[str, Any]]]:
    """1 to ``max_size`` mutations of ``family`` ("mixed": of any family, up to 3), as (name, params)."""
    names = [name for name, m in MUTATIONS.items() if family in ("mixed", m.family)]
    one = st.one_of([st.tuples(st.just(name), MUTATIONS[name].params) for name in names])
    return st.lists(one, min_size=1, max_size=3 if family == "mixed" else max_size)


def apply_mutations(path: Path, challenge: str, drawn: list[tuple[str, Any]]) -> None:
    """Apply the drawn mutations, the byte-level ones last (h5py must still open the file before)."""
    for name, params in sorted(drawn, key=lambda item: MUTATIONS[item[0]].family == "bytes"):
        MUTATIONS[name].apply(path, challenge, params)


# ------------------------------------------------------------------------- volumes
def read_every_slice(folder: Path, challenge: str) -> list[KspaceSlice]:
    """Every slice of the folder through ``FastMRISliceDataset`` (bad files raise)."""
    dataset = FastMRISliceDataset(folder, challenge)
    return [dataset[index] for index in range(len(dataset))]


def check_slices(items: list[KspaceSlice], checked: bool = False) -> None:
    """Slices a model can use: finite, of the sizes their metadata says, with a positive finite data range; for
    a file that data check passed (``checked``: every slice's maximum was compared), at least their maximum."""
    assert items, "no slice read"
    for item in items:
        meta, target = item.metadata, item.target
        where = f"{meta.file.name}, slice {meta.slice_index}"
        assert target is not None, f"{where}: no target"
        assert bool(torch.isfinite(item.kspace).all()) and bool(torch.isfinite(target).all()), f"{where}: NaN or Inf"
        assert tuple(target.shape) == meta.recon_size, f"{where}: target {tuple(target.shape)} vs {meta.recon_size}"
        assert 0 <= meta.padding_left < meta.padding_right <= item.kspace.shape[-1], f"{where}: padding {meta}"
        value = data_range(meta.max_value, target)
        peak = float(target.max())
        assert math.isfinite(value) and value > 0, f"{where}: data range {value}"
        below = f"{where}: data check passed, but the data range {value:g} is below the target's maximum {peak:g}"
        assert not checked or value >= peak * (1 - MAX_TOLERANCE), below


def env_numbers(folder: Path, challenge: str) -> list[float]:
    """Rewards and metrics of two steps from every slice of the folder, in the single environment."""
    numbers: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = ActiveAcquisitionEnv(folder, challenge=challenge, budget=2, initial_lines=2)
        for index in range(env.num_slices):
            _, info = env.reset(seed=0, options={"index": index})
            numbers += [float(info[name]) for name in METRIC_NAMES]
            for _ in range(2):
                action = int(np.flatnonzero(env.action_masks())[0])
                _, reward, terminated, _, info = env.step(action)
                numbers += [reward] + [float(info[name]) for name in METRIC_NAMES]
                if terminated:
                    break
    return numbers


#: Data check flag for the readers' rule: a volume without its target is bad (the env and the reader need it).
REQUIRE = ("--require-target",)


def check_volume(path: Path, challenge: str) -> None:
    """The file property for one (possibly damaged) volume alone in its folder: data check, the
    reader and the environment give a clear error naming the file, or read it cleanly; and what
    data check passes, they read."""
    folder, names = path.parent, [path.name]
    info = clear_error_or_result(lambda: inspect_volume(path, challenge, check_values=True), (FastMRIDataError,), names)
    passed = not isinstance(info, FastMRIDataError)
    checked = clear_error_or_result(
        lambda: run_cli(["data", "check", str(folder), "--challenge", challenge, *REQUIRE]), ()
    )
    assert checked.status == (0 if passed else 1) and not checked.err, f"data check: {checked}"
    assert passed or f"BAD {path.name}: " in checked.out, f"data check names no bad file:\n{checked.out}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        items = clear_error_or_result(
            lambda: read_every_slice(folder, challenge), (FastMRIDataError,), names, lambda x: check_slices(x, passed)
        )
    if passed:
        assert not isinstance(items, BaseException), f"data check passes {path.name}, the reader refuses it: {items}"
        clear_error_or_result(lambda: env_numbers(folder, challenge), (ValueError,), ["initial_lines"], check_finite)


@pytest.mark.parametrize("family", FAMILIES)
def test_damaged_volume_gives_a_clear_error_or_reads_cleanly(
    family, singlecoil_volume, multicoil_volume, copy_volume, tmp_path
):
    sources = {"singlecoil": singlecoil_volume, "multicoil": multicoil_volume}
    shrink = family in ("max", "values", "header", "datasets")  # h5py writes them, HDF5 reads them: no hang

    @settings(BASE if shrink else NO_SHRINK, max_examples=40 if family == "mixed" else 30)
    @given(challenge=st.sampled_from(CHALLENGES), drawn=mutations(family))
    def damaged_volume(challenge: str, drawn: list[tuple[str, Any]]) -> None:
        with tempfile.TemporaryDirectory(dir=tmp_path) as folder:
            path = copy_volume(sources[challenge], Path(folder) / "damaged_volume.h5")
            apply_mutations(path, challenge, drawn)
            in_child(lambda: check_volume(path, challenge))

    damaged_volume()


# ---------------------------------------------------------------------------- task fields
ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.binary(max_size=4),
    st.sampled_from([*CHALLENGES, *METRIC_NAMES, "zero_filled", "", "  "]),
    st.lists(st.integers(-2, 40), max_size=4),
    st.tuples(st.integers(-2, 40), st.integers(-2, 40)),
    st.lists(st.floats(), max_size=3),
    st.dictionaries(st.integers(0, 5), st.integers(0, 5), max_size=3),
    st.sampled_from(
        [np.int64(8), np.float64(8.0), np.float64("nan"), np.array([64, 32]), np.array(["singlecoil", "multicoil"])]
    ),
    st.sampled_from([np.array("ssim"), np.str_("ssim"), Path("model.pt"), Path(""), {3, 4}, (64.0, 32.0), 1 + 2j]),
)


def check_task(task: AcquisitionTask) -> None:
    """Every field of the right type and range."""
    assert type(task.challenge) is str and task.challenge in CHALLENGES, task
    assert type(task.reward_metric) is str and task.reward_metric in METRIC_NAMES, task
    assert task.budget is None or (type(task.budget) is int and task.budget >= 1), task
    assert type(task.initial_lines) is int and task.initial_lines >= 1, task
    assert isinstance(task.reconstructor, str) and task.reconstructor, task
    shape = task.kspace_shape
    assert shape is None or (type(shape) is tuple and len(shape) in (2, 3)), task
    assert shape is None or all(type(n) is int and n >= 1 for n in shape), task
    assert task.reconstructor_fingerprint is None or isinstance(task.reconstructor_fingerprint, str), task


@settings(BASE, max_examples=300)
@given(name=st.sampled_from(AcquisitionTask.field_names()), value=ANY_VALUE)
def test_task_field_gives_a_task_error_or_a_valid_task(name, value):
    clear_error_or_result(lambda: DEFAULT_TASK.with_changes(**{name: value}), (TaskError,), [name], check_task)


# --------------------------------------------------------------------------- config overrides
YAML_TEXTS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["", "null", "~", "true", "no", "0", "-1", "1", "2.5", "1e3", "3e-4", ".nan", ".inf", "-.inf", "nan", "1e400"]
        + ["[]", "[1, 2]", "[0]", "[-1]", "{}", "{a: 1}", "{kind: random}", "'x'", "[", "{", "&a [*a]", "*nowhere"]
        + ["!!python/object/apply:os.system ['true']", "!!binary aGk=", "2020-01-01", "0x10", "9" * 5000]
    ),
)


def dotted_keys(values: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """Every key of a nested mapping, dotted (``masks.train.kind``), mappings included."""
    for key, value in values.items():
        yield prefix + str(key)
        if isinstance(value, dict):
            yield from dotted_keys(value, f"{prefix}{key}.")


def validated(name: str, values: dict[str, Any], source: str) -> Any:
    """The packaged config ``name``'s own validation, and a first use of what it validated."""
    if name.startswith("recon_"):
        from mri_rl.reconstruct.train import validate_config
        from mri_rl.reconstruct.training_masks import build_mask_sampler, build_mask_samplers

        validate_config(values, source, DEFAULT_TASK)
        samplers = [build_mask_sampler(values["masks"]["train"], DEFAULT_TASK)]
        samplers += build_mask_samplers(values["masks"].get("evaluation", {}), DEFAULT_TASK).values()
        masks = [sampler(32, 2, 30, 0) for sampler in samplers]
        assert all(mask.shape == (32,) and mask.dtype == bool for mask in masks), masks
        return values
    if name == "quickstart":
        from mri_rl.configs.schema import from_mapping
        from mri_rl.runs.quickstart import QuickstartConfig

        return from_mapping(QuickstartConfig, values, source)
    from mri_rl.runs.training import TrainConfig

    config = TrainConfig.from_dict(values, source)
    config.settings()
    return config


def load_and_validate(name: str, override: str) -> Any:
    """Load a packaged config with one ``--set`` override and validate it; a ValueError leaves out the
    config's file name (so it must name the key itself)."""
    values, source = load_config(name, [override])
    try:
        return validated(name, values, source)
    except ValueError as error:
        raise ValueError(str(error).replace(source, "<config>")) from None


@pytest.mark.parametrize("name", packaged_configs())
def test_config_override_gives_an_error_naming_the_key_or_a_valid_config(name):
    values, _ = load_config(name)
    keys = sorted(dotted_keys(values))

    @settings(BASE, max_examples=60)
    @given(key=st.sampled_from(keys), text=YAML_TEXTS)
    def override(key: str, text: str) -> None:
        names = [(key.split(".")[0], *values)]  # the key's section (or another it conflicts with)
        clear_error_or_result(lambda: load_and_validate(name, f"{key}={text}"), (ValueError,), names)

    override()


# ------------------------------------------------------------------------------ env actions
@pytest.fixture(scope="module")
def acquisition_env(singlecoil_volume: Path, tmp_path_factory: pytest.TempPathFactory) -> ActiveAcquisitionEnv:
    """The single environment on one 3-slice single-coil volume (16 columns), budget 4, 2 initial lines."""
    folder = tmp_path_factory.mktemp("actions")
    (folder / singlecoil_volume.name).write_bytes(singlecoil_volume.read_bytes())
    return ActiveAcquisitionEnv(folder, budget=4, initial_lines=2)


def _numpy_integers(kind: type) -> st.SearchStrategy[Any]:
    """Scalars of the numpy integer type ``kind``: mostly small, sometimes anywhere in its range."""
    info = np.iinfo(kind)
    small = st.integers(max(int(info.min), -3), min(int(info.max), 20))
    return st.one_of(small, st.integers(int(info.min), int(info.max))).map(kind)


ACTIONS = st.one_of(
    st.sampled_from(INT_DTYPES).flatmap(_numpy_integers),
    st.integers(-3, 20),
    st.integers(),
    st.floats(),
    st.sampled_from([2.0, np.float64(3.0), np.float32(1.0), True, False, np.True_, None, "3", b"3", 3 + 0j]),
    st.sampled_from([np.int64, np.int8, np.uint16, np.float64, np.bool_]).flatmap(
        lambda dtype: hnp.arrays(
            dtype,
            hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3),
            elements=None if dtype is np.bool_ else {"min_value": 0, "max_value": 15},
        )
    ),
    st.lists(st.integers(0, 15), max_size=3),
    st.tuples(st.integers(0, 15)),
)


def integer_value(action: Any) -> int | None:
    """The integer an action is, by the env's contract (a Python or numpy integer, or a 0-d integer array;
    never a bool), else None."""
    if isinstance(action, (bool, np.bool_)):
        return None
    if isinstance(action, (int, np.integer)):
        return int(action)
    if isinstance(action, np.ndarray) and action.shape == () and np.issubdtype(action.dtype, np.integer):
        return int(action)
    return None


def step_from_start(env: ActiveAcquisitionEnv, action: Any) -> tuple[Any, ...]:
    """Reset to slice 0 and step ``action``; a refused step must leave the state as it was."""
    env.reset(seed=0, options={"index": 0})
    acquired, steps = env.episodes.acquired.clone(), env.episodes.steps.copy()
    try:
        return env.step(action)
    except ValueError:
        assert torch.equal(env.episodes.acquired, acquired) and (env.episodes.steps == steps).all(), "refused, spent"
        raise


def same_step(first: tuple[Any, ...], second: tuple[Any, ...]) -> bool:
    """Two step results alike: observations, reward, flags and info."""
    (obs_a, reward_a, *flags_a, info_a), (obs_b, reward_b, *flags_b, info_b) = first, second
    same_obs = obs_a.keys() == obs_b.keys() and all(np.array_equal(obs_a[k], obs_b[k]) for k in obs_a)
    same_info = info_a.keys() == info_b.keys() and all(np.array_equal(info_a[k], info_b[k]) for k in info_a)
    return same_obs and same_info and flags_a == flags_b and reward_a == reward_b


@settings(BASE, max_examples=250)
@given(action=ACTIONS)
def test_env_action_is_refused_naming_it_or_acts_like_an_int64(acquisition_env, action):
    env = acquisition_env
    value = integer_value(action)

    def check(result: tuple[Any, ...]) -> None:
        assert value is not None, f"step accepted {action!r} ({type(action).__name__}), not one integer"
        check_finite([result[1]] + [float(result[4][name]) for name in METRIC_NAMES])

    outcome = clear_error_or_result(lambda: step_from_start(env, action), (ValueError,), ["action"], check)
    if value is None:
        assert isinstance(outcome, ValueError), f"step accepted {action!r}"
        return
    int64 = np.int64(value) if -(2**63) <= value < 2**63 else None
    reference = clear_error_or_result(lambda: step_from_start(env, int64), (ValueError,), ["action"])
    if isinstance(outcome, ValueError) or isinstance(reference, ValueError):
        assert isinstance(outcome, ValueError) and isinstance(reference, ValueError), (outcome, reference)
    else:
        assert same_step(outcome, reference), f"{action!r} ({type(action).__name__}) acts unlike int64 {value}"


# ------------------------------------------------------------------------------- the CLI
def _flag_text(kind: str, low: int = 0, high: int = 0) -> st.SearchStrategy[str]:
    """Text for a flag: mostly numbers of the flag's kind (integers bounded so that a run stays tiny), else
    special texts or any text without digits."""
    special = st.sampled_from(
        ["nan", "inf", "-inf", "0", "-1", "-0", "1e3", "2.5", "", " ", "1_0", "0x10", "+1", "3.0"]
    )
    text = st.text(st.characters(blacklist_categories=("Nd", "Cs")), max_size=6)
    number = st.integers(low, high).map(str) if kind == "int" else st.floats().map(repr)
    return st.one_of(number, number, number, special, text)  # mostly numbers: past argparse, into the command


def flag_sets(flags: dict[str, st.SearchStrategy[str]], most: int = 3) -> st.SearchStrategy[dict[str, str]]:
    """Up to ``most`` of the numeric ``flags`` with drawn texts (few at once, so that one bad text does not always
    stop argparse before the command runs)."""
    chosen = st.lists(st.sampled_from(sorted(flags)), max_size=most, unique=True)
    return chosen.flatmap(lambda names: st.fixed_dictionaries({name: flags[name] for name in names}))


@dataclass(frozen=True)
class Command:
    """A command line to damage: its fixed arguments ({out}, {root} filled in), the numeric flags to
    draw, what a success must show, how many examples, and flag sets always tried."""

    argv: tuple[str, ...]
    flags: dict[str, st.SearchStrategy[str]]
    check_success: Callable[[CliRun, Path, Path], None]
    examples: int
    explicit: tuple[dict[str, str], ...] = ()


def _synth_success(run: CliRun, out: Path, root: Path) -> None:
    """What ``data synth`` wrote passes data check, and its output is finite."""
    files = sorted(out.rglob("*.h5"))
    assert f"wrote {len(files)} file(s)" in run.out, run.out
    for path in files:  # finite output: every file passes data check's validation
        try:
            inspect_volume(path, path.parent.name.split("_")[0], check_values=True)
        except FastMRIDataError as error:
            raise AssertionError(f"data synth exits 0 but writes a volume data check refuses: {error}") from None
    check_finite_text(run.out, out)


def _evaluate_success(run: CliRun, out: Path, root: Path) -> None:
    """``evaluate``'s table and summary.json hold finite numbers only."""
    check_finite_text(run.out, out, root)
    summary = (out / "summary.json").read_text()
    numbers = [float(n) for n in re.findall(r"-?\b\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b|NaN|-?Infinity", summary)]
    check_finite(numbers)


def _eval_recon_success(run: CliRun, out: Path, root: Path) -> None:
    """``eval-recon``'s table holds finite numbers only."""
    assert "zero_filled" in run.out, run.out
    check_finite_text(run.out, root)


COMMANDS = {
    "data synth": Command(
        ("data", "synth", "{out}", "--volumes", "1", "--val-volumes", "0", "--test-volumes", "0")
        + ("--slices", "2", "--size", "16", "--no-progress"),
        {
            "--challenge": st.sampled_from([*CHALLENGES, "Singlecoil", ""]),
            "--slices": _flag_text("int", -1, 3),
            "--size": _flag_text("int", -2, 40),
            "--kspace-width": _flag_text("int", -2, 48),
            "--padding": _flag_text("int", -2, 20),
            "--coils": _flag_text("int", -1, 4),
            "--noise": _flag_text("float"),
            "--striation": _flag_text("float"),
            "--seed": _flag_text("int", -2, 2**70),
            "--volumes": _flag_text("int", -1, 2),
        },
        _synth_success,
        40,
        ({"--noise": "1e308"}, {"--striation": "1e308"}, {"--size": "8", "--kspace-width": "9", "--padding": "4"}),
    ),
    "evaluate": Command(
        ("evaluate", "--data", "{root}", "--out", "{out}", "--policies", "random", "lowtohigh", "--seeds", "0")
        + ("--budget", "2", "--initial-lines", "2", "--batch-size", "4", "--no-progress"),
        {
            "--seeds": _flag_text("int", -1, 2**40),
            "--batch-size": _flag_text("int", -1, 4),
            "--budget": _flag_text("int", -1, 20),
            "--initial-lines": _flag_text("int", -1, 20),
            "--lbcs-slices": _flag_text("int", -1, 4),
            "--reward-metric": st.one_of(st.sampled_from(METRIC_NAMES), st.text(max_size=4)),
        },
        _evaluate_success,
        12,
        ({"--budget": "20"}, {"--initial-lines": "15"}, {"--seeds": "18446744073709551616"}),
    ),
    "eval-recon": Command(
        ("eval-recon", "--data", "{root}", "--challenge", "singlecoil", "--reconstructor", "zero_filled")
        + ("--split", "val", "--initial-lines", "2"),
        {
            "--batch-size": _flag_text("int", -1, 4),
            "--seed": _flag_text("int", -1, 2**70),
            "--initial-lines": _flag_text("int", -1, 20),
        },
        _eval_recon_success,
        15,
        ({"--initial-lines": "16"}, {"--seed": "18446744073709551616"}),
    ),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_cli_numeric_flags_give_one_error_line_or_finite_output(command, singlecoil_root, tmp_path):
    spec = COMMANDS[command]

    @settings(NO_SHRINK, max_examples=spec.examples)
    @given(flags=flag_sets(spec.flags))
    def command_line(flags: dict[str, str]) -> None:
        with tempfile.TemporaryDirectory(dir=tmp_path) as folder:
            out = Path(folder) / "out"
            argv = [arg.format(out=out, root=singlecoil_root) for arg in spec.argv]
            argv += [part for flag, text in flags.items() for part in (flag, text)]
            run = clear_error_or_result(lambda: run_cli(argv), ())
            check_cli_contract(run, lambda r: spec.check_success(r, out, singlecoil_root))

    for flags in spec.explicit:
        command_line = example(flags=flags)(command_line)
    command_line()


# ------------------------------------------------------------------------------- checkpoints
def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested checkpoint as {dotted key: comparable leaf}; tensors by dtype, shape and bytes."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        return {
            prefix: (str(tensor.dtype), tuple(tensor.shape), tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
        }
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, (list, tuple)):
        items = [("#len", len(value)), *enumerate(value)]
    else:
        return {prefix: (type(value).__name__, repr(value))}
    flat: dict[str, Any] = {}
    for key, item in items:
        flat.update(flatten(item, f"{prefix}.{key}"))
    return flat


def differences(first: dict[str, Any], second: dict[str, Any]) -> list[str]:
    """The keys whose leaves differ between two flattened checkpoints."""
    return sorted(key for key in first.keys() | second.keys() if first.get(key) != second.get(key))


def reconstructor_content(model: Any) -> dict[str, Any]:
    """What an exported reconstructor must give back: its description and its weights."""
    names = ("kind", "hparams", "challenge", "recon_size", "normalization")
    return {**{name: getattr(model, name) for name in names}, "state_dict": model.state_dict()}


@dataclass(frozen=True)
class SavedCheckpoint:
    """A valid checkpoint file, how to load one, and the flattened contents a load must give back."""

    path: Path
    load: Callable[[Path], Any]
    content: Callable[[Any], dict[str, Any]]
    reference: dict[str, Any]


@pytest.fixture(scope="module")
def saved_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SavedCheckpoint]:
    """A tiny trained DQN agent (optimiser state included) and a tiny exported U-Net, each loaded back once."""
    folder = tmp_path_factory.mktemp("checkpoints")
    agent = DQN(
        gym.make("CartPole-v1"), net_arch=(8,), learning_starts=8, batch_size=4, buffer_size=64, train_freq=1, seed=0
    ).learn(32, progress_bar=False)
    unet = UnetReconstructor(chans=2, num_pool_layers=1, recon_size=(16, 16))
    saved = {
        "agent": SavedCheckpoint(
            agent.save(folder / "agent.pt"), DQN.load, lambda a: flatten(a.checkpoint()), flatten(agent.checkpoint())
        ),
        "reconstructor": SavedCheckpoint(
            export_reconstructor(unet, folder / "unet.pt"),
            load_reconstructor,
            lambda m: flatten(reconstructor_content(m)),
            flatten(reconstructor_content(unet)),
        ),
    }
    for item in saved.values():  # the clean file loads back exactly
        assert not differences(item.content(item.load(item.path)), item.reference)
    return saved


def check_checkpoint(item: SavedCheckpoint, path: Path) -> None:
    """Loading a damaged copy raises ValueError/OSError naming it, or gives back exactly what was saved."""

    def check(loaded: Any) -> None:
        changed = differences(item.content(loaded), item.reference)
        assert not changed, f"{path.name} loads silently with changed contents at {changed[:6]}"

    clear_error_or_result(lambda: item.load(path), (ValueError, OSError), [path.name], check)


@pytest.mark.parametrize("which", ["agent", "reconstructor"])
def test_damaged_checkpoint_is_refused_or_loads_unchanged(which, saved_checkpoints, tmp_path):
    item = saved_checkpoints[which]

    @settings(BASE, max_examples=80)
    @given(drawn=mutations("bytes", max_size=3))
    def damaged_checkpoint(drawn: list[tuple[str, Any]]) -> None:
        with tempfile.TemporaryDirectory(dir=tmp_path) as folder:
            path = Path(folder) / f"damaged_{item.path.name}"
            path.write_bytes(item.path.read_bytes())
            apply_mutations(path, "singlecoil", drawn)
            in_child(lambda: check_checkpoint(item, path))

    damaged_checkpoint()
