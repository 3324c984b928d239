"""Layers: the packages of egress_resolver import only the packages below them.

The import graph is read from every module's compiled code (every `import`
statement, including those under `if TYPE_CHECKING:` and inside functions): a
package is the first component under `egress_resolver`.
"""

import dis
from collections.abc import Iterator
from pathlib import Path
from types import CodeType

from support import REPO

PACKAGE_ROOT = REPO / "server" / "egress_resolver"

# Bottom to top: a package may import only the packages listed before it.
LAYERS = ("bridge", "definitions", "kumo_api", "runtime", "serving", "ops")


def _imported_modules(path: Path) -> Iterator[str]:
    # From the bytecode, not ast.parse: CPython 3.11's ast.parse fails at random
    # ("AST constructor recursion depth mismatch") while another thread formats a
    # traceback, which parses source too (a data-source fixture's thread does).
    package = ".".join(("egress_resolver", *path.relative_to(PACKAGE_ROOT).parent.parts))
    code = compile(path.read_text(encoding="utf-8"), str(path), "exec", dont_inherit=True)
    yield from _imports_in(code, package)


def _imports_in(code: CodeType, package: str) -> Iterator[str]:
    instructions = list(dis.get_instructions(code))
    for index, instruction in enumerate(instructions):
        if instruction.opname != "IMPORT_NAME":
            continue
        # IMPORT_NAME follows LOAD_CONST level and LOAD_CONST fromlist.
        level, names = instructions[index - 2].argval, instructions[index - 1].argval
        module = instruction.argval
        if level:
            base = package.rsplit(".", level - 1)[0] if level > 1 else package
            module = f"{base}.{module}" if module else base
        yield module
        # `from egress_resolver import runtime` names the package in the list.
        yield from (f"{module}.{name}" for name in names or ())
    for constant in code.co_consts:
        if isinstance(constant, CodeType):  # functions and classes: their imports too
            yield from _imports_in(constant, package)


def import_graph() -> dict[str, dict[str, set[str]]]:
    """package -> imported package -> the modules (paths) that import it."""
    graph: dict[str, dict[str, set[str]]] = {}
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        relative = path.relative_to(PACKAGE_ROOT)
        if len(relative.parts) < 2:  # __init__.py, __main__.py: above every package
            continue
        source = relative.parts[0]
        for module in _imported_modules(path):
            parts = module.split(".")
            if parts[0] != "egress_resolver" or len(parts) < 2 or parts[1] == source:
                continue
            if (PACKAGE_ROOT / parts[1]).is_dir():
                graph.setdefault(source, {}).setdefault(parts[1], set()).add(str(relative))
    return graph


def test_the_layer_list_names_every_package() -> None:
    packages = {p.name for p in PACKAGE_ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(LAYERS)


def test_the_graph_sees_the_imports_it_checks() -> None:
    # Guards the scan itself: serving is known to build on runtime.
    assert "runtime" in import_graph()["serving"]


def test_no_two_packages_import_each_other() -> None:
    graph = import_graph()
    cycles = [
        f"{a} <-> {b} ({sorted(graph[a][b])} / {sorted(graph[b][a])})"
        for a in graph
        for b in graph[a]
        if a < b and a in graph.get(b, {})
    ]
    assert cycles == []


def test_packages_import_only_the_layers_below() -> None:
    upward = [
        f"{source} -> {target} in {module}"
        for source, targets in import_graph().items()
        for target, modules in targets.items()
        if LAYERS.index(target) > LAYERS.index(source)
        for module in sorted(modules)
    ]
    assert upward == []


def test_settings_are_a_leaf() -> None:
    # The configuration reference (settings.py and the modules it reads values with)
    # reads the policy's duration syntax and nothing else of the server: every part
    # receives its settings from the composition root.
    seen, todo, outside = set(), ["egress_resolver.ops.settings"], set()
    while todo:
        module = todo.pop()
        seen.add(module)
        path = PACKAGE_ROOT.joinpath(*module.split(".")[1:]).with_suffix(".py")
        for imported in _imported_modules(path):
            if imported.startswith("egress_resolver.ops."):
                name = ".".join(imported.split(".")[:3])
                if (
                    name not in seen
                    and (PACKAGE_ROOT / "ops" / f"{name.split('.')[2]}.py").is_file()
                ):
                    todo.append(name)
            elif imported.startswith("egress_resolver."):
                outside.add(imported)
    assert outside
    assert all(m.startswith("egress_resolver.definitions.durations") for m in outside), outside
