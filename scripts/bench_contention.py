"""Benchmark: a quick-start-sized U-Net training epoch, idle and beside one busy process.

Each configuration runs in a fresh subprocess, because libgomp reads its variables when torch
loads: torch's old default (``MRI_RL_THREADS=default``) and the new one (:mod:`mri_rl.threads`),
each idle and while one competing process spins (``python -c "while True: pass"``, started in a
session of its own like a program from another terminal: with Linux's per-session scheduling
groups, a competitor in the benchmark's own session hurts much less). The thread variables of
this shell (``OMP_*``, ``MKL_*``, ...) are removed from the subprocesses.

The epoch is a plain torch loop over ``fastmri.models.Unet`` with the quick start's U-Net
(``quickstart.yaml`` over ``recon_unet.yaml``: chans, pools, batch size, learning rate, one epoch
over its training slices) on random 64x64 images, L1 loss and Adam. An epoch that runs past
``--limit`` seconds stops there and its time is extrapolated from the batches done.

    python scripts/bench_contention.py [--repeats 3] [--limit 60]

Rounds run the four configurations in turn; each figure is the median over the rounds.
Goal: beside the busy process, at most 2.5x the idle time; idle no slower than the old default.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from mri_rl.threads import OPT_OUT, OPT_OUT_VALUE, THREAD_PREFIXES

POLICIES = {"old": {OPT_OUT: OPT_OUT_VALUE}, "new": {}}
BUSY_GOAL = 2.5


def epoch_seconds(limit: float) -> dict[str, Any]:
    """One timed training epoch (after one warm-up batch); imports mri_rl before torch."""
    import mri_rl
    from mri_rl.configs import load_config

    quickstart, _ = load_config("quickstart")
    recon, _ = load_config(quickstart["reconstructor"]["config"])
    model = {**recon["model"], **quickstart["reconstructor"]["model"]}
    data = quickstart["data"]

    import torch
    from fastmri.models import Unet

    torch.manual_seed(0)
    net = Unet(1, 1, chans=model["chans"], num_pool_layers=model["num_pool_layers"], drop_prob=model["drop_prob"])
    optimizer = torch.optim.Adam(net.parameters(), lr=recon["optimization"]["lr"])
    batch, slices = recon["data"]["batch_size"], data["volumes"]["train"] * data["slices"]
    images = torch.rand(slices, 1, data["size"], data["size"])
    targets = torch.rand(slices, 1, data["size"], data["size"])

    def step(i: int) -> None:
        mri_rl.threads.follow_free_cpus()  # as the project's training step does
        loss = torch.nn.functional.l1_loss(net(images[i : i + batch]), targets[i : i + batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step(0)
    starts, done = range(0, slices, batch), 0
    start = time.perf_counter()
    while done < len(starts) and time.perf_counter() - start <= limit:
        step(starts[done])
        done += 1
    seconds = (time.perf_counter() - start) * len(starts) / done
    threads, policy = torch.get_num_threads(), mri_rl.THREADS["policy"]
    return {"seconds": seconds, "batches": f"{done}/{len(starts)}", "threads": threads, "policy": policy}


def run_worker(policy: str, busy: bool, limit: float) -> dict[str, Any]:
    """:func:`epoch_seconds` in a fresh interpreter, beside a spinning process if ``busy``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(THREAD_PREFIXES) and k != OPT_OUT}
    spin = [sys.executable, "-c", "while True: pass"]
    spinner = subprocess.Popen(spin, start_new_session=True) if busy else None
    try:
        command = [sys.executable, __file__, "--worker", "--limit", str(limit)]
        out = subprocess.run(command, env=env | POLICIES[policy], capture_output=True, text=True, check=True).stdout
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the four configurations")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds after which an epoch is extrapolated")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(epoch_seconds(args.limit)))
        return
    configs = [(policy, busy) for busy in (False, True) for policy in POLICIES]
    times: dict[tuple[str, bool], list[float]] = {config: [] for config in configs}
    for round_ in range(args.repeats):
        for policy, busy in configs:
            result = run_worker(policy, busy, args.limit)
            times[policy, busy].append(result["seconds"])
            print(
                f"round {round_ + 1}: {policy} ({result['policy']}, {result['threads']} threads) "
                f"{'busy' if busy else 'idle'}: {result['seconds']:.1f} s (batches timed: {result['batches']})",
                flush=True,
            )
    median = {config: statistics.median(values) for config, values in times.items()}
    print(f"\nmedian epoch seconds over {args.repeats} rounds ({os.cpu_count()} CPUs)")
    print(f"{'policy':<8}{'idle s':>9}{'busy s':>9}{'busy/idle':>11}")
    for policy in POLICIES:
        idle, busy = median[policy, False], median[policy, True]
        print(f"{policy:<8}{idle:>9.1f}{busy:>9.1f}{busy / idle:>11.2f}")
    ratio = median["new", True] / median["new", False]
    print(f"new idle / old idle: {median['new', False] / median['old', False]:.2f} (goal: at most 1)")
    print(f"new busy / new idle: {ratio:.2f} (goal: at most {BUSY_GOAL}): {'met' if ratio <= BUSY_GOAL else 'NOT met'}")


if __name__ == "__main__":
    main()
