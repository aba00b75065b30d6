"""The CP-Mobile sets run end to end on the tiny SYNTHETIC demo data (slow): features (logmel32k), the recipe
(AdamW + WarmupCosineDecay, augmentations), float16 export, testing, NeSsi at 16 bit; and the DCASE2025 set's
device models. They need the logmel32k front end and utils/schedules.py (the frontend and editions work)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import filled_meta_template, tiny_demo_parameters

REPO = Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("utils.schedules") is None or importlib.util.find_spec("utils.frontend_32k") is None,
                       reason="needs utils/schedules.py (editions) and utils/frontend_32k.py (frontend)"),
]


def run(tmp_path: Path, set_id: str, *extra: str) -> subprocess.CompletedProcess:
    param_file = tmp_path / "tiny.yaml"
    param_file.write_text(yaml.safe_dump(tiny_demo_parameters(tmp_path, energy=False)))
    return subprocess.run([sys.executable, "task1a.py", "--no_progress", "-s", set_id, "-p", str(param_file),
                           "--set", "learner_method_parameters.cnn.fit.epochs=2", *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=1500)


def summaries(tmp_path: Path, name: str) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted((tmp_path / "system").rglob(name))]


@pytest.mark.parametrize("set_id", ["dcase2024_cpmobile_split5", "dcase2025_cpmobile_device_specific"])
def test_a_cpmobile_set_runs_end_to_end_on_the_demo_data(tmp_path, set_id):
    finished = run(tmp_path, set_id, "--set", "device_models.epochs=2")
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "SYNTHETIC" in finished.stdout + finished.stderr
    models = sorted((tmp_path / "system").rglob("model_float16.tflite"))
    assert models, "no float16 export"
    from utils.tflite import TFLiteClassifier

    classifier = TFLiteClassifier(models[0])
    assert tuple(classifier.input_details["shape"][1:3]) == (256, 65) and classifier.class_count == 10
    if set_id.startswith("dcase2025"):
        assert len(models) > 1, "no device model was fine-tuned"
    reports = [path.read_text() for path in (tmp_path / "system").rglob("report.md")]
    assert reports and any("SYNTHETIC" in text for text in reports)


def test_the_dcase2025_cpmobile_package_is_produced_as_for_the_2025_edition(tmp_path):
    """Dev run (the meta's development results), then challenge mode with --package: the zip passes the 2025
    validator and the inference package computes the logmel32k features the project computed."""
    import importlib.util as loader

    import numpy as np

    from utils.frontend_32k import LogMel32kExtractor
    from utils.submission import validate_submission

    label = "Tester_Org_task1_1"
    assert run(tmp_path, "dcase2025_cpmobile_device_specific", "--set", "device_models.epochs=2").returncode == 0
    packaged = run(tmp_path, "dcase2025_cpmobile_device_specific", "--set", "device_models.epochs=2", "--mode", "eval", "--package", label,
                   "--set", filled_meta_template(tmp_path, 2025))
    assert packaged.returncode == 0, packaged.stderr[-3000:]
    archive = tmp_path / "system" / "submission" / f"{label}.zip"
    assert validate_submission(archive, None, edition=2025) == []
    ckpts = next((tmp_path / "system" / "submission").glob("*/*/ckpts"))
    config = json.loads((ckpts / "config.json").read_text())
    assert config["feature_method"] == "logmel32k" and config["model_io"] == "float16" and config["device_models"]
    spec = loader.spec_from_file_location("packaged_runtime", ckpts.parent / "_runtime.py")
    runtime = loader.module_from_spec(spec)
    spec.loader.exec_module(runtime)
    models = runtime.DeviceModels(ckpts)
    clip = next((tmp_path / "datasets" / "demo").rglob("*.wav"))
    import soundfile

    audio, _ = soundfile.read(str(clip), dtype="float64")
    expected = LogMel32kExtractor(**config["feature_extractor"]).extract(audio[: 44100])
    assert np.array_equal(models.features(clip)[0], expected.astype(np.float32))
