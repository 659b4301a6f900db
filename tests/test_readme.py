"""The README's Python snippets run, in order, and print what they say.

Each ```python block runs in one namespace after the ones before it. An
expression whose comment starts with a Python literal (``# 500``,
``# {'n_factors': 3}``, ``# True: ...``, ``# array([ 1, -1, -1])``) must
evaluate to that value.
"""

import ast
import pathlib
import re

import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def _blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def _claimed_value(comment):
    """The literal a comment starts with, or None (a comment in words)."""
    comment = comment.strip()
    if comment.startswith("array("):
        end = comment.index(")") + 1
        return np.array(ast.literal_eval(comment[len("array(") : end - 1]))
    for end in range(len(comment), 0, -1):
        try:
            return ast.literal_eval(comment[:end].rstrip(":").strip())
        except (ValueError, SyntaxError):
            continue
    return None


def test_readme_has_snippets():
    assert len(_blocks()) >= 7


def test_readme_snippets_run_and_print_what_they_say():
    pytest.importorskip("dask.array")
    namespace = {}
    checked = 0
    for i, block in enumerate(_blocks()):
        lines = block.splitlines()
        for node in ast.parse(block).body:
            if not isinstance(node, ast.Expr):
                exec(
                    compile(ast.Module([node], []), f"README block {i}", "exec"),
                    namespace,
                )
                continue
            expression = ast.Expression(node.value)
            value = eval(compile(expression, f"README block {i}", "eval"), namespace)
            comment = lines[node.end_lineno - 1].partition("#")[2]
            claimed = _claimed_value(comment) if comment else None
            if claimed is None or isinstance(claimed, str):
                continue
            if isinstance(claimed, np.ndarray):
                np.testing.assert_array_equal(value, claimed)
            else:
                assert value == claimed, (i, ast.unparse(node), value, claimed)
            checked += 1
    assert checked >= 5
