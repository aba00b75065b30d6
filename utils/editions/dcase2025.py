"""DCASE2025 Task 1: low-complexity acoustic scene classification with recording-device information.

Official protocol (DCASE2025 task page; the official baseline CPJKU/dcase2025_task1_baseline): a general
model trained on the 25 % split (2024's ``split25.csv``, whole split, last epoch), then, with
``train_device_specific.py``, a copy of it fine-tuned on each training device's clips (a, b, c, s1, s2,
s3): every layer, all of that device's clips of the split, 50 epochs, batch 256, AdamW learning rate
5e-4 with 200 warm-up steps then cosine decay per step, weight decay 1e-4, no Freq-MixStyle, plain
cross-entropy, last epoch (``device_models`` in task1a.yaml). At inference the device of each clip is
known: on the evaluation set from the evaluation list's ``device_id`` column (``evaluation_setup/
fold1_test.csv``, tab separated: ``filename``, ``device_id``), on the development set from meta.csv's
``source_label``; never from a scoring labels file. A clip of a device with its own model goes to that
model, any other clip to the general model. The submission has an installable inference package
(:mod:`utils.inference_package`). Parameter memory: parameter count x 16 bits, per model.
"""

from __future__ import annotations

import dataclasses
import logging

import pandas as pd

from utils import submission as sub
from utils.editions.base import EVALUATION_FOLDER_KEY, Edition
from utils.errors import Task1aError

log = logging.getLogger(__name__)

DEVICE_COLUMN = "device_id"  # the evaluation list's device column (the official 2025 inference reads it)
RULES = sub.SubmissionRules(2025, "low-complexity with device information", sub._DESCRIPTION_FIELDS_2025, ("total_model_size", "total_parameters", "macs"),
                            "total_model_size", False, ("",), None, sub.MODELS_2025, tuple(sub.DEVICE_GROUPS_2025), True)


class DCASE2025(Edition):
    """The DCASE2025 edition: device-specific models chosen by the device the evaluation list gives."""

    def check_data(self, data) -> None:
        """Challenge mode with device models: every clip of the evaluation list has its ``device_id``."""
        if data.params["general"]["mode"] != "eval" or data.evaluation is None or not data.params["device_models"]["enabled"]:
            return
        test = data.evaluation.test
        listed = data.evaluation.path / "evaluation_setup" / "fold1_test.csv"
        devices = test[DEVICE_COLUMN] if DEVICE_COLUMN in test else pd.Series([None] * len(test), dtype=object)
        if devices.isna().any():
            raise Task1aError(f"{listed} has no '{DEVICE_COLUMN}' for {'any' if devices.isna().all() else 'every'} clip: DCASE2025 "
                              f"challenge mode routes each clip by the device the evaluation list gives (tab separated: filename, {DEVICE_COLUMN}, "
                              "as the official 2025 evaluation set's); restore the official list")

    def test_devices(self, data, items: pd.DataFrame) -> pd.Series:
        """The evaluation list's ``device_id`` (challenge mode) or meta.csv's ``source_label`` (development data)."""
        column = DEVICE_COLUMN if data.params["general"]["mode"] == "eval" else "source_label"
        if column not in items:
            return pd.Series("unknown", index=items.index)
        return items[column].fillna("unknown").astype(str)

    def package_inputs(self, outcomes: list, meta_complexity, development_results) -> dict:
        from utils.device_models import device_specific_results

        first = outcomes[0]
        complexity = meta_complexity(first)
        complexity["device_models"] = {device: meta_complexity(dataclasses.replace(first, model=model, complexity=figures))
                                       for device, (model, figures) in first.device_models.items()}
        return {"complexity": complexity, "energy": None, "outputs": first.system_output,
                "results": device_specific_results(development_results(first.params, None))}

    def write_extras(self, outcomes: list, label: str, folder, workdir=None) -> list:
        """The installable inference package (:func:`utils.inference_package.write_inference_package`)."""
        from utils.inference_package import write_inference_package

        return [write_inference_package(outcomes[0], label, folder)]


EDITION = DCASE2025(
    year=2025,
    title="DCASE2025 Task 1 (low-complexity acoustic scene classification with device information)",
    rules=RULES,
    meta_template="meta/task1a_submission_2025.meta.yaml",
    reference=(("DCASE2025 baseline, general model", 0.5072, None, None), ("DCASE2025 baseline, device-specific models", 0.5189, None, None)),
    parameter_bits=16,
    protocol={"learner.parameters.validation_amount": 0, "learner.parameters.model_selection.rule": "last",
              EVALUATION_FOLDER_KEY: "datasets/TAU-urban-acoustic-scenes-2025-mobile-evaluation"},
    evaluation_set="evaluation_2025",
    device_models=True,
    readme_row=("| 2025 | split25.csv, whole split, last epoch; then each device's clips (a, b, c, s1-s3) | fold1_evaluate "
                "| the 25 % split alone | 2025 evaluation set, device from fold1_test.csv device_id | parameters x 16 bit, per model | none |"),
)
