"""How closely a trained acquisition policy follows the greedy look-ahead teacher, on train and on
held-out slices (:func:`mri_rl.evaluation.teacher_agreement.teacher_agreement`).

It reads a run folder of ``mri-rl train`` on the MRI env (``config.yaml`` and ``model.pt``), rolls the
agent on ``--slices`` evenly spaced slices of the run's training data (``env_kwargs``) and of its
evaluation data (``eval_env_kwargs``: val, if the run was made so), and prints per split:

- top-1: share of the steps where the agent took the teacher's best column;
- regret: the teacher's best score less its score of the column taken (standardised units);
- rank: how many free columns the teacher scores above the one taken.

Good agreement on train and poor on val means the policy generalises poorly (more or more varied
training slices may help); poor agreement on both means it underfits its teacher (the model or the
observation is the limit). Use it on train and val only: choosing on test is tuning on test.

    python scripts/teacher_agreement.py runs/dagger/data0/seed0 --slices 16

With ``--attribute orientation`` (or fastMRI's ``acquisition``) it takes ``--slices`` slices of each kind
of volume per split, and prints a row per kind: a policy may imitate its teacher on one kind and not
on another. ``--eval-data FOLDER`` rolls on that folder instead of the run's evaluation data (e.g. val
for a run trained without it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mri_rl.agents.look_ahead import check_metric_weights
from mri_rl.data.image_import import evenly_spaced
from mri_rl.evaluation.policy_specs import load_agent
from mri_rl.evaluation.teacher_agreement import teacher_agreement
from mri_rl.evaluation.volume_groups import slices_of_each_kind
from mri_rl.runs.training import make_env, read_mri_run, run_eval_kwargs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a run folder of mri-rl train (config.yaml, model.pt)")
    parser.add_argument("--slices", type=int, default=16, help="evenly spaced slices per split (default: 16)")
    parser.add_argument(
        "--metrics", nargs="+", default=None, help="the teacher's (default: the run's teacher_metrics, else ssim psnr)"
    )
    parser.add_argument(
        "--weights",
        type=float,
        nargs="+",
        default=None,
        help="of the metrics' standardised gains (default: the run's teacher_weights with its metrics, else 1 each)",
    )
    parser.add_argument("--model", default="model.pt", help="checkpoint in the run folder (default: model.pt)")
    parser.add_argument(
        "--attribute", default=None, help="a file attribute whose kinds of volume get a row each (e.g. orientation)"
    )
    parser.add_argument(
        "--eval-data", type=Path, default=None, help="data folder of the eval split (default: the run's eval data)"
    )
    args = parser.parse_args()
    try:
        config = read_mri_run(args.run, args.model)
    except ValueError as error:
        parser.error(str(error))
    agent = load_agent(args.run / args.model)
    trained = config.hyperparameters
    metrics = args.metrics or list(trained.get("teacher_metrics", ["ssim", "psnr"]))
    weights = args.weights or (trained.get("teacher_weights") if args.metrics is None else None) or [1.0] * len(metrics)
    try:
        weights = list(check_metric_weights("--weights", weights, metrics))
    except ValueError as error:
        parser.error(str(error))
    try:
        eval_kwargs = run_eval_kwargs(config, args.eval_data)
    except ValueError as error:
        parser.error(str(error))
    splits = {"train": config.env_kwargs, "eval": eval_kwargs}
    teacher = " + ".join(f"{w:g} x {m}" for w, m in zip(weights, metrics))
    per = f"of each {args.attribute} " if args.attribute else ""
    print(f"{args.run}: teacher {teacher} (standardised gains), {args.slices} slices {per}per split")
    print("| split | data | kind | steps | top-1 | regret | rank |\n|---|---|---|---|---|---|---|")
    for split, kwargs in splits.items():
        env = make_env(config, kwargs, num_envs=args.slices)
        budget = env.unwrapped.task.budget or env.single_action_space.n  # None: until the columns run out
        try:
            groups = slices_of_each_kind(env.unwrapped, args.attribute)
        except ValueError as error:
            parser.error(str(error))
        for kind, indices in groups.items():
            slices = evenly_spaced(np.asarray(indices), args.slices)
            agreement = teacher_agreement(agent, env, budget, metrics, slices.tolist(), weights)
            print(
                f"| {split} | {kwargs.get('data_path')} | {kind} | {agreement.steps} | {agreement.top1:.0%} "
                f"| {agreement.regret:.2f} | {agreement.rank:.1f} |"
            )
        env.close()


if __name__ == "__main__":
    main()
