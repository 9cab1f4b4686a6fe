"""Spread of the learned policies over training seeds, on a finished quick start.

Retrains the quick start's agents with other seeds on the same data and the same
reconstructor, evaluates them on the same test split, and prints each policy's SSIM and
PSNR AUC per training seed with the mean and standard deviation over seeds. The baselines'
rollouts do not depend on the agents' seed; they are copied from the finished quick start
instead of being recomputed. The quick start itself is the run of its config's seed.

    python scripts/training_seed_spread.py --quickstart runs/quickstart --data data/synthetic \
        --seeds 1 2 --out runs/seed_spread [--config quickstart]

Each seed's run resumes where it stopped, like the quick start.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from mri_rl.configs import load_config
from mri_rl.evaluation.evaluate import parse_policy_specs
from mri_rl.evaluation.report import read_summary
from mri_rl.reconstruct.train import EXPORT_NAME
from mri_rl.runs.quickstart import run_quickstart

METRICS = ("ssim_auc", "psnr_auc")


def prepare_seed_run(quickstart: Path, run_dir: Path, baselines: list[str]) -> None:
    """Give ``run_dir`` the quick start's reconstructor and baseline rollouts (skipped stages)."""
    (run_dir / "reconstructor").mkdir(parents=True, exist_ok=True)
    shutil.copy2(quickstart / "reconstructor" / EXPORT_NAME, run_dir / "reconstructor" / EXPORT_NAME)
    partial = run_dir / "evaluation" / "partial"
    partial.mkdir(parents=True, exist_ok=True)
    for name in baselines:
        for rollout in (quickstart / "evaluation" / "partial").glob(f"{name}_seed*.csv*"):  # with their records
            shutil.copy2(rollout, partial / rollout.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quickstart", type=Path, default=Path("runs/quickstart"), help="a finished quick start")
    parser.add_argument("--data", type=Path, default=None, help="its data root (default: the config's)")
    parser.add_argument("--config", default="quickstart", help="its config (a packaged name or a path)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="further training seeds")
    parser.add_argument("--out", type=Path, default=Path("runs/seed_spread"))
    args = parser.parse_args()

    config, _ = load_config(args.config)
    if not (args.quickstart / "evaluation" / "summary.json").is_file():
        raise SystemExit(f"{args.quickstart} holds no finished quick start (evaluation/summary.json is missing)")
    baselines = [name for name, _ in parse_policy_specs(list(config["evaluation"]["policies"]))]
    data_seed = int(config.get("data", {}).get("seed") or config.get("seed", 0))
    summaries = {int(config.get("seed", 0)): read_summary(args.quickstart / "evaluation" / "summary.json")}
    for seed in args.seeds:
        run_dir = args.out / f"seed{seed}"
        prepare_seed_run(args.quickstart, run_dir, baselines)
        summaries[seed] = run_quickstart(
            run_dir, args.config, data=args.data, progress=False, overrides=[f"seed={seed}", f"data.seed={data_seed}"]
        )  # the same data

    seeds = sorted(summaries)
    print(f"\nSSIM / PSNR AUC per training seed ({', '.join(map(str, seeds))}) and mean ± std over seeds:")
    print("| policy | " + " | ".join(f"seed {s}" for s in seeds) + " | mean ± std SSIM AUC | mean ± std PSNR AUC |")
    print("|---|" + "---|" * (len(seeds) + 2))
    for policy in sorted(summaries[seeds[0]], key=lambda p: -summaries[seeds[0]][p]["ssim_auc"]["mean"]):
        values = {m: np.array([summaries[s][policy][m]["mean"] for s in seeds]) for m in METRICS}
        cells = " | ".join(f"{values['ssim_auc'][i]:.4f} / {values['psnr_auc'][i]:.3f}" for i in range(len(seeds)))
        spread = " | ".join(
            f"{values[m].mean():.4f} ± {values[m].std(ddof=1) if len(seeds) > 1 else 0.0:.4f}" for m in METRICS
        )
        print(f"| {policy} | {cells} | {spread} |")


if __name__ == "__main__":
    main()
