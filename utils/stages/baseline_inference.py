"""The baseline inference stage: the official DCASE2023 baseline model over the same test items, with the
run's batch size and threads, right after testing: the ``baseline_inference`` energy figure the DCASE2023
meta normalises inference energy by. In the recognizer folder's ``baseline_inference/``."""

from __future__ import annotations

import logging
from pathlib import Path

from utils.files import file_digest
from utils.settings import build_settings
from utils.stages.base import StageRunner
from utils.stages.inputs import resolve_path
from utils.stages.model_size import OFFICIAL_MODEL_SHA256
from utils.stages.testing import RecognizerStage, TestUnit, classify_items

log = logging.getLogger(__name__)

OFFICIAL_MODEL_NORMALIZATION = "max_abs_int16"


class BaselineInferenceStage(RecognizerStage):
    """A testing of the official model: its input normalised the official way (``max_abs_int16``) whatever the
    run's ``data_processing.normalization`` (the official model was trained on it)."""

    name = "baseline_inference"
    measured = True

    def compute(self, unit: TestUnit) -> Path:
        normalization = {"method": OFFICIAL_MODEL_NORMALIZATION, "statistics": None}
        return classify_items(unit.model, normalization, unit.items, unit.store, unit.folder, unit.recognizer, unit.progress)


BASELINE_INFERENCE = BaselineInferenceStage()


def baseline_model_path(params: dict, root: Path) -> Path:
    return resolve_path(root, params["recognizer"]["baseline_model"])


def baseline_model_problem(path: Path) -> str | None:
    """Why the official model at ``path`` cannot be used (with the command that fixes it), or None."""
    fix = f"python task1a.py --download_baseline_model {path}"
    if not path.is_file():
        return f"the official baseline model is not at {path} (recognizer.baseline_model); fetch it: {fix}"
    sha = file_digest(path)
    if sha != OFFICIAL_MODEL_SHA256:
        return f"{path} (recognizer.baseline_model) is not the official baseline model (sha256 {sha[:12]}...); delete it and run {fix}"
    return None


def run_baseline_inference(runner: StageRunner, params: dict, items, store, recognizer_dir: Path) -> Path | None:
    """The official model's system output, or None when the model is missing (the run goes on, the phase
    is "not measured" with the command that fixes it)."""
    model_path = baseline_model_path(params, runner.root)
    problem = baseline_model_problem(model_path)
    if problem:
        log.warning("baseline_inference: not measured (%s)", problem)
        if runner.meter is not None:
            runner.meter.add_record(BASELINE_INFERENCE.energy_phase, {"measured": False, "reason": problem})
        return None
    if params["data_processing"]["normalization"] != OFFICIAL_MODEL_NORMALIZATION:
        log.info("baseline_inference: the official model's input is normalised the official way (%s), not with this run's %s",
                 OFFICIAL_MODEL_NORMALIZATION, params["data_processing"]["normalization"])
    folder = runner.workspace.baseline_dir(recognizer_dir)
    return runner.run(BASELINE_INFERENCE, TestUnit(model_path, items, store, folder, build_settings(params).recognizer, runner.overwrite, runner.progress))
