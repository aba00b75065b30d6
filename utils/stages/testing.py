"""The recognizer stage: the tested model's system output (``output.csv``) over the test items, in
``<system>/recognizer/<hash>/seed_N``; ``output.csv`` is the mark of completion."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from utils import dataset as tau
from utils.settings import RecognizerSettings
from utils.stages.base import Stage

log = logging.getLogger(__name__)

OUTPUT_FILE = "output.csv"


@dataclass
class TestUnit:
    """``model`` (a :class:`utils.stages.learning.TrainedModel`) over ``items`` (features in ``store``) into ``folder``;
    ``recognizer``: the typed ``recognizer`` section (:class:`utils.settings.RecognizerSettings`)."""

    model: object
    items: pd.DataFrame
    store: object
    folder: Path
    recognizer: RecognizerSettings
    overwrite: bool = False
    progress: bool = True
    devices: pd.Series | None = None  # each item's device as the edition gives it at inference (device models route by it)


def testing_finished(folder: Path) -> bool:
    """The system output is written."""
    return (Path(folder) / OUTPUT_FILE).exists()


def classify_items(model_path: Path, normalization: dict, items: pd.DataFrame, store, folder: Path, recognizer: RecognizerSettings,
                   progress: bool = True) -> Path:
    """Run the TFLite model over ``items`` and write the system output ``folder/output.csv``."""
    from utils.features import build_normalizer
    from utils.system_output import write_system_output
    from utils.testing import predict_store
    from utils.tflite import TFLiteClassifier

    output = Path(folder) / OUTPUT_FILE
    Path(folder).mkdir(parents=True, exist_ok=True)
    classifier = TFLiteClassifier(model_path, batch_size=recognizer.batch_size, num_threads=recognizer.num_threads)
    normalizer = build_normalizer(normalization["method"], normalization.get("statistics"))
    keys = items["filename"].tolist()
    probabilities = predict_store(classifier, store, keys, normalizer, batch_size=recognizer.batch_size, progress=progress)
    write_system_output(output, keys, probabilities, tau.SCENE_LABELS)
    log.info("testing: %d files -> %s", len(keys), output)
    return output


def testing_stage(model_path: Path, normalization: dict, items: pd.DataFrame, store, folder: Path, recognizer: RecognizerSettings, overwrite: bool = False,
                  progress: bool = True) -> Path:
    """One model's system output in ``folder``, reused when written (unless ``overwrite``); for the parts of a
    composite test (the DCASE2025 device models' outputs, :mod:`utils.device_models`)."""
    if testing_finished(folder) and not overwrite:
        log.info("testing: reusing %s", Path(folder) / OUTPUT_FILE)
        return Path(folder) / OUTPUT_FILE
    return classify_items(model_path, normalization, items, store, folder, recognizer, progress)


class RecognizerStage(Stage):
    """Tests one model (a strategy such as :data:`utils.device_models.DEVICE_RECOGNIZER` overrides :meth:`compute`)."""

    name = "recognizer"
    measured = True

    def finished(self, unit: TestUnit) -> bool:
        return testing_finished(unit.folder)

    def reuse(self, unit: TestUnit) -> Path:
        log.info("testing: reusing %s", Path(unit.folder) / OUTPUT_FILE)
        return Path(unit.folder) / OUTPUT_FILE

    def compute(self, unit: TestUnit) -> Path:
        model, io = unit.model, unit.recognizer.model_io
        return classify_items(model.tflite[io], model.normalization, unit.items, unit.store, unit.folder, unit.recognizer, unit.progress)


RECOGNIZER = RecognizerStage()
