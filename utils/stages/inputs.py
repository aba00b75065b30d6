"""A run's input paths: every relative run path resolves against the run's root (``--workdir``); the
learner's files (initial weights, a teacher's outputs) too, and their content is part of the hash of every
stage from the learner on."""

from __future__ import annotations

import copy
import os
from pathlib import Path


def resolve_path(root: Path, value: str | os.PathLike | None) -> Path | None:
    """A run path: absolute (after ``~``) as is, relative under the run's root (``--workdir``); None stays None."""
    if value is None:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(root) / path


RESEARCH_PATHS = (("initial_weights",), ("distillation", "teacher_outputs"))
"""The learner's file parameters: like every run path they resolve against the run's root (``--workdir``)."""


def learner_settings(params: dict, root: Path) -> dict:
    """The learner method's parameters with its file paths (:data:`RESEARCH_PATHS`) resolved against ``root``."""
    learner = copy.deepcopy(params["learner"]["parameters"])
    for path in RESEARCH_PATHS:
        node = learner
        for key in path[:-1]:
            node = node.get(key) or {}
        if node.get(path[-1]) is not None:
            node[path[-1]] = str(resolve_path(root, node[path[-1]]))
    return learner


def input_files(params: dict, root: Path) -> dict:
    """The content (sha256) of the files a training starts or learns from, found under ``root``, named by the
    path as written (:func:`utils.learning.research_fingerprints`); part of the learner's and later hashes."""
    from utils.learning import research_fingerprints

    written = params["learner"]["parameters"]
    files = research_fingerprints(learner_settings(params, root))
    as_written = {"initial_weights": written.get("initial_weights"), "distillation": (written.get("distillation") or {}).get("teacher_outputs")}
    return {key: dict(value, path=str(as_written[key])) for key, value in files.items()}
