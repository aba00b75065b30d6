"""The DCASE2025 inference package: a pip-installable package over a run's exported TFLite models.

DCASE2025 submissions come with an installable package exposing the official API (the organisers'
template, CPJKU/dcase2025_task1_inference): a package named after the submission label without its index
(``Lastname_Institute_task1``) holding the submission module ``Lastname_Institute_task1_N`` with
``load_model(model_file_path=None)``, ``load_inputs(file_paths, device_ids, model)``,
``get_model_for_device(model, device_id)`` and ``predict(file_paths, device_ids, model_file_path=None,
use_cuda=False)`` (the logits of each file and the class order), its models in ``ckpts/``, and the
organisers' ``evaluate_submission.py`` beside it. :func:`write_inference_package` writes it from the
challenge-mode run of a ``device_models`` set (``--package`` for edition 2025); the templates are
:mod:`utils.inference_template`. The package needs numpy, scipy, soundfile and ai-edge-litert only: the
project's feature extraction (``utils.features`` and the helpers it needs) is copied into its
``_runtime.py``, so its log-mel features are the training's, and it never imports this repository.
"""

from __future__ import annotations

import inspect
import json
import logging
import shutil
from pathlib import Path

from utils.errors import Task1aError
from utils.files import write_text_atomic

log = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).resolve().parent / "inference_template"
REQUIREMENTS = ("numpy", "scipy", "soundfile", "ai-edge-litert")


def package_names(label: str) -> tuple[str, str]:
    """``(package, module)`` of a submission label: ``Lastname_ORG_task1_2`` -> (``Lastname_ORG_task1``, ``Lastname_ORG_task1_2``)."""
    from utils.submission import check_label

    check_label(label)
    return label.rsplit("_", 1)[0], label


def runtime_source() -> str:
    """``_runtime.py``: the template's runtime, then the project's own feature, segmentation, averaging and
    quantisation code (its source, copied), so the package computes exactly what the project computes."""
    from utils import audio, feature_store, features, frontend_32k, testing, tflite

    copied = [features._rfft_rows, features._SparseMel, features._cosine_window, features._mel_basis, features.LogMelExtractor,
              frontend_32k.sinc_resampling_kernel, frontend_32k.resampled_length, frontend_32k.resample, frontend_32k.htk_mel_filterbank,
              frontend_32k.periodic_hann, frontend_32k.LogMel32kExtractor,
              features.normalize_max_abs_int16, features.MeanStdNormalizer, audio.segment_audio, testing.clip_probabilities,
              tflite.quantize, tflite.dequantize]
    text = (TEMPLATE_DIR / "runtime.py").read_text()
    text = (text.replace("__INT16_SCALE__", repr(feature_store.INT16_SCALE)).replace("__WINDOW_TYPES__", repr(features.WINDOW_TYPES))
            .replace("__LOGMEL32K__", repr(frontend_32k.METHOD)))
    return text + "\n\n" + "\n\n".join(inspect.getsource(item) for item in copied)


def _model_entry(model, io: str, name: str, ckpts: Path) -> dict:
    shutil.copyfile(model.tflite[io], ckpts / name)
    return {"file": name, "normalization": model.normalization}


def write_inference_package(outcome, label: str, folder: str | Path) -> Path:
    """Write the installable package of ``outcome`` (a challenge-mode run with device models:
    ``utils.pipeline.RunOutcome``; its typed ``settings`` say the front end and the tested TFLite variant) into
    ``folder/<package>/``; returns that folder (``pip install`` it)."""
    package, module = package_names(label)
    features, io = outcome.settings.features, outcome.settings.recognizer.model_io
    if outcome.model is None or outcome.model.tflite.get(io) is None:
        raise Task1aError(f"the DCASE2025 inference package needs the run's exported {io} model; rerun the set with --package")
    root = Path(folder) / package
    staging = Path(folder) / f".{package}.writing"
    shutil.rmtree(staging, ignore_errors=True)
    source = staging / package
    ckpts = source / "ckpts"
    ckpts.mkdir(parents=True)
    from utils.dataset import SCENE_LABELS

    devices = {device: _model_entry(model, io, f"device_{device}.tflite", ckpts) for device, (model, _) in outcome.device_models.items()}
    config = {
        "label": label,
        "class_order": list(SCENE_LABELS),
        "feature_method": features.method,  # mel (DCASE2023) | logmel32k (the DCASE2024/2025 front end)
        "feature_extractor": dict(features.parameters),
        "segment_length_seconds": features.segment_length_seconds,
        "model_io": io,
        "general_model": _model_entry(outcome.model, io, "general.tflite", ckpts),
        "device_models": devices,
    }
    write_text_atomic(ckpts / "config.json", json.dumps(config, indent=2, default=str) + "\n")
    write_text_atomic(source / "__init__.py", f'"""DCASE2025 Task 1 submission {package} (written by the task1a project)."""\n')
    write_text_atomic(source / f"{module}.py", (TEMPLATE_DIR / "api.py").read_text())
    write_text_atomic(source / "_runtime.py", runtime_source())
    shutil.copyfile(TEMPLATE_DIR / "evaluate_submission.py", staging / "evaluate_submission.py")
    write_text_atomic(staging / "requirements.txt", "\n".join(REQUIREMENTS) + "\n")
    write_text_atomic(staging / "setup.py", (
        "from setuptools import setup\n\n"
        f"setup(name={package!r}, version='1.0.0', packages=[{package!r}], package_data={{{package!r}: ['ckpts/*']}},\n"
        f"      install_requires={list(REQUIREMENTS)!r}, python_requires='>=3.9')\n"))
    write_text_atomic(staging / "README.md", (
        f"# {package}: DCASE2025 Task 1 inference package\n\n"
        f"Submission module `{package}.{module}` (the official API: load_model, load_inputs, get_model_for_device, predict), "
        f"written by the task1a project for submission {label}: the general model and the device models "
        f"{', '.join(devices) or '(none)'} as TFLite files ({io} io) in `{package}/ckpts/`.\n\n"
        f"    pip install .\n    python evaluate_submission.py --submission_name {package} --submission_index {label.rsplit('_', 1)[1]} "
        "--dev_set_dir DEV --eval_set_dir EVAL\n"))
    shutil.rmtree(root, ignore_errors=True)
    staging.rename(root)
    log.info("DCASE2025 inference package %s (module %s, %d device models) written to %s", package, module, len(devices), root)
    return root
