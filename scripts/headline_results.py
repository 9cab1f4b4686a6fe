"""The README's headline results: the quick start over data seeds and training seeds.

For each data seed, the quick start runs once in full (data, reconstructor, agents,
evaluation) with the first training seed; every further training seed retrains only the
agents, on the same data with the same reconstructor, and evaluates them on the same test
split (the baselines' rollouts do not depend on the agents' seed, so they are copied).
It prints, per data seed:

- the room for adaptivity: the greedy oracle's AUC minus low-to-high's and LBCS's (SSIM and
  PSNR); the oracle is greedy with the ground truth, myopic, not an upper bound;
- each learned policy's paired per-image difference against random, low-to-high and LBCS,
  SSIM AUC and PSNR AUC, as mean ± std over training seeds, with the images it wins;
- each learned policy's share of the LBCS-to-oracle room in SSIM AUC,
  ``(learned - lbcs) / (oracle - lbcs)`` of the paired means, per training seed.

    python scripts/headline_results.py --data-seeds 0 1 --training-seeds 0 1 2 \
        --out runs/headline [--config quickstart]

Every run resumes where it stopped, like the quick start.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from mri_rl.configs import load_config
from mri_rl.evaluation.policy_specs import parse_policy_specs
from mri_rl.evaluation.report import AUC_LABELS, paired_differences, read_rows_csv, room_share
from mri_rl.reconstruct.train import EXPORT_NAME
from mri_rl.runs.quickstart import run_quickstart

REFERENCES = ("random", "lowtohigh", "lbcs")


def prepare_seed_run(first: Path, run_dir: Path, baselines: list[str]) -> None:
    """Give ``run_dir`` the first run's reconstructor and baseline rollouts (skipped stages)."""
    (run_dir / "reconstructor").mkdir(parents=True, exist_ok=True)
    shutil.copy2(first / "reconstructor" / EXPORT_NAME, run_dir / "reconstructor" / EXPORT_NAME)
    partial = run_dir / "evaluation" / "partial"
    partial.mkdir(parents=True, exist_ok=True)
    for name in baselines:
        for rollout in (first / "evaluation" / "partial").glob(f"{name}_seed*.csv*"):  # with their records
            shutil.copy2(rollout, partial / rollout.name)


def run_data_seed(args: argparse.Namespace, data_seed: int, baselines: list[str]) -> dict[int, list[dict]]:
    """The quick start of every training seed on the data of ``data_seed``: rows of metrics.csv per seed."""
    root = args.out / f"data{data_seed}"
    first, *others = args.training_seeds
    rows = {}
    for seed in [first, *others]:
        run_dir = root / f"seed{seed}"
        if seed != first:
            prepare_seed_run(root / f"seed{first}", run_dir, baselines)
        overrides = [f"seed={seed}", f"data.seed={data_seed}", *args.set]
        run_quickstart(run_dir, args.config, data=root / "data", progress=False, overrides=overrides)
        rows[seed] = read_rows_csv(run_dir / "evaluation" / "metrics.csv")
    return rows


def room_line(rows: list[dict], reference: str) -> str:
    """Oracle minus ``reference``, paired over images, for each metric."""
    cells = []
    for key in AUC_LABELS:
        pair = paired_differences(rows, key)[("oracle", reference)]
        cells.append(f"{pair['mean']:+.4f} ({pair['wins']}/{pair['n']})")
    return " | ".join(cells)


def share_lines(rows: dict[int, list[dict]], learned: list[str]) -> list[str]:
    """Markdown rows: the share of the LBCS-to-oracle room in SSIM AUC each learned policy captures,
    ``(learned - lbcs) / (oracle - lbcs)`` of the paired means, per training seed and their mean ± std."""
    lines = ["| policy | share per training seed | mean ± std |", "|---|---|---|"]
    for policy in learned:
        shares = []
        for seed_rows in rows.values():
            shares.append(room_share(paired_differences(seed_rows, "ssim_auc"), policy))
        spread = np.std(shares, ddof=1) if len(shares) > 1 else 0.0
        per_seed = ", ".join(f"{share:+.0%}" for share in shares)
        lines.append(f"| {policy} | {per_seed} | {np.mean(shares):+.0%} ± {spread:.0%} |")
    return lines


def learned_table(rows: dict[int, list[dict]], learned: list[str]) -> list[str]:
    """Markdown rows: a learned policy's paired differences against each reference, over training seeds."""
    lines = [
        "| policy | against | "
        + " | ".join(f"{label}: mean ± std over seeds (images won)" for label in AUC_LABELS.values())
        + " |",
        "|---|---|" + "---|" * len(AUC_LABELS),
    ]
    pairs = {seed: {key: paired_differences(seed_rows, key) for key in AUC_LABELS} for seed, seed_rows in rows.items()}
    for policy in learned:
        for reference in REFERENCES:
            cells = []
            for key in AUC_LABELS:
                found = [pairs[seed][key][(policy, reference)] for seed in rows]
                means = np.array([pair["mean"] for pair in found])
                wins = " ".join(f"{pair['wins']}/{pair['n']}" for pair in found)
                std = means.std(ddof=1) if len(means) > 1 else 0.0
                cells.append(f"{means.mean():+.4f} ± {std:.4f} ({wins})")
            lines.append(f"| {policy} | {reference} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="quickstart", help="the quick start's config (a packaged name or a path)")
    parser.add_argument("--data-seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--training-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override")
    parser.add_argument("--out", type=Path, default=Path("runs/headline"))
    args = parser.parse_args()
    for flag, seeds in (("--data-seeds", args.data_seeds), ("--training-seeds", args.training_seeds)):
        if len(set(seeds)) != len(seeds):  # a repeated seed would count once in the means over seeds
            parser.error(f"{flag}: each seed once, got {seeds}")

    config, _ = load_config(args.config, args.set)
    policies = [spec.name for spec in parse_policy_specs(list(config["evaluation"]["policies"]))]
    learned = list(config["agents"])
    for data_seed in args.data_seeds:
        rows = run_data_seed(args, data_seed, policies)
        first = rows[args.training_seeds[0]]
        print(f"\n## Data seed {data_seed}, training seeds {args.training_seeds}")
        print("\nRoom for adaptivity, greedy oracle − reference, paired (images won):")
        print(f"| reference | {' | '.join(AUC_LABELS.values())} |\n|---|---|---|")
        for reference in ("lowtohigh", "lbcs"):
            print(f"| {reference} | {room_line(first, reference)} |")
        print("\nLearned policies, paired per-image differences:")
        print("\n".join(learned_table(rows, learned)))
        print("\nShare of the LBCS-to-oracle room in SSIM AUC:")
        print("\n".join(share_lines(rows, learned)))


if __name__ == "__main__":
    main()
