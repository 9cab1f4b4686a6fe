"""Refit a fresh DAgger policy network on the teacher's labels a run kept, and print its agreement with
the teacher on held-out labelled states as training goes on
(:func:`mri_rl.evaluation.aggregate_fit.refit_aggregate`).

The held-out states are drawn from the run's own labelled states (the same training slices), so this
tells a network that cannot fit the teacher from one trained too little: if the held-out agreement
still rises well past the run's gradient steps (``gradient_steps`` per vector step), the run stopped
short. Whether the policy carries over to new slices is for ``scripts/teacher_agreement.py`` and
``mri-rl evaluate`` on val.

    python scripts/fit_aggregate.py runs/dagger/data0/seed0 --gradient-steps 8000
    python scripts/fit_aggregate.py runs/dagger/data0/seed0 --gradient-steps 8000 --set net_arch=[256,256]

With ``--save PATH`` it fits on every kept state instead, with no held-out report, and saves the network
as a policy that carries the run's record (:func:`mri_rl.evaluation.aggregate_fit.refit_policy`), for
``mri-rl evaluate --policies NAME=PATH``: a cheap screen of a training setting (e.g. ``--set
temperature=2.0``) on the labels the run already paid for, against a refit of the run's own settings made
the same way. The states are the run's own, not those a policy of the new setting would visit.

    python scripts/fit_aggregate.py runs/dagger/data0/seed0 --gradient-steps 2000 --set temperature=2.0 --save r20.pt

Given several run folders of one task and teacher (e.g. training seeds 0, 1, 2 of one config), it fits on all
their kept labels together: a screen of more labelled states than one run keeps, at no new look-ahead.

    python scripts/fit_aggregate.py runs/dagger/data0/seed0 runs/dagger/data0/seed1 --gradient-steps 4000 --save u2.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from mri_rl.checkpointing import CheckpointError
from mri_rl.configs import apply_overrides
from mri_rl.configs.schema import ConfigError
from mri_rl.evaluation.aggregate_fit import refit_aggregate, refit_policy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "runs", type=Path, nargs="+", help="DAgger run folders of mri-rl train (their checkpoint.pt), labels joined"
    )
    parser.add_argument("--gradient-steps", type=int, required=True, help="of the refit, in all")
    parser.add_argument("--reports", type=int, default=4, help="agreement rows over the steps (default: 4)")
    parser.add_argument("--held-out", type=float, default=0.2, help="share of the states held out (default: 0.2)")
    parser.add_argument("--seed", type=int, default=0, help="of the split, the weights and the batches (default: 0)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="a DAgger setting; repeatable"
    )
    parser.add_argument("--save", type=Path, default=None, help="fit on every kept state and save the policy here")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    changed = f" with {' '.join(args.overrides)}" if args.overrides else ""
    checkpoints = [run / "checkpoint.pt" for run in args.runs]
    runs = " + ".join(str(run) for run in args.runs)
    try:
        overrides = apply_overrides({}, args.overrides, "the command line")
        if args.save is not None:
            refit_policy(checkpoints, args.gradient_steps, args.seed, **overrides).save(args.save)
            print(f"{runs}: a fresh network{changed}, {args.gradient_steps} gradient steps on every kept state")
            print(f"saved {args.save}")
            return
        points = refit_aggregate(checkpoints, args.gradient_steps, args.reports, args.held_out, args.seed, **overrides)
    except (CheckpointError, ConfigError, FileNotFoundError, TypeError, ValueError) as error:
        parser.error(str(error))
    print(f"{runs}: a fresh network{changed}, {args.held_out:.0%} of the labelled states held out")
    print("| gradient steps | held-out top-1 | held-out regret | train top-1 | train regret |\n|---|---|---|---|---|")
    for point in points:
        print(
            f"| {point.gradient_steps} | {point.held_out.top1:.0%} | {point.held_out.regret:.2f} "
            f"| {point.train.top1:.0%} | {point.train.regret:.2f} |"
        )


if __name__ == "__main__":
    main()
