"""Benchmark: our DQN and REINFORCE against Stable-Baselines3's DQN, in one run.

Success protocol (the same for every agent): every ``interval`` env steps, evaluate 20
deterministic episodes; the task is solved at the first evaluation whose mean return
reaches the threshold (CartPole-v1: 475, Acrobot-v1: -100), within the step limit.
Agents use the tuned packaged configs (``mri_rl/configs/``); SB3 uses its rl-zoo CartPole-v1
hyperparameters. Wall time: our DQN and SB3's DQN each train exactly 50,000 CartPole
steps (no evaluation), one after the other in this process, and the ratio is printed.

    python scripts/bench_agents.py [--seeds 0 1 2 3 4] [--jobs 2] [--tasks ...]

torch runs with one thread per process, the fastest setting for these small networks.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch

from mri_rl.agents import AGENTS, evaluate_agent
from mri_rl.configs import load_config

SB3_CARTPOLE = {  # rl-baselines3-zoo hyperparams/dqn.yml, CartPole-v1
    "learning_rate": 2.3e-3,
    "batch_size": 64,
    "buffer_size": 100_000,
    "learning_starts": 1000,
    "gamma": 0.99,
    "target_update_interval": 10,
    "train_freq": 256,
    "gradient_steps": 128,
    "exploration_fraction": 0.16,
    "exploration_final_eps": 0.04,
    "policy_kwargs": {"net_arch": [256, 256]},
}


@dataclass(frozen=True)
class Task:
    name: str
    agent: str  # "dqn", "reinforce" or "sb3-dqn"
    env_id: str
    max_steps: int
    interval: int
    threshold: float
    config: str | None  # packaged config of our agent


TASKS = {
    "dqn-cartpole": Task("dqn-cartpole", "dqn", "CartPole-v1", 50_000, 2_500, 475.0, "dqn_cartpole.yaml"),
    "sb3-dqn-cartpole": Task("sb3-dqn-cartpole", "sb3-dqn", "CartPole-v1", 50_000, 2_500, 475.0, None),
    "dqn-acrobot": Task("dqn-acrobot", "dqn", "Acrobot-v1", 100_000, 5_000, -100.0, "dqn_acrobot.yaml"),
    "reinforce-cartpole": Task(
        "reinforce-cartpole", "reinforce", "CartPole-v1", 300_000, 10_000, 475.0, "reinforce_cartpole.yaml"
    ),
}


class SB3Adapter:
    """SB3's ``predict`` behind our evaluation's signature."""

    def __init__(self, model) -> None:
        self.model = model

    def predict(self, obs, deterministic: bool = True, action_mask=None):
        action, _ = self.model.predict(obs, deterministic=deterministic)
        return int(action), None


def make_agent(task: Task, seed: int):
    """A fresh agent for the task; returns (learner, predictor, learn(total, stop) -> None)."""
    env = gym.make(task.env_id)
    if task.agent == "sb3-dqn":
        from stable_baselines3 import DQN as SB3DQN
        from stable_baselines3.common.callbacks import BaseCallback

        model = SB3DQN("MlpPolicy", env, seed=seed, verbose=0, **SB3_CARTPOLE)

        class Stop(BaseCallback):
            def __init__(self, stop) -> None:
                super().__init__()
                self.stop = stop

            def _on_step(self) -> bool:
                return self.stop(self.num_timesteps) is not False

        def learn(total, stop=None):
            model.learn(total, callback=Stop(stop) if stop else None)

        return SB3Adapter(model), learn
    config, _ = load_config(task.config)
    agent = AGENTS[task.agent](env, seed=seed, **config["hyperparameters"])

    def learn(total, stop=None):
        agent.learn(total, callback=(lambda a: stop(a.num_timesteps)) if stop else None, progress_bar=False)

    return agent, learn


def run_to_solve(task_name: str, seed: int) -> dict:
    """Train with periodic evaluation until solved or out of steps."""
    torch.set_num_threads(1)
    task = TASKS[task_name]
    predictor, learn = make_agent(task, seed)
    eval_env = gym.make(task.env_id)
    state = {"next": task.interval, "solved": None, "eval_seconds": 0.0}

    def stop(steps: int):
        if steps < state["next"]:
            return True
        state["next"] += task.interval
        start = time.perf_counter()
        mean, _, _ = evaluate_agent(predictor, eval_env, 20, seed=10_000 + seed)
        state["eval_seconds"] += time.perf_counter() - start
        if mean >= task.threshold:
            state["solved"] = steps
            return False
        return True

    start = time.perf_counter()
    learn(task.max_steps, stop)
    return {
        "task": task_name,
        "seed": seed,
        "solved_at": state["solved"],
        "train_seconds": time.perf_counter() - start - state["eval_seconds"],
    }


def timed_50k(task_name: str, seed: int) -> float:
    """Wall seconds of exactly 50,000 training steps without evaluation."""
    torch.set_num_threads(1)
    _, learn = make_agent(TASKS[task_name], seed)
    start = time.perf_counter()
    learn(50_000)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--jobs", type=int, default=1, help="parallel processes for the success runs")
    parser.add_argument("--skip-timing", action="store_true", help="skip the 50k-step wall-time comparison")
    args = parser.parse_args()

    jobs = [(task, seed) for task in args.tasks for seed in args.seeds]
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(run_to_solve, *zip(*jobs)))
    print(f"{'task':<20} {'solved':>7} {'steps to solve (per seed)':<44} {'mean train s':>12}")
    for task in args.tasks:
        rows = [r for r in results if r["task"] == task]
        solved = [r for r in rows if r["solved_at"] is not None]
        steps = " ".join(str(r["solved_at"]) if r["solved_at"] else "-" for r in rows)
        print(
            f"{task:<20} {len(solved)}/{len(rows):<5} {steps:<44} {np.mean([r['train_seconds'] for r in rows]):>12.1f}"
        )
    if not args.skip_timing:
        ours = timed_50k("dqn-cartpole", args.seeds[0])
        sb3 = timed_50k("sb3-dqn-cartpole", args.seeds[0])
        print(
            f"\n50,000 CartPole-v1 steps, seed {args.seeds[0]}, one after the other: our DQN {ours:.1f} s, "
            f"SB3 DQN {sb3:.1f} s, ratio ours/SB3 = {ours / sb3:.2f}"
        )


if __name__ == "__main__":
    main()
