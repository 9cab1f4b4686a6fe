"""How alike the members of an ensemble of trained acquisition policies are, on the ensemble's own
states (:func:`mri_rl.evaluation.member_agreement.member_agreement`).

It reads K >= 2 run folders of ``mri-rl train`` on the MRI env (``config.yaml`` and ``model.pt``; the
first run's config gives the task and the data), rolls their product of experts (``mri-rl evaluate``'s
``NAME=A.pt+B.pt+...@PRIOR``) on ``--slices`` evenly spaced slices of the first run's evaluation data
(or ``--eval-data``), and prints:

- pairwise top-1: share of (state, pair of members) whose first choices are one column;
- unanimous: share of the states where every member's first choice is one column;
- member = ensemble: share of (state, member) where the member's first choice is the ensemble's column;
- entropy (nats) and top probability of each member's distribution over the free columns, averaged.

Two ensembles of the same slices (e.g. students before and after RL fine-tuning) tell whether a change
made the members alike or only sharper. Use it on train and val only: choosing on test is tuning on test.

    python scripts/member_agreement.py runs/s0 runs/s1 runs/s2 --prior 0.1 --eval-data runs/val64/data1/singlecoil_val
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mri_rl.data.image_import import evenly_spaced
from mri_rl.evaluation.member_agreement import member_agreement
from mri_rl.evaluation.policy_specs import check_learned_policy, load_agent, optional_observations
from mri_rl.policies.product_of_experts import ProductOfExpertsPolicy
from mri_rl.runs.training import make_env, read_mri_run, run_eval_kwargs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="K >= 2 run folders of mri-rl train (config.yaml, model.pt)")
    parser.add_argument("--prior", type=float, default=0.0, help="weight of the low-to-high prior (default: 0)")
    parser.add_argument("--slices", type=int, default=16, help="evenly spaced slices (default: 16)")
    parser.add_argument("--model", default="model.pt", help="checkpoint in each run folder (default: model.pt)")
    parser.add_argument(
        "--eval-data", type=Path, default=None, help="data folder to roll on (default: the first run's eval data)"
    )
    args = parser.parse_args()
    if len(args.runs) < 2:
        parser.error(f"an ensemble needs at least 2 run folders, got {len(args.runs)}")
    if args.slices < 1:
        parser.error(f"--slices must be >= 1, got {args.slices}")
    try:
        config = read_mri_run(args.runs[0], args.model)
        for run in args.runs[1:]:
            read_mri_run(run, args.model)
        kwargs = run_eval_kwargs(config, args.eval_data)
    except ValueError as error:
        parser.error(str(error))
    members = [load_agent(run / args.model) for run in args.runs]
    kwargs |= dict.fromkeys(optional_observations(members), True)
    env = make_env(config, kwargs, num_envs=args.slices)
    try:
        for run, agent in zip(args.runs, members):
            check_learned_policy(run / args.model, agent, env)
        policy = ProductOfExpertsPolicy(members, env.single_action_space.n, args.prior)
    except ValueError as error:
        parser.error(str(error))
    budget = env.unwrapped.task.budget or env.single_action_space.n  # None: until the columns run out
    slices = evenly_spaced(np.arange(env.unwrapped.num_slices), args.slices).tolist()
    agreement = member_agreement(policy, env, budget, slices)
    env.close()
    print(f"{len(members)} members, prior {args.prior:g}, {len(slices)} slices of {kwargs.get('data_path')}")
    print("| steps | pairwise top-1 | unanimous | member = ensemble | entropy (nats) | top probability |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {agreement.steps} | {agreement.pairwise_top1:.1%} | {agreement.unanimous:.1%} | "
        f"{agreement.member_is_choice:.1%} | {agreement.entropy:.3f} | {agreement.top_probability:.3f} |"
    )


if __name__ == "__main__":
    main()
