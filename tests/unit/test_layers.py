"""The house's rules, checked over the real import graph of ``grader``.

`make test` runs ``lint-imports`` for the layer contract in ``pyproject.toml`` (arrows only go
down); these tests add what a layers contract cannot see: cycles inside a layer, a subpackage
that the contract forgets, and a module that grows past the size a reader can hold.
"""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import pytest
import tomllib

REPO = Path(__file__).resolve().parents[2]
GRADER = REPO / "grader"
#: the longest module a reader should have to hold in mind (lines)
MAX_MODULE_LINES = 500


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components with more than one member (the import cycles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_tarjan_finds_a_cycle_and_only_cycles() -> None:
    """Does the cycle finder see a three-module loop and nothing in a chain?"""
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_grader_has_no_import_cycle() -> None:
    """Is there no loop of imports anywhere in grader/ (function-local imports included)?"""
    graph = grimp.build_graph("grader")
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert strongly_connected(edges) == []


def test_the_layer_contract_names_every_subpackage() -> None:
    """Does the contract in pyproject.toml place every grader subpackage and top-level module?"""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    layers = next(c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers")["layers"]
    placed = {name.strip() for layer in layers for name in layer.replace(":", "|").split("|")}
    present = {f"grader.{p.name}" for p in GRADER.iterdir() if (p / "__init__.py").is_file()}
    present |= {f"grader.{p.stem}" for p in GRADER.glob("*.py") if p.stem != "__init__"}
    assert present - placed == set()


@pytest.mark.parametrize("module", sorted(p.relative_to(REPO).as_posix() for p in GRADER.rglob("*.py")))
def test_no_module_is_too_long_and_every_package_says_what_it_may_import(module: str) -> None:
    """Is each module under the size limit, and does each subpackage's docstring state its imports?"""
    source = (REPO / module).read_text(encoding="utf-8")
    assert len(source.splitlines()) <= MAX_MODULE_LINES
    if module.endswith("__init__.py") and module != "grader/__init__.py":
        docstring = ast.get_docstring(ast.parse(source)) or ""
        assert "import" in docstring.lower(), f"{module}: say what this layer may import"


def test_the_colab_extra_pins_what_requirements_pins_and_never_torch() -> None:
    """Does the Colab extra install the tested versions of what it lists, and leave Colab's torch alone?"""
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    extra = config["project"]["optional-dependencies"]["colab"]
    pins = dict(
        line.split("==", 1)
        for line in (REPO / "requirements.txt").read_text(encoding="utf-8").splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert extra and all("torch" not in requirement.split("==")[0] for requirement in extra)
    for requirement in extra:
        name, _, version = requirement.partition("==")
        assert pins.get(name) == version, f"{requirement}: requirements.txt pins {name}=={pins.get(name)}"


def test_the_kernel_and_the_grader_spell_the_check_values_type_alike() -> None:
    """Do mlcourse.checks (in the kernel) and grading.checkvalues (trusted) use one MIME type?"""
    from grader.grading import checkvalues
    from mlcourse import checks

    assert checks.MIME == checkvalues.MIME
