"""The YAML configs shipped inside the package, and reading any config with overrides.

A config is named by its file name (``quickstart``, ``recon_unet``, ``dqn_mri``, ...: the
files in this folder, installed with the package) or given as a path. ``--set KEY=VALUE``
overrides reach any value, with dotted keys for nested ones
(``--set task.budget=8 --set hyperparameters.learning_rate=3e-4``); the value is read
as YAML, so numbers, booleans, lists (``[64, 64]``) and ``null`` keep their types.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mri_rl.configs.schema import ConfigError
from mri_rl.files import load_yaml_mapping, parse_yaml

CONFIG_DIR = Path(__file__).resolve().parent


def packaged_configs() -> list[str]:
    """Names of the configs shipped with the package."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def config_path(name_or_path: str | Path) -> Path:
    """The file of a config: an existing path as it is, else a packaged config by name.

    Raises:
        FileNotFoundError: neither a file nor a packaged config; lists the packaged ones.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    packaged = CONFIG_DIR / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
    if packaged.is_file() and (path.parent == Path(".") or path.parent.name == "configs"):
        return packaged
    raise FileNotFoundError(
        f"config {name_or_path} is neither a file nor a packaged config ({', '.join(packaged_configs())})"
    )


def apply_overrides(values: dict[str, Any], overrides: Sequence[str], source: str) -> dict[str, Any]:
    """``values`` with each ``KEY=VALUE`` of ``overrides`` applied (dotted keys reach nested mappings).

    Raises:
        ConfigError: an override without ``=``, or a dotted key through a non-mapping.
    """
    values = dict(values)
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {override!r}: expected KEY=VALUE, e.g. task.budget=8")
        *parents, leaf = key.strip().split(".")
        node = values
        for depth, name in enumerate(parents):
            child = node.get(name, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    f"--set {override!r}: {'.'.join(parents[: depth + 1])} in {source} is {child!r}, not a mapping"
                )
            node[name] = child = dict(child)
            node = child
        try:
            node[leaf] = parse_yaml(text)
        except Exception as error:  # yaml's own errors, of several types
            raise ConfigError(f"--set {override!r}: the value is not valid YAML ({error})") from None
    return values


def load_config(name_or_path: str | Path, overrides: Sequence[str] = ()) -> tuple[dict[str, Any], str]:
    """A config's mapping with ``overrides`` applied, and its source for messages.

    Returns:
        (values, source): ``source`` is the file path (plus the overrides, if any).
    """
    path = config_path(name_or_path)
    values = load_yaml_mapping(path)
    source = str(path) + (f" (with --set {' '.join(overrides)})" if overrides else "")
    return apply_overrides(values, overrides, source), source


__all__ = ["CONFIG_DIR", "ConfigError", "apply_overrides", "config_path", "load_config", "packaged_configs"]
