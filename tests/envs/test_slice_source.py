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
