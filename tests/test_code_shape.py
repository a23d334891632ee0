"""The shape the code keeps: no function in the package runs over 60 lines (decorators excluded),
so each one can be read at once."""

from __future__ import annotations

import ast
from pathlib import Path

import robustkit

ROOT = Path(robustkit.__file__).parent
MAX_LINES = 60


def long_functions(root: Path, limit: int) -> list[str]:
    """``path:line name (n lines)`` for every function or method of ``root`` over ``limit`` lines."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > limit:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({length})")
    return found


def test_no_function_runs_over_sixty_lines() -> None:
    assert long_functions(ROOT, MAX_LINES) == []


def test_the_measure_sees_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (tmp_path / "long.py").write_text(f"def long():\n{body}\n", encoding="utf-8")
    (tmp_path / "short.py").write_text("def short():\n    return 1\n", encoding="utf-8")
    assert long_functions(tmp_path, MAX_LINES) == [f"long.py:1 long ({MAX_LINES + 1})"]
