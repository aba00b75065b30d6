"""The data stage: the datasets of a run (the real TAU set or the generated demo set) and which items
each later stage works on (training, feature extraction, testing)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from utils import dataset as tau
from utils.errors import Task1aError
from utils.parameters import allowed
from utils.stages.base import Stage
from utils.stages.inputs import resolve_path

REAL_DATASET_NAME = "TAU Urban Acoustic Scenes 2022 Mobile"
SYNTHETIC_LABEL = "SYNTHETIC demo data (not the real TAU dataset)"


@dataclass
class DataContext:
    """The datasets of one run and how to label results obtained on them."""

    development: tau.TAUDevelopmentSet
    evaluation: tau.TAUEvaluationSet | None
    synthetic: bool
    name: str
    params: dict  # the parameters actually used (the dataset section may have fallen back to demo)

    @property
    def description(self) -> str:
        return f"{SYNTHETIC_LABEL}: {self.name}" if self.synthetic else f"{self.name} (real data)"

    @property
    def mode(self) -> str:
        return self.params["general"]["mode"]


def development_set_found(params: dict, root: Path) -> bool:
    """Whether the real development set the parameters point at is there (the demo data always is)."""
    if params["dataset"]["method"] != "tau2022_mobile":
        return True
    return (resolve_path(root, params["dataset"]["parameters"]["development"]) / tau.META_FILENAME).is_file()


def prepare_data(params: dict, root: Path, progress: bool = True, edition=None) -> DataContext:
    """Load the datasets a run needs, generating the demo data on first use. ``edition``: the set's
    :class:`utils.editions.base.Edition`, which names its evaluation set when challenge mode misses it.

    Raises :class:`Task1aError` when the configured real dataset is not found (``task1a.py`` falls
    back to the demo set before calling this, when allowed).
    """
    mode = params["general"]["mode"]
    method = params["dataset"]["method"]
    train_split = params["dataset"]["train_split"]
    settings = params["dataset"]["parameters"]
    if method == "tau2022_mobile":
        development_path = resolve_path(root, settings["development"])
        if not development_set_found(params, root):
            raise Task1aError(
                f"development set not found at {development_path}; download it (python task1a.py --download_dataset {development_path.parent}) "
                "or set dataset_method_parameters.tau2022_mobile.development"
            )
        development = tau.TAUDevelopmentSet.load(development_path, train_split=train_split)
        evaluation = None
        if mode == "eval":
            evaluation_path = resolve_path(root, settings["evaluation"])
            if not evaluation_path.is_dir():  # before any training: the edition names its evaluation set and the download command
                raise Task1aError(edition.missing_evaluation_set(evaluation_path) if edition is not None else
                                  f"evaluation set not found at {evaluation_path}; set dataset_method_parameters.tau2022_mobile.evaluation")
            evaluation = tau.TAUEvaluationSet.load(evaluation_path, resolve_path(root, settings["evaluation_labels"]))
        return DataContext(development, evaluation, synthetic=False, name=f"{REAL_DATASET_NAME}, development set ({development_path})", params=params)
    if method != "demo":
        raise Task1aError(f"unknown dataset.method '{method}' (known: {', '.join(allowed('dataset'))}); fix task1a.yaml")
    from utils.demo_dataset import generate_demo_dataset
    from utils.settings import demo_settings

    demo = demo_settings(settings)  # the checked block, typed once; refuses more evaluation files than clips
    demo_root = resolve_path(root, demo.path)
    paths = generate_demo_dataset(demo_root, demo, progress=progress)
    development = tau.TAUDevelopmentSet.load(paths["development"], train_split=train_split)
    evaluation = tau.TAUEvaluationSet.load(paths["evaluation"], paths["evaluation_labels"]) if mode == "eval" else None
    return DataContext(development, evaluation, synthetic=True, name=f"task1a demo dataset ({demo_root})", params=params)


def development_items(data: DataContext) -> pd.DataFrame:
    """Every development item the features are extracted for: the whole fold1_train (whatever the subset) and fold1_evaluate."""
    development = data.development
    train = development.train_fold if development.train_fold is not None else development.train
    return pd.concat([train, development.evaluate], ignore_index=True).drop_duplicates("filename")


def test_items(data: DataContext) -> tuple[pd.DataFrame, Path, bool]:
    """Items to test on, the folder their names are relative to, and whether they have labels."""
    if data.mode == "eval":
        return data.evaluation.test, data.evaluation.path, data.evaluation.labelled
    return data.development.evaluate, data.development.path, True


@dataclass
class DataUnit:
    params: dict
    root: Path
    progress: bool = True
    folder: Path | None = None  # the datasets live where the parameters say, not in the workspace
    edition: object = None      # the set's edition (utils.editions), given by the pipeline above the stages


class DataStage(Stage):
    """Loads (and for the demo, generates once) the datasets; :mod:`utils.demo_dataset` reuses a finished demo set itself."""

    name = "dataset"

    def compute(self, unit: DataUnit) -> DataContext:
        return prepare_data(unit.params, unit.root, unit.progress, unit.edition)


DATA = DataStage()
