"""The room for adaptivity on each split: greedy oracle minus LBCS, paired over slices.

A policy learns where adaptivity pays on the train split and is judged on the test split. When the
room (the greedy oracle's AUC minus LBCS's) is much smaller on train slices than on val or test
slices, the training slices do not show a learner what the test slices ask of it. This script
measures that room per split, on the same reconstructor and task:

- LBCS learns its order on ``--lbcs-slices`` train slices, evenly spaced;
- on ``--slices`` evenly spaced slices of each split (on train, among those LBCS did not use),
  it rolls LBCS, the greedy oracle (``oracle``, on the task's SSIM reward) and ``oracle_ssim_psnr``;
- it prints, per split, each oracle's paired SSIM AUC and PSNR AUC difference to LBCS (slices won).

With ``--neighbour-slices N`` it also measures how much of that room the first observation predicts:
``oracle_ssim_psnr`` is rolled on N evenly spaced train slices (not LBCS's), and
``neighbour_orders`` (:class:`~mri_rl.policies.neighbour_orders.NeighbourOrderPolicy`) acquires, on
each slice, the order it took on the train slice whose first reconstruction is nearest, then LBCS.
Its row adds its share of the room, ``(neighbour − lbcs) / (oracle − lbcs)`` on SSIM AUC. On the
train split, the slices it is rolled on are neither LBCS's nor the teacher's.

The oracles are greedy with the ground truth, myopic, not upper bounds. Only val and train are
meant for choosing settings; pass ``--splits test`` only to report, never to choose.

    python scripts/room_by_split.py --data runs/headline/data0/data \\
        --reconstructor runs/headline/data0/seed0/reconstructor/reconstructor.pt --splits train val
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gymnasium as gym
import numpy as np

from mri_rl.data.image_import import evenly_spaced
from mri_rl.envs import ENV_ID
from mri_rl.evaluation.report import AUC_LABELS, paired_differences, room_share
from mri_rl.evaluation.rollout import rollout_policy
from mri_rl.evaluation.teacher_orders import collect_teacher_orders
from mri_rl.policies import (
    BalancedOraclePolicy,
    LBCSPolicy,
    NeighbourOrderPolicy,
    OraclePolicy,
    TeacherOrders,
    learn_lbcs_order,
)


def make_env(args: argparse.Namespace, split: str) -> gym.vector.VectorEnv:
    return gym.make_vec(
        ENV_ID,
        num_envs=args.batch_size,
        vectorization_mode="vector_entry_point",
        data_path=args.data / f"{args.challenge}_{split}",
        reconstructor=args.reconstructor,
        budget=args.budget,
        initial_lines=args.initial_lines,
        reward_metric="ssim",
    )


def split_room(
    args: argparse.Namespace, split: str, order: list[int], used: list[int], teacher: TeacherOrders | None
) -> list[str]:
    """Markdown rows: each oracle (and the neighbour policy) minus LBCS on ``split``, paired per slice.

    ``used``: train slices that LBCS or the teacher learned on, never rolled here.
    """
    env = make_env(args, split)
    total = env.unwrapped.num_slices
    candidates = np.array([i for i in range(total) if split != "train" or i not in used])
    slices = [int(i) for i in evenly_spaced(candidates, args.slices)]
    width = env.single_action_space.n
    policies = {
        "lbcs": LBCSPolicy(width, order),
        "oracle": OraclePolicy(env),
        "oracle_ssim_psnr": BalancedOraclePolicy(env),
    }
    if teacher is not None:
        policies["neighbour_orders"] = NeighbourOrderPolicy(width, teacher, order)
    rows = []
    for name, policy in policies.items():
        rows += rollout_policy(policy, env, args.budget, name, 0, slices, progress=False)
    env.close()
    pairs = {key: paired_differences(rows, key) for key in AUC_LABELS}
    lines = []
    for name in list(policies)[1:]:
        cells = [
            f"{pairs[key][(name, 'lbcs')]['mean']:+.4f} ({pairs[key][(name, 'lbcs')]['wins']}/{len(slices)})"
            for key in AUC_LABELS
        ]
        share = room_share(pairs["ssim_auc"], name)
        lines.append(f"| {split} | {name} − lbcs | " + " | ".join(cells) + f" | {share:+.0%} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="root with {challenge}_{split} folders")
    parser.add_argument("--reconstructor", required=True, help="an exported reconstructor, or zero_filled")
    parser.add_argument("--challenge", default="singlecoil")
    parser.add_argument("--budget", type=int, default=16)
    parser.add_argument("--initial-lines", type=int, default=4)
    parser.add_argument("--splits", nargs="+", default=["train", "val"])
    parser.add_argument("--slices", type=int, default=16, help="slices per split")
    parser.add_argument("--lbcs-slices", type=int, default=16, help="train slices LBCS learns on")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--neighbour-slices", type=int, default=0, help="train slices the teacher is rolled on (0: none)"
    )
    args = parser.parse_args()
    if args.neighbour_slices < 0:
        parser.error(f"--neighbour-slices must be 0 (none) or a number of train slices, got {args.neighbour_slices}")

    train_env = make_env(args, "train")
    lbcs_slices = [int(i) for i in evenly_spaced(np.arange(train_env.unwrapped.num_slices), args.lbcs_slices)]
    order = learn_lbcs_order(train_env, lbcs_slices, args.budget, progress=False)
    print(f"LBCS order (learned on {len(lbcs_slices)} train slices): {order}")
    teacher, used = None, lbcs_slices
    if args.neighbour_slices:
        others = np.array([i for i in range(train_env.unwrapped.num_slices) if i not in lbcs_slices])
        teacher_slices = [int(i) for i in evenly_spaced(others, args.neighbour_slices)]
        teacher = collect_teacher_orders(BalancedOraclePolicy(train_env), train_env, args.budget, teacher_slices)
        used = lbcs_slices + teacher_slices
        print(f"oracle_ssim_psnr orders collected on {len(teacher_slices)} other train slices")
    train_env.close()
    print(f"\n| split | difference | {' | '.join(AUC_LABELS.values())} | share of oracle − lbcs (SSIM AUC) |")
    print("|---|---|---|---|---|")
    for split in args.splits:
        print("\n".join(split_room(args, split, order, used, teacher)), flush=True)


if __name__ == "__main__":
    try:
        main()
    except (FileNotFoundError, ValueError) as error:  # a wrong path or value: one line, no traceback
        raise SystemExit(f"room_by_split.py: error: {error}") from None
