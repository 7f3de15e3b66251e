"""The package's layering, enforced: imports go down, never up, never round in a cycle.

The import graph of src/dialnet is read from the source with ``ast`` (nothing
is imported), so a new module is checked the day it is added. The rules are
the README's Architecture section:

- every module belongs to one layer of ``LAYERS`` and imports only modules of
  its own layer or of a lower one;
- there is no import cycle, not even inside one layer;
- an import of a dialnet module inside a function is allowed only in ``cli/``
  (a command's module is loaded when the command runs, so ``--help`` stays
  fast); elsewhere such an import is a cycle being dodged;
- a command module in ``cli/`` imports no other command: what commands share
  lives in the library, or in a private ``cli/_*.py`` helper.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

SRC = pathlib.Path(__file__).resolve().parents[1] / "src"
PACKAGE = "dialnet"

# Bottom to top. A module's layer is the first entry whose name equals it or is a prefix of it.
LAYERS = [
    ("floor", ["dialnet.errors", "dialnet.backend", "dialnet._version"]),
    ("core", ["dialnet.core"]),
    ("data", ["dialnet.data"]),
    ("files", ["dialnet.files"]),
    ("distributed", ["dialnet.distributed"]),  # MPI: communicator, sharded reading, reduced statistics
    ("train", ["dialnet.train"]),
    ("diagnose", ["dialnet.diagnose"]),
    ("model", ["dialnet.model"]),
    ("workflow", ["dialnet.workflow"]),
    ("sklearn", ["dialnet.sklearn", "dialnet._sklearn"]),
    ("explore", ["dialnet.explore"]),  # the live browser explorer: server + static page
    ("package", ["dialnet"]),  # dialnet/__init__.py: re-exports the public names
    ("cli", ["dialnet.cli", "dialnet.__main__"]),
]


def module_names():
    names = {}
    for path in (SRC / PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


MODULES = module_names()


def layer_of(module: str) -> int:
    best, best_len = None, -1
    for rank, (_name, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".") or (
                prefix.endswith("_sklearn") and module.startswith(prefix))
            if matches and len(prefix) > best_len:
                best, best_len = rank, len(prefix)
    if best is None:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in tests/test_layering.py and the README")
    return best


def _resolve(module: str, node) -> list[str]:
    """The dialnet modules an import statement names (a package import counts as its __init__)."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            stem = ".".join(base + ([node.module] if node.module else []))
        else:
            stem = node.module or ""
        # "from . import x": x is a submodule, or a name the package (stem) defines
        targets = [f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in MODULES else stem for alias in node.names]
    out = []
    for target in targets:
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        if target and target.split(".")[0] == PACKAGE and target != module:
            out.append(target)
    return out


def imports():
    """(module, imported module, line, at top level?) for every import of a dialnet module."""
    found = []
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top = {id(n) for n in tree.body}
        for stmt in tree.body:  # imports under a top-level if/try still run at import time
            if isinstance(stmt, (ast.If, ast.Try)):
                top |= {id(n) for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for target in _resolve(module, node):
                    found.append((module, target, node.lineno, id(node) in top))
    return found


IMPORTS = imports()


def _where(module, line):
    return f"{MODULES[module].relative_to(SRC.parent)}:{line}"


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


def test_imports_only_go_down():
    upward = [
        f"{_where(m, line)}: {m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
        for m, t, line, _top in IMPORTS
        if layer_of(t) > layer_of(m) and not (m == PACKAGE and t.startswith(PACKAGE + "."))
    ]
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def _cycles(edges):
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, on_stack, stack, out, counter = {}, {}, set(), [], [], [0]
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
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
    return out


def test_no_import_cycle():
    edges = {m: set() for m in MODULES}
    for m, t, _line, _top in IMPORTS:
        # a module importing its own package's __init__ (from . import x) is not an edge of the graph
        if not (m.startswith(t + ".") and MODULES[t].name == "__init__.py"):
            edges[m].add(t)
    cycles = _cycles(edges)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_dialnet_modules_are_imported_at_the_top_outside_the_cli():
    hidden = [f"{_where(m, line)}: {m} imports {t} inside a function" for m, t, line, top in IMPORTS
              if not top and layer_of(m) != layer_of("dialnet.cli")]
    assert not hidden, "function-level imports of dialnet modules (move the code to the right layer):\n" + "\n".join(hidden)


def test_commands_do_not_import_each_other():
    def is_command(module):
        return module.startswith("dialnet.cli.") and not module.rpartition(".")[2].startswith("_")

    crossing = [f"{_where(m, line)}: command {m} imports command {t}" for m, t, line, _top in IMPORTS
                if is_command(m) and (is_command(t) or t == "dialnet.cli")]
    assert not crossing, "a command module imports another one (move the shared code):\n" + "\n".join(crossing)


@pytest.mark.parametrize("module", ["dialnet.core.network", "dialnet.files.modelfile", "dialnet.train.loop"])
def test_the_check_sees_real_imports(module):
    """The graph is not empty by mistake: modules known to import others are seen doing it."""
    assert any(m == module for m, _t, _line, _top in IMPORTS)


def test_the_check_catches_an_upward_import_and_a_cycle():
    assert layer_of("dialnet.train.loop") > layer_of("dialnet.core.network")
    assert layer_of("dialnet.cli.train") > layer_of("dialnet.workflow")
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
