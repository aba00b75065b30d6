"""The workspace: the output layout of a run and the records kept in it, in one place.

Everything a run writes lies under ``path.system`` (:func:`utils.paths.system_dir`)::

    <system>/<stage>/<hash>/parameters.yaml     what produced the folder (ParametersRecord)
    <system>/<stage>/<hash>/seed_N/             one training seed's work (learner, device_models, recognizer, evaluator)
    <system>/evaluator/<hash>/seeds_A-B/        the mean and std over trials
    <system>/recognizer/<hash>/baseline_inference/   the official model's output over the same test items
    <system>/energy/                            codecarbon's files
    <system>/submission/LABEL.zip               the submission package

``<stage>`` is a stage's one name (:mod:`utils.stages`), ``<hash>`` its :func:`utils.parameters.stage_hash`.
This module is the only one that spells these folder names and the only one that reads or writes the
records (``parameters.yaml``, ``learning.yaml``, ``results.yaml``, ``run.yaml``): they are dataclasses
here, YAML on disk (``docs/outputs.md`` describes each field).
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from utils.errors import Task1aError
from utils.files import write_yaml_atomic

PARAMETERS_FILE = "parameters.yaml"
LEARNING_FILE = "learning.yaml"
RESULTS_FILE = "results.yaml"
RUN_FILE = "run.yaml"
BASELINE_FOLDER = "baseline_inference"
ENERGY_FOLDER = "energy"
SUBMISSION_FOLDER = "submission"


def plain_values(value):
    """Numpy scalars and paths to plain YAML-able Python values."""
    if isinstance(value, dict):
        return {str(k): plain_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_values(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def _read(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise Task1aError(f"record {path} is unreadable ({type(exc).__name__}); delete its folder and rerun") from None


def _from_mapping(cls, data: dict):
    """A record dataclass from a mapping: its own fields picked, the rest ignored."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{key: value for key, value in (data or {}).items() if key in names})


# ------------------------------------------------------------------------------------------ records
@dataclass
class ParametersRecord:
    """``parameters.yaml`` of a stage folder: which set and stage produced it, and exactly the parameters
    (:func:`utils.parameters.stage_parameters`) and extra inputs its hash covers."""

    set_id: str
    stage: str
    extra: Any
    parameters: dict

    @property
    def learner_epochs(self) -> int | None:
        """``fit.epochs`` of a learner folder's record (None in a record without it)."""
        return ((self.parameters.get("learner") or {}).get("parameters") or {}).get("fit", {}).get("epochs")

    def without_learner_epochs(self) -> dict:
        """The record as a mapping less ``fit.epochs`` and the set id: what two learner folders share when one
        training continues the other (:func:`utils.learning.continuation_source`)."""
        record = copy.deepcopy(dataclasses.asdict(self))
        ((record["parameters"].get("learner") or {}).get("parameters") or {}).get("fit", {}).pop("epochs", None)
        record.pop("set_id", None)
        return record


@dataclass
class LearningRecord:
    """``learning.yaml``, the learner's summary of one trained model and the mark that the training finished."""

    seed: int
    keras: str                 # file names, relative to the record's folder
    tflite: dict               # io -> file name
    normalization: dict        # {method, statistics}
    best_epoch: int | None = None
    epochs_trained: int | None = None
    stopped_early: bool | None = None
    validation: dict = field(default_factory=dict)
    quantization: dict | None = None
    keras_parameters: int | None = None
    train_segments: int | None = None
    validation_segments: int | None = None
    model_selection: str | None = None  # best | last (model_selection.rule)


@dataclass
class ResultsRecord:
    """``results.yaml``: the scores of one trial (``seed_N``) or the mean and std of several (``seeds_A-B``).

    The named fields are those readers use (reporting, ``--show_results``, the meta); ``content`` is the
    whole mapping as written (class-wise and device-wise scores, energy, complexity...)."""

    content: dict
    set_id: str | None = None
    mode: str | None = None
    dataset: str | None = None
    synthetic: bool | None = None
    overall_accuracy: float | None = None
    overall_logloss: float | None = None
    complexity: dict | None = None
    n_trials: int | None = None   # absent from a trial's scores inside a run of several

    @classmethod
    def from_mapping(cls, data: dict) -> "ResultsRecord":
        data = dict(data or {})
        return _from_mapping(cls, {key: value for key, value in data.items() if key != "content"} | {"content": data})


@dataclass
class RunRecord:
    """``run.yaml``, the run's record and the source of ``report.md`` (:func:`utils.reporting.write_run_report`)."""

    dataset: dict
    set_id: str
    description: str
    mode: str
    hashes: dict
    edition: int | None = None        # submission.edition: the report's official reference figures
    train_split: int | None = None    # dataset.train_split (DCASE2024's per-split reference)
    reference: list | None = None     # the edition's official figures [system, accuracy, log loss] (report.md)
    complexity: dict | None = None
    energy: dict | None = None
    energy_summary: dict | None = None
    quantization: dict | None = None
    outputs: dict = field(default_factory=dict)
    plots: dict = field(default_factory=dict)
    evaluation: Any = None
    timings: dict | None = None
    created: str | None = None

    def as_mapping(self) -> dict:
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None or key in ("complexity", "quantization")}


# ------------------------------------------------------------------------------------------- layout
def trials_folder_name(seeds: list[int]) -> str:
    """The sub-folder of a stage's hash folder: ``seed_3`` for one training, ``seeds_0-9`` for the mean of trials."""
    return f"seed_{seeds[0]}" if len(seeds) == 1 else f"seeds_{seeds[0]}-{seeds[-1]}"


class Workspace:
    """The folder ``path.system`` of a run, and where each stage's outputs and records lie in it."""

    def __init__(self, system: str | os.PathLike):
        self.system = Path(system)

    def stage_dir(self, stage: str, digest: str) -> Path:
        """``<system>/<stage>/<hash>`` (not created)."""
        return self.system / stage / digest

    def seed_dir(self, stage: str, digest: str, seed: int) -> Path:
        """``<system>/<stage>/<hash>/seed_N``: one training seed's work."""
        return self.stage_dir(stage, digest) / trials_folder_name([seed])

    def trials_dir(self, stage: str, digest: str, seeds: list[int]) -> Path:
        """``seed_N`` for one seed, ``seeds_A-B`` for several (their mean and std)."""
        return self.stage_dir(stage, digest) / trials_folder_name(seeds)

    def baseline_dir(self, recognizer_dir: Path) -> Path:
        """In the recognizer folder: the official model's output over the same test items, and its energy."""
        return Path(recognizer_dir) / BASELINE_FOLDER

    @property
    def energy_dir(self) -> Path:
        return self.system / ENERGY_FOLDER

    def package_path(self, label: str) -> Path:
        return self.system / SUBMISSION_FOLDER / f"{label}.zip"

    def create_stage_dir(self, record: ParametersRecord, digest: str) -> Path:
        """``<system>/<stage>/<hash>``, created, with its ``parameters.yaml`` (written once)."""
        folder = self.stage_dir(record.stage, digest)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Task1aError(f"cannot create the output folder {folder}: {exc.strerror}; set path.system to a writable folder") from None
        if not (folder / PARAMETERS_FILE).exists():
            write_yaml_atomic(folder / PARAMETERS_FILE, dataclasses.asdict(record))
        return folder

    def evaluated_results(self) -> list[tuple[Path, ResultsRecord]]:
        """Every ``results.yaml`` of the evaluator (``<system>/evaluator/<hash>/<seed_N or seeds_A-B>``), oldest first;
        unreadable ones are passed over."""
        folder = self.system / "evaluator"
        found = []
        for path in sorted(folder.glob(f"*/*/{RESULTS_FILE}"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []:
            try:
                found.append((path, read_results(path)))
            except Task1aError:
                continue
        return found


# ---------------------------------------------------------------------------------- record files
def read_parameters(folder: Path) -> ParametersRecord | None:
    """The ``parameters.yaml`` of a stage folder (None when there is none)."""
    path = Path(folder) / PARAMETERS_FILE
    return _from_mapping(ParametersRecord, _read(path)) if path.is_file() else None


def sibling_stage_dirs(folder: Path) -> list[Path]:
    """The other hash folders of the stage ``<system>/<stage>/<hash>`` (the ones with a ``parameters.yaml``)."""
    folder = Path(folder)
    return [path.parent for path in sorted(folder.parent.glob(f"*/{PARAMETERS_FILE}")) if path.parent != folder]


def learning_finished(folder: Path) -> bool:
    """The learner's mark of completion: ``learning.yaml`` in the seed folder."""
    return (Path(folder) / LEARNING_FILE).exists()


def read_learning(folder: Path) -> LearningRecord:
    return _from_mapping(LearningRecord, _read(Path(folder) / LEARNING_FILE))


def write_learning(folder: Path, record: LearningRecord) -> Path:
    return write_yaml_atomic(Path(folder) / LEARNING_FILE, plain_values(dataclasses.asdict(record)))


def read_results(path: Path) -> ResultsRecord:
    """A ``results.yaml`` (the file, or the folder holding it)."""
    path = Path(path)
    path = path / RESULTS_FILE if path.is_dir() else path
    return ResultsRecord.from_mapping(_read(path) or {})


def write_results(folder: Path, results: dict) -> Path:
    Path(folder).mkdir(parents=True, exist_ok=True)
    return write_yaml_atomic(Path(folder) / RESULTS_FILE, plain_values(results))


def write_run(folder: Path, record: RunRecord) -> Path:
    Path(folder).mkdir(parents=True, exist_ok=True)
    return write_yaml_atomic(Path(folder) / RUN_FILE, plain_values(record.as_mapping()))
