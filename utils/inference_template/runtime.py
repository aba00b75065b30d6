"""The runtime of this inference package: audio reading, the log-mel features, normalisation and the TFLite
models. The feature code below the marker is the task1a project's own (utils.features, utils.audio,
utils.testing, utils.tflite), copied when the package was written, so the features are the training's."""

from __future__ import annotations

import json
import math  # noqa: F401 (used by the project code appended below the marker)
import os
from pathlib import Path

import numpy as np


class Task1aError(ValueError):
    """An input this package cannot use (one line saying why)."""


EPS = float(np.spacing(1))
INT16_SCALE = __INT16_SCALE__
SPECTROGRAM_TYPES = ("magnitude", "power")
WINDOW_TYPES = __WINDOW_TYPES__
METHOD = __LOGMEL32K__  # the 32 kHz front end's method name (utils.frontend_32k)


def load_audio(path, fs: int) -> np.ndarray:
    """``(n_samples,)`` float64 mono at ``fs``: libsndfile's float64 samples, channels averaged."""
    import soundfile

    data, rate = soundfile.read(str(path), dtype="float64", always_2d=True)
    if rate != fs:
        raise Task1aError(f"{path} is sampled at {rate} Hz; this package's models take {fs} Hz audio (the TAU recordings' rate)")
    if data.shape[0] == 0:
        raise Task1aError(f"{path} has no samples")
    data = data.T
    return data[0] if data.shape[0] == 1 else np.mean(data, axis=0)


class SceneModel:
    """One exported TFLite scene classifier and the normalisation of its input."""

    def __init__(self, path: Path, normalization: dict, batch_size: int = 256):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # pragma: no cover - a TensorFlow installation instead
            from tensorflow.lite import Interpreter
        self.path = Path(path)
        self.interpreter = Interpreter(model_content=self.path.read_bytes(), num_threads=os.cpu_count() or 1)
        self.interpreter.allocate_tensors()
        self.input, self.output = self.interpreter.get_input_details()[0], self.interpreter.get_output_details()[0]
        method = normalization["method"]
        if method == "max_abs_int16":
            self.normalize = normalize_max_abs_int16
        elif method == "none":
            self.normalize = lambda batch: np.asarray(batch, dtype=np.float32)
        else:
            self.normalize = MeanStdNormalizer.from_dict(normalization["statistics"]).transform
        self.batch_size = batch_size

    def _run(self, X: np.ndarray) -> np.ndarray:
        x = np.asarray(X, dtype=np.float32)[..., np.newaxis]
        dtype = np.dtype(self.input["dtype"])
        if np.issubdtype(dtype, np.integer):
            scale, zero_point = self.input["quantization"]
            x = quantize(x, scale, zero_point, dtype)
        self.interpreter.resize_tensor_input(self.input["index"], [len(x), *self.input["shape"][1:]])
        self.interpreter.allocate_tensors()
        self.interpreter.set_tensor(self.input["index"], x.astype(dtype, copy=False))
        self.interpreter.invoke()
        q = self.interpreter.get_tensor(self.output["index"])
        if np.issubdtype(q.dtype, np.integer):
            scale, zero_point = self.output["quantization"]
            return dequantize(q, scale, zero_point)
        return q.astype(np.float64)

    def probabilities(self, inputs: list) -> np.ndarray:
        """Each file's class probabilities ``(n_files, n_classes)``: the mean over its segments."""
        rows = np.concatenate(inputs) if inputs else np.zeros((0,))
        counts = np.array([len(segments) for segments in inputs])
        out = [self._run(self.normalize(rows[start : start + self.batch_size])) for start in range(0, len(rows), self.batch_size)]
        return clip_probabilities(np.concatenate(out), counts)

    def logits(self, inputs: list) -> np.ndarray:
        """Logits whose softmax is :meth:`probabilities` (their logarithm)."""
        with np.errstate(divide="ignore"):
            return np.log(self.probabilities(inputs))


class DeviceModels:
    """The general model and the device models of ``folder`` (``config.json`` says which file is which)."""

    def __init__(self, folder: Path):
        config = json.loads((Path(folder) / "config.json").read_text())
        self.config = config
        self.class_order = tuple(config["class_order"])
        extractor = LogMel32kExtractor if config.get("feature_method", "mel") == METHOD else LogMelExtractor
        self.extractor = extractor(**config["feature_extractor"])
        self.segment_samples = int(round(config["segment_length_seconds"] * self.extractor.fs))
        self.general = SceneModel(Path(folder) / config["general_model"]["file"], config["general_model"]["normalization"])
        self.devices = {device: SceneModel(Path(folder) / entry["file"], entry["normalization"]) for device, entry in config["device_models"].items()}

    def for_device(self, device_id) -> SceneModel:
        return self.devices.get(str(device_id), self.general)

    def features(self, path) -> np.ndarray:
        segments = segment_audio(load_audio(path, self.extractor.fs), self.segment_samples)
        return self.extractor.extract_batch(segments)


# ---- copied from the task1a project ----
