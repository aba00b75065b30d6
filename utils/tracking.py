"""Experiment trackers as Keras callbacks, for ``fit.callbacks``: MLflow and Weights & Biases.

Each callback opens a tracker run when training begins, logs the run's parameters (the model's layer
count and size, the optimizer, epochs and batch size) and every epoch's figures (``loss``,
``categorical_accuracy``, ``val_...``), and closes the run when training ends. Relative folders
(``log_dir``) land in the model folder, as for Keras' own callbacks. Neither package is a dependency:
``pip install -e ".[tracking]"`` brings both; naming a callback whose package is missing stops the run
before any work with one line. Recipe: docs/tracking.md.

    fit:
      callbacks:
        - {class_name: utils.tracking.MlflowLogger, config: {log_dir: mlruns, experiment: dcase-task1}}
        - {class_name: utils.tracking.WandbLogger, config: {project: dcase-task1, mode: offline, log_dir: wandb}}
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import keras


def _require(module: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise ValueError(f"{what} needs the {module} package, which is not installed; pip install -e \".[tracking]\" (or pip install {module})")


def _figures(logs: dict | None) -> dict[str, float]:
    return {name: float(value) for name, value in (logs or {}).items() if isinstance(value, (int, float)) or hasattr(value, "__float__")}


def _training_parameters(model: keras.Model, params: dict) -> dict[str, Any]:
    optimizer = getattr(model, "optimizer", None)
    return {"epochs": params.get("epochs"), "steps_per_epoch": params.get("steps"), "layers": len(model.layers),
            "parameters": model.count_params(), "optimizer": type(optimizer).__name__ if optimizer is not None else None}


class MlflowLogger(keras.callbacks.Callback):
    """Log the training to MLflow: a local folder store in ``log_dir`` (default; MLflow's file backend), or
    ``tracking_uri`` (a server, or ``sqlite:///mlflow.db`` with the full mlflow package)."""

    def __init__(self, experiment: str = "dcase-task1", log_dir: str | None = "mlruns", tracking_uri: str | None = None, run_name: str | None = None):
        super().__init__()
        _require("mlflow", "utils.tracking.MlflowLogger")
        self.experiment, self.run_name = experiment, run_name
        self.tracking_uri = tracking_uri or (Path(log_dir).resolve().as_uri() if log_dir else None)
        self.run_id: str | None = None

    def on_train_begin(self, logs=None):
        import os

        import mlflow

        if self.tracking_uri and self.tracking_uri.startswith("file:"):  # MLflow 3 keeps its file store in maintenance: allow it
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        if self.tracking_uri:
            mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_experiment(self.experiment)
        run = mlflow.start_run(run_name=self.run_name, nested=mlflow.active_run() is not None)
        self.run_id = run.info.run_id
        mlflow.log_params(_training_parameters(self.model, self.params or {}))

    def on_epoch_end(self, epoch, logs=None):
        import mlflow

        mlflow.log_metrics(_figures(logs), step=epoch, run_id=self.run_id)

    def on_train_end(self, logs=None):
        import mlflow

        if self.run_id is not None and mlflow.active_run() is not None and mlflow.active_run().info.run_id == self.run_id:
            mlflow.end_run()


class WandbLogger(keras.callbacks.Callback):
    """Log the training to Weights & Biases; ``mode: offline`` keeps the run in ``log_dir`` (``wandb sync`` uploads it later)."""

    def __init__(self, project: str = "dcase-task1", mode: str = "online", log_dir: str | None = None, name: str | None = None, entity: str | None = None):
        super().__init__()
        _require("wandb", "utils.tracking.WandbLogger")
        if mode not in ("online", "offline", "disabled"):
            raise ValueError(f"mode must be online, offline or disabled, got {mode!r}")
        self.settings = {"project": project, "mode": mode, "name": name, "entity": entity}
        self.log_dir = log_dir
        self.run = None

    def on_train_begin(self, logs=None):
        import wandb

        if self.log_dir:
            Path(self.log_dir).mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(dir=self.log_dir, config=_training_parameters(self.model, self.params or {}),
                              settings=wandb.Settings(silent=True), **self.settings)  # silent: its lines would reach the console

    def on_epoch_end(self, epoch, logs=None):
        if self.run is not None:
            self.run.log({**_figures(logs), "epoch": epoch}, step=epoch)

    def on_train_end(self, logs=None):
        if self.run is not None:
            self.run.finish()
            self.run = None
