"""Config checking (mri_rl.configs.schema), YAML reading, --set overrides and the packaged configs."""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import pytest

from mri_rl.configs import CONFIG_DIR, apply_overrides, config_path, load_config, packaged_configs
from mri_rl.configs.schema import ConfigError, check_value, describe, from_mapping
from mri_rl.files import load_yaml_mapping, parse_yaml
from mri_rl.task import DEFAULT_TASK, AcquisitionTask

SOURCE = "test.yaml"


@dataclass
class Inner:
    rate: float = field(default=0.5, metadata={"above": 0, "max": 1})
    name: str = "inner"


@dataclass
class Outer:
    count: int = field(metadata={"min": 1})
    mode: Literal["fast", "slow"] = "fast"
    flag: bool = False
    limit: int | None = None
    sizes: list[int] = field(default_factory=lambda: [1, 2], metadata={"min": 1})
    table: dict[str, int] = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)


@dataclass
class Wrapper:
    task: AcquisitionTask = field(default_factory=AcquisitionTask)


GOOD = {
    "count": 3,
    "mode": "slow",
    "flag": True,
    "limit": None,
    "sizes": [4, 5, 6],
    "table": {"a": 1},
    "inner": {"rate": 1, "name": "x"},
}


def test_from_mapping_accepts_good_values():
    built = from_mapping(Outer, GOOD, SOURCE)
    assert built == Outer(
        count=3, mode="slow", flag=True, limit=None, sizes=[4, 5, 6], table={"a": 1}, inner=Inner(rate=1.0, name="x")
    )
    assert isinstance(built.inner, Inner) and type(built.inner.rate) is float
    assert from_mapping(Outer, {"count": 1}, SOURCE) == Outer(count=1)
    assert from_mapping(Outer, {"count": 2, "limit": 7}, SOURCE).limit == 7


@pytest.mark.parametrize(
    "values, key, expected",
    [
        (
            {"count": 1, "bogus": 1},
            "",
            r"unknown key\(s\) \['bogus'\]; known keys: \['count', 'flag', 'inner', "
            r"'limit', 'mode', 'sizes', 'table'\]",
        ),
        ({"count": 1, "inner": {"speed": 1}}, "inner", r"unknown key\(s\) \['speed'\]; known keys: \['name', 'rate'\]"),
        ({"mode": "fast"}, "", r"missing required key\(s\) \['count'\]"),
        ({"count": True}, "count", r"expected an integer, got True"),
        ({"count": 2.5}, "count", r"expected an integer, got 2\.5"),
        ({"count": "3"}, "count", r"expected an integer, got '3'"),
        ({"count": 1, "flag": 1}, "flag", r"expected true or false, got 1"),
        ({"count": 1, "limit": 1.5}, "limit", r"expected an integer or null, got 1\.5"),
        ({"count": 1, "inner": {"rate": float("nan")}}, "inner.rate", r"expected a finite number, got nan"),
        ({"count": 1, "inner": {"rate": float("inf")}}, "inner.rate", r"expected a finite number, got inf"),
        ({"count": 1, "inner": {"rate": "0.5"}}, "inner.rate", r"expected a finite number, got '0\.5'"),
        ({"count": 1, "inner": {"rate": True}}, "inner.rate", r"expected a finite number, got True"),
        ({"count": 1, "inner": {"name": 3}}, "inner.name", r"expected a string, got 3"),
        ({"count": 1, "inner": 0.5}, "inner", r"expected a mapping, got 0\.5"),
        ({"count": 1, "sizes": "1, 2"}, "sizes", r"expected a list of an integer, got '1, 2'"),
        ({"count": 1, "sizes": [1, "x"]}, r"sizes[1]", r"expected an integer, got 'x'"),
        ({"count": 1, "sizes": [1, 0]}, "sizes", r"must be >= 1, got \[1, 0\]"),
        ({"count": 1, "table": {"a": 1, "b": 2.5}}, "table.b", r"expected an integer, got 2\.5"),
        ({"count": 1, "table": [1]}, "table", r"expected a mapping, got \[1\]"),
        ({"count": 0}, "count", r"must be >= 1, got 0"),
        ({"count": 1, "inner": {"rate": 0}}, "inner.rate", r"must be > 0, got 0\.0"),
        ({"count": 1, "inner": {"rate": -0.1}}, "inner.rate", r"must be > 0, got -0\.1"),
        ({"count": 1, "inner": {"rate": 1.5}}, "inner.rate", r"must be <= 1, got 1\.5"),
        ({"count": 1, "mode": "medium"}, "mode", r"expected one of 'fast', 'slow', got 'medium'"),
    ],
)
def test_from_mapping_errors_name_source_key_and_expectation(values, key, expected):
    where = re.escape(f"{SOURCE}: {key}: " if key else f"{SOURCE}: ")
    with pytest.raises(ConfigError, match="^" + where + expected + "$"):
        from_mapping(Outer, values, SOURCE)


def test_from_mapping_needs_a_mapping():
    with pytest.raises(ConfigError, match=r"^test\.yaml: expected a mapping, got \[1, 2\]$"):
        from_mapping(Outer, [1, 2], SOURCE)


def test_dataclass_checks_become_config_errors():
    with pytest.raises(ConfigError, match=r"^test\.yaml: task: task budget must be an integer >= 1, got 0$"):
        from_mapping(Wrapper, {"task": {"budget": 0}}, SOURCE)
    assert from_mapping(Wrapper, {"task": {"budget": 8}}, SOURCE).task == DEFAULT_TASK.with_changes(budget=8)


def test_describe():
    assert describe(int | None) == "an integer or null"
    assert describe(Literal["a", "b"]) == "one of 'a', 'b'"
    assert describe(list[float]) == "a list of a number"
    assert describe(Inner) == "a mapping"


@pytest.mark.parametrize(
    "text, value",
    [
        ("3e-4", 3e-4),
        ("1E5", 1e5),
        ("-2.5e-3", -2.5e-3),
        (".5", 0.5),
        ("1_000", 1000),
        ("+1e3", 1000.0),
        ("1e+5", 1e5),
        ("2.5", 2.5),
        ("7", 7),
    ],
)
def test_yaml_numbers(text, value):
    parsed = parse_yaml(text)
    assert parsed == value
    assert type(parsed) is type(value)


@pytest.mark.parametrize("text, value", [("abc", "abc"), ('"3e-4"', "3e-4"), ("'1_000'", "1_000"), ("e5", "e5")])
def test_yaml_strings_stay_strings(text, value):
    assert parse_yaml(text) == value


@pytest.mark.parametrize("text, value", [("-.5", -0.5), ("+.5e-3", 5e-4)])
def test_yaml_signed_leading_dot_floats(text, value):
    assert parse_yaml(text) == value


def test_load_yaml_mapping(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 3e-4\nshape: [64, 64]\nname: '1e3'\n")
    assert load_yaml_mapping(path) == {"lr": 3e-4, "shape": [64, 64], "name": "1e3"}
    with pytest.raises(FileNotFoundError, match=r"config file .*missing\.yaml does not exist"):
        load_yaml_mapping(tmp_path / "missing.yaml")
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match=r"c\.yaml must hold a mapping of keys, not list"):
        load_yaml_mapping(path)
    path.write_text("a: [1, 2\nb: 3\n")
    with pytest.raises(ValueError, match=r"c\.yaml is not valid YAML: line 2, column 2: while parsing a flow") as error:
        load_yaml_mapping(path)
    assert "\n" not in str(error.value)
    path.write_bytes(b"\x00\xff binary")
    with pytest.raises(ValueError, match=r"c\.yaml is not valid YAML: 'utf-8' codec can't decode"):
        load_yaml_mapping(path)
    path.write_text("seed: !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(ValueError, match=r"could not determine a constructor for the tag"):
        load_yaml_mapping(path)


def test_apply_overrides_sets_nested_values_parsed_as_yaml():
    values = {"seed": 0, "model": {"chans": 32, "kind": "unet"}, "hyperparameters": {"gamma": 0.9}}
    original = copy.deepcopy(values)
    result = apply_overrides(
        values,
        [
            "model.chans=16",
            "hyperparameters.net_arch=[64, 64]",
            "hyperparameters.learning_rate=3e-4",
            "task.budget=null",
            "task.deep.flag=true",
            "seed=3",
            "name=abc",
        ],
        SOURCE,
    )
    assert result == {
        "seed": 3,
        "name": "abc",
        "model": {"chans": 16, "kind": "unet"},
        "hyperparameters": {"gamma": 0.9, "net_arch": [64, 64], "learning_rate": 3e-4},
        "task": {"budget": None, "deep": {"flag": True}},
    }
    assert values == original
    assert apply_overrides(values, [], SOURCE) == original


def test_apply_overrides_replaces_a_mapping_and_keeps_equals_in_values():
    result = apply_overrides({"model": {"chans": 32}}, ["model={kind: varnet}", "note=a=b"], SOURCE)
    assert result == {"model": {"kind": "varnet"}, "note": "a=b"}


@pytest.mark.parametrize(
    "override, expected",
    [
        ("budget", r"--set 'budget': expected KEY=VALUE"),
        ("=8", r"--set '=8': expected KEY=VALUE"),
        ("seed.value=1", r"--set 'seed\.value=1': seed in test\.yaml is 0, not a mapping"),
        ("model.chans.x=1", r"--set 'model\.chans\.x=1': model\.chans in test\.yaml is 32, not a mapping"),
        ("model.chans=[1", r"--set 'model\.chans=\[1': the value is not valid YAML"),
    ],
)
def test_apply_overrides_errors_name_the_override(override, expected):
    values = {"seed": 0, "model": {"chans": 32}}
    with pytest.raises(ConfigError, match="^" + expected):
        apply_overrides(values, [override], SOURCE)
    assert values == {"seed": 0, "model": {"chans": 32}}


def test_config_path_existing_file_as_is(tmp_path, monkeypatch):
    path = tmp_path / "quickstart.yaml"
    path.write_text("seed: 1\n")
    assert config_path(path) == path
    assert config_path(str(path)) == path
    monkeypatch.chdir(tmp_path)
    assert config_path("quickstart.yaml") == Path("quickstart.yaml")


@pytest.mark.parametrize(
    "name, file",
    [
        ("quickstart", "quickstart.yaml"),
        ("recon_unet.yaml", "recon_unet.yaml"),
        ("configs/dqn_mri.yaml", "dqn_mri.yaml"),
        (Path("reinforce_mri"), "reinforce_mri.yaml"),
    ],
)
def test_config_path_packaged_names(name, file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert config_path(name) == CONFIG_DIR / file
    assert config_path(name).is_file()
    assert CONFIG_DIR.name == "configs" and CONFIG_DIR.parent.name == "mri_rl"


@pytest.mark.parametrize("name", ["nope", "nope.yaml", "elsewhere/dqn_mri.yaml"])
def test_config_path_unknown_name_lists_packaged_configs(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        FileNotFoundError,
        match=rf"config {re.escape(name)} is neither a file nor a packaged "
        r"config \(.*dqn_mri.*quickstart.*recon_unet",
    ):
        config_path(name)


def test_packaged_configs():
    names = packaged_configs()
    assert {"quickstart", "recon_unet", "recon_varnet", "dqn_mri", "reinforce_mri", "dqn_cartpole"} <= set(names)
    assert names == sorted(names)
    assert all(not name.endswith(".yaml") for name in names)


def test_load_config_source_mentions_overrides():
    values, source = load_config("recon_unet", ["model.chans=8"])
    assert values["model"]["chans"] == 8
    assert source == f"{CONFIG_DIR / 'recon_unet.yaml'} (with --set model.chans=8)"
    assert load_config("recon_unet")[1] == str(CONFIG_DIR / "recon_unet.yaml")


def test_packaged_quickstart_config_loads():
    from mri_rl.runs.quickstart import QuickstartConfig

    values, source = load_config("quickstart")
    config = from_mapping(QuickstartConfig, values, source)
    assert config.task == DEFAULT_TASK
    assert config.reconstructor.config in packaged_configs()
    assert {stage.config for stage in config.agents.values()} <= set(packaged_configs())
    with pytest.raises(ConfigError, match=r"quickstart\.yaml \(with --set task\.budget=0\): task: task budget"):
        from_mapping(QuickstartConfig, *load_config("quickstart", ["task.budget=0"]))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["evaluation.policies=[bogus]"], "unknown policy 'bogus'"),
        (["evaluation.policies=[random, random]"], "policy names must be unique"),
        (["evaluation.policies=[dqn=runs/x.pt]"], "baselines only (the trained agents are added)"),
        (["evaluation.lbcs_by=null"], "the lbcs_kind policy needs lbcs_by (--lbcs-by ATTRIBUTE)"),
    ],
)
def test_quickstart_policies_are_checked_on_load(overrides, message):
    from mri_rl.runs.quickstart import QuickstartConfig

    with pytest.raises(ConfigError, match=re.escape(message)):
        QuickstartConfig.from_file("quickstart", overrides)


def test_the_phantom_quickstart_extends_the_anatomy_one():
    from mri_rl.runs.quickstart import QuickstartConfig

    anatomy = QuickstartConfig.from_file("quickstart")
    phantoms = QuickstartConfig.from_file("quickstart_phantoms")
    assert (anatomy.data.source, anatomy.data.root, anatomy.data.striation) == ("anatomy", "data/anatomy", None)
    assert (phantoms.data.source, phantoms.data.root, phantoms.data.striation) == ("phantoms", "data/synthetic", 0.2)
    assert phantoms.data.volumes == anatomy.data.volumes
    # the phantoms have no orientation, so no LBCS order per orientation; the rest is the anatomy's
    assert (anatomy.evaluation.lbcs_by, phantoms.evaluation.lbcs_by) == ("orientation", None)
    assert anatomy.evaluation.policies == [*phantoms.evaluation.policies[:4], "lbcs_kind", "oracle"]
    assert (
        replace(phantoms.evaluation, policies=anatomy.evaluation.policies, lbcs_by="orientation") == anatomy.evaluation
    )
    assert (anatomy.reconstructor.max_epochs, phantoms.reconstructor.max_epochs) == (15, 20)
    assert phantoms.reconstructor.model == anatomy.reconstructor.model == {"chans": 16}
    steps = {name: (anatomy.agents[name].total_steps, phantoms.agents[name].total_steps) for name in anatomy.agents}
    assert steps == {"dqn": (4000, 32000), "reinforce": (2000, 16000)}


def test_quickstart_layout_is_the_anatomys_only():
    from mri_rl.runs.quickstart import QuickstartConfig, data_source

    config = QuickstartConfig.from_file("quickstart", ["data.layout=interleaved"])
    source, spec = data_source(config.data, "singlecoil")
    assert source.settings(spec, 0)["layout"] == "interleaved"
    assert "layout" not in data_source(QuickstartConfig.from_file("quickstart").data, "singlecoil")[0].settings(spec, 0)
    with pytest.raises(ConfigError, match="data.layout: only the anatomy has a split layout"):
        QuickstartConfig.from_file("quickstart_phantoms", ["data.layout=slabs"])
    with pytest.raises(ConfigError, match="data.layout"):
        QuickstartConfig.from_file("quickstart", ["data.layout=checkerboard"])


def test_quickstart_slice_offset_is_the_anatomys_only_and_reaches_the_writer():
    from mri_rl.runs.quickstart import QuickstartConfig, data_source

    config = QuickstartConfig.from_file("quickstart", ["data.slice_offset=random"])
    source, spec = data_source(config.data, "singlecoil")
    assert source.settings(spec, 0)["slice_offset"] == "random"
    assert source.write.keywords == {"layout": "slabs", "slice_offset": "random", "template": None}
    default = data_source(QuickstartConfig.from_file("quickstart").data, "singlecoil")[0]
    assert "slice_offset" not in default.settings(spec, 0) and default.write.keywords["slice_offset"] == "centre"
    with pytest.raises(ConfigError, match="data.slice_offset: only the anatomy has one"):
        QuickstartConfig.from_file("quickstart_phantoms", ["data.slice_offset=random"])
    with pytest.raises(ConfigError, match="data.slice_offset"):
        QuickstartConfig.from_file("quickstart", ["data.slice_offset=edge"])


def test_quickstart_template_reaches_the_writer_and_a_root_of_another_brain_is_told_apart(tmp_path, doubled_template):
    from mri_rl.runs.quickstart import QuickstartConfig, data_differences, data_source

    config = QuickstartConfig.from_file("quickstart", [f"data.template={doubled_template}"])
    source, spec = data_source(config.data, "singlecoil")
    assert source.write.keywords["template"] == str(doubled_template)
    default, _ = data_source(QuickstartConfig.from_file("quickstart").data, "singlecoil")
    assert default.write.keywords["template"] is None
    written_from_mni152 = replace(source, read_settings=lambda root, challenge: default.settings(spec, 0))
    (difference,) = data_differences(tmp_path, written_from_mni152, spec, 0, {})
    assert f"source_sha256 None (config: '{hashlib.sha256(doubled_template.read_bytes()).hexdigest()[:4]}" in difference
    with pytest.raises(ConfigError, match="data.template: only the anatomy reads a brain"):
        QuickstartConfig.from_file("quickstart_phantoms", [f"data.template={doubled_template}"])
    with pytest.raises(ConfigError, match=f"data.template: expected .* no file at '{tmp_path / 'none.nii'}'"):
        QuickstartConfig.from_file("quickstart", [f"data.template={tmp_path / 'none.nii'}"])


def test_extends_merges_mappings_key_by_key_and_replaces_the_rest(tmp_path):
    (tmp_path / "base.yaml").write_text("a: {x: 1, y: [1, 2]}\nb: 1\nc: keep\n")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\na: {y: [3]}\nb: {z: 2}\n")
    (tmp_path / "grandchild.yaml").write_text(f"extends: {tmp_path / 'child.yaml'}\nc: changed\n")
    values, _ = load_config(tmp_path / "grandchild.yaml", ["a.x=5"])
    assert values == {"a": {"x": 5, "y": [3]}, "b": {"z": 2}, "c": "changed"}


@pytest.mark.parametrize(
    "files, message",
    [
        ({"one.yaml": "extends: two.yaml\n", "two.yaml": "extends: one.yaml\n"}, "'extends' makes a cycle"),
        ({"one.yaml": "extends: 3\n"}, "extends: expected a config name or path, got 3"),
        ({"one.yaml": "extends: missing.yaml\n"}, "config missing.yaml is neither a file nor a packaged config"),
    ],
)
def test_bad_extends_is_one_clear_error(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises((ConfigError, FileNotFoundError), match=re.escape(message)):
        load_config(tmp_path / "one.yaml")


@pytest.mark.parametrize("name", ["recon_unet", "recon_varnet"])
def test_packaged_recon_configs_load(name):
    from mri_rl.reconstruct.train import validate_config

    values, source = load_config(name)
    validate_config(values, source, DEFAULT_TASK)
    assert values["model"]["kind"] in ("unet", "varnet")


@pytest.mark.parametrize(
    "override, expected",
    [
        ("model.chans=-1", r"model\.chans: must be >= 1, got -1"),
        ("model.chans=0", r"model\.chans: must be >= 1, got 0"),
        ("model.drop_prob=1.5", r"model\.drop_prob: must be <= 1, got 1\.5"),
        ("model.kind=[]", r"model\.kind: expected one of \['unet', 'varnet'\], got \[\]"),
        ("masks.evaluation.4x.accelerations=[0]", r"masks: .*be integers >= 1"),
        ("optimization.lr=0", r"optimization\.lr: must be > 0"),
        ("optimization.loss=l2", r"optimization\.loss: expected one of 'l1', 'ssim', got 'l2'"),
        ("model.bogus=1", r"model\.bogus: not a unet hyper-parameter"),
    ],
)
def test_bad_recon_config_names_the_key(override, expected):
    from mri_rl.reconstruct.train import validate_config

    values, source = load_config("recon_unet", [override])
    with pytest.raises(ConfigError, match=re.escape(source) + ": " + expected):
        validate_config(values, source, DEFAULT_TASK)


@pytest.mark.parametrize("name", ["dqn_mri", "reinforce_mri", "dagger_mri", "finetune_mri", "dqn_cartpole"])
def test_packaged_agent_configs_load(name):
    from mri_rl.runs.training import TrainConfig

    values, source = load_config(name)
    config = TrainConfig.from_dict(values, source)
    expected = {
        "dqn_mri": "dqn",
        "reinforce_mri": "greedy_reinforce",
        "dagger_mri": "dagger",
        "finetune_mri": "reinforce",
        "dqn_cartpole": "dqn",
    }
    assert config.agent == expected[name]
    assert config.hyperparameters == values["hyperparameters"]


@pytest.mark.parametrize("name", ["dqn_mri", "reinforce_mri", "dagger_mri", "finetune_mri"])
@pytest.mark.parametrize(
    "override, expected",
    [
        ("hyperparameters.learning_rate=fast", r"hyperparameters\.learning_rate: expected a finite number, got 'fast'"),
        ("hyperparameters.net_arch=[64, x]", r"hyperparameters\.net_arch\[1\]: expected an integer, got 'x'"),
    ],
)
def test_bad_agent_config_names_the_key(name, override, expected):
    from mri_rl.runs.training import TrainConfig

    values, source = load_config(name, [override])
    with pytest.raises(ConfigError, match="^" + re.escape(source) + ": " + expected + "$"):
        TrainConfig.from_dict(values, source)


def test_a_bool_is_not_taken_for_an_equal_literal_number():
    assert check_value(1, Literal[1, 2], "s.yaml", "k") == 1
    with pytest.raises(ConfigError, match=r"s.yaml: k: expected one of 1, 2, got True"):
        check_value(True, Literal[1, 2], "s.yaml", "k")


def test_the_cli_and_the_quick_start_offer_exactly_the_anatomy_s_layouts():
    """The CLI and the config name the layouts without importing the anatomy module; they must not drift."""
    import argparse
    import typing

    from mri_rl.cli import build_parser
    from mri_rl.data.anatomy import LAYOUTS
    from mri_rl.runs.quickstart import DataStage

    literal = typing.get_args(typing.get_type_hints(DataStage)["layout"])[0]
    assert typing.get_args(literal) == LAYOUTS
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    data = next(a for a in commands.choices["data"]._actions if isinstance(a, argparse._SubParsersAction))
    layout = next(a for a in data.choices["anatomy"]._actions if a.dest == "layout")
    assert tuple(layout.choices) == LAYOUTS
