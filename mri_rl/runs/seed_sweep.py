"""``mri-rl train --seeds 0 1 2``: independent training runs of one config, one per seed, and their spread.

Each seed is an ordinary training run (:func:`~mri_rl.runs.training.train_agent`) in
``out/seed{S}/``; the runs are tasks of :func:`mri_rl.distributed.run_tasks`, so they run
one after the other in this process or side by side on Ray workers (one CPU, one torch
thread each). ``out/seeds.json`` gives each seed's final evaluation and the mean ± std over
seeds (sample standard deviation, ddof = 1).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from mri_rl.distributed import Workers, run_tasks
from mri_rl.files import atomic_write_text
from mri_rl.runs.training import TrainConfig, train_agent

SUMMARY_NAME = "seeds.json"


def train_seed(config: TrainConfig, out_dir: Path, resume: bool, progress: bool) -> dict[str, Any]:
    """One seed's run (a task): resumed when ``resume`` and it has a checkpoint, else started."""
    started = (out_dir / "checkpoint.pt").exists()
    return train_agent(config, out_dir, resume=resume and started, progress_bar=progress)


def train_seeds(
    config: TrainConfig,
    seeds: list[int],
    out_dir: str | Path,
    workers: Workers | None = None,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``config`` once per seed and write ``out_dir/seeds.json``.

    Args:
        config: the run's config; its ``seed`` is replaced by each of ``seeds``.
        seeds: distinct seeds.
        out_dir: gets ``seed{S}/`` per seed and ``seeds.json``.
        workers: where the runs go (default: one after the other in this process).
        resume: continue the seeds' runs that have a checkpoint (and start the others).
        progress: progress bars (in this process only).

    Returns:
        The content of ``seeds.json``: ``{"runs": {seed: eval.json}, "mean_return", "std_return", "seeds"}``.

    Raises:
        ValueError: no seeds, or a seed given twice.
        FileExistsError: a seed's folder holds a run and ``resume`` is not set.
    """
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds: expected distinct seeds, got {seeds}")
    out_dir, workers = Path(out_dir), workers or Workers()
    tasks = [
        (replace(config, seed=seed), out_dir / f"seed{seed}", resume, progress and not workers.uses_ray)
        for seed in seeds
    ]
    results = run_tasks(train_seed, tasks, workers)
    returns = np.array([result["mean_return"] for result in results], dtype=np.float64)
    summary = {
        "seeds": list(seeds),
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std(ddof=1)) if len(returns) > 1 else 0.0,
        "runs": {str(seed): result for seed, result in zip(seeds, results)},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / SUMMARY_NAME, json.dumps(summary, indent=2) + "\n")
    return summary


__all__ = ["SUMMARY_NAME", "train_seeds"]
