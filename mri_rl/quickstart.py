"""``mri-rl quickstart``: synthetic data, U-Net, DQN and REINFORCE, evaluation, report.

Every stage is skipped when its output exists, so an interrupted quick start resumes
where it stopped (agent runs resume from their last checkpoint).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from mri_rl.agents.training_run import CONFIG_DIR, TrainConfig, load_config_file, train_agent
from mri_rl.data.synthetic import SyntheticSpec, read_synthetic_settings, write_synthetic_dataset
from mri_rl.evaluation.evaluate import EvaluationSetup, evaluate_policies
from mri_rl.evaluation.report import markdown_table
from mri_rl.reconstruct.train import EXPORT_NAME, train_reconstructor
from mri_rl.reconstruct.train import load_config as load_recon_config

REPO_ROOT = CONFIG_DIR.parent


def _repo_path(path: str | Path) -> Path:
    path = Path(path)
    return path if path.is_absolute() or path.exists() else REPO_ROOT / path


def data_differences(root: Path, spec: SyntheticSpec, seed: int, volumes: dict[str, int]) -> list[str]:
    """How an existing synthetic root differs from what the config would write (empty if not)."""
    differences = []
    recorded, configured = read_synthetic_settings(root), {"seed": seed, **asdict(spec)}
    if recorded != configured:
        changed = ("no record of its settings" if recorded is None else ", ".join(
            f"{key} {recorded.get(key)!r} (config: {value!r})" for key, value in configured.items()
            if recorded.get(key) != value))
        differences.append(f"{root} was not written with this config's synthetic settings ({changed})")
    for split, count in volumes.items():
        found = len(list((root / f"singlecoil_{split}").glob("*.h5")))
        if found != count:
            differences.append(f"{root / f'singlecoil_{split}'} holds {found} volumes, the config asks for {count}")
    return differences


def run_quickstart(out: str | Path = "runs/quickstart", config_path: str | Path = CONFIG_DIR / "quickstart.yaml",
                   data: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """Run the pipeline and return the evaluation summary; timings go to ``out/timings.yaml``."""
    out = Path(out)
    config = load_config_file(config_path)
    seed = int(config["seed"])
    task = config["task"]
    data_cfg = config["data"]
    root = Path(data or data_cfg["root"])
    timings: dict[str, float] = {}

    def stage(name: str) -> None:
        timings[name] = round(time.perf_counter() - stage.start, 1)
        stage.start = time.perf_counter()
        print(f"[quickstart] {name} done in {timings[name]} s", flush=True)

    stage.start = time.perf_counter()
    spec = SyntheticSpec(num_slices=data_cfg["slices"], size=data_cfg["size"],
                         striation=data_cfg.get("striation", SyntheticSpec.striation))
    if not (root / "singlecoil_train").is_dir():
        write_synthetic_dataset(root, spec, data_cfg["volumes"], seed=seed, progress=progress)
    for difference in data_differences(root, spec, seed, data_cfg["volumes"]):
        print(f"[quickstart] note: {difference}; using the data as it is (delete {root} to write the configured "
              f"set)", flush=True)
    stage("synthetic data")

    reconstructor = out / "reconstructor" / EXPORT_NAME
    if not reconstructor.is_file():
        recon_config = load_recon_config(_repo_path(config["reconstructor"]["config"]))
        recon_config["model"].update(config["reconstructor"].get("model", {}))
        train_reconstructor(root, "singlecoil", out / "reconstructor", recon_config,
                            max_epochs=config["reconstructor"]["max_epochs"],
                            resume=(out / "reconstructor" / "checkpoints" / "last.ckpt").is_file())
    stage("reconstructor training")

    env_kwargs = {"data_path": str(root / "singlecoil_train"), "reconstructor": str(reconstructor),
                  "budget": task["budget"], "initial_lines": task["initial_lines"],
                  "reward_metric": task["reward_metric"]}
    eval_env_kwargs = {**env_kwargs, "data_path": str(root / "singlecoil_val")}
    policies = list(config["evaluation"]["policies"])
    for name, agent_cfg in config["agents"].items():
        run_dir = out / name
        if not (run_dir / "model.pt").is_file():
            values = load_config_file(_repo_path(agent_cfg["config"]))
            values.update(env_kwargs=env_kwargs, eval_env_kwargs=eval_env_kwargs, seed=seed)
            train_agent(TrainConfig.from_dict(values, agent_cfg["config"]), run_dir,
                        resume=(run_dir / "checkpoint.pt").is_file(), progress_bar=progress)
        policies.append(f"{name}={run_dir / 'model.pt'}")
        stage(f"{name} training")

    evaluation = config["evaluation"]
    setup = EvaluationSetup(data=root, split="test", reconstructor=str(reconstructor), budget=task["budget"],
                            initial_lines=task["initial_lines"], reward_metric=task["reward_metric"],
                            seeds=tuple(evaluation["seeds"]), batch_size=evaluation["batch_size"],
                            lbcs_slices=evaluation["lbcs_slices"])
    summary = evaluate_policies(setup, policies, out / "evaluation", progress=progress)
    stage("evaluation")
    timings["total"] = round(sum(timings.values()), 1)
    (out / "timings.yaml").write_text(yaml.safe_dump(timings, sort_keys=False))
    print(markdown_table(summary))
    print(f"[quickstart] total {timings['total']} s; report in {out / 'evaluation'} "
          f"(summary.md, curves.png, metrics.csv)")
    return summary
