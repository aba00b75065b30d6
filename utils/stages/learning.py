"""The learner stage: one trained model per seed in ``<system>/learner/<hash>/seed_N``, its ``learning.yaml``
the mark of completion; the trained or given model the later stages test."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from utils import dataset as tau
from utils import workspace as ws
from utils.errors import Task1aError
from utils.files import write_yaml_atomic
from utils.settings import LearnerSettings, learner_settings
from utils.stages.base import Stage
from utils.stages.features import segment_labels

log = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    """A model the run tests: a trained one (its folder's ``learning.yaml``) or one given with ``--model``."""

    folder: Path
    seed: int
    tflite: dict  # io -> path
    keras: Path | None
    normalization: dict
    summary: ws.LearningRecord | None = None
    devices: dict = field(default_factory=dict)  # DCASE2025: device id -> its fine-tuned TrainedModel
    chief: bool = True  # False: a multi-worker worker's stand-in (the chief holds the model)

    @classmethod
    def from_record(cls, folder: Path, record: ws.LearningRecord) -> "TrainedModel":
        return cls(folder, record.seed, {io: folder / name for io, name in record.tflite.items()}, folder / record.keras, record.normalization, record)


def trial_seeds(params: dict) -> list[int]:
    """The training seeds of a run: ``general.seed`` and the next ``iterations - 1``."""
    return [params["general"]["seed"] + k for k in range(params["learner"]["parameters"]["iterations"])]


def check_learner_settings(params: dict, root: Path | None = None, given_model: bool = False) -> LearnerSettings:
    """Fail before any work when the learner's settings are invalid (their typing, :func:`utils.settings.learner_settings`:
    the monitored metric, the files; the Keras configs built by Keras), or (DCASE2025) when the device models'
    ``trainable_layers`` name no layer of the network, or the tested TFLite variant is not exported. Returns the settings."""
    from utils.learning import check_keras_configs

    learner = learner_settings(params["learner"]["parameters"], Path(root) if root is not None else Path.cwd())
    check_keras_configs(learner)
    io = params["recognizer"]["model_io"]
    if not given_model and io not in learner.conversion.io:
        raise Task1aError(f"recognizer.model_io '{io}' is not exported (learner_method_parameters.{params['learner']['method']}.conversion.io: "
                          f"{list(learner.conversion.io)}); add it there or choose another model_io")
    patterns = params["device_models"]["trainable_layers"] if params["device_models"]["enabled"] else None
    if patterns:
        from fnmatch import fnmatchcase

        from utils.complexity import network_input_shape
        from utils.model import build_model
        from utils.settings import feature_settings

        names = [layer.name for layer in build_model(learner.model, network_input_shape(feature_settings(params["feature_extractor"])),
                                                     len(tau.SCENE_LABELS)).layers]
        for pattern in patterns:
            if not any(fnmatchcase(name, pattern) for name in names):
                raise Task1aError(f"device_models.trainable_layers: {pattern!r} matches no layer of the network (layers: {', '.join(names)}); fix the pattern")
    return learner


# --------------------------------------------------------------------------------------- the stage
@dataclass
class LearnerUnit:
    """One training: ``items`` (features in ``store``) for ``seed`` into ``folder`` (``.../seed_N``), with the
    typed ``learner`` settings the run built once (``params``: the set, for what the stage itself decides)."""

    params: dict
    learner: LearnerSettings
    root: Path
    items: pd.DataFrame
    store: object
    folder: Path
    seed: int
    group: object = None  # utils.distribute.WorkerGroup (None: one process)
    overwrite: bool = False
    progress: bool = True

    @property
    def chief(self) -> bool:
        return self.group is None or self.group.chief


class LearnerStage(Stage):
    name = "learner"
    measured = True

    def finished(self, unit: LearnerUnit) -> bool:
        """``learning.yaml`` written (the chief's answer on every worker of a cluster)."""
        done = ws.learning_finished(unit.folder)
        return bool(unit.group.chief_value(done)) if unit.group is not None else done

    def clear(self, unit: LearnerUnit) -> None:
        if Path(unit.folder).exists():
            for child in Path(unit.folder).iterdir():
                if child.name == ws.PARAMETERS_FILE:
                    continue
                shutil.rmtree(child) if child.is_dir() else child.unlink()

    def resumes_unrecorded(self, unit: LearnerUnit) -> bool:
        """A checkpoint left by a run that recorded no energy (killed): this run's figure misses that part."""
        from utils.energy import STAGE_ENERGY_PARTS_FILE
        from utils.learning import CHECKPOINT_FILENAME

        folder = Path(unit.folder)
        return (folder / CHECKPOINT_FILENAME).exists() and not (folder / STAGE_ENERGY_PARTS_FILE).exists()

    def reuse(self, unit: LearnerUnit) -> TrainedModel:
        log.info("learning: reusing %s (seed %d)", unit.folder, unit.seed)
        if not unit.chief:
            return TrainedModel(unit.folder, unit.seed, {}, None, {}, chief=False)
        return TrainedModel.from_record(Path(unit.folder), ws.read_learning(unit.folder))

    def compute(self, unit: LearnerUnit) -> TrainedModel:
        """Train one model (one seed) on the items with a location-disjoint validation split, export TFLite.

        Writes into the folder: the split, normalisation statistics, checkpoints, ``model.keras``, the
        training log and curves, ``model_float.tflite`` / ``model_int8.tflite`` and ``learning.yaml``.
        Resumes from the last checkpoint when interrupted. The validation split comes from
        ``validation_seed``, not the seed: every trial validates on the same clips. On a cluster only the
        chief exports.
        """
        from utils import learning, tflite

        folder, seed, params = Path(unit.folder), unit.seed, unit.params
        learner = unit.learner
        data = learning_data(params, learner, unit.items, unit.store, folder, write=unit.chief)
        X_train, y_train, X_val, y_val, train_items = data["X_train"], data["y_train"], data["X_val"], data["y_val"], data["train_items"]
        if unit.chief and not unit.overwrite:
            learning.adopt_earlier_checkpoint(folder)  # a larger fit.epochs continues a shorter training of the same parameters
        trained = learning.train_model(learner, X_train, y_train, X_val, y_val, folder, seed=seed, deterministic=params["general"]["deterministic"],
                                       progress=unit.progress, distribute=params["learner"]["distribute"],
                                       training_names=segment_labels(unit.store, train_items, "filename"))
        if not trained.chief:  # a multi-worker non-chief worker: the chief exports, tests and evaluates
            return TrainedModel(folder, seed, {}, None, data["normalization"], chief=False)
        model = trained.model
        devices = segment_labels(unit.store, train_items, "source_label")
        conversion = learner.conversion  # fewer training segments than representative_examples (a device's few clips): all of them
        exported = tflite.export_tflite_models(model, X_train, y_train, devices, folder, ios=conversion.io,
                                               n_examples=min(conversion.representative_examples, len(y_train)), seed=seed)
        record = ws.LearningRecord(
            seed=seed,
            keras=Path(trained.model_path).name,
            tflite={io: Path(path).name for io, path in exported.items()},
            normalization=data["normalization"],
            best_epoch=trained.best_epoch,
            epochs_trained=trained.epochs_trained,
            stopped_early=trained.stopped_early,
            validation=trained.validation,
            quantization=tflite.evaluate_quantization(model, exported, X_val, y_val) if X_val is not None else None,
            keras_parameters=int(model.count_params()),
            train_segments=int(len(y_train)),
            validation_segments=int(len(y_val)) if y_val is not None else 0,
            model_selection=learner.model_selection.rule,
        )
        ws.write_learning(folder, record)
        return TrainedModel.from_record(folder, ws.read_learning(folder))


LEARNER = LearnerStage()


def learning_data(params: dict, learner: LearnerSettings, items: pd.DataFrame, store, folder: Path, write: bool = True) -> dict:
    """The location-disjoint split of ``items`` (``learner.validation_amount``, ``validation_seed``), the normalisation fitted on its
    training side, and the normalised arrays: ``X_train`` ``(n, n_mels, n_frames)``, ``y_train`` ``(n,)``
    class indices, ``X_val``, ``y_val``, plus ``train_items`` and ``normalization``. With ``write``,
    ``split.yaml`` and ``normalization.yaml`` are saved in ``folder``."""
    from utils import features

    if learner.validation_amount:
        train_index, validation_index = tau.location_disjoint_split(items, learner.validation_amount, learner.validation_seed)
        train_items, validation_items = items.iloc[train_index], items.iloc[validation_index]
    else:  # validation_amount 0: the whole of ``items`` trains, no hold-out (the official DCASE2024/2025 protocol)
        train_items, validation_items = items, items.iloc[:0]
    split = {
        "train_split": params["dataset"]["train_split"], "seed": learner.validation_seed, "validation_amount": learner.validation_amount,
        "train_locations": sorted(train_items["identifier"].unique().tolist()),
        "validation_locations": sorted(validation_items["identifier"].unique().tolist()),
        "train_count": int(len(train_items)), "validation_count": int(len(validation_items)),
    }
    method = params["data_processing"]["normalization"]
    statistics = features.fit_mean_std(store, train_items["filename"].tolist()) if method == "mean_std" else None
    normalization = {"method": method, "statistics": statistics}
    if write:
        write_yaml_atomic(folder / "split.yaml", split)
        write_yaml_atomic(folder / "normalization.yaml", normalization)
    normalizer = features.build_normalizer(method, statistics)
    class_index = {label: i for i, label in enumerate(tau.SCENE_LABELS)}
    data = {"train_items": train_items, "normalization": normalization}
    for side, side_items in (("train", train_items), ("val", validation_items)):
        held_out = side == "train" or len(side_items)
        data[f"X_{side}"] = features.load_normalized(store, side_items["filename"].tolist(), normalizer) if held_out else None
        data[f"y_{side}"] = np.array([class_index[s] for s in segment_labels(store, side_items, "scene_label")]) if held_out else None
    if data["y_val"] is None:
        log.info("learning: %d training segments (%d locations), no validation hold-out (validation_amount 0)", len(data["y_train"]),
                 train_items["identifier"].nunique())
    else:
        log.info("learning: %d training and %d validation segments (%d / %d locations), validation split seed %d", len(data["y_train"]),
                 len(data["y_val"]), train_items["identifier"].nunique(), validation_items["identifier"].nunique(), learner.validation_seed)
    return data


# ------------------------------------------------------------------------------ models to test
def given_model(params: dict, model_path: Path) -> TrainedModel:
    """A ``.tflite`` model given on the command line, as the model the run tests (normalised as the parameters say)."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise Task1aError(f"--model {model_path} not found; give a .tflite file")
    normalization = {"method": params["data_processing"]["normalization"], "statistics": None}
    return TrainedModel(model_path.parent, params["general"]["seed"], {params["recognizer"]["model_io"]: model_path}, None, normalization)


def trained_model(params: dict, workdir=None, seed: int | None = None) -> TrainedModel:
    """The finished model a set's learning stage wrote for ``seed`` (default: its first trial seed), found by the layout."""
    from utils.paths import run_root, system_dir

    seed = trial_seeds(params)[0] if seed is None else seed
    folder = ws.Workspace(system_dir(params, workdir)).seed_dir(LEARNER.name, LEARNER.digest(params, run_root(params, workdir)), seed)
    if not ws.learning_finished(folder):
        raise Task1aError(f"no trained model of set {params['set_id']} (seed {seed}) at {folder}; train one (python task1a.py -s {params['set_id']}) or give "
                          "--model")
    return TrainedModel.from_record(folder, ws.read_learning(folder))
