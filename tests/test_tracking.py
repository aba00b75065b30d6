"""The docs/tracking.md recipe: a demo training logs to MLflow (a local file store) and to Weights &
Biases (offline mode) through fit.callbacks, and each tracker holds the figures of the training log."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import tiny_demo_parameters

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_a_demo_training_logs_to_mlflow_and_wandb(tmp_path):
    pytest.importorskip("mlflow", reason="the tracking extra is not installed (pip install -e '.[tracking]')")
    pytest.importorskip("wandb", reason="the tracking extra is not installed (pip install -e '.[tracking]')")
    parameters = tiny_demo_parameters(tmp_path, energy=False)
    parameters["defaults"]["learner_method_parameters"]["cnn"]["fit"] = {"callbacks": [
        {"class_name": "utils.tracking.MlflowLogger", "config": {"log_dir": "mlruns", "experiment": "tiny"}},
        {"class_name": "utils.tracking.WandbLogger", "config": {"project": "tiny", "mode": "offline", "log_dir": "wandb"}},
    ]}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(parameters))
    result = subprocess.run([sys.executable, str(REPO / "task1a.py"), "-s", "demo", "-p", str(tmp_path / "tiny.yaml"), "-o", "--no_progress"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=900, env={**os.environ, "WANDB_MODE": "offline"})
    assert result.returncode == 0, result.stderr[-3000:]
    (model_dir,) = (tmp_path / "system" / "learner").glob("*/seed_0")
    with open(model_dir / "training_log.csv", newline="") as handle:
        logged = list(csv.DictReader(handle))
    losses = [float(row["loss"]) for row in logged]
    assert len(losses) == 2

    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # the folder store the logger wrote

    client = MlflowClient(tracking_uri=(model_dir / "mlruns").resolve().as_uri())
    (experiment,) = [e for e in client.search_experiments() if e.name == "tiny"]
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    history = sorted(client.get_metric_history(run.info.run_id, "loss"), key=lambda m: m.step)
    assert [m.step for m in history] == [0, 1]
    assert [m.value for m in history] == pytest.approx(losses, abs=1e-5)
    assert int(run.data.params["epochs"]) == 2

    # W&B keeps an offline run in one protobuf record file, and wandb ships no reader for it: each logged
    # figure is stored as its JSON text, so the file must hold every epoch's exact values (MLflow's).
    (run_file,) = (model_dir / "wandb").glob("wandb/offline-run-*/run-*.wandb")
    content = run_file.read_bytes()
    for name in ("loss", "val_loss", "categorical_accuracy"):
        for metric in client.get_metric_history(run.info.run_id, name):
            assert json.dumps(metric.value).encode() in content, (name, metric.step)


def test_a_tracker_callback_with_bad_arguments_stops_before_any_work():
    pytest.importorskip("wandb")
    from utils.errors import Task1aError
    from utils.learning import build_callbacks

    with pytest.raises(Task1aError, match=r"fit.callbacks\[0\].config: .*mode must be online, offline or disabled"):
        build_callbacks([{"class_name": "utils.tracking.WandbLogger", "config": {"mode": "sometimes"}}])
