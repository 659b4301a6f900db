"""Package layout: no import circles; private scikit-learn in one module."""

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "sklearn_mvn"


def _imports():
    graph = {}
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                targets.add(node.module)
        graph[path.stem] = targets
    return graph


def test_no_import_circles():
    graph = _imports()

    def reaches(start, goal, seen=()):
        return any(
            nxt == goal or (nxt not in seen and reaches(nxt, goal, (*seen, nxt)))
            for nxt in graph.get(start, ())
        )

    circles = [module for module in graph if reaches(module, module)]
    assert circles == []


def test_private_sklearn_imports_in_one_module():
    users = set()
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                parts = node.module.split(".")
                private_module = parts[0] == "sklearn" and any(
                    p.startswith("_") for p in parts[1:]
                )
                private_name = parts[0] == "sklearn" and any(
                    a.name.startswith("_") for a in node.names
                )
                if private_module or private_name:
                    users.add(path.stem)
    assert users == {"_validation"}
