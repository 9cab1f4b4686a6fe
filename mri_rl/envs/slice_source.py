"""The slices an acquisition environment draws its episodes from."""

from __future__ import annotations

import warnings
from collections import Counter, OrderedDict
from pathlib import Path

from mri_rl.data.fastmri_files import FastMRISliceDataset, KspaceSlice
from mri_rl.kspace import measured_width


class SliceSource:
    """Slices of one folder of fastMRI volumes that share one k-space geometry.

    An environment's action space is fixed by the k-space width, and a batch of
    episodes needs one tensor shape, so episodes come from slices of a single
    (k-space shape, target size). Real fastMRI folders mix shapes (knee: 368 and 372
    columns; brain: different coil counts): by default the most common shape is used
    and a warning says how many slices were left out; ``kspace_shape`` picks another.

    Args:
        data_path: folder of ``.h5`` files (one split).
        challenge: "singlecoil" or "multicoil".
        on_bad_file: "raise" or "skip", see :class:`FastMRISliceDataset`.
        kspace_shape: per-slice k-space shape to keep, (rows, cols) single-coil or
            (coils, rows, cols) multi-coil.
        cache_megabytes: slices read are kept in memory up to this size (least recently
            used first out), so restarting episodes rarely reads a file; 0 turns it off.
    """

    def __init__(
        self,
        data_path: str | Path,
        challenge: str,
        on_bad_file: str = "raise",
        kspace_shape: tuple[int, ...] | None = None,
        cache_megabytes: float = 1024,
    ) -> None:
        if cache_megabytes < 0:
            raise ValueError(f"cache_megabytes must be >= 0, got {cache_megabytes}")
        self.dataset = FastMRISliceDataset(data_path, challenge, require_target=True, on_bad_file=on_bad_file)
        self.challenge = challenge
        self.cache_bytes = int(cache_megabytes * 2**20)
        self._cache: OrderedDict[int, KspaceSlice] = OrderedDict()
        self._cached_bytes = 0
        shapes = [self._shape_of(i) for i in range(len(self.dataset))]
        counts = Counter(shapes)
        if kspace_shape is None:
            chosen = counts.most_common(1)[0][0]
            if len(counts) > 1:
                left_out = len(shapes) - counts[chosen]
                warnings.warn(
                    f"{data_path} mixes k-space shapes {dict(counts)}; using {chosen[0]} "
                    f"({left_out} slice(s) left out). Pass kspace_shape= to choose.",
                    stacklevel=2,
                )
        else:
            matches = [s for s in counts if s[0] == tuple(kspace_shape)]
            if not matches:
                found = sorted({s[0] for s in counts})
                raise ValueError(f"no slice in {data_path} has k-space shape {tuple(kspace_shape)}; found {found}")
            chosen = matches[0]
        self.kspace_shape, self.recon_size = chosen
        self.indices = [i for i, shape in enumerate(shapes) if shape == chosen]

    def _shape_of(self, index: int) -> tuple[tuple[int, ...], tuple[int, int]]:
        fname, _, metadata = self.dataset.raw_samples[index]
        recon = metadata["recon_size"]
        return self.dataset.volumes[Path(fname)].slice_shape, (int(recon[0]), int(recon[1]))

    @property
    def folder(self) -> Path:
        """The folder of ``.h5`` files the slices come from."""
        return self.dataset.folder

    @property
    def num_coils(self) -> int:
        return 1 if len(self.kspace_shape) == 2 else self.kspace_shape[0]

    @property
    def measurable_columns(self) -> int:
        """Fewest measurable (not zero-filled) phase-encode columns among the slices."""
        samples = (self.dataset.raw_samples[i] for i in self.indices)
        return min(measured_width(int(meta["padding_left"]), int(meta["padding_right"])) for _, _, meta in samples)

    @property
    def width(self) -> int:
        """Phase-encode columns (the number of actions)."""
        return self.kspace_shape[-1]

    def __len__(self) -> int:
        return len(self.indices)

    def describe(self, index: int) -> tuple[str, int]:
        """(file name, slice within the file) of slice ``index``, without reading it."""
        fname, slice_index, _ = self.dataset.raw_samples[self.indices[index]]
        return Path(fname).name, int(slice_index)

    def __getitem__(self, index: int) -> KspaceSlice:
        """Slice ``index``, from the cache or read (and checked) from its file. Callers
        copy the tensors and must not change them."""
        if not 0 <= index < len(self.indices):
            raise IndexError(f"slice index {index} outside [0, {len(self.indices)})")
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        item = self.dataset[self.indices[index]]
        size = _nbytes(item)
        if size <= self.cache_bytes:
            while self._cached_bytes + size > self.cache_bytes:
                self._cached_bytes -= _nbytes(self._cache.popitem(last=False)[1])
            self._cache[index] = item
            self._cached_bytes += size
        return item


def _nbytes(item: KspaceSlice) -> int:
    target = 0 if item.target is None else item.target.nbytes
    return item.kspace.nbytes + target
