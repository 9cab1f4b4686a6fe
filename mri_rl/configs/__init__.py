"""The YAML configs shipped inside the package, and reading any config with overrides.

A config is named by its file name (``quickstart``, ``recon_unet``, ``dqn_mri``, ...: the
files in this folder, installed with the package) or given as a path. ``--set KEY=VALUE``
overrides reach any value, with dotted keys for nested ones
(``--set task.budget=8 --set hyperparameters.learning_rate=3e-4``); the value is read
as YAML, so numbers, booleans, lists (``[64, 64]``) and ``null`` keep their types.

A config may start from another with ``extends: NAME_OR_PATH``: its own values are merged
over the other's (mappings key by key, anything else replaced).
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
        except ValueError as error:  # parse_yaml says what and where
            raise ConfigError(f"--set {override!r}: the value is not valid YAML ({error})") from None
    return values


def merged(base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` over ``base``: mappings merged key by key, anything else replaced."""
    result = dict(base)
    for key, value in values.items():
        both_mappings = isinstance(value, dict) and isinstance(result.get(key), dict)
        result[key] = merged(result[key], value) if both_mappings else value
    return result


def _read_extended(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file's values, merged over those of the config it ``extends`` (recursively).

    Raises:
        ConfigError: ``extends`` that is not a name or path, or a cycle of configs.
    """
    if path.resolve() in seen:
        chain = " -> ".join(str(p) for p in (*seen, path.resolve()))
        raise ConfigError(f"config {path}: 'extends' makes a cycle ({chain})")
    values = load_yaml_mapping(path)
    base = values.pop("extends", None)
    if base is None:
        return values
    if not isinstance(base, str) or not base:
        raise ConfigError(f"config {path}: extends: expected a config name or path, got {base!r}")
    base_path = config_path(
        base if Path(base).is_absolute() or not (path.parent / base).is_file() else path.parent / base
    )
    return merged(_read_extended(base_path, (*seen, path.resolve())), values)


def load_config(name_or_path: str | Path, overrides: Sequence[str] = ()) -> tuple[dict[str, Any], str]:
    """A config's mapping (merged over the config it ``extends``) with ``overrides`` applied, and
    its source for messages.

    Returns:
        (values, source): ``source`` is the file path (plus the overrides, if any).
    """
    path = config_path(name_or_path)
    values = _read_extended(path)
    source = str(path) + (f" (with --set {' '.join(overrides)})" if overrides else "")
    return apply_overrides(values, overrides, source), source


__all__ = ["CONFIG_DIR", "ConfigError", "apply_overrides", "config_path", "load_config", "packaged_configs"]
