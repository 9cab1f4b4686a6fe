"""Stages in spawned processes of their own: their results, thread counts and errors."""

from __future__ import annotations

import functools

import pytest
import torch

from mri_rl.runs.side_by_side import run_side_by_side, threads_per_stage


def test_each_call_runs_in_its_own_process_with_the_threads_given():
    results = run_side_by_side([functools.partial(divmod, 7, 2), torch.get_num_threads, torch.get_num_threads], 1)
    assert [result for result, _ in results] == [(3, 1), 1, 1]
    assert all(seconds >= 0 for _, seconds in results)


def test_a_failed_call_raises_its_own_error_after_the_others_finish():
    with pytest.raises(ValueError, match="invalid literal for int"):
        run_side_by_side([functools.partial(divmod, 7, 2), functools.partial(int, "not a number")], 1)


@pytest.mark.parametrize(
    ("stages", "cpus", "threads"), [(3, 2, 1), (2, 2, 1), (2, 8, 4), (3, 8, 2), (1, 1, 1), (4, 1, 1)]
)
def test_threads_are_the_cpus_shared_out_and_never_zero(stages, cpus, threads):
    assert threads_per_stage(stages, cpus) == threads
