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

from conftest import tiny_demo_parameters

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
