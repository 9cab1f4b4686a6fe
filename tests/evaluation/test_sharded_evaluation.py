"""Evaluation split into shards: the same files as one process (in this process and on Ray
workers), resumption of an interrupted shard without counting anything twice, and the plan."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mri_rl.distributed import Workers
from mri_rl.evaluation import evaluate as evaluate_module
from mri_rl.evaluation.evaluate import EvaluationSetup, evaluate_policies
from mri_rl.evaluation.shards import Shard, plan_shards
from mri_rl.task import AcquisitionTask

POLICIES = ["random", "lowtohigh", "equispaced", "lbcs", "oracle"]
TASK = AcquisitionTask(budget=3, initial_lines=2, reward_metric="ssim")
OUTPUTS = ("metrics.csv", "metrics.csv.record.json", "summary.json", "summary.md")


def make_setup(data: Path) -> EvaluationSetup:
    """Batches of one slice: the 3 test slices make 3 batches, so up to 3 shards per rollout."""
    return EvaluationSetup(data=data, split="test", task=TASK, seeds=(0, 1), batch_size=1, lbcs_slices=2)


def folder_bytes(out: Path) -> dict[str, bytes]:
    """Every file the evaluation wrote but the pictures (PNG metadata is not the subject here)."""
    return {
        str(path.relative_to(out)): path.read_bytes()
        for path in sorted(out.rglob("*"))
        if path.is_file() and path.suffix != ".png"
    }


@pytest.fixture(scope="module")
def single_process(singlecoil_root, tmp_path_factory) -> dict[str, bytes]:
    out = tmp_path_factory.mktemp("one_process")
    evaluate_policies(make_setup(singlecoil_root), POLICIES, out, progress=False)
    return folder_bytes(out)


def test_shards_in_this_process_write_the_same_files(singlecoil_root, tmp_path, single_process):
    evaluate_policies(make_setup(singlecoil_root), POLICIES, tmp_path, progress=False, shards_per_rollout=3)
    assert folder_bytes(tmp_path) == single_process  # no shard file is left behind either


def test_two_ray_workers_write_the_same_files(singlecoil_root, tmp_path, single_process):
    pytest.importorskip("ray")
    evaluate_policies(make_setup(singlecoil_root), POLICIES, tmp_path, progress=False, workers=Workers(count=2))
    written = folder_bytes(tmp_path)
    assert written == single_process
    assert json.loads(written["summary.json"])["policies"].keys() == set(POLICIES)


def test_an_interrupted_shard_is_rolled_again_and_nothing_twice(singlecoil_root, tmp_path, single_process, monkeypatch):
    rolled: list[Shard] = []
    roll = evaluate_module.roll_shard

    def crash_on_the_fifth(job):
        if len(rolled) == 4:
            rolled.append(job.shard)
            raise KeyboardInterrupt  # as if the run were stopped while rolling this shard
        rolled.append(job.shard)
        return roll(job)

    monkeypatch.setattr(evaluate_module, "roll_shard", crash_on_the_fifth)
    with pytest.raises(KeyboardInterrupt):
        evaluate_policies(make_setup(singlecoil_root), POLICIES, tmp_path, progress=False, shards_per_rollout=3)
    first_run = list(rolled)
    rolled.clear()
    monkeypatch.setattr(evaluate_module, "roll_shard", lambda job: (rolled.append(job.shard), roll(job))[1])
    evaluate_policies(make_setup(singlecoil_root), POLICIES, tmp_path, progress=False, shards_per_rollout=3)
    finished_before = first_run[:4]
    assert first_run[4] in rolled  # the interrupted shard is rolled again
    assert not set(finished_before) & set(rolled)  # the finished ones are not
    assert len(finished_before) + len(rolled) == 3 * (len(POLICIES) + 1)  # every shard once (random: 2 seeds)
    assert folder_bytes(tmp_path) == single_process


def test_shards_of_another_partition_are_not_reused_and_are_deleted(singlecoil_root, tmp_path, single_process):
    """A run with 3 shards stopped after writing some; a run with 2 shards per rollout redoes its own."""
    evaluate_policies(make_setup(singlecoil_root), POLICIES, tmp_path, progress=False, shards_per_rollout=3)
    whole = tmp_path / "partial" / "oracle_seed0.csv"
    text = whole.read_text()
    header, *rows = text.splitlines(keepends=True)
    (tmp_path / "partial" / "oracle_seed0.slices0-1.csv").write_text(header + rows[0])  # no record: not finished
    whole.unlink()
    Path(str(whole) + ".record.json").unlink()
    evaluate_policies(make_setup(singlecoil_root), POLICIES, tmp_path, progress=False, shards_per_rollout=2)
    assert folder_bytes(tmp_path) == single_process


@given(
    num_slices=st.integers(1, 200),
    batch_size=st.integers(1, 40),
    parts=st.integers(1, 12),
)
def test_the_plan_covers_every_slice_once_in_whole_batches(num_slices, batch_size, parts):
    shards = plan_shards("oracle", 0, num_slices, batch_size, parts)
    batches = -(-num_slices // batch_size)
    assert len(shards) == min(parts, batches)
    assert shards[0].start == 0 and shards[-1].stop == num_slices
    assert all(a.stop == b.start for a, b in zip(shards, shards[1:]))
    assert all(shard.start % batch_size == 0 and shard.stop > shard.start for shard in shards)
    sizes = [-(-(shard.stop - shard.start) // batch_size) for shard in shards]
    assert max(sizes) - min(sizes) <= 1  # as even as whole batches allow
