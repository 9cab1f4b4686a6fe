"""``mri-rl quickstart``: data, U-Net, DQN and REINFORCE, evaluation, report.

The data are slices of real anatomy (the MNI152 template, :mod:`mri_rl.data.anatomy`) by
default, or the built-in phantoms (:mod:`mri_rl.data.synthetic`, config ``quickstart_phantoms``),
both in simulated k-space.

Every stage is skipped when its output exists *and* its record (:mod:`mri_rl.provenance`)
matches what the current config would make, so an interrupted quick start resumes where
it stopped (agent runs resume from their last checkpoint), while a changed setting stops
with an error that names it instead of silently reusing the old stage. The device is no
setting of any record (it changes where, not what): a quick start may resume on another
device. The precision of the agents' env is the task's (``task.precision``): the agents
and the evaluation record it; the reconstructor's training does not use it.
"""

from __future__ import annotations

import functools
import re
import reprlib
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from mri_rl.agents import AGENTS, Agent
from mri_rl.checks import resolve_device
from mri_rl.configs import load_config
from mri_rl.configs.schema import ConfigError, from_mapping
from mri_rl.data.simulated_kspace import SimulationSpec, volume_name_pattern
from mri_rl.data.synthetic import SyntheticSpec, read_synthetic_settings, synthetic_settings, write_synthetic_dataset
from mri_rl.evaluation.evaluate import EvaluationSetup, evaluate_policies
from mri_rl.evaluation.lbcs_orders import kind_attribute
from mri_rl.evaluation.policy_specs import BASELINE_NAMES, POLICY_NAME, parse_learned_policy, parse_policy_specs
from mri_rl.evaluation.reference_choice import FIXED_ORDERS, lend_lbcs_orders
from mri_rl.evaluation.report import markdown_table
from mri_rl.files import atomic_write_text, check_not_a_file, temporary_name_pattern
from mri_rl.provenance import check_record
from mri_rl.reconstruct.base import check_precision
from mri_rl.reconstruct.checkpoint import read_reconstructor_record
from mri_rl.reconstruct.train import (
    EXPORT_NAME,
    reconstructor_record,
    train_reconstructor,
    training_folders,
)
from mri_rl.reconstruct.train import validate_config as validate_recon_config
from mri_rl.runs.training import TrainConfig, make_env, run_record, train_agent
from mri_rl.task import AcquisitionTask

FRESH_START = "pass --overwrite (deletes this quick start's stages) or choose a new --out"


@dataclass
class VolumeCounts:
    train: int = field(metadata={"min": 1})
    val: int = field(metadata={"min": 1})
    test: int = field(metadata={"min": 1})


@dataclass
class DataStage:
    """The data: the source ("anatomy": MNI152 template slices; "phantoms": the synthetic
    phantoms), where, how many volumes per split, their size, the phantoms' striation, the
    anatomy's split layout ("slabs" or "interleaved", :mod:`mri_rl.data.anatomy`), slice offset
    ("centre" or "random": :data:`mri_rl.data.anatomy.SLICE_OFFSETS`) and brain (``template``: the
    path of another brain's 3-D NIfTI in MNI space; None: the MNI152 template), and the seed that
    draws them (default: the quick start's seed)."""

    volumes: VolumeCounts
    source: Literal["anatomy", "phantoms"] = "anatomy"
    root: str | None = None
    seed: int | None = field(default=None, metadata={"min": 0})
    slices: int = field(default=SyntheticSpec.num_slices, metadata={"min": 1})
    size: int = field(default=SyntheticSpec.size, metadata={"min": 8})
    striation: float | None = field(default=None, metadata={"min": 0})
    layout: Literal["slabs", "interleaved"] | None = None
    slice_offset: Literal["centre", "random"] | None = None
    template: str | None = None

    def __post_init__(self) -> None:
        if self.source == "anatomy" and self.striation is not None:
            raise ConfigError("data.striation: only the phantoms have a striation; drop it for data.source anatomy")
        if self.source == "phantoms" and self.layout is not None:
            raise ConfigError("data.layout: only the anatomy has a split layout; drop it for data.source phantoms")
        if self.source == "phantoms" and self.slice_offset is not None:
            raise ConfigError("data.slice_offset: only the anatomy has one; drop it for data.source phantoms")
        if self.source == "phantoms" and self.template is not None:
            raise ConfigError("data.template: only the anatomy reads a brain; drop it for data.source phantoms")
        if self.template is not None and not Path(self.template).is_file():
            raise ConfigError(f"data.template: expected a brain's 3-D NIfTI file, found no file at {self.template!r}")


#: Settings values in messages: nested ones cut short (the settings file holds them whole).
_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist = 1, 3, 3

#: Default data root of each source (relative to the working folder).
DATA_ROOTS = {"anatomy": "data/anatomy", "phantoms": "data/synthetic"}


@dataclass(frozen=True)
class DataSource:
    """How a source is written and how a root records what it was written with; ``prefix``
    begins the names of its volumes (``{prefix}_s{seed}_{split}_{i:03d}.h5``)."""

    write: Callable[..., list[Path]]
    read_settings: Callable[[Path, str], dict[str, Any] | None]
    settings: Callable[[Any, int], dict[str, Any]]
    prefix: str


def data_source(stage: DataStage, challenge: str) -> tuple[DataSource, SimulationSpec]:
    """The writer and the spec of a data stage (the anatomy modules load only when used)."""
    if stage.source == "phantoms":
        striation = SyntheticSpec.striation if stage.striation is None else stage.striation
        spec: SimulationSpec = SyntheticSpec(
            challenge=challenge, num_slices=stage.slices, size=stage.size, striation=striation
        )
        return DataSource(write_synthetic_dataset, read_synthetic_settings, synthetic_settings, "synthetic"), spec
    from mri_rl.data.anatomy import anatomy_settings, read_anatomy_settings, volume_prefix, write_anatomy_dataset

    spec = SimulationSpec(challenge=challenge, num_slices=stage.slices, size=stage.size)
    layout, slice_offset = stage.layout or "slabs", stage.slice_offset or "centre"
    template = stage.template
    return (
        DataSource(
            functools.partial(write_anatomy_dataset, layout=layout, slice_offset=slice_offset, template=template),
            read_anatomy_settings,
            functools.partial(anatomy_settings, layout=layout, slice_offset=slice_offset, template=template),
            volume_prefix(template),
        ),
        spec,
    )


@dataclass
class ReconstructorStage:
    """The reconstructor: a packaged config (or path), its epochs, model overrides and seed.

    ``seed`` (None: the config's ``seed:``) makes another U-Net of the same data and settings: a
    reconstructor axis beside the data and training seeds. The quick start's top-level ``seed``
    does not reach the reconstructor.
    """

    config: str = "recon_unet"
    max_epochs: int | None = field(default=None, metadata={"min": 1})
    model: dict[str, Any] = field(default_factory=dict)
    seed: int | None = field(default=None, metadata={"min": 0})


@dataclass
class AgentStage:
    """An agent: a packaged config (or path), with optional overrides of its steps and hyperparameters,
    and its training seed (None: the quick start's ``seed``). Agents of one config and several seeds
    can be pooled in the evaluation (:attr:`EvaluationStage.ensembles`). ``start_from``: the name of
    an agent listed before this one whose trained policy this one starts from (its ``init_policy``):
    a policy-gradient agent fine-tuning a distilled student with RL, as issue 16 suggests."""

    config: str
    total_steps: int | None = field(default=None, metadata={"min": 1})
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    seed: int | None = field(default=None, metadata={"min": 0})
    start_from: str | None = None


@dataclass
class EvaluationStage:
    """The evaluation: the baselines beside the trained agents, seeds and batching; ``lbcs_by``: the file
    attribute whose kinds of volume ``lbcs_kind`` learns an order for each; ``ensembles``: more
    policies made of the trained agents, by name, each ``"A+B+C"`` or ``"A+B+C@WEIGHT"`` of agent
    names: their product of experts, with a low-to-high prior of that weight
    (:class:`~mri_rl.policies.product_of_experts.ProductOfExpertsPolicy`; ``mri-rl evaluate``'s
    ``NAME=A.pt+B.pt+C.pt@WEIGHT``); ``reference_on_val``: roll the fixed orders among ``policies``
    on the val split first (``OUT/val_reference``) and take the shares against the strongest there
    too (``mri-rl evaluate --reference-from``, :mod:`~mri_rl.evaluation.reference_choice`);
    ``groups``: agents rolled alone and not pooled, by name, each ``"A+B+C"`` of agent names (e.g.
    one per training seed), whose shares summary.md gives one by one with their mean ± std."""

    policies: list[str]
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    lbcs_slices: int = field(default=32, metadata={"min": 1})
    batch_size: int = field(default=32, metadata={"min": 1})
    lbcs_by: str | None = None
    ensembles: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    reference_on_val: bool = False

    def __post_init__(self) -> None:
        if any("=" in spec for spec in self.policies):
            raise ValueError(f"policies: baselines only (the trained agents are added), got {self.policies}")
        parse_policy_specs(self.policies)  # unknown or repeated names
        if "lbcs_kind" in self.policies:
            kind_attribute(self.lbcs_by)
        if self.reference_on_val and not self.fixed_orders:
            raise ValueError(
                f"reference_on_val: it is chosen among the fixed orders ({', '.join(FIXED_ORDERS)}), and policies "
                f"{self.policies} has none"
            )

    @property
    def fixed_orders(self) -> list[str]:
        """The policies whose order does not read the slice: the candidates for the reference chosen on val."""
        return [name for name in self.policies if name in FIXED_ORDERS]


@dataclass
class QuickstartConfig:
    """The quick start's config (the packaged ``quickstart.yaml``)."""

    data: DataStage
    reconstructor: ReconstructorStage
    agents: dict[str, AgentStage]
    evaluation: EvaluationStage
    task: AcquisitionTask = field(default_factory=AcquisitionTask)
    seed: int = field(default=0, metadata={"min": 0})

    def __post_init__(self) -> None:
        self._check_start_from()
        self._check_ensembles()
        self._check_groups()

    def _check_start_from(self) -> None:
        names = list(self.agents)
        for index, (name, stage) in enumerate(self.agents.items()):
            if stage.start_from is not None and stage.start_from not in names[:index]:
                raise ValueError(
                    f"agents.{name}.start_from: {stage.start_from!r} is not an agent listed before {name} "
                    f"(agents train in the order listed); those are {names[:index]}"
                )

    def _check_ensembles(self) -> None:
        for name, members in self.evaluation.ensembles.items():
            where = f"evaluation.ensembles.{name}"
            if not POLICY_NAME.fullmatch(name) or name in BASELINE_NAMES or name in self.agents:
                raise ValueError(f"{where}: the name must be new (no baseline's or agent's), of letters, digits, _ . -")
            try:
                agents, _ = parse_learned_policy(members, f"{name}={members}")
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
            unknown = [str(agent) for agent in agents if str(agent) not in self.agents]
            if unknown:
                raise ValueError(f"{where}: {unknown} are not agents of this config; its agents: {sorted(self.agents)}")

    def _check_groups(self) -> None:
        taken = {*BASELINE_NAMES, *self.agents, *self.evaluation.ensembles}
        for name, members in self.evaluation.groups.items():
            where = f"evaluation.groups.{name}"
            if name in taken or not POLICY_NAME.fullmatch(name):
                raise ValueError(f"{where}: the name must be new (no baseline's, agent's or ensemble's)")
            named = members.split("+")
            if len(set(named)) < 2 or len(set(named)) != len(named) or not set(named) <= set(self.agents):
                raise ValueError(
                    f"{where}: expected two or more different agents of this config joined by '+' "
                    f"(its agents: {sorted(self.agents)}), got {members!r}"
                )

    def ensemble_specs(self, models: dict[str, Path]) -> list[str]:
        """The ensembles as ``mri-rl evaluate`` policy specs, ``NAME=A.pt+B.pt@WEIGHT``, from the agents'
        trained ``models`` by name."""
        specs = []
        for name, members in self.evaluation.ensembles.items():
            agents, weight = parse_learned_policy(members, members)
            paths = "+".join(str(models[str(agent)]) for agent in agents)
            specs.append(f"{name}={paths}@{weight!r}" if weight else f"{name}={paths}")
        return specs

    @classmethod
    def from_file(cls, config: str | Path, overrides: Sequence[str] = ()) -> QuickstartConfig:
        """A packaged config name or a path, with ``--set`` overrides, checked.

        Raises:
            ConfigError: one line naming the file and the key.
        """
        values, source = load_config(config, overrides)
        return from_mapping(cls, values, source)


def data_differences(
    root: Path, source: DataSource, spec: SimulationSpec, seed: int, volumes: dict[str, int]
) -> list[str]:
    """How an existing data root differs from what the config would write (empty if not)."""
    differences = []
    recorded, configured = source.read_settings(root, spec.challenge), source.settings(spec, seed)
    if recorded != configured:
        changed = (
            "no record of its settings"
            if recorded is None
            else ", ".join(  # keys of either side: a setting recorded only off its default is one side's
                f"{key} {_SHORT.repr(recorded.get(key))} (config: {_SHORT.repr(configured.get(key))})"
                for key in {**configured, **recorded}
                if recorded.get(key) != configured.get(key)
            )
        )
        differences.append(f"{root} was not written with this config's data settings ({changed})")
    for split, count in volumes.items():
        folder = root / f"{spec.challenge}_{split}"
        found = len(list(folder.glob("*.h5")))
        if found != count:
            differences.append(f"{folder} holds {found} volumes, the config asks for {count}")
    return differences


def check_own_files(root: Path, challenge: str, prefix: str, splits: list[str]) -> None:
    """Refuse to rewrite split folders of ``root`` that hold files other than the writer's volumes
    (``{prefix}_s{seed}_{split}_{i:03d}.h5``) and the temporary files of an interrupted write.

    Raises:
        ValueError: naming the files.
    """
    volume = volume_name_pattern(prefix, splits)
    own = re.compile(rf"{volume}|{temporary_name_pattern(volume)}")
    others = sorted(
        str(path)
        for split in splits
        for path in (root / f"{challenge}_{split}").glob("*")
        if not own.fullmatch(path.name)
    )
    if others:
        raise ValueError(
            f"{root} holds files that are not {prefix} volumes: {', '.join(others[:3])}"
            f"{f' and {len(others) - 3} more' if len(others) > 3 else ''}; --overwrite would delete them. "
            "Move them out, or pass --data NEW_FOLDER"
        )


def lightning_device(device: str) -> dict[str, Any]:
    """Lightning Trainer arguments for a torch device: "cpu" -> accelerator cpu; "cuda:N" ->
    accelerator gpu on devices [N] ("cuda": one GPU); "mps" -> accelerator mps."""
    resolved = resolve_device(device)
    if resolved.type == "cuda":
        return {"accelerator": "gpu", "devices": 1 if resolved.index is None else [resolved.index]}
    return {"accelerator": resolved.type, "devices": 1}


class Quickstart:
    """The stages of one quick start run into ``out`` (see :func:`run_quickstart`)."""

    def __init__(
        self, out: Path, config: QuickstartConfig, data: Path | None, progress: bool, device: str = "cpu"
    ) -> None:
        self.out, self.config, self.progress = out, config, progress
        self.device = str(resolve_device(device))
        self.root = Path(data or config.data.root or DATA_ROOTS[config.data.source])
        self.task = config.task
        self.timings: dict[str, float] = {}
        self._started = time.perf_counter()
        recon_values, recon_source = load_config(config.reconstructor.config)
        recon_values["model"] = {**recon_values.get("model", {}), **config.reconstructor.model}
        if config.reconstructor.seed is not None:
            recon_values["seed"] = config.reconstructor.seed
        validate_recon_config(
            recon_values, f"{recon_source} (with the quick start's model overrides and seed)", self.task
        )
        self.recon_config = recon_values
        self.agent_configs = {name: self._agent_config(name, stage) for name, stage in config.agents.items()}

    def _agent_config(self, name: str, stage: AgentStage) -> dict[str, Any]:
        """Agent ``name``'s train config: its config file with the stage's overrides and, for
        ``start_from``, the ``init_policy`` of that agent's model in this run folder.

        Raises:
            ConfigError: a bad value, or ``start_from`` for an agent that cannot start from a policy.
        """
        values, source = load_config(stage.config)
        values["hyperparameters"] = {**values.get("hyperparameters", {}), **stage.hyperparameters}
        if stage.total_steps is not None:
            values["total_steps"] = stage.total_steps
        TrainConfig.from_dict({**values, "env_kwargs": {}}, f"{source} (with the quick start's agent settings)")
        if stage.start_from is not None:
            starters = sorted(key for key, agent in AGENTS.items() if "init_policy" in settings_fields(agent))
            if values["agent"] not in starters:
                raise ConfigError(
                    f"agents.{name}.start_from: a {values['agent']} agent ({source}) cannot start from a policy; "
                    f"agents {starters} can"
                )
            if values["hyperparameters"].get("init_policy"):
                raise ConfigError(f"agents.{name}: start_from and hyperparameters.init_policy both name a policy")
            values["hyperparameters"]["init_policy"] = str(self.out / stage.start_from / "model.pt")
        return values

    def stage(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = round(now - self._started, 1)
        self._started = now
        print(f"[quickstart] {name} done in {self.timings[name]} s", flush=True)

    def data(self, overwrite: bool) -> None:
        """Write the data if absent; refuse a root written with other settings, or that is (or lies below) a file."""
        check_not_a_file(self.root)  # named as itself, not as ROOT/{challenge}_train
        source, spec = data_source(self.config.data, self.task.challenge)
        volumes = asdict(self.config.data.volumes)
        seed = self.config.seed if self.config.data.seed is None else self.config.data.seed
        differences = data_differences(self.root, source, spec, seed, volumes)
        if differences and (self.root / f"{spec.challenge}_train").is_dir():
            if not overwrite:
                raise ValueError(
                    f"{'; '.join(differences)}. Pass --data NEW_FOLDER, or --overwrite to rewrite this data folder"
                )
            check_own_files(self.root, spec.challenge, source.prefix, list(volumes))
            for split in volumes:
                shutil.rmtree(self.root / f"{spec.challenge}_{split}", ignore_errors=True)
        if differences:
            source.write(self.root, spec, volumes, seed=seed, progress=self.progress)
        self.stage(f"{self.config.data.source} data")

    def reconstructor(self) -> Path:
        """Train the reconstructor unless ``out/reconstructor`` holds one made the same way."""
        run = self.out / "reconstructor"
        exported = run / EXPORT_NAME
        max_epochs = self.config.reconstructor.max_epochs
        if exported.is_file():
            train, val = training_folders(self.root, self.task.challenge)
            epochs = max_epochs or self.recon_config.get("trainer", {}).get("max_epochs")
            check_record(
                read_reconstructor_record(exported),
                reconstructor_record(self.task, train, val, self.recon_config, epochs),
                exported,
                FRESH_START,
            )
        else:
            train_reconstructor(
                self.root,
                self.task,
                run,
                self.recon_config,
                max_epochs=max_epochs,
                resume=(run / "checkpoints" / "last.ckpt").is_file(),
                trainer_kwargs={"enable_progress_bar": self.progress, **lightning_device(self.device)},
                fresh_start=FRESH_START,
            )
        self.stage("reconstructor training")
        return exported

    def agent(self, name: str, task: AcquisitionTask) -> Path:
        """Train agent ``name`` unless its run folder holds a model made the same way."""
        run_dir, stage = self.out / name, self.config.agents[name]
        challenge = task.challenge
        values = dict(self.agent_configs[name])
        options = values.get("env_kwargs", {})  # e.g. column_spectrum
        values.update(
            env_kwargs={**options, "data_path": str(self.root / f"{challenge}_train"), "task": task.to_dict()},
            eval_env_kwargs={**options, "data_path": str(self.root / f"{challenge}_val"), "task": task.to_dict()},
            seed=self.config.seed if stage.seed is None else stage.seed,
            device=self.device,  # not recorded: a stage made on another device is reused
        )
        config = TrainConfig.from_dict(values, stage.config)
        model = run_dir / "model.pt"
        if model.is_file():
            stored = AGENTS[config.agent].load(model).record
            check_record(stored, run_record(config, make_env(config, num_envs=1)), model, FRESH_START)
        else:
            train_agent(
                config,
                run_dir,
                resume=(run_dir / "checkpoint.pt").is_file(),
                progress_bar=self.progress,
                fresh_start=FRESH_START,
            )
        self.stage(f"{name} training")
        return model

    def val_reference(self, setup: EvaluationSetup) -> Path:
        """Roll the fixed orders on val into ``OUT/val_reference``, the test evaluation's
        ``reference_from``, and lend it their LBCS orders (learned on the same training slices)."""
        folder = self.out / "val_reference"
        val = replace(setup, split="val", seeds=setup.seeds[:1])
        evaluate_policies(val, self.config.evaluation.fixed_orders, folder, progress=self.progress)
        lend_lbcs_orders(folder, self.out / "evaluation")
        self.stage("fixed orders on val")
        return folder

    def evaluation(self, task: AcquisitionTask, models: dict[str, Path]) -> dict[str, Any]:
        cfg = self.config.evaluation
        setup = EvaluationSetup(
            data=self.root,
            task=task,
            split="test",
            seeds=tuple(cfg.seeds),
            batch_size=cfg.batch_size,
            lbcs_slices=cfg.lbcs_slices,
            lbcs_by=cfg.lbcs_by,
            device=self.device,
        )
        if cfg.reference_on_val:
            setup.reference_from = self.val_reference(setup)
        policies = [*cfg.policies, *(f"{name}={path}" for name, path in models.items())]
        policies += self.config.ensemble_specs(models)
        groups = {name: members.split("+") for name, members in cfg.groups.items()}
        summary = evaluate_policies(setup, policies, self.out / "evaluation", progress=self.progress, groups=groups)
        self.stage("evaluation")
        return summary


def settings_fields(agent: type[Agent]) -> set[str]:
    """The names of an agent class's settings (its ``settings_class``'s fields)."""
    return {item.name for item in fields(agent.settings_class)}


def clear_stages(out: Path, agents: Sequence[str]) -> None:
    """Delete what an earlier quick start wrote into ``out`` (its stages and timings only)."""
    for name in ("reconstructor", "val_reference", "evaluation", *agents):
        stage = out / name
        if stage.is_symlink():
            stage.unlink()
        elif stage.is_dir():
            shutil.rmtree(stage)
    (out / "timings.yaml").unlink(missing_ok=True)


def run_quickstart(
    out: str | Path = "runs/quickstart",
    config: str | Path = "quickstart",
    data: str | Path | None = None,
    progress: bool = True,
    overrides: Sequence[str] = (),
    overwrite: bool = False,
    device: str = "cpu",
    precision: str | None = None,
) -> dict[str, Any]:
    """Run the pipeline and return the evaluation summary; timings go to ``out/timings.yaml``.

    Args:
        out: the run folder.
        config: a packaged config name or a path.
        data: the data root (default: the config's ``data.root``, else ``data/anatomy`` or
            ``data/synthetic`` by its ``data.source``).
        progress: show progress bars.
        overrides: ``KEY=VALUE`` changes of the config (``--set``).
        overwrite: delete the stages in ``out`` (and rewrite a data root written with other
            settings or left without its record, :func:`check_own_files`) instead of refusing them;
            the data is checked first, so a refused run deletes nothing.
        device: torch device of every stage (Lightning's accelerator for the reconstructor,
            :func:`lightning_device`); not recorded, so finished stages are reused on another.
        precision: the task's precision of the agents' env ("32", "bf16", "16"; None: the
            config's ``task.precision``); recorded by the agents and the evaluation.

    Raises:
        ConfigError: a bad config or override, before anything runs.
        NotADirectoryError: ``out`` (or a folder above it) is a file, before anything runs; the data root
            is, before the data are written.
        ValueError: a device this machine lacks, or precision "16" on the CPU.
        RecordMismatchError: a finished stage made under other settings.
    """
    out = Path(out)
    check_not_a_file(out)  # before the data are written, not at the first stage to write in it
    settings = QuickstartConfig.from_file(config, overrides)
    if precision is not None:
        settings.task = settings.task.with_changes(precision=precision)
    quick = Quickstart(out, settings, None if data is None else Path(data), progress, device)
    check_precision(resolve_device(device), quick.task.precision)
    quick.data(overwrite)  # the last check that can refuse the run: nothing is deleted before it
    if overwrite:
        clear_stages(out, list(quick.config.agents))
    reconstructor = quick.reconstructor()
    task = quick.task.with_changes(reconstructor=str(reconstructor))
    models = {name: quick.agent(name, task) for name in quick.config.agents}
    summary = quick.evaluation(task, models)  # an overwritten evaluation was cleared with the stages
    quick.timings["total"] = round(sum(quick.timings.values()), 1)
    atomic_write_text(out / "timings.yaml", yaml.safe_dump(quick.timings, sort_keys=False))
    print(markdown_table(summary))
    print(
        f"[quickstart] total {quick.timings['total']} s; report in {out / 'evaluation'} "
        f"(summary.md, curves.png, masks.png, examples.png, metrics.csv)"
    )
    return summary
