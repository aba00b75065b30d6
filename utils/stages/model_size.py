"""The model size stage: NeSsi's MACs and parameter memory of the tested model (``<name>.nessi.json`` and
``.nessi.txt`` beside a trained model, in the recognizer folder for a given one), and the meta's
complexity block."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from utils.files import file_digest
from utils.settings import ModelSizeSettings
from utils.stages.base import Stage

log = logging.getLogger(__name__)

# sha256 of the official baseline's model file (../shared/reference/README.md): inference with it
# is the `baseline_inference` energy figure of the DCASE2023 submission meta.
OFFICIAL_MODEL_SHA256 = "c627fe9cab07709750072d3ba39a2944a3a33b5a63e2dda97195406fde5cfd9b"
# Parameters of the official baseline's Keras model (its README's network summary: 800, 64, 12,560, 64,
# 25,120, 128, 6,500, 1,010): the count its TFLite file cannot give (batch normalisation is folded away).
OFFICIAL_MODEL_KERAS_PARAMETERS = 46_246


@dataclass
class ModelSizeUnit:
    """The TFLite model at ``tflite_path`` measured against ``limits`` (``model_size``), figures saved in ``folder``."""

    tflite_path: Path
    limits: ModelSizeSettings
    folder: Path

    @property
    def json_path(self) -> Path:
        return Path(self.folder) / Path(self.tflite_path).with_suffix(".nessi.json").name


class ModelSizeStage(Stage):
    name = "model_size"

    def finished(self, unit: ModelSizeUnit) -> bool:
        """Figures newer than the model, measured against the same limits."""
        path = unit.json_path
        if not path.exists() or path.stat().st_mtime < Path(unit.tflite_path).stat().st_mtime:
            return False
        limits = json.loads(path.read_text()).get("limits", {})
        return limits.get("macs") == unit.limits.max_macs and limits.get("memory_bytes") == unit.limits.max_memory_bytes

    def reuse(self, unit: ModelSizeUnit) -> dict:
        return json.loads(unit.json_path.read_text())

    def compute(self, unit: ModelSizeUnit) -> dict:
        from model_size_calculation.nessi import format_nessi_table
        from utils.complexity import measure_tflite
        from utils.files import write_json_atomic, write_text_atomic

        figures = measure_tflite(str(unit.tflite_path), unit.limits)
        write_text_atomic(unit.json_path.with_suffix("").with_suffix(".nessi.txt"), format_nessi_table(figures) + "\n")
        write_json_atomic(unit.json_path, figures)
        return figures


MODEL_SIZE = ModelSizeStage()


def tflite_parameter_counts(tflite_path: Path) -> dict:
    """Elements (and non-zero elements) of a TFLite model's constant tensors: its parameters after conversion."""
    from ai_edge_litert.interpreter import Interpreter

    from model_size_calculation.tflite_reader import read_tflite_graph

    data = Path(tflite_path).read_bytes()
    graph = read_tflite_graph(data)
    interpreter = Interpreter(model_content=data)
    total = non_zero = 0
    for tensor in graph.tensors:
        if tensor.buffer_bytes > 0:
            total += tensor.element_count
            non_zero += int(np.count_nonzero(interpreter.get_tensor(tensor.id)))
    return {"parameters": int(total), "non_zero": int(non_zero)}


def model_parameter_count(keras_path: Path | None, tflite_path: Path) -> dict:
    """The model's own parameter count for the meta's ``total_parameters``, and how it was counted.

    A trained model: its Keras model's ``count_params()`` (batch normalisation included, as the official
    README's summary counts), non-zero: its non-zero weights. The official model file: its published
    Keras count (46,246), non-zero from the TFLite constants (no Keras weights). Any other
    given ``.tflite`` without a Keras model: the elements of its constant tensors (batch normalisation
    folded into the convolutions by the converter, so fewer than the Keras count).
    """
    counts = tflite_parameter_counts(tflite_path)
    non_zero = counts["non_zero"]
    if keras_path is not None and Path(keras_path).is_file():
        import keras

        model = keras.saving.load_model(keras_path, compile=False)
        total, how = int(model.count_params()), "the Keras model's count_params() (non-zero: its non-zero weights)"
        non_zero = int(sum(np.count_nonzero(w) for w in model.get_weights()))
    elif file_digest(tflite_path) == OFFICIAL_MODEL_SHA256:
        total, how = OFFICIAL_MODEL_KERAS_PARAMETERS, "the official baseline's published Keras model summary (its TFLite file has no Keras model)"
    else:
        total, how = counts["parameters"], ("elements of the TFLite file's constant tensors (no Keras model given: batch normalisation is folded in, so "
                                            "this is below a Keras count)")
    return {"parameters": total, "non_zero": non_zero, "tflite_constants": counts["parameters"], "counted_as": how}


def meta_complexity(keras_path: Path | None, tflite_path: Path, complexity: dict) -> dict:
    """The meta's ``system.complexity`` block (README, "Submission meta: complexity figures").

    ``total_parameters``: the model's own parameter count (:func:`model_parameter_count`, how it was
    counted is logged); ``total_parameters_non_zero``: non-zero elements of the TFLite constants;
    ``total_model_size`` and ``memory_use`` (the template asks for bytes): NeSsi's total weight bytes,
    the parameter memory the challenge limits (128 KB) and ranks by; ``macs``: NeSsi's MACs per 1 s.
    """
    counts = model_parameter_count(keras_path, tflite_path)
    log.info("meta total_parameters %d: %s (the TFLite file holds %d constant elements)", counts["parameters"], counts["counted_as"],
             counts["tflite_constants"])
    return {
        "total_model_size": complexity["total_weight_bytes"],
        "total_parameters": counts["parameters"],
        "total_parameters_non_zero": counts["non_zero"],
        "memory_use": complexity["total_weight_bytes"],
        "macs": complexity["total_macs"],
    }


def complexity_brief(complexity: dict | None) -> dict | None:
    """The NeSsi figures a results file keeps: MACs, weight and peak memory, and the verdicts."""
    if not complexity:
        return None
    keys = ("total_macs", "total_weight_bytes", "peak_memory_bytes", "macs_ok", "memory_ok")
    return {key: complexity.get(key) for key in keys}
