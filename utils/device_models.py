"""DCASE2025 device-specific models: a copy of the general model fine-tuned per training device, testing by
each clip's device (the general model for unknown devices), and the known / unknown device groups.

Each device model is a learner unit of its own (:data:`utils.stages.LEARNER`, run by the run's
:class:`utils.stages.StageRunner`) in ``<system>/device_models/<hash>/seed_N/<device>/``; the stage
:data:`DEVICE_MODELS` plugs into the pipeline's list after learning when ``device_models.enabled``, and the
recognizer stage :data:`DEVICE_RECOGNIZER` tests a model that has device models with
:func:`device_testing_stage`, the device of each test clip as the edition gives it
(:meth:`utils.editions.base.Edition.test_devices`). The fine-tuning recipe is ``device_models`` in
task1a.yaml (:func:`fine_tuning_parameters`; the official DCASE2025 one by default).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from utils import dataset as tau
from utils import stages
from utils.errors import Task1aError
from utils.stages import LEARNER, LearnerUnit, RecognizerStage, Stage, StageRunner, TestUnit, TrainedModel

log = logging.getLogger(__name__)


def item_devices(items: pd.DataFrame) -> pd.Series:
    """The recording device of each item: the metadata's ``source_label``, else the file name's last
    ``-<device>`` part (TAU names such as ``airport-lisbon-1000-40000-0-a.wav``); ``unknown`` when neither says."""
    if "source_label" in items and items["source_label"].notna().all():
        return items["source_label"].astype(str)
    from_names = items["filename"].str.extract(r"-([a-z]+\d*)\.wav$", expand=False)
    if "source_label" in items:
        from_names = items["source_label"].fillna(from_names)
    return from_names.fillna("unknown").astype(str)


def fine_tuning_parameters(params: dict, general_keras: str | None) -> dict:
    """The parameters of a device model's training: the general model's, starting from its weights
    (``general_keras``), with the ``device_models`` recipe (DCASE2025 official by default: every layer,
    50 epochs, batch 256, AdamW with warm-up + cosine decay, no augmentation, plain cross-entropy, no
    hold-out, last epoch; the general model's distillation only with ``device_models.distillation``)."""
    import copy

    from utils.parameters import RESEARCH_OFF

    settings = params["device_models"]
    device_params = copy.deepcopy(params)
    learner = device_params["learner"]["parameters"]
    learner["initial_weights"] = None if general_keras is None else str(general_keras)
    learner["trainable_layers"] = settings["trainable_layers"]
    learner["fit"].update(epochs=settings["epochs"], batch_size=settings["batch_size"], label_smoothing=settings["label_smoothing"])
    learner["optimizer"] = copy.deepcopy(settings["optimizer"])
    if not settings["augmentation"]:
        learner["augmentation"] = copy.deepcopy(RESEARCH_OFF["augmentation"])
    if not settings["distillation"]:
        learner["distillation"] = copy.deepcopy(RESEARCH_OFF["distillation"])
    learner["validation_amount"] = settings["validation_amount"]
    learner["model_selection"].update(rule=settings["model_selection_rule"], initial_delay=0)
    device_params["learner"]["distribute"] = "none"  # the chief fine-tunes alone; on a cluster the others wait for it
    return device_params


def check_device_settings(params: dict, root: Path | None = None) -> None:
    """Before any work: the fine-tuning's learner settings (typed as the learner stage types them, file paths
    against the run's root ``root``; its optimizer and schedule built by Keras), and a teacher the fine-tuning
    cannot use refused in one line (a ``.npy`` teacher has rows per segment of the general model's training,
    which no device's clips can be matched to)."""
    from utils.learning import check_keras_configs
    from utils.settings import learner_settings

    if not params["device_models"]["enabled"]:
        return
    learner = params["learner"]["parameters"]
    teacher = learner["distillation"]["teacher_outputs"]
    if params["device_models"]["distillation"] and teacher is not None and str(teacher).endswith(".npy"):
        raise Task1aError(f"device_models.distillation: the .npy teacher {teacher} has one row per training segment of the general model, "
                          "which cannot be matched to a device's clips; give the teacher as a system-output CSV (matched by file name) "
                          "or set device_models.distillation: false")
    device_learner = fine_tuning_parameters(params, None)["learner"]["parameters"]
    try:
        check_keras_configs(learner_settings(device_learner, Path(root) if root is not None else Path.cwd()))
    except Task1aError as exc:
        raise Task1aError(f"device_models (the device fine-tuning's settings): {exc}") from None


def device_models_stage(params: dict, general: TrainedModel, items: pd.DataFrame, store, folder: Path, runner: StageRunner) -> dict[str, TrainedModel]:
    """DCASE2025: fine-tune a copy of ``general`` on each training device's items, in ``folder/<device>/``.

    Each device model is a learning stage of its own (split, checkpoints, export, ``learning.yaml``):
    finished ones are reused, an interrupted one resumes; ``runner`` measures its energy into the run's
    ``learner`` phase (the meta's training energy). Without a hold-out (``device_models.validation_amount: 0``, the official recipe)
    every training device gets its model; with one, a device whose clips cannot be split by location
    keeps the general model (logged).
    """
    from utils.evaluation import device_sort_key
    from utils.settings import learner_settings

    devices = item_devices(items)
    device_params = fine_tuning_parameters(params, general.keras)
    device_learner = learner_settings(device_params["learner"]["parameters"], runner.root)  # one recipe for every device
    trained = {}
    amount = params["device_models"]["validation_amount"]
    for device in sorted(devices.unique(), key=device_sort_key):
        device_items = items[devices.to_numpy() == device]
        if amount:
            train_index, validation_index = tau.location_disjoint_split(device_items, amount, device_learner.validation_seed)
            if len(train_index) == 0 or len(validation_index) == 0:
                log.warning("device models: device %s has %d clips in %d locations, too few for a location-disjoint validation split "
                            "(device_models.validation_amount %s): it keeps the general model", device, len(device_items),
                            device_items["identifier"].nunique(), amount)
                continue
        log.info("device models: fine-tuning the general model on device %s (%d clips)", device, len(device_items))
        device_folder = Path(folder) / device
        unit = LearnerUnit(device_params, device_learner, runner.root, device_items, store, device_folder, general.seed, None, runner.overwrite,
                           runner.progress)
        trained[device] = runner.run(LEARNER, unit)
    return trained


@dataclass
class DeviceModelsUnit:
    """The device models of ``general``, fine-tuned on ``items`` (features in ``store``) into ``folder``."""

    params: dict
    general: TrainedModel
    items: pd.DataFrame
    store: object
    folder: Path
    runner: StageRunner


class DeviceModelsStage(Stage):
    """DCASE2025: the device models of each general model, in ``<system>/device_models/<hash>/seed_N``
    (the hash names the general model's content: a retrained one is fine-tuned anew)."""

    name = "device_models"

    def compute(self, unit: DeviceModelsUnit) -> dict[str, TrainedModel]:
        return device_models_stage(unit.params, unit.general, unit.items, unit.store, unit.folder, unit.runner)


DEVICE_MODELS = DeviceModelsStage()


def device_testing_stage(model: TrainedModel, io: str, items: pd.DataFrame, devices: pd.Series, store, folder: Path, recognizer,
                         overwrite: bool = False, progress: bool = True) -> Path:
    """DCASE2025 testing: each item classified by its device's model, other devices by the general model.

    ``devices`` ``(len(items),)``: the device of each item as the edition gives it at inference (the
    evaluation list's ``device_id``, meta.csv's ``source_label`` on development data;
    :meth:`utils.editions.base.Edition.test_devices`). Writes ``folder/general/output.csv`` (the general
    model over every item), ``folder/<device>/output.csv`` per device model, ``folder/routing.yaml`` (how
    many clips went to which model) and the system output ``folder/output.csv`` joining them in the items' order.
    """
    from utils.files import write_yaml_atomic
    from utils.system_output import read_system_output, write_system_output

    output = Path(folder) / "output.csv"  # whether it is written already, the recognizer stage decides (its one rule)
    general_dir = Path(folder) / "general"
    general_dir.mkdir(parents=True, exist_ok=True)
    names, _, probabilities = read_system_output(stages.testing_stage(model.tflite[io], model.normalization, items, store, general_dir, recognizer, overwrite,
                                                                      progress))
    row = {name: index for index, name in enumerate(names)}
    probabilities = np.array(probabilities, dtype=np.float64)
    devices = pd.Series(np.asarray(devices, dtype=object), index=items.index).fillna("unknown").astype(str)
    routing = {}
    for device, device_model in model.devices.items():
        subset = items[devices.to_numpy() == device]
        if subset.empty:
            continue
        device_dir = Path(folder) / device
        device_dir.mkdir(parents=True, exist_ok=True)
        device_names, _, device_probabilities = read_system_output(stages.testing_stage(
            device_model.tflite[io], device_model.normalization, subset, store, device_dir, recognizer, overwrite, progress))
        probabilities[[row[name] for name in device_names]] = device_probabilities
        routing[device] = int(len(subset))
    general = devices[~devices.isin(list(model.devices))]
    routing["general_model"] = int(len(general))
    if not any(count for device, count in routing.items() if device != "general_model"):
        log.warning("testing: no test clip is from a device with its own model (devices %s); every clip used the general model",
                    ", ".join(sorted(devices.unique())[:5]))
    write_system_output(output, names, probabilities, tau.SCENE_LABELS)
    write_yaml_atomic(Path(folder) / "routing.yaml", {"clips_per_model": routing,
                                                      "general_model_devices": {str(k): int(v) for k, v in general.value_counts().sort_index().items()}})
    log.info("testing: %d files routed by device: %s; general model %d (devices %s) -> %s", len(names),
             ", ".join(f"{device} {count}" for device, count in routing.items() if device != "general_model") or "none",
             routing["general_model"], ", ".join(sorted(general.unique())) or "none", output)
    return output


def device_groups(model: TrainedModel, training: pd.DataFrame) -> dict | None:
    """The evaluation's device groups of a run with device models, else None: ``known_devices`` are those of
    the ``training`` items (DCASE2025's seen devices, a device kept on the general model included)."""
    from utils.evaluation import device_sort_key

    if not model.devices:
        return None
    known = tuple(sorted(item_devices(training).unique(), key=device_sort_key))
    return {"known_devices": known, "unknown_devices": tuple(d for d in tau.DEVELOPMENT_DEVICES if d not in known)}


def device_specific_results(results: dict | None) -> dict | None:
    """The DCASE2025 meta's results: the general model's (kept under ``general_model``) and the device-specific system's."""
    if results is None:
        return None
    return {"general_model": results.get("general_model"), "device_specific_models": results}


class DeviceRecognizerStage(RecognizerStage):
    """The recognizer stage of a run with device models (DCASE2025): a model with device models tests each clip
    by its device's model (:func:`device_testing_stage`); one without (no device had enough clips) as usual."""

    def compute(self, unit: TestUnit) -> Path:
        if not unit.model.devices:
            return super().compute(unit)
        Path(unit.folder).mkdir(parents=True, exist_ok=True)
        devices = unit.devices if unit.devices is not None else item_devices(unit.items)
        return device_testing_stage(unit.model, unit.recognizer.model_io, unit.items, devices, unit.store, unit.folder, unit.recognizer,
                                    unit.overwrite, unit.progress)


DEVICE_RECOGNIZER = DeviceRecognizerStage()

