"""Where things are: the files shipped with the code, and the folder a run writes into.

Two kinds of paths, never mixed:

- **Shipped files**, read-only, found next to the code: the default parameters (``task1a.yaml``),
  the submission meta template (``meta/task1a_submission.meta.yaml``) and the dataset download
  manifest (``utils/tau2022_manifest.yaml``). An installed wheel carries them as package data
  (``utils/_data/``, copied there at build time from the repository's top-level files, which stay
  the single source) and they are read with :mod:`importlib.resources`; a clone (or an editable
  install) reads the repository's files themselves. :func:`packaged_file`.
- **Run-time paths** (``path.system``, ``path.log``, the datasets, ``--output``...): relative ones
  resolve against the run's root folder, :func:`run_root`: ``--workdir`` if given, else
  ``path.root`` (default ``.``), itself relative to the current working folder. Never against the
  code's folder: an installed copy does not write into site-packages, and a clone run from its
  own folder behaves as it always did.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.resources
import os
from pathlib import Path
from typing import Any, Mapping

from utils.errors import Task1aError

PACKAGE = "utils"
PACKAGED_DATA_FOLDER = "_data"  # inside the package, in a built wheel only (never in the repository)
CHECKOUT_DIR = Path(__file__).resolve().parents[1]

# name -> where the file is in a clone (relative to the repository root). In a wheel each is
# ``utils/_data/<name>``, except the manifest, which lives inside the package already.
SHIPPED_FILES = {
    "task1a.yaml": "task1a.yaml",
    "task1a_submission.meta.yaml": "meta/task1a_submission.meta.yaml",
    "task1a_submission_2024.meta.yaml": "meta/task1a_submission_2024.meta.yaml",
    "task1a_submission_2025.meta.yaml": "meta/task1a_submission_2025.meta.yaml",
    "tau2022_manifest.yaml": "utils/tau2022_manifest.yaml",
}

_extracted = contextlib.ExitStack()  # shipped files extracted from a zip import, removed at exit
atexit.register(_extracted.close)


def _packaged_resource(name: str):
    package = importlib.resources.files(PACKAGE)
    if name == "tau2022_manifest.yaml":
        return package / name
    return package / PACKAGED_DATA_FOLDER / name


def packaged_file(name: str) -> Path:
    """The path of a shipped read-only file (a key of :data:`SHIPPED_FILES`).

    The package's own copy (a wheel's ``utils/_data/<name>``, via :mod:`importlib.resources`) if it
    has one, else the clone's file. Raises :class:`Task1aError` when neither exists (a broken
    installation).
    """
    if name not in SHIPPED_FILES:
        raise ValueError(f"unknown shipped file {name!r} (known: {', '.join(SHIPPED_FILES)})")
    resource = _packaged_resource(name)
    if resource.is_file():
        if isinstance(resource, Path):
            return resource
        return _extracted.enter_context(importlib.resources.as_file(resource))  # e.g. a zip import
    checkout = CHECKOUT_DIR / SHIPPED_FILES[name]
    if checkout.is_file():
        return checkout
    raise Task1aError(f"{name} is missing from this installation (looked for {resource} and {checkout}); reinstall dcase-task1a-baseline")


def default_parameter_file() -> Path:
    """The shipped ``task1a.yaml`` (its path even when missing, so that the caller's error names it)."""
    try:
        return packaged_file("task1a.yaml")
    except Task1aError:
        return CHECKOUT_DIR / SHIPPED_FILES["task1a.yaml"]


def _path_section(params: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if params is None:
        return {}
    section = params.get("path", {})
    if not isinstance(section, Mapping):
        raise Task1aError("'path' must be a mapping (root, system, log); fix the parameters")
    return section


def run_root(params: Mapping[str, Any] | None = None, workdir: str | os.PathLike | None = None) -> Path:
    """The folder relative run-time paths resolve against (absolute).

    ``workdir`` (the command line's ``--workdir``) if given, else ``params["path"]["root"]``, else
    ``.``; a relative one is taken from the current working folder. ``params`` may be a resolved
    set or a container's ``defaults`` (anything with a ``path`` section). The folder need not exist
    yet (stages create what they write); an existing file in its place is an error.
    """
    value = workdir if workdir is not None else _path_section(params).get("root", ".")
    what = "--workdir" if workdir is not None else "path.root"
    if value is None or (isinstance(value, str) and not value.strip()):
        value = "."
    if not isinstance(value, (str, os.PathLike)):
        raise Task1aError(f"{what} must be a folder path, got {value!r}; fix the value")
    root = Path(value).expanduser()
    if not root.is_absolute():
        try:
            root = Path.cwd() / root
        except OSError as exc:  # the working folder was deleted under us
            raise Task1aError(f"the current working folder is not accessible ({exc.strerror}); cd into a folder or give {what} as an absolute path") from None
    root = Path(os.path.normpath(root))
    if root.exists() and not root.is_dir():
        raise Task1aError(f"{what} {root} is a file, not a folder; choose a folder for the run's outputs")
    return root


def resolve_run_path(params: Mapping[str, Any] | None, value: str | os.PathLike | None, workdir: str | os.PathLike | None = None) -> Path | None:
    """``value`` as a path: absolute (after ``~``) as is, relative under :func:`run_root`; ``None`` stays ``None``."""
    if value is None:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else run_root(params, workdir) / path


def system_dir(params: Mapping[str, Any], workdir: str | os.PathLike | None = None) -> Path:
    """``path.system`` under the run's root (stage outputs: ``<system>/<stage>/<hash>``)."""
    return resolve_run_path(params, _path_section(params).get("system", "system"), workdir)


def log_dir(params: Mapping[str, Any], workdir: str | os.PathLike | None = None) -> Path:
    """``path.log`` under the run's root (one log file per run)."""
    return resolve_run_path(params, _path_section(params).get("log", "log"), workdir)


def meta_template(params: Mapping[str, Any], shipped: str, workdir: str | os.PathLike | None = None) -> Path:
    """The submission meta template: ``submission.meta_template`` under the run's root, which must exist.

    Null (the default): the edition's template ``shipped`` (``meta/<name>``, :attr:`utils.editions.base.Edition.meta_template`)
    under the run's root when the user keeps a filled-in copy there, else the shipped (unfilled) one (an
    installed copy run from an empty folder).
    """
    value = params.get("submission", {}).get("meta_template")
    if value is not None:
        return resolve_run_path(params, value, workdir)
    path = resolve_run_path(params, shipped, workdir)
    return path if path.exists() else packaged_file(Path(shipped).name)


def check_output_path(path: Path, what: str) -> None:
    """Fail before any work when an output file cannot be created: a parent that is a file, or a read-only folder."""
    for parent in (path.parent.resolve(), *path.parent.resolve().parents):
        if parent.exists():
            if not parent.is_dir():
                raise Task1aError(f"{what} {path}: {parent} is a file, not a folder; choose another path")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise Task1aError(f"{what} {path}: {parent} is not writable; choose a writable folder")
            return
