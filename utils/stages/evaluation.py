"""The evaluator stage: each trial's system output scored against the test items' labels
(``<system>/evaluator/<hash>/seed_N/results.yaml`` and its plots), the mean and std of several trials
(``seeds_A-B``), and the results of earlier runs found by the layout."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from utils import dataset as tau
from utils import workspace as ws
from utils.errors import Task1aError
from utils.stages.base import Stage
from utils.stages.learning import trial_seeds

log = logging.getLogger(__name__)


@dataclass
class EvaluationUnit:
    """``output_csv`` scored against ``items`` into ``folder``; ``info`` joins the results (set, seeds, energy...)."""

    output_csv: Path
    items: pd.DataFrame
    folder: Path
    dataset_description: str
    confidence_level: float
    info: dict
    device_groups: dict | None = None


class EvaluatorStage(Stage):
    """Always scored anew (seconds): a results file is never reused."""

    name = "evaluator"

    def compute(self, unit: EvaluationUnit) -> dict:
        """Score a system output against the items' labels; save results.yaml and the PNGs in the folder."""
        from utils import evaluation
        from utils.system_output import read_system_output

        filenames, _, probabilities = read_system_output(unit.output_csv)
        items = unit.items
        order = pd.Series(np.arange(len(filenames)), index=filenames)
        missing = set(items["filename"]) - set(filenames)
        if missing:
            raise Task1aError(f"{unit.output_csv} lacks {len(missing)} test file(s), first {sorted(missing)[0]}; rerun testing with -o")
        probabilities = np.asarray(probabilities)[order[items["filename"]].to_numpy()]
        metrics = evaluation.SceneClassificationMetrics(tau.SCENE_LABELS, confidence_level=unit.confidence_level,
                                                        device_groups=unit.device_groups or tau.DEVICE_GROUPS)
        metrics.accumulate(items["scene_label"].tolist(), probabilities, items["source_label"].fillna("unknown").tolist())
        results = metrics.results()
        results.update(unit.info)
        results["dataset"] = unit.dataset_description
        ws.write_results(unit.folder, results)
        evaluation.plot_confusion_matrix(results, Path(unit.folder) / "confusion_matrix.png")
        evaluation.plot_device_accuracy(results, Path(unit.folder) / "device_accuracy.png")
        return results


EVALUATOR = EvaluatorStage()


def trials_evaluation(trials: list[dict], folder: Path, dataset_description: str, info: dict) -> tuple[dict, str]:
    """Mean and std over the trials' results (as the official README's "averaged over 10 iterations"),
    saved as ``folder/results.yaml``; returns them and their table."""
    from utils.evaluation import aggregate_trials, format_aggregated_table

    aggregated = aggregate_trials(trials)
    results = dict(aggregated["mean"], std=aggregated["std"], **info, dataset=dataset_description)
    ws.write_results(folder, results)
    return results, format_aggregated_table(aggregated, dataset_description)


def run_results_folder(params: dict, workdir=None, extra=None) -> Path:
    """Where a (dev-mode) run of ``params`` keeps its results: ``<system>/evaluator/<hash>/<seed_N or seeds_A-B>``."""
    from utils.paths import run_root, system_dir

    digest = EVALUATOR.digest(params, run_root(params, workdir), extra)
    return ws.Workspace(system_dir(params, workdir)).trials_dir(EVALUATOR.name, digest, trial_seeds(params))


def run_results(params: dict, workdir=None, extra=None) -> ws.ResultsRecord | None:
    """The results of the run of ``params`` (None: not evaluated yet)."""
    folder = run_results_folder(params, workdir, extra)
    return ws.read_results(folder) if (folder / ws.RESULTS_FILE).is_file() else None


def split_results(all_params: list[dict], workdir=None) -> list[tuple[int, dict]]:
    """``(train_split, results)`` of each run of a multi-set command that has results, in split order."""
    found = {}
    for params in all_params:
        results = run_results(params, workdir)
        if results is not None:
            found[params["dataset"]["train_split"]] = results.content
    return sorted(found.items())
