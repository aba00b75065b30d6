"""A run's input paths: every relative run path resolves against the run's root (``--workdir``); the
learner's files (initial weights, a teacher's outputs) too, and their content is part of the hash of every
stage from the learner on."""

from __future__ import annotations

from pathlib import Path

from utils.settings import resolve_path  # the one rule of run paths (re-exported: the stages import it from here)

__all__ = ["input_files", "resolve_path"]


def input_files(params: dict, root: Path) -> dict:
    """The content (sha256) of the files a training starts or learns from (``initial_weights``, the teacher's
    outputs), found under ``root``, named by the path as written (:func:`utils.learning.research_fingerprints`);
    part of the learner's and later hashes."""
    from utils.learning import research_fingerprints

    written = params["learner"]["parameters"]
    as_written = {"initial_weights": written.get("initial_weights"), "distillation": (written.get("distillation") or {}).get("teacher_outputs")}
    files = research_fingerprints(resolve_path(root, as_written["initial_weights"]), resolve_path(root, as_written["distillation"]))
    return {key: dict(value, path=str(as_written[key])) for key, value in files.items()}
