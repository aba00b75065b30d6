"""The parameter reference (docs/parameters.md), generated from task1a.yaml and the registry.

Every leaf key of ``defaults`` with its default value, what :data:`utils.parameters.RULES` allows
(or "Keras config" for the pass-through keys) and the comment beside it in ``task1a.yaml``; then the
parameter sets. ``python -m utils.parameter_reference > docs/parameters.md`` regenerates the file;
``tests/test_docs.py`` checks that it is current.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

from utils.parameters import DEFAULT_PARAMETER_FILE, FREE_FORM, PASS_THROUGH_KEYS, RULES, UNHASHED, load_yaml

_KEY_LINE = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z_][\w]*):(?P<value>[^#]*?)(\s+#\s?(?P<comment>.*))?$")


def yaml_comments(text: str, section: str = "defaults") -> dict[str, str]:
    """The comment beside each key of ``section`` (dotted path -> comment); keys inside a flow
    mapping (``{alpha: 0.0}``) share their line's comment. Lines of lists (``- ...``) are skipped."""
    comments: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    inside = False
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _KEY_LINE.match(line)
        if match is None:
            continue
        indent = len(match["indent"])
        if indent == 0:
            inside = match["key"] == section
            stack = []
            continue
        if not inside:
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        path = ".".join(key for _, key in stack)
        if match["comment"]:
            comments[path] = match["comment"].strip()
    return comments


def _leaves(tree: Any, prefix: str = ""):
    """(dotted key, value) of every leaf; a pass-through key or free-form value is one leaf."""
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and key not in PASS_THROUGH_KEYS and path not in FREE_FORM:
            yield from _leaves(value, path + ".")
        else:
            yield path, value


def _shown(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=10000).strip()
    text = text.removesuffix("\n...").removesuffix(" ...").strip()
    if len(text) <= 80:
        return text
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: ..." for key in value) + "} (see task1a.yaml)"
    return f"[{len(value)} items] (see task1a.yaml)"


def _allowed(path: str) -> str:
    if path in FREE_FORM or path.rsplit(".", 1)[-1] in PASS_THROUGH_KEYS:
        return "Keras config / free form (checked by Keras before any work)"
    rule = RULES.get(path)
    return rule.describe() if rule is not None else "the default's type"


def _comment_of(path: str, comments: dict[str, str]) -> str:
    while path:
        if path in comments:
            return comments[path]
        if "." not in path:
            return ""
        path = path.rsplit(".", 1)[0]
        if path.count(".") < 1:  # a section's own comment is not its keys'
            return ""
    return ""


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(parameter_file: str | Path = DEFAULT_PARAMETER_FILE) -> str:
    """docs/parameters.md's text."""
    text = Path(parameter_file).read_text(encoding="utf-8")
    data = load_yaml(parameter_file)
    comments = yaml_comments(text)
    lines = [
        "# Parameter reference",
        "",
        "Generated from `task1a.yaml` and the registry of values (`RULES` in `utils/parameters.py`) by",
        "`python -m utils.parameter_reference > docs/parameters.md`; `tests/test_docs.py` checks that it is current.",
        "Change a value in a `-p my.yaml` file of the same structure, or once with `--set KEY=VALUE`",
        "(the key as written below without `defaults.`). A key not listed here is an error. How values are",
        "merged, which win and which name the output folders: [usage.md](usage.md#parameters).",
        "",
    ]
    by_section: dict[str, list[tuple[str, Any]]] = {}
    for path, value in _leaves(data["defaults"]):
        by_section.setdefault(path.split(".", 1)[0], []).append((path, value))
    for section, leaves in by_section.items():
        section_comment = comments.get(section, "")
        lines += [f"## `{section}`", ""] + ([section_comment, ""] if section_comment else [])
        lines += ["| key | default | allowed | what it does |", "|---|---|---|---|"]
        for path, value in leaves:
            note = _comment_of(path, comments)
            if path in UNHASHED:
                note = (note + "; " if note else "") + "not part of any output folder's hash"
            lines.append(f"| `{path}` | `{_cell(_shown(value))}` | {_cell(_allowed(path))} | {_cell(note)} |")
        lines.append("")
    lines += ["## Parameter sets (`-s`)", "", f"The active set (used without `-s`): `{data['active_set']}`.", "",
              "| set | what it is |", "|---|---|"]
    lines += [f"| `{entry['set_id']}` | {_cell(entry.get('description', ''))} |" for entry in data["sets"]]
    return "\n".join(lines) + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
