"""``mri-rl evaluate`` (acquisition policies rolled over a split, with the report) and ``mri-rl orders`` (a learned
policy's acquisition orders on a folder)."""

from __future__ import annotations

import argparse
from pathlib import Path

from mri_rl.cli.arguments import (
    COUNT,
    SEED,
    TASK_FLAGS,
    add_device_argument,
    add_output_argument,
    add_task_arguments,
    add_workers_arguments,
    checked_device,
    number_type,
    task_of,
    workers_of,
)
from mri_rl.task import SPLITS


def group_spec(text: str) -> tuple[str, list[str]]:
    """``NAME=A+B[+...]`` of ``--groups``: the group's name and its policies' names.

    Raises:
        argparse.ArgumentTypeError: not of that form.
    """
    name, equals, members = text.partition("=")
    if not (name and equals and members):
        raise argparse.ArgumentTypeError(f"expected NAME=POLICY+POLICY[+...], got {text!r}")
    return name, members.split("+")


def _add_policy_arguments(evaluate: argparse.ArgumentParser) -> None:
    """``mri-rl evaluate``'s flags of what is rolled: the policies, the oracle's weights, task mismatches."""
    evaluate.add_argument(
        "--policies",
        nargs="+",
        default=None,
        help="baselines (default: random lowtohigh equispaced lbcs oracle; also lbcs_kind, one LBCS order per "
        "kind of volume, with --lbcs-by, oracle_ssim_psnr, and oracle_rollout, the roll-out of the LBCS order "
        "with the ground truth) "
        "and NAME=AGENT_CHECKPOINT; NAME=AGENT_CHECKPOINT@WEIGHT adds a low-to-high frequency prior to a "
        "policy-network agent (DAgger, REINFORCE): it acquires the column of largest log-probability minus "
        "WEIGHT times its low-to-high rank; NAME=CKPT+CKPT[+...][@WEIGHT] rolls an ensemble of such agents "
        "(trained on one task and data, e.g. with other seeds) by their mean log-probability",
    )
    evaluate.add_argument(
        "--oracle-weights",
        type=number_type(integer=False, minimum=0),
        nargs=2,
        default=None,
        metavar=("SSIM", "PSNR"),
        help="oracle_ssim_psnr's weights of the standardised SSIM and PSNR gains, as DAgger's teacher_weights "
        "(default: 1 1); recorded with its rollout",
    )
    evaluate.add_argument(
        "--rollout-candidates",
        type=number_type(integer=True, minimum=0),
        default=None,
        metavar="N",
        help="oracle_rollout's candidates: the greedy oracle's N best columns, scored each step besides LBCS's "
        "next one by the rest of the episode along the LBCS order (default: 5; 0 rolls the LBCS order itself; "
        "each adds (steps left) reconstructions per step); recorded with its rollout",
    )
    evaluate.add_argument(
        "--groups",
        type=group_spec,
        nargs="+",
        default=None,
        metavar="NAME=POLICY+POLICY",
        help="policies rolled one by one and not pooled (e.g. one agent per training seed) whose shares "
        "summary.md gives with their mean ± std, as it does for an ensemble's members",
    )
    evaluate.add_argument(
        "--allow-task-mismatch",
        action="store_true",
        help="evaluate learned policies trained on another task (the summary records what "
        "differs) instead of refusing them",
    )


def _add_lbcs_arguments(evaluate: argparse.ArgumentParser) -> None:
    """``mri-rl evaluate``'s flags of the learned fixed orders (LBCS, per kind) and of the reference chosen on val."""
    evaluate.add_argument(
        "--lbcs-train-data",
        type=Path,
        default=None,
        help="where LBCS learns its order (default: DATA/{challenge}_train)",
    )
    evaluate.add_argument(
        "--lbcs-slices",
        type=COUNT,
        default=None,
        help="training slices LBCS averages over (default: 32; lbcs_kind: per kind)",
    )
    evaluate.add_argument(
        "--lbcs-by",
        metavar="ATTRIBUTE",
        default=None,
        help="the file attribute whose kinds of volume the lbcs_kind baseline learns an LBCS order for each, "
        "on the training volumes of that kind (fastMRI knee: acquisition; mri-rl data anatomy: orientation); "
        "summary.md then also gives the shares of the room above it",
    )
    evaluate.add_argument(
        "--reference-from",
        type=Path,
        metavar="VAL_EVALUATION",
        default=None,
        help="the --out folder of an evaluation of the val split with this task and reconstructor: the fixed order "
        "(lbcs, lbcs_kind, lowtohigh, equispaced) rolled in both with the highest SSIM AUC there becomes a further "
        "reference, and summary.md gives each policy's share of the room above it; LBCS orders must be learned "
        "as here (same --lbcs-train-data, --lbcs-slices, --lbcs-by)",
    )


def add_evaluate_command(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "evaluate",
        help="roll acquisition policies over a split: metrics.csv, summary.json/.md and pictures",
        description="Roll every policy over every slice (batched across slices) and write metrics.csv (one row "
        "per policy, seed, file, slice, step, with the column acquired), summary.json and summary.md (SSIM/PSNR "
        "AUC against the sampling rate, final SSIM/PSNR, per slice and per volume as fastMRI aggregates, paired "
        "differences), curves.png, masks.png (each policy's acquisition order) and examples.png (target, "
        "reconstruction, error and mask of a few slices). "
        "Finished (policy, seed) rollouts are kept in OUT/partial/ with the record of how they were "
        "made, so an interrupted run resumes; a rerun under other settings is refused.",
    )
    evaluate.add_argument(
        "--data", type=Path, required=True, help="folder of .h5 files, or a root with {challenge}_{split} folders"
    )
    evaluate.add_argument("--split", choices=SPLITS, default="test", help="(default: test)")
    evaluate.add_argument(
        "--any-folder", action="store_true", help="accept a --data folder whose name says another split than --split"
    )
    add_task_arguments(evaluate, TASK_FLAGS | {"precision"})
    _add_policy_arguments(evaluate)
    evaluate.add_argument("--seeds", type=SEED, nargs="+", default=[0, 1, 2], help="(default: 0 1 2)")
    evaluate.add_argument("--batch-size", type=COUNT, default=32, help="slices stepped together (default: 32)")
    _add_lbcs_arguments(evaluate)
    add_device_argument(evaluate, "the environment's reconstructions and the learned policies")
    add_workers_arguments(
        evaluate,
        "each (policy, seed) rollout is split into shards of whole batches, which workers roll; the files "
        "are the same as one process writes, and a killed worker's shard is rolled again",
    )
    add_output_argument(evaluate, "--out", required=True, help="results folder, e.g. results/NAME")
    evaluate.add_argument(
        "--overwrite",
        action="store_true",
        help="delete the rollouts and report of an earlier evaluation in --out first",
    )
    evaluate.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    evaluate.set_defaults(handler=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from mri_rl.evaluation.evaluate import EvaluationSetup, evaluate_policies
    from mri_rl.evaluation.policy_specs import DEFAULT_BASELINES
    from mri_rl.evaluation.report import markdown_table

    setup = EvaluationSetup(
        data=args.data,
        task=task_of(args),
        split=args.split,
        seeds=tuple(args.seeds),
        batch_size=args.batch_size,
        lbcs_train_data=args.lbcs_train_data,
        lbcs_slices=args.lbcs_slices or EvaluationSetup.lbcs_slices,
        lbcs_by=args.lbcs_by,
        device=args.device,
        allow_task_mismatch=args.allow_task_mismatch,
        any_folder=args.any_folder,
        oracle_weights=tuple(args.oracle_weights or EvaluationSetup.oracle_weights),
        rollout_candidates=EvaluationSetup.rollout_candidates
        if args.rollout_candidates is None
        else args.rollout_candidates,
        reference_from=args.reference_from,
    )
    policies = list(DEFAULT_BASELINES) if args.policies is None else args.policies
    check_baseline_options(args, policies)
    groups = dict(args.groups or [])
    if len(groups) != len(args.groups or []):
        raise ValueError(f"--groups: each group needs its own name, got {[name for name, _ in args.groups]}")
    summary = evaluate_policies(
        setup,
        policies,
        args.out,
        progress=not args.no_progress,
        overwrite=args.overwrite,
        workers=workers_of(args),
        groups=groups,
    )
    print(markdown_table(summary))
    print(f"wrote {args.out / 'metrics.csv'}, summary.json, summary.md, curves.png, masks.png, examples.png")
    return 0


def check_baseline_options(args: argparse.Namespace, policies: list[str]) -> None:
    """Refuse an option given for baselines of which none is among ``policies`` (it would be ignored).

    Raises:
        ValueError: naming the option and the baselines that use it.
    """
    from mri_rl.evaluation.policy_specs import LBCS_TRAINED

    options = {
        "--lbcs-train-data": (args.lbcs_train_data, LBCS_TRAINED),
        "--lbcs-slices": (args.lbcs_slices, LBCS_TRAINED),
        "--lbcs-by": (args.lbcs_by, ("lbcs_kind",)),
        "--oracle-weights": (args.oracle_weights, ("oracle_ssim_psnr",)),
        "--rollout-candidates": (args.rollout_candidates, ("oracle_rollout",)),
    }
    for option, (value, users) in options.items():
        if value is not None and not set(users) & set(policies):
            given = " ".join(map(str, value)) if isinstance(value, list) else value
            named = users[0] if len(users) == 1 else f"{', '.join(users[:-1])} or {users[-1]}"
            raise ValueError(
                f"{option} {given} is for the {named} baseline{'s' * (len(users) > 1)}: add {named} to --policies"
            )


def add_orders_command(commands: argparse._SubParsersAction) -> None:
    orders = commands.add_parser(
        "orders",
        help="record the acquisition orders a learned policy takes, for a reconstructor trained on its masks",
        description="Roll a learned policy (greedy, on the task it was trained on) once on every slice of a "
        "folder, its training slices included, and write each episode's acquired columns to a JSON orders "
        "file. A reconstructor config then trains on the masks the policy passes through with "
        "masks: {train: {kind: orders, path: FILE}} (alone or as a mixture component).",
    )
    orders.add_argument(
        "--policy",
        required=True,
        help="an agent checkpoint, e.g. runs/dagger/model.pt, or CHECKPOINT+CHECKPOINT...[@WEIGHT] as in "
        "mri-rl evaluate: an ensemble, with a low-to-high frequency prior",
    )
    orders.add_argument("--data", type=Path, required=True, help="a folder of .h5 files, e.g. DATA/singlecoil_train")
    orders.add_argument("--batch-size", type=COUNT, default=32, help="slices stepped together (default: 32)")
    add_device_argument(orders, "the environment's reconstructions and the policy")
    add_output_argument(orders, "--out", folder=False, required=True, help="the orders file to write, e.g. orders.json")
    orders.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    orders.set_defaults(handler=_run_orders)


def _run_orders(args: argparse.Namespace) -> int:
    from mri_rl.acquisition_orders import write_orders
    from mri_rl.evaluation.policy_orders import record_policy_orders

    recorded = record_policy_orders(
        args.policy, args.data, args.batch_size, checked_device(args.device), progress=not args.no_progress
    )
    write_orders(args.out, recorded)
    steps = sum(len(order) for order in recorded.orders)
    print(f"wrote {args.out}: {len(recorded.orders)} episodes, {steps} acquisitions")
    return 0
