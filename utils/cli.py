"""The command lines' shared conventions: both flag spellings, and the command's name as typed.

- :class:`ArgumentParser`: argparse that accepts every long flag in both spellings (``--check_audio``
  and ``--check-audio``, ``--no_progress`` and ``--no-progress``), whichever one the tool declares;
  ``--help`` shows the declared one.
- :func:`prog`: a tool's name as the user called it: the installed command (``task1a-dataset``) or
  ``python -m utils.dataset`` from a clone; :func:`typed_command` the same for the main application
  (``task1a`` or ``python task1a.py``), used by the hints in error messages.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

MAIN_SCRIPT = "task1a.py"          # the main application in a clone
MAIN_COMMAND = "task1a"            # ... installed ([project.scripts])
TOOL_COMMANDS = {                  # module tool -> installed command ([project.scripts] in pyproject.toml)
    "utils.dataset": "task1a-dataset",
    "utils.download": "task1a-download",
    "utils.features": "task1a-features",
    "utils.submission": "task1a-submission",
    "utils.demo_dataset": "task1a-demo",
}


def other_spelling(flag: str) -> str:
    """``--foo_bar`` <-> ``--foo-bar`` (a flag with neither is returned as it is)."""
    if not flag.startswith("--"):
        return flag
    body = flag[2:]
    return "--" + (body.replace("_", "-") if "_" in body else body.replace("-", "_"))


class ArgumentParser(argparse.ArgumentParser):
    """argparse accepting each long flag with ``_`` or ``-`` between its words (``--foo=value`` too)."""

    def parse_known_args(self, args: Sequence[str] | None = None, namespace=None):
        args = sys.argv[1:] if args is None else list(args)
        return super().parse_known_args(self.respelled(args), namespace)

    def respelled(self, args: Sequence[str]) -> list[str]:
        """``args`` with each unknown long flag replaced by its declared other spelling (up to a bare ``--``)."""
        known = self._option_string_actions
        result = []
        for index, arg in enumerate(args):
            if arg == "--":
                result.extend(args[index:])
                break
            if arg.startswith("--"):
                flag, equals, value = arg.partition("=")
                if flag not in known and other_spelling(flag) in known:
                    arg = other_spelling(flag) + equals + value
            result.append(arg)
        return result


def _invoked_name() -> str:
    return Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""


def prog(module: str) -> str:
    """The name to show for a module tool: its installed command when run as one, else ``python -m module``."""
    command = TOOL_COMMANDS.get(module)
    return command if command and _invoked_name() == command else f"python -m {module}"


def typed_command() -> str:
    """The main application as typed: ``task1a`` (installed) or ``python task1a.py`` (a clone; the path as given)."""
    name = _invoked_name()
    if name == MAIN_COMMAND:
        return MAIN_COMMAND
    if name == MAIN_SCRIPT and sys.argv[0] != MAIN_SCRIPT:
        return f"python {sys.argv[0]}"
    return f"python {MAIN_SCRIPT}"


def as_typed(text: str) -> str:
    """A message's ``python task1a.py`` hints in the form the user typed (``task1a`` when installed)."""
    command = typed_command()
    return text if command == f"python {MAIN_SCRIPT}" else text.replace(f"python {MAIN_SCRIPT}", command)
