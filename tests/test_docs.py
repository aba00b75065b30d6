"""The README and docs/ show only what exists: every command's options, every console script, every
parameter key; the README stays short and inside the repository; the parameter reference is current.

Reads every Markdown file (README.md, docs/**/*.md, whoever wrote it): code blocks and inline code.
"""

import contextlib
import importlib.util
import io
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml

from utils.cli import other_spelling

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
DEFAULTS = yaml.safe_load((REPO / "task1a.yaml").read_text())["defaults"]
SECTIONS = tuple(DEFAULTS)
SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
# Keys below these are handed to Keras / the model builder as they are (any class, any argument).
FREE_FORM = {"optimizer", "loss", "callbacks", "constants", "model", "config"}
FILE_SUFFIXES = {"py", "md", "yaml", "yml", "csv", "json", "txt", "zip", "tflite", "keras", "npy", "npz", "log", "h5", "png", "wav", "bin", "jsonl"}
# Dotted names that look like parameter keys but are not (record fields the docs describe).
NOT_PARAMETERS = {"dataset.name", "dataset.synthetic", "dataset.path"}


def relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def code_of(text: str) -> tuple[list[tuple[str, str]], list[str]]:
    """(language, body) of each fenced block, and the inline code spans outside them."""
    blocks = [(m["lang"], m["body"]) for m in re.finditer(r"^\s*```(?P<lang>[\w-]*)\n(?P<body>.*?)^\s*```", text, re.M | re.S)]
    prose = re.sub(r"^\s*```.*?^\s*```", "", text, flags=re.M | re.S)
    inline = re.findall(r"``?([^`\n]+)``?", prose)
    return blocks, inline


def commands_in(line: str) -> list[list[str]]:
    """The commands of a shell line (split at &&, ;, |), each as tokens, comments dropped."""
    try:
        tokens = shlex.split(line.replace("\\|", "|"), comments=True)
    except ValueError:
        return []
    commands, current = [], []
    for token in tokens:
        if token in ("&&", ";", "|", "||", ">", "<", "2>"):
            commands.append(current)
            current = []
        else:
            current.append(token.rstrip(";"))
    return [c for c in commands + [current] if c]


def options_of_help(main) -> set[str]:
    """The option strings a tool's ``--help`` lists."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["--help"])
    return set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", out.getvalue()))


def tool_options():
    import importlib

    import task1a

    parser = task1a.build_argument_parser()
    tools = {"task1a": {s for action in parser._actions for s in action.option_strings}}
    for script, target in SCRIPTS.items():
        module, _, function = target.partition(":")
        if script != "task1a":
            tools[script] = options_of_help(getattr(importlib.import_module(module), function))
    return tools


MODULE_SCRIPTS = {target.partition(":")[0]: script for script, target in SCRIPTS.items()}
PATH_SCRIPTS = {"task1a.py": "task1a", "model_size_calculation/nessi.py": "task1a-nessi"}


def which_tool(command: list[str]) -> tuple[str | None, list[str]]:
    """(the tool a command runs, its arguments), or (None, []) for other programs."""
    if command[0] == "python" and len(command) > 2 and command[1] == "-m" and command[2].startswith(("utils.", "model_size_calculation.")):
        return MODULE_SCRIPTS.get(command[2], f"python -m {command[2]}"), command[3:]
    if command[0] == "python" and len(command) > 1 and command[1] in PATH_SCRIPTS:
        return PATH_SCRIPTS[command[1]], command[2:]
    if command[0] == "task1a" or command[0].startswith("task1a-"):
        return command[0], command[1:]
    return None, []


def shown_commands():
    for document in DOCUMENTS:
        blocks, inline = code_of(document.read_text())
        lines = [line for lang, body in blocks if lang in ("", "bash", "sh", "shell", "console") for line in body.splitlines()]
        for line in lines + inline:
            for command in commands_in(line.strip().removeprefix("$ ")):
                tool, arguments = which_tool(command)
                if tool is not None:
                    yield document, line.strip(), tool, arguments


def test_every_command_shown_exists_with_its_options():
    tools = tool_options()
    problems, seen = [], 0
    for document, line, tool, arguments in shown_commands():
        seen += 1
        if tool.startswith("python -m "):  # a module without an installed command: it must exist
            module = tool.removeprefix("python -m ")
            if "<" not in module and importlib.util.find_spec(module) is None:
                problems.append(f"{relative(document)}: `{line}`: no module {module}")
            continue
        if tool not in tools:
            problems.append(f"{relative(document)}: `{line}`: {tool} is not a command of this project ({', '.join(sorted(tools))})")
            continue
        for argument in arguments:
            flag = argument.strip("[]()").split("=", 1)[0]
            if re.fullmatch(r"--?[A-Za-z][\w-]*", flag) and flag not in tools[tool] and other_spelling(flag) not in tools[tool]:
                problems.append(f"{relative(document)}: `{line}`: {flag} is not an option of {tool}")
    assert seen > 20  # the README and docs do show commands
    assert problems == [], "\n".join(problems)


def key_problem(key: str) -> str | None:
    """Why a dotted key is not a parameter of task1a.yaml (None when it is)."""
    parts = key.split(".")
    if len(parts) > 2 and parts[1] == "parameters":  # a resolved section: learner.parameters.fit -> learner_method_parameters.cnn.fit
        parts = [f"{parts[0]}_method_parameters", DEFAULTS[parts[0]]["method"], *parts[2:]]
    node = DEFAULTS
    for depth, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            return f"{key}: no key {part!r} at {'.'.join(parts[:depth]) or 'the top'} of task1a.yaml's defaults"
        if part in FREE_FORM:
            return None
        node = node[part]
    return None


def shown_keys():
    pattern = re.compile(r"(?<![\w/.$-])(?:%s)(?:\.[A-Za-z_]\w*)+" % "|".join(map(re.escape, SECTIONS)))
    for document in DOCUMENTS:
        blocks, inline = code_of(document.read_text())
        for code in [body for lang, body in blocks if lang != "yaml"] + inline:
            for match in pattern.finditer(code):
                key = match.group(0)
                if key.rsplit(".", 1)[-1] not in FILE_SUFFIXES and key not in NOT_PARAMETERS:
                    yield document, key
        for lang, body in blocks:
            if lang == "yaml":
                yield from ((document, key) for key in yaml_keys(body))


def yaml_keys(body: str) -> list[str]:
    """The parameter key paths a YAML block sets, when it is a parameter file (a -p file or a part of one)."""
    try:
        tree = yaml.safe_load(body)
    except yaml.YAMLError:
        return []
    if not isinstance(tree, dict):
        return []
    layers = []
    if "defaults" in tree or "sets" in tree:
        layers.append(tree.get("defaults") or {})
        layers += [{k: v for k, v in entry.items() if k not in ("set_id", "description")} for entry in tree.get("sets") or [] if isinstance(entry, dict)]
    elif set(tree) <= set(SECTIONS):
        layers.append(tree)

    def leaves(node, prefix):
        for key, value in node.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict) and value and key not in FREE_FORM:
                yield from leaves(value, path + ".")
            else:
                yield path

    return [key for layer in layers if isinstance(layer, dict) for key in leaves(layer, "")]


def test_every_parameter_key_shown_exists():
    problems, seen = [], 0
    for document, key in shown_keys():
        seen += 1
        problem = key_problem(key)
        if problem:
            problems.append(f"{relative(document)}: {problem}")
    assert seen > 30
    assert problems == [], "\n".join(problems)


def test_the_checks_catch_what_does_not_exist():
    assert key_problem("learner_method_parameters.cnn.fit.epohcs") is not None
    assert key_problem("learner.parameters.fit.epochs") is None
    assert key_problem("learner_method_parameters.cnn.optimizer.config.momentum") is None
    assert yaml_keys("learner_method_parameters: {cnn: {fit: {epohcs: 3}}}") == ["learner_method_parameters.cnn.fit.epohcs"]
    assert which_tool(["python", "task1a.py", "--show_sets"]) == ("task1a", ["--show_sets"])
    assert which_tool(["python", "-m", "utils.dataset", "x"]) == ("task1a-dataset", ["x"])
    assert commands_in("python task1a.py -s demo && python -m pytest -q  # comment") == [["python", "task1a.py", "-s", "demo"],
                                                                                         ["python", "-m", "pytest", "-q"]]


def test_the_readme_is_short_and_stays_inside_the_repository():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert "../shared" not in text and "/work/" not in text
    assert "DCASE2022-2025" in text.splitlines()[0]
    for target in re.findall(r"\]\((docs/[^)#]+)", text):
        assert target.startswith("docs/")  # linked documents live in the repository
    assert "docs/README.md" in text


def test_the_readme_commands_are_the_agreed_ones():
    text = (REPO / "README.md").read_text()
    assert 'python3 -m venv .venv && . .venv/bin/activate && pip install -q -c constraints.txt -e ".[test]" && python -m pytest -q -m "not slow" tests' in text
    assert "python task1a.py -s demo -o" in text
    ci = (REPO / ".ci" / "run").read_text()
    assert 'python3 -m venv .venv && . .venv/bin/activate && pip install -q -c constraints.txt -e ".[test]" && python -m pytest -q -m "not slow" tests' in ci


def test_the_parameter_reference_is_current():
    from utils.parameter_reference import render

    assert (REPO / "docs" / "parameters.md").read_text() == render(REPO / "task1a.yaml"), \
        "docs/parameters.md is stale: python -m utils.parameter_reference > docs/parameters.md"


def test_the_parameter_reference_lists_every_key_with_its_rule():
    from utils.parameters import RULES

    text = (REPO / "docs" / "parameters.md").read_text()
    for key, rule in RULES.items():
        assert f"| `{key}` |" in text and rule.describe() in text
    for entry in yaml.safe_load((REPO / "task1a.yaml").read_text())["sets"]:
        assert f"| `{entry['set_id']}` |" in text
