"""The shape of the code, read from its imports (AST, nothing is run): imports among `core`'s
modules run one way (no circle, counting imports inside functions), only the training package
imports TensorFlow, no module takes a `_private` name from another, and every name taken from a
project module exists there (an import inside a function runs only when it is called, so a name
renamed away would otherwise break a bench or a page only on the day someone runs it).

Each rule is checked by a function over a map {module: imported modules} so that the tests can
also show the rule failing on a made-up map."""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from core.config import PROJECT_ROOT

TENSORFLOW = ("tensorflow", "keras")
TRAINING = "core.train"
# What may import the training package: the package itself and the command line's commands that
# train, export or check an export (inside the functions that run them).
MAY_IMPORT_TRAINING = ("core.train", "core.cli.train", "core.cli.evaluate")


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names taken from it) for every import in a file, inside functions too, with
    relative imports made absolute."""
    tree = ast.parse(path.read_text())
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names = [alias.name for alias in node.names]
            submodules = [name for name in names if _is_module(f"{module}.{name}")]
            # `from package import module` takes that module (the package is already there)
            found += [(module, [name for name in names if name not in submodules])] if len(submodules) < len(names) else []
            found += [(f"{module}.{name}", []) for name in submodules]
    return found


def _is_module(name: str) -> bool:
    path = PROJECT_ROOT / Path(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def core_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted((PROJECT_ROOT / "core").rglob("*.py"))}


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the project modules it imports. Importing `a.b.c` also runs the package
    `a.b`'s __init__, which counts as an import of it from outside that package."""
    graph = {}
    for name, path in modules.items():
        edges = set()
        for target, _ in imports_of(path):
            if target in modules:
                edges.add(target)
            parent = target.rpartition(".")[0]
            while parent and parent in modules and not name.startswith(parent + ".") and name != parent:
                edges.add(parent)
                parent = parent.rpartition(".")[0]
        edges.discard(name)
        graph[name] = edges
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

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
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def tensorflow_outside_training(imports: dict[str, list[str]]) -> list[str]:
    """'module -> imported' for every import of TensorFlow, Keras or the training package by a
    module that may not."""
    wrong = []
    for module, targets in imports.items():
        for target in targets:
            heavy = target.split(".")[0] in TENSORFLOW
            training = target == TRAINING or target.startswith(TRAINING + ".")
            allowed = module.startswith(TRAINING) or (training and module.startswith(MAY_IMPORT_TRAINING))
            if (heavy or training) and not allowed:
                wrong.append(f"{module} -> {target}")
    return wrong


def private_names_taken(files: list[Path]) -> list[str]:
    """'file: from module import _name' for every private name a file takes from another module."""
    wrong = []
    for path in files:
        for module, names in imports_of(path):
            wrong += [f"{path.relative_to(PROJECT_ROOT)}: from {module} import {name}" for name in names
                      if name.startswith("_") and not name.startswith("__")]
    return wrong


PROJECT_PACKAGES = ("core", "dashboard", "testkit")


def defined_names(path: Path) -> set[str]:
    """Names a module binds at its top level (definitions, assignments, imports, and what its
    `__all__` promises), looking into top-level `if`, `try` and `with` blocks."""
    names: set[str] = set()
    statements = list(ast.parse(path.read_text()).body)
    while statements:
        node = statements.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):  # served lazily by __getattr__
                names.update(n.value for n in ast.walk(node.value) if isinstance(n, ast.Constant))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.If, ast.Try, ast.With)):
            statements += [*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", []),
                           *(part for handler in getattr(node, "handlers", []) for part in handler.body)]
    return names


def missing_names(files: list[Path]) -> list[str]:
    """'file: from module import name' for every name taken from a project module that does not
    bind it (and is not one of its submodules)."""
    wrong = []
    for path in files:
        for module, names in imports_of(path):
            if module.split(".")[0] not in PROJECT_PACKAGES or not _is_module(module) or "*" in names:
                continue
            target = PROJECT_ROOT / Path(*module.split("."))
            source = target / "__init__.py" if target.is_dir() else target.with_suffix(".py")
            wrong += [f"{path.relative_to(PROJECT_ROOT)}: from {module} import {name}"
                      for name in sorted(set(names) - defined_names(source))]
    return wrong


def test_core_imports_run_one_way():
    assert circles(import_graph(core_modules())) == []


def test_the_circle_check_finds_a_circle_closed_inside_a_function():
    graph = {"core.a": {"core.b"}, "core.b": {"core.c"}, "core.c": {"core.a"}, "core.d": {"core.a"}}
    assert circles(graph) == [["core.a", "core.b", "core.c"]]


def test_an_import_inside_a_function_is_read(tmp_path, monkeypatch):
    source = tmp_path / "core" / "late.py"
    source.parent.mkdir()
    source.write_text("def f():\n    from .early import thing\n    import tensorflow\n")
    monkeypatch.setattr(sys.modules[__name__], "PROJECT_ROOT", tmp_path)
    assert imports_of(source) == [("core.early", ["thing"]), ("tensorflow", [])]


def test_only_the_training_package_imports_tensorflow():
    imports = {name: [target for target, _ in imports_of(path)] for name, path in core_modules().items()}
    assert any(module.startswith(TRAINING) for module, targets in imports.items() if "keras" in targets)  # really read
    assert tensorflow_outside_training(imports) == []


@pytest.mark.parametrize("module, target", [("core.inference.predictor", "core.train.model"),
                                            ("core.analysis.pipeline", "tensorflow"),
                                            ("core.cli.predict", "keras")])
def test_the_tensorflow_check_catches_an_import_outside_training(module, target):
    assert tensorflow_outside_training({module: [target]}) == [f"{module} -> {target}"]


def test_no_module_takes_a_private_name_from_another():
    files = [path for folder in ("core", "dashboard", "bench", "tools", "tests")
             for path in sorted((PROJECT_ROOT / folder).rglob("*.py")) if "node_modules" not in path.parts]
    assert private_names_taken(files) == []


def test_the_private_name_check_catches_one(tmp_path, monkeypatch):
    source = tmp_path / "bench" / "x.py"
    source.parent.mkdir()
    source.write_text("from core.detect.face import _helper, public\n")
    monkeypatch.setattr(sys.modules[__name__], "PROJECT_ROOT", tmp_path)
    assert private_names_taken([source]) == ["bench/x.py: from core.detect.face import _helper"]


def test_every_name_taken_from_a_project_module_exists():
    files = [path for folder in ("core", "dashboard", "testkit", "bench", "tools", "tests")
             for path in sorted((PROJECT_ROOT / folder).rglob("*.py")) if "node_modules" not in path.parts]
    assert missing_names(files) == []


def test_the_missing_name_check_catches_one_inside_a_function(tmp_path, monkeypatch):
    (tmp_path / "testkit").mkdir()
    (tmp_path / "testkit" / "__init__.py").write_text("")
    (tmp_path / "testkit" / "clips.py").write_text("from .faces import background\nWIDTH = 640\n\ndef render():\n    pass\n")
    (tmp_path / "bench").mkdir()
    source = tmp_path / "bench" / "video.py"
    source.write_text("from testkit.clips import WIDTH, render, background\n\ndef share():\n"
                      "    from testkit.clips import backdrop\n")
    monkeypatch.setattr(sys.modules[__name__], "PROJECT_ROOT", tmp_path)
    assert missing_names([source]) == ["bench/video.py: from testkit.clips import backdrop"]
