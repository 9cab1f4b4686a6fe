"""Checking a config mapping against a typed dataclass: one clear line per problem.

:func:`from_mapping` builds a dataclass from a mapping read from YAML. Every key must be a
field; every value must have the field's annotated type (``int``, ``float``, ``bool``,
``str``, ``Literal[...]``, ``X | None``, ``list[X]``, ``tuple[X, ...]``, ``dict[str, X]``,
``Any`` or another dataclass); ranges come from field metadata
(``field(metadata={"min": 1})``, ``"max"``, ``"above"`` for a strict lower bound). The
error names the source (file) and the dotted key, and says what was expected.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, fields, is_dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")


class ConfigError(ValueError):
    """A config value of the wrong type, out of range, unknown or missing."""


def describe(annotation: Any) -> str:
    """A reader's name for a type annotation, e.g. ``an integer or null``."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (list, tuple, Sequence, typing.Sequence):
        return f"a list of {describe(args[0]) if args else 'values'}"
    if origin in (dict, Mapping, typing.Mapping):
        return "a mapping"
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string", type(None): "null"}
    if annotation in names:
        return names[annotation]
    return "a mapping" if is_dataclass(annotation) else getattr(annotation, "__name__", str(annotation))


def _where(source: str, key: str) -> str:
    return f"{source}: {key}" if source and key else source or key


#: Scalar types: (accepts the value, converts it).
_SCALARS: dict[type, tuple[Any, Any]] = {
    bool: (lambda v: isinstance(v, bool), lambda v: v),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), lambda v: v),
    float: (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v), float),
    str: (lambda v: isinstance(v, str), lambda v: v),
}


def check_value(value: Any, annotation: Any, source: str, key: str) -> Any:
    """``value`` checked against ``annotation`` (lists come back as lists, tuples as tuples).

    Raises:
        ConfigError: naming ``source`` and the dotted ``key``.
    """
    origin = get_origin(annotation)
    if annotation is Any:
        return value
    if origin in (Union, types.UnionType):
        return _check_union(value, annotation, source, key)
    if origin is Literal:
        args = get_args(annotation)
        if value in args and isinstance(value, bool) == isinstance(args[args.index(value)], bool):
            return value
    elif origin in (list, tuple, Sequence, typing.Sequence):
        return _check_sequence(value, annotation, source, key)
    elif origin in (dict, Mapping, typing.Mapping):
        return _check_mapping(value, annotation, source, key)
    elif is_dataclass(annotation) and isinstance(annotation, type):
        return from_mapping(annotation, value, source, key)
    elif annotation in _SCALARS:
        accepts, convert = _SCALARS[annotation]
        if accepts(value):
            return convert(value)
        if annotation is float:
            raise ConfigError(f"{_where(source, key)}: expected a finite number, got {value!r}")
    else:
        return value
    raise ConfigError(f"{_where(source, key)}: expected {describe(annotation)}, got {value!r}")


def _check_union(value: Any, annotation: Any, source: str, key: str) -> Any:
    args = get_args(annotation)
    if value is None and type(None) in args:
        return None
    for option in (a for a in args if a is not type(None)):
        try:
            return check_value(value, option, source, key)
        except ConfigError:
            continue
    raise ConfigError(f"{_where(source, key)}: expected {describe(annotation)}, got {value!r}")


def _check_sequence(value: Any, annotation: Any, source: str, key: str) -> Any:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{_where(source, key)}: expected {describe(annotation)}, got {value!r}")
    args = get_args(annotation)
    item = args[0] if args else Any
    checked = [check_value(v, item, source, f"{key}[{i}]") for i, v in enumerate(value)]
    return tuple(checked) if get_origin(annotation) is tuple else checked


def _check_mapping(value: Any, annotation: Any, source: str, key: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{_where(source, key)}: expected a mapping, got {value!r}")
    args = get_args(annotation)
    item = args[1] if len(args) == 2 else Any
    return {str(k): check_value(v, item, source, f"{key}.{k}" if key else str(k)) for k, v in value.items()}


def check_range(value: Any, metadata: Mapping[str, Any], where: str) -> None:
    """The ``min``/``max``/``above`` bounds of a field's metadata (None passes)."""
    if value is None or isinstance(value, (bool, str, Mapping)):
        return
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
        if "min" in metadata and v < metadata["min"]:
            raise ConfigError(f"{where}: must be >= {metadata['min']}, got {value!r}")
        if "above" in metadata and v <= metadata["above"]:
            raise ConfigError(f"{where}: must be > {metadata['above']}, got {value!r}")
        if "max" in metadata and v > metadata["max"]:
            raise ConfigError(f"{where}: must be <= {metadata['max']}, got {value!r}")


def from_mapping(cls: type[T], values: Any, source: str, key: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, checking keys, types and ranges.

    Args:
        cls: a dataclass with type annotations.
        values: the mapping (e.g. a YAML section).
        source: where the values come from (a file), for messages.
        key: the dotted key of ``values`` within the source ("" at the top).

    Raises:
        ConfigError: the first problem found, on one line.
    """
    where = _where(source, key)
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {values!r}")
    known = {f.name: f for f in fields(cls) if f.init}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known keys: {sorted(known)}")
    missing = sorted(
        name
        for name, f in known.items()
        if name not in values and f.default is MISSING and f.default_factory is MISSING
    )
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {missing}")
    hints = get_type_hints(cls)
    checked = {}
    for name, value in values.items():
        field_key = f"{key}.{name}" if key else name
        checked[name] = check_value(value, hints[name], source, field_key)
        check_range(checked[name], known[name].metadata, _where(source, field_key))
    try:
        return cls(**checked)
    except (ValueError, TypeError) as error:  # the dataclass's own checks
        raise ConfigError(f"{where}: {error}") from None
