"""The house's shape (docs/architecture.md): the command line only wires, functions stay short, each room
imports downwards only, the parameters stop at the stages, the output layout and its records live in the
workspace, and no two modules import each other."""

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CODE = sorted([REPO / "task1a.py", *REPO.glob("utils/**/*.py"), *REPO.glob("model_size_calculation/*.py"), *REPO.glob("bench/*.py")])
# The rooms above the library: the command line's pipeline, the parameter container and registry, the stages
# (and the DCASE2025 device models, a stage of their own). Every other module of utils/ is library code.
ABOVE_THE_LIBRARY = {"__init__", "pipeline", "parameters", "device_models"}
LIBRARY = sorted(p for p in REPO.glob("utils/*.py") if p.stem not in ABOVE_THE_LIBRARY)


def test_the_command_line_only_parses_and_calls():
    assert len((REPO / "task1a.py").read_text().splitlines()) < 200


def test_the_package_docstring_names_every_module():
    """utils/__init__.py is the newcomer's map: every module and package of utils/ has its line there."""
    import utils

    names = [p.stem for p in REPO.glob("utils/*.py") if p.stem != "__init__"] + [p.parent.name + "/" for p in REPO.glob("utils/*/__init__.py")]
    missing = [name for name in names if f"``{name}``" not in utils.__doc__]
    assert not missing, f"utils/__init__.py does not name {missing}"


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
    below_the_pipeline = [p for p in REPO.glob("utils/**/*.py") if p.stem not in ("pipeline", "__init__")]
    for path in below_the_pipeline:  # nothing below the pipeline knows about it (or the command line)
        assert not {name for name in imported_modules(path) if re.match(r"(utils\.pipeline|task1a)\b", name)}, path.name
    for path in REPO.glob("model_size_calculation/*.py"):  # the complexity tool stands alone
        assert not {name for name in imported_modules(path) if name.startswith("utils")}, path.name
    for name in ("audio", "features", "feature_store", "dataset"):  # never TensorFlow (worker processes, fast tools)
        assert not {m for m in imported_modules(REPO / "utils" / f"{name}.py") if m.split(".")[0] in ("tensorflow", "keras")}, name
    assert "utils.features" not in imported_modules(REPO / "utils" / "feature_store.py")  # the store runs any extractor
    for name in ("learning", "tflite"):  # metrics live in evaluation; export and learning call it, never the other way
        assert not {m for m in imported_modules(REPO / "utils" / "evaluation.py") if m.startswith(f"utils.{name}")}



def string_constants(path: Path) -> list[str]:
    """The string literals of a module's code (f-strings' literal parts included), docstrings left out."""
    tree = ast.parse(path.read_text())
    prose = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)}
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose]


def test_no_library_module_imports_the_parameter_container_or_the_stages():
    """The parameters dict stops at the stages: library code is handed values, never resolves sets itself."""
    for path in LIBRARY:
        names = imported_modules(path)
        assert not {n for n in names if n in ("utils.parameters.ParameterContainer", "utils.parameters.apply_overrides")}, path.name
        assert not {n for n in names if re.match(r"utils\.(stages|pipeline)\b", n)}, path.name
    for path in REPO.glob("utils/stages/*.py"):  # the stages are handed resolved parameters; the pipeline resolves them
        assert "utils.parameters.ParameterContainer" not in imported_modules(path), path.name


# The learning side of the library: handed typed settings (utils/settings.py), never a parameter section.
LEARNING_SIDE = ("learning", "augmentation", "distillation", "callbacks", "distribute", "tracking")
SECTION_LOOKUP = re.compile(r"""(\[|\.get\()\s*["'](fit|compile|model_selection|augmentation|distillation|conversion|optimizer|model|learner|general"""
                            r"""|dataset|parameters|initial_weights|trainable_layers)["']""")


def test_the_learning_side_takes_typed_settings_not_parameter_sections():
    """The parameters dict stops at the stages: no learning module looks a parameter section or the learner block up by
    key, nor imports the registry (it re-checks nothing: the registry and utils.settings checked once)."""
    for name in LEARNING_SIDE:
        path = REPO / "utils" / f"{name}.py"
        lookups = [f"{path.name}:{number} {line.strip()}" for number, line in enumerate(path.read_text().splitlines(), 1) if SECTION_LOOKUP.search(line)]
        assert not lookups, lookups
        assert not {n for n in imported_modules(path) if re.match(r"utils\.parameters\b", n)}, path.name
    assert SECTION_LOOKUP.search('learner["fit"]["epochs"]') and SECTION_LOOKUP.search("block.get('distillation')")  # the check can fail


# The sections of a resolved parameter set (task1a.yaml's ``defaults``). The stages index them and hand the library typed
# settings (utils/settings.py); settings.py builds those from a set and parameter_reference.py documents the file.
PARAMETER_SECTIONS = ("general", "path", "dataset", "feature_extractor", "data_processing", "learner", "recognizer", "evaluator",
                      "device_models", "model_size", "submission", "flow")
READS_A_PARAMETER_SET = {"settings", "parameter_reference"}
# Documents of their own whose keys share a section's name, by module and the expression indexed there (nothing else is let by):
OTHER_DOCUMENTS = {
    ("download", "result"): "a download's outcome {path, ...}",
    ("reporting", "run"): "the run record (utils.workspace.RunRecord: its dataset field), rendered into report.md",
    ("reporting", "setup"): "a row of --show_results (set_id, dataset, accuracy, ...)",
    ("submission", "template"): "the DCASE meta template's submission block",
    ("submission", "meta"): "the DCASE meta's submission block",
    ("submission", "block"): "the meta's system.complexity block (DCASE2025: its device_models)",
}


def test_no_library_module_indexes_a_parameter_section():
    """The regex ``\\["(general|path|...|flow)"\\]`` in code (either quote; docstrings are prose) finds nothing in the library:
    it is handed typed settings, never a set to look values up in."""
    found = []
    for path in LIBRARY:
        if path.stem in READS_A_PARAMETER_SET:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and node.slice.value in PARAMETER_SECTIONS:
                indexed = (path.stem, ast.unparse(node.value))
                if indexed not in OTHER_DOCUMENTS:
                    found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    assert not found, found


def test_the_output_layout_and_its_records_are_spelled_in_the_workspace_only():
    """``<system>/<stage>/<hash>/seed_N`` and the record file names: one module (utils/workspace.py) knows them."""
    spelled = {}
    for path in REPO.glob("utils/**/*.py"):
        found = [text for text in string_constants(path)
                 if re.search(r"seeds?_|(learning|results|run|parameters)\.yaml", text)]
        if found:
            spelled[str(path.relative_to(REPO))] = found
    assert set(spelled) == {"utils/workspace.py"}, spelled


def test_no_record_is_read_outside_the_workspace():
    """yaml.safe_load reads parameter files (parameters), the dataset manifest (download), stage energy (energy),
    meta templates and packages (submission); the run's records only through utils/workspace.py."""
    readers = set()
    for path in REPO.glob("utils/**/*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "safe_load":
                readers.add(path.stem)
    assert readers <= {"workspace", "parameters", "download", "energy", "submission"}, readers
    assert "workspace" in readers


def module_imports() -> dict[str, set[str]]:
    """``module -> the modules of utils/ it imports`` (at the top or inside a function: a cycle either way)."""
    def name(path: Path) -> str:
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)

    modules = {name(path): path for path in REPO.glob("utils/**/*.py")}
    return {module: {other for other in imported_modules(path) if other in modules and other != module} for module, path in modules.items()}


def test_no_import_cycles():
    graph = module_imports()
    cycles = []

    def visit(module: str, trail: list[str]) -> None:
        for other in graph[module]:
            if other in trail:
                cycles.append(trail[trail.index(other):] + [other])
            elif other not in done:
                visit(other, trail + [other])
        done.add(module)

    done: set[str] = set()
    for module in sorted(graph):
        if module not in done:
            visit(module, [module])
    assert not cycles, cycles[:3]
