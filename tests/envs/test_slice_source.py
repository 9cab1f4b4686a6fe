"""The slice source's in-memory cache: same data as a fresh read, bounded, optional."""

from __future__ import annotations

import pytest
import torch

from mri_rl.envs.slice_source import SliceSource


def _slice_bytes(source: SliceSource, index: int) -> int:
    item = source[index]
    return item.kspace.nbytes + item.target.nbytes


def test_cached_slices_equal_fresh_reads(singlecoil_train):
    cached = SliceSource(singlecoil_train, "singlecoil")
    uncached = SliceSource(singlecoil_train, "singlecoil", cache_megabytes=0)
    for _ in range(2):  # the second pass comes from the cache
        for i in range(len(cached)):
            a, b = cached[i], uncached[i]
            assert torch.equal(a.kspace, b.kspace) and torch.equal(a.target, b.target)
            assert a.metadata == b.metadata
    assert len(cached._cache) == len(cached)
    assert len(uncached._cache) == 0
    assert cached[1] is cached[1]  # served from memory, no new read


def test_cache_keeps_the_most_recent_slices_within_its_size(singlecoil_train):
    probe = SliceSource(singlecoil_train, "singlecoil")
    size = _slice_bytes(probe, 0)
    source = SliceSource(singlecoil_train, "singlecoil", cache_megabytes=2.5 * size / 2**20)
    for i in (0, 1, 2):
        source[i]
    assert list(source._cache) == [1, 2]  # slice 0 was least recently used
    source[1]
    source[3]
    assert list(source._cache) == [1, 3]
    assert source._cached_bytes == 2 * size


def test_negative_cache_size_is_rejected(singlecoil_train):
    with pytest.raises(ValueError, match="cache_megabytes"):
        SliceSource(singlecoil_train, "singlecoil", cache_megabytes=-1)


def test_skip_leaves_out_a_bad_middle_slice_and_keeps_the_rest(
    tmp_path, singlecoil_volume, copy_volume, make_bad_volume
):
    """A NaN slice in the middle of a volume is left out at construction with "skip", so episodes
    never reach it; the volume's other slices stay."""
    good = copy_volume(singlecoil_volume, tmp_path / "a_good.h5")
    bad = make_bad_volume(singlecoil_volume, tmp_path, "nan", name="b_nan.h5")
    with pytest.warns(UserWarning, match=r"skipped 0 bad file\(s\), and 1 bad slice\(s\) of 1 file") as caught:
        source = SliceSource(tmp_path, "singlecoil", on_bad_file="skip")
    assert f"{bad}, slice 1: 'kspace' contains NaN or Inf" in str(caught[0].message)
    assert [source.describe(i) for i in range(len(source))] == [
        (good.name, 0),
        (good.name, 1),
        (good.name, 2),
        (bad.name, 0),
        (bad.name, 2),
    ]
    for i in range(len(source)):
        assert torch.isfinite(torch.view_as_real(source[i].kspace)).all()
    assert [(e.path, e.slice_index) for e in source.dataset.skipped] == [(bad, 1)]
