"""The package's structure: no module imports a layer above its own, the agents stay generic, and
functions stay short and simple (ruff's complexity cap is configured in pyproject)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mri_rl"

#: Bottom-up layers (DESIGN.md): a module may import its own layer and those below.
LAYERS = [
    {"task", "provenance", "files", "checkpointing", "configs", "schedules", "checks", "threads", "distributed"}
    | {"acquisition_orders"},
    {"kspace"},
    {"metrics"},
    {"data"},
    {"reconstruct"},
    {"envs"},
    {"agents", "tabular"},
    {"policies"},
    {"evaluation"},
    {"runs"},
    {"cli", "__main__"},
]
#: Generic code: knows Gymnasium, not MRI; only the foundation below it.
GENERIC = {"agents", "tabular"}


def layer_of(part: str) -> int:
    return next(i for i, parts in enumerate(LAYERS) if part in parts)


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative == Path("__init__.py"):
            continue  # the package entry: sets the thread default, registers the env by name, gives the version
        found.append((relative.parts[0].removesuffix(".py"), path))
    return found


def imported_parts(path: Path) -> set[str]:
    """Top-level parts of the package that ``path`` imports (``mri_rl.envs.x`` -> ``envs``), lazy imports included."""
    parts = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
        for name in names:
            pieces = name.split(".")
            if pieces[0] == "mri_rl" and len(pieces) > 1:
                parts.add(pieces[1])
    return parts


@pytest.mark.parametrize(("part", "path"), modules(), ids=lambda value: str(value).split("mri_rl/")[-1])
def test_no_module_imports_a_layer_above_its_own(part, path):
    above = {p for p in imported_parts(path) if layer_of(p) > layer_of(part)}
    assert not above, f"{path.relative_to(PACKAGE)} ({part}) imports {sorted(above)} from above its layer"
    if part in GENERIC:
        mri = {p for p in imported_parts(path) if layer_of(p) > 0 and p not in GENERIC}
        assert not mri, f"{path.relative_to(PACKAGE)} is generic but imports {sorted(mri)}"


def test_every_package_part_has_a_layer():
    parts = {p.name.removesuffix(".py") for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert parts - {"__init__"} <= set().union(*LAYERS)


def test_functions_are_at_most_60_lines_or_say_why():
    long = []
    for _, path in modules():
        source = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(source))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = source[node.lineno - 1 : node.end_lineno]
                if len(body) > 60 and not any(line.strip().startswith("# long:") for line in body):
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({len(body)} lines)")
    assert not long, long
