"""The package's layers import one way, and no module imports itself back through others.

Every ``import`` / ``from ... import`` in ``pyconvex/`` counts, including the ones under
``if TYPE_CHECKING:`` and inside functions: a lazy import is still a dependency. Each module
belongs to the most specific layer listed in ``LAYERS``; a layer may import only the layers
named in its rule (and itself).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pyconvex"

# layer -> the layers it may import (besides itself). Most specific prefix wins.
BASE = {"pyconvex.errors", "pyconvex.values"}
LAYERS: dict[str, set[str]] = {
    "pyconvex.errors": set(),
    "pyconvex.values": {"pyconvex.errors"},
    "pyconvex.server": BASE,
    # The package's front door re-exports the author API.
    "pyconvex": BASE | {"pyconvex.server"},
    "pyconvex.protocol": BASE,
    # The project on disk: settings, and where its data directory keeps the admin key and the
    # running deployment's address (read by the runtime, the client and the dev loop).
    "pyconvex.project": {"pyconvex.errors"},
    # A failure as a person reads it (what, where, hint, exit code), for the CLI and dev loop.
    "pyconvex.failures": {"pyconvex.errors"},
    "pyconvex.runtime.auth": BASE | {"pyconvex.project"},
    # The store keeps its files in the data directory, private to its user (project.py says how).
    "pyconvex.runtime.store": BASE | {"pyconvex.server", "pyconvex.project"},
    "pyconvex.runtime.query": BASE | {"pyconvex.server", "pyconvex.runtime.store"},
    "pyconvex.runtime.functions": BASE
    | {
        "pyconvex.server",
        # The log history hands out the admin log stream's entries (protocol.LogEntry).
        "pyconvex.protocol",
        "pyconvex.runtime.store",
        "pyconvex.runtime.query",
        "pyconvex.runtime.auth",
    },
    # Export, import and SQL over a deployment (served by net, or opened by the CLI alone).
    "pyconvex.runtime.data": BASE
    | {
        "pyconvex.server",
        "pyconvex.runtime.store",
        "pyconvex.runtime.query",
        "pyconvex.runtime.functions",
    },
    "pyconvex.runtime.net": BASE
    | {
        "pyconvex.server",
        "pyconvex.protocol",
        "pyconvex.runtime.store",
        "pyconvex.runtime.query",
        "pyconvex.runtime.functions",
        "pyconvex.runtime.data",
        "pyconvex.runtime.auth",
    },
    "pyconvex.client": BASE | {"pyconvex.server", "pyconvex.protocol", "pyconvex.project"},
    "pyconvex.codegen": BASE | {"pyconvex.server", "pyconvex.runtime.functions"},
    "pyconvex.testing": BASE | {"pyconvex", "pyconvex.server", "pyconvex.runtime"},
    "pyconvex.scaffold": BASE | {"pyconvex", "pyconvex.codegen"},
    "pyconvex.dev": BASE
    | {
        "pyconvex",
        "pyconvex.server",
        "pyconvex.runtime",
        "pyconvex.codegen",
        "pyconvex.project",
        "pyconvex.failures",
        # The dev console prints the log history's entries (protocol.LogEntry).
        "pyconvex.protocol",
    },
    # The command line sits on top of everything (``python -m pyconvex`` is its door).
    "pyconvex.cli": set(),
    "pyconvex.__main__": {"pyconvex.cli"},
}
LAYERS["pyconvex.cli"] = {layer for layer in LAYERS if layer != "pyconvex.cli"}

# Deliberate exceptions, each with its reason.
EXCEPTIONS = {
    # ``pyconvex.env`` reads the running deployment; the front door imports it lazily (module
    # __getattr__), so ``import pyconvex`` still loads no runtime.
    ("pyconvex", "pyconvex.runtime.functions.env_vars"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imports(path: Path) -> set[str]:
    """Every pyconvex module ``path`` imports (``from a import b`` counts ``a.b`` when ``a.b``
    is a module, else ``a``)."""
    name = _module_name(path)
    package = name if _is_package(path) else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("pyconvex"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if not base.startswith("pyconvex"):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in MODULES else base)
    out.discard(name)
    return out


MODULES = {
    _module_name(p): p
    for p in PACKAGE.rglob("*.py")
    if "_generated" not in p.parts and "templates" not in p.parts
}


def _layer(module: str) -> str:
    best = ""
    for layer in LAYERS:
        if (module == layer or module.startswith(layer + ".")) and len(layer) > len(best):
            best = layer
    assert best, f"{module} belongs to no layer: add it to LAYERS in {__file__}"
    return best


def _allowed(source_layer: str, target: str) -> bool:
    target_layer = _layer(target)
    if target_layer == source_layer:
        return True
    allowed = LAYERS[source_layer]
    # "pyconvex" allows the front door module only; any other name allows its sub-layers.
    return any(
        target_layer == a or (a != "pyconvex" and target_layer.startswith(a + "."))
        for a in allowed
    )


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_imports_only_lower_layers(module: str) -> None:
    layer = _layer(module)
    bad = sorted(
        t for t in GRAPH[module] if not _allowed(layer, t) and (module, t) not in EXCEPTIONS
    )
    assert not bad, (
        f"{module} (layer {layer}) imports {bad}; {layer} may import only "
        f"{sorted(LAYERS[layer])}. Move the shared piece down, or pass it in."
    )


def test_runtime_layers_import_one_way() -> None:
    order = ["store", "query", "functions", "net"]
    for module, targets in GRAPH.items():
        if not module.startswith("pyconvex.runtime."):
            continue
        mine = module.split(".")[2]
        if mine not in order:
            continue
        for target in targets:
            if target.startswith("pyconvex.runtime."):
                theirs = target.split(".")[2]
                if theirs in order:
                    assert order.index(theirs) <= order.index(mine), (
                        f"{module} ({mine}) imports {target} ({theirs}): runtime layers import "
                        f"one way, {' <- '.join(order)}"
                    )


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    # A package's __init__ re-exporting its own modules is not a cycle worth flagging: the
    # edges from a module up to its own package's __init__ are left out.
    graph = {
        m: {t for t in targets if not (m.startswith(t + ".") and t in MODULES)}
        for m, targets in GRAPH.items()
    }
    assert _cycles(graph) == []


def test_cycle_finder_finds_a_type_checking_cycle(tmp_path: Path) -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_every_runtime_layer_says_what_it_owns() -> None:
    for init in sorted((PACKAGE / "runtime").glob("*/__init__.py")):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc and "import" in doc, f"{init} needs a docstring: what it owns, what it imports"
