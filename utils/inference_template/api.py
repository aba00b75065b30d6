"""DCASE2025 Task 1 inference: the official API over this submission's TFLite models.

``load_model(model_file_path=None)``, ``load_inputs(file_paths, device_ids, model)``,
``get_model_for_device(model, device_id)``, ``predict(file_paths, device_ids, model_file_path=None,
use_cuda=False)``: the logits of each file (``(n_files, n_classes)``; softmax gives the system's class
probabilities) and the class order. A clip of a device with its own model goes to that model, any other
device to the general model. Written by the task1a project (``--package``); runs on numpy, scipy,
soundfile and ai-edge-litert alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import _runtime

CKPTS = Path(__file__).resolve().parent / "ckpts"


def load_model(model_file_path=None) -> _runtime.DeviceModels:
    """The general model and the device models: ``model_file_path`` is a folder holding ``config.json`` and
    the ``.tflite`` files (default: the package's ``ckpts``)."""
    return _runtime.DeviceModels(Path(model_file_path) if model_file_path else CKPTS)


def load_inputs(file_paths, device_ids, model: _runtime.DeviceModels) -> list:
    """Each file's log-mel segments ``(n_segments, n_mels, n_frames)`` float32, as the model was trained on
    (the device ids do not change the features; they are taken for the official signature)."""
    if len(file_paths) != len(device_ids):
        raise ValueError(f"{len(file_paths)} files but {len(device_ids)} device ids; give one device id per file")
    return [model.features(path) for path in file_paths]


def get_model_for_device(model: _runtime.DeviceModels, device_id) -> _runtime.SceneModel:
    """The device's own model, or the general model for a device without one."""
    return model.for_device(device_id)


def predict(file_paths, device_ids, model_file_path=None, use_cuda=False):
    """``(logits (n_files, n_classes) float64, class order)``; ``use_cuda`` is accepted and ignored (TFLite on CPU)."""
    model = load_model(model_file_path)
    inputs = load_inputs(list(file_paths), list(device_ids), model)
    logits = np.empty((len(inputs), len(model.class_order)))
    groups = {}
    for index, device in enumerate(device_ids):
        groups.setdefault(get_model_for_device(model, device), []).append(index)
    for scene_model, indices in groups.items():
        logits[indices] = scene_model.logits([inputs[i] for i in indices])
    return logits, list(model.class_order)
