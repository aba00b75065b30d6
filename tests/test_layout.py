"""The house's shape (design/layout.md, issue 13): the command line only wires, functions stay short,
each room imports downwards only."""

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CODE = sorted([REPO / "task1a.py", *REPO.glob("utils/*.py"), *REPO.glob("model_size_calculation/*.py"), *REPO.glob("bench/*.py")])


def test_the_command_line_only_parses_and_calls():
    assert len((REPO / "task1a.py").read_text().splitlines()) < 200


def test_no_function_is_over_80_lines():
    long = []
    for path in CODE:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 80:
                long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long, long


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_rooms_import_downwards_only():
    below_the_pipeline = [p for p in REPO.glob("utils/*.py") if p.stem not in ("pipeline", "__init__")]
    for path in below_the_pipeline:  # nothing below the pipeline knows about it (or the command line)
        assert not {name for name in imported_modules(path) if re.match(r"(utils\.pipeline|task1a)\b", name)}, path.name
    for path in REPO.glob("model_size_calculation/*.py"):  # the complexity tool stands alone
        assert not {name for name in imported_modules(path) if name.startswith("utils")}, path.name
    for name in ("audio", "features", "feature_store", "dataset"):  # never TensorFlow (worker processes, fast tools)
        assert not {m for m in imported_modules(REPO / "utils" / f"{name}.py") if m.split(".")[0] in ("tensorflow", "keras")}, name
    assert "utils.features" not in imported_modules(REPO / "utils" / "feature_store.py")  # the store runs any extractor
    for name in ("learning", "tflite"):  # metrics live in evaluation; export and learning call it, never the other way
        assert not {m for m in imported_modules(REPO / "utils" / "evaluation.py") if m.startswith(f"utils.{name}")}
