"""Learning: train the CNN on the training split, select the best epoch on the validation split, resume.

What the official baseline does, kept: Adam with the YAML's optimizer config, categorical
cross-entropy, label smoothing on the training targets only (one-hot * 0.9 + 0.01 for 0.1),
shuffled mini-batches, and model selection on the best validation categorical accuracy considered
only after ``model_selection.initial_delay`` epochs (its StasherCallback), restored at the end.

What is added: a checkpoint after every epoch (model variables including the dropout seed
generators, optimizer state, epoch, history, best-so-far weights) written atomically, so a killed run
resumes from the last finished epoch. The shuffling order of an epoch is derived from (seed, epoch)
rather than from a running random state, so a resumed run sees exactly the batches an uninterrupted
run would; with deterministic ops on, its final weights are bit-identical.

Features are fed batch by batch from array-likes (numpy memmaps of the feature store included)
through ``tf.data``; the training set is never copied whole.

Beyond one device, on TensorFlow's own engine (``learner.distribute``): ``mirrored``
(``tf.distribute.MirroredStrategy``, every GPU of one machine) and ``multi_worker``
(``tf.distribute.MultiWorkerMirroredStrategy``, several machines described by ``TF_CONFIG``). The
global batch stays ``fit.batch_size`` (each replica gets ``batch_size / replicas`` of it; gradients
are all-reduced, so with an even split a step is the single-device step on the same batch, except
that batch normalisation sees per-replica statistics). Every worker builds the same batches in the
same order (the (seed, epoch) order above) and keeps its replicas' share of each (auto-shard policy
DATA), so a step trains on exactly the global batch of the single-device run. Only the chief
(worker 0) writes into the output folder; the other workers write their copies to a temporary folder
they delete, as TensorFlow's multi-worker guide recommends (saving may involve collectives every
worker must join).
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from utils.errors import Task1aError
from utils.files import atomic_path, write_text_atomic

LOGGER = logging.getLogger(__name__)

PARAMETER_KEY = "learner_method_parameters.cnn"
MODEL_FILENAME = "model.keras"
CHECKPOINT_FILENAME = "checkpoint.npz"
TRAINING_LOG_FILENAME = "training_log.csv"
TRAINING_CURVES_FILENAME = "training_curves.png"
CHECKPOINT_FORMAT = 1
DISTRIBUTE_KEY = "learner.distribute"
DISTRIBUTE_CHOICES = ("none", "mirrored", "multi_worker")


# ----------------------------------------------------------------------------------------------
# Pure numeric helpers


def smooth_labels(y: np.ndarray, class_count: int, label_smoothing: float) -> np.ndarray:
    """Targets ``(n, class_count)`` float32: one-hot * (1 - label_smoothing) + label_smoothing / class_count.

    For 0.1 and 10 classes this is the official one-hot * 0.9 + 0.01; 0 gives plain one-hot.
    """
    y = np.asarray(y)
    if not 0.0 <= label_smoothing < 1.0:
        raise Task1aError(f"{PARAMETER_KEY}.fit.label_smoothing must be in [0, 1), got {label_smoothing!r}; fix the value")
    one_hot = np.eye(class_count, dtype=np.float32)[y]
    return (one_hot * np.float32(1.0 - label_smoothing) + np.float32(label_smoothing / class_count)).astype(np.float32)


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """Order ``(n,)`` in which epoch ``epoch`` (0-based) visits the training examples.

    Derived from (seed, epoch) alone, so a resumed run needs no saved shuffling state.
    """
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([seed, epoch]).permutation(n)


def classification_scores(y: np.ndarray, probabilities: np.ndarray) -> dict:
    """Accuracy, macro (class-wise averaged) accuracy and log loss of ``probabilities`` ``(n, n_classes)``.

    Rows are renormalised to sum to 1 first: float32 softmax rows (and dequantized int8 ones) miss 1 by
    more than scikit-learn's float64 tolerance.
    """
    from sklearn.metrics import accuracy_score, log_loss

    y = np.asarray(y)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    predicted = probabilities.argmax(axis=1)
    # Class-wise accuracy over the classes present (sklearn's balanced accuracy warns on the others).
    classwise = [float(np.mean(predicted[y == label] == label)) for label in np.unique(y)]
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "macro_accuracy": float(np.mean(classwise)),
        "log_loss": float(log_loss(y, probabilities, labels=np.arange(probabilities.shape[1]))),
    }


def first_selectable_epoch(epochs: int, initial_delay: int) -> tuple[int, str | None]:
    """First epoch (1-based) model selection considers, and a note when the delay had to be ignored.

    As the official StasherCallback, epochs 1..initial_delay are skipped. When the run is not longer
    than the delay, every epoch is considered instead of selecting nothing.
    """
    if epochs > initial_delay:
        return initial_delay + 1, None
    return 1, (
        f"model_selection.initial_delay ({initial_delay}) >= fit.epochs ({epochs}): "
        "the best epoch is selected over all epochs"
    )


def _is_better(value: float, best: float | None, mode: str) -> bool:
    if not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best if mode == "max" else value < best


# ----------------------------------------------------------------------------------------------
# Argument checks


def _check_int(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise Task1aError(f"{PARAMETER_KEY}.{key} must be an integer >= {minimum}, got {value!r}; fix the value")
    return value


def _check_parameters(parameters: dict) -> dict:
    """The settings train_model uses, validated; one-line error naming the key."""
    if not isinstance(parameters, dict):
        raise Task1aError(f"{PARAMETER_KEY} must be a mapping (model, compile, optimizer, fit, model_selection)")
    for section in ("model", "compile", "optimizer", "fit", "model_selection"):
        if not isinstance(parameters.get(section), dict):
            raise Task1aError(f"{PARAMETER_KEY}.{section} is missing or not a mapping; add it (see task1a.yaml)")
    fit, compile_, selection, optimizer = (parameters[k] for k in ("fit", "compile", "model_selection", "optimizer"))
    for key in ("epochs", "batch_size", "shuffle", "label_smoothing"):
        if key not in fit:
            raise Task1aError(f"{PARAMETER_KEY}.fit.{key} is missing; add it (see task1a.yaml)")
    if not isinstance(fit["shuffle"], bool):
        raise Task1aError(f"{PARAMETER_KEY}.fit.shuffle must be true or false, got {fit['shuffle']!r}")
    if isinstance(fit["label_smoothing"], bool) or not isinstance(fit["label_smoothing"], (int, float)):
        raise Task1aError(f"{PARAMETER_KEY}.fit.label_smoothing must be a number in [0, 1), got {fit['label_smoothing']!r}")
    metrics = compile_.get("metrics", [])
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise Task1aError(f"{PARAMETER_KEY}.compile.metrics must be a list of Keras metric names, got {metrics!r}")
    if not isinstance(compile_.get("loss"), str):
        raise Task1aError(f"{PARAMETER_KEY}.compile.loss must be a Keras loss name, got {compile_.get('loss')!r}")
    monitor = selection.get("monitor", "val_categorical_accuracy")
    known = ["val_loss"] + [f"val_{m}" for m in metrics]
    if monitor not in known:
        raise Task1aError(f"{PARAMETER_KEY}.model_selection.monitor {monitor!r} is not logged (known: {', '.join(known)}); fix the value")
    if not isinstance(optimizer.get("class_name"), str) or not isinstance(optimizer.get("config", {}), dict):
        raise Task1aError(f"{PARAMETER_KEY}.optimizer must have class_name (e.g. Adam) and a config mapping")
    return {
        "epochs": _check_int(fit["epochs"], "fit.epochs", 1),
        "batch_size": _check_int(fit["batch_size"], "fit.batch_size", 1),
        "shuffle": fit["shuffle"],
        "label_smoothing": float(fit["label_smoothing"]),
        "initial_delay": _check_int(selection.get("initial_delay", 0), "model_selection.initial_delay", 0),
        "monitor": monitor,
        "mode": "min" if monitor.endswith("loss") else "max",
        "loss": compile_["loss"],
        "metrics": metrics,
    }


def _check_arrays(X: Any, y: Any, name: str, class_count: int) -> np.ndarray:
    """Validate ``X`` ``(n, n_mels, n_frames)`` and ``y`` ``(n,)`` class indices; return y as int64."""
    shape = getattr(X, "shape", None)
    if shape is None or len(shape) != 3 or shape[0] == 0:
        raise Task1aError(f"{name} features must be an array of shape (n, n_mels, n_frames) with n > 0, got shape {shape}")
    y = np.asarray(y)
    if y.shape != (shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise Task1aError(f"{name} labels must be {shape[0]} integer class indices (one per example), got {y.dtype} {y.shape}")
    if y.min() < 0 or y.max() >= class_count:
        raise Task1aError(f"{name} labels must be class indices in [0, {class_count}), got {y.min()}..{y.max()}")
    return y.astype(np.int64)


# ----------------------------------------------------------------------------------------------
# Data feeding


def batch_dataset(X: Any, targets: np.ndarray, order: np.ndarray, batch_size: int):
    """A ``tf.data.Dataset`` of ``(features (b, n_mels, n_frames, 1) float32, targets (b, n_classes))`` batches.

    Reads ``X[order[i:i + batch_size]]`` one batch at a time (a memmap stays on disk) and prefetches
    the next batch while the current one trains.
    """
    import tensorflow as tf

    _, n_mels, n_frames = X.shape
    class_count = targets.shape[1]
    batch_count = math.ceil(len(order) / batch_size)

    def batches():
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            yield np.asarray(X[indices], dtype=np.float32)[..., np.newaxis], targets[indices]

    dataset = tf.data.Dataset.from_generator(
        batches,
        output_signature=(
            tf.TensorSpec((None, n_mels, n_frames, 1), tf.float32),
            tf.TensorSpec((None, class_count), tf.float32),
        ),
    )
    # Under a tf.distribute strategy each global batch is split into per-replica batches and each
    # worker keeps its own (DATA): every worker runs this same generator in the same order. FILE
    # sharding has no files to split here; OFF would train every worker on the whole global batch.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    dataset = dataset.with_options(options)
    return dataset.apply(tf.data.experimental.assert_cardinality(batch_count)).prefetch(tf.data.AUTOTUNE)


def predict_proba(model, X: Any, batch_size: int) -> np.ndarray:
    """Class probabilities ``(n, n_classes)`` float64 of a Keras model for ``X`` ``(n, n_mels, n_frames)``, in chunks."""
    chunks = [
        model.predict_on_batch(np.asarray(X[start : start + batch_size], dtype=np.float32)[..., np.newaxis])
        for start in range(0, X.shape[0], batch_size)
    ]
    return np.concatenate(chunks).astype(np.float64)


def _progress_callback(epoch_count: int, step_count: int):
    """A tqdm bar per epoch showing the running loss/accuracy, then the validation figures."""
    import keras
    from tqdm.auto import tqdm

    class EpochProgress(keras.callbacks.Callback):
        async_safe = True  # only draws; lets Keras dispatch batch ends without waiting

        def on_epoch_begin(self, epoch, logs=None):
            self.bar = tqdm(total=step_count, desc=f"epoch {epoch + 1}/{epoch_count}", unit="batch", leave=True)
            self.last_postfix = 0.0

        def on_train_batch_end(self, batch, logs=None):
            self.bar.update(1)
            now = time.monotonic()
            if logs and now - self.last_postfix > self.bar.mininterval:
                self.bar.set_postfix({k: f"{float(v):.4f}" for k, v in logs.items()}, refresh=False)
                self.last_postfix = now

        def on_epoch_end(self, epoch, logs=None):
            self.bar.set_postfix({k: f"{float(v):.4f}" for k, v in (logs or {}).items()}, refresh=False)
            self.bar.close()

    return EpochProgress()


# ----------------------------------------------------------------------------------------------
# Distribution

_STRATEGIES: dict = {}  # one strategy per process: MultiWorkerMirroredStrategy may be created only once


def _check_tf_config() -> dict:
    """The ``TF_CONFIG`` cluster description multi-worker training needs, validated."""
    raw = os.environ.get("TF_CONFIG")
    example = '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
    if not raw:
        raise Task1aError(f"{DISTRIBUTE_KEY} multi_worker needs the TF_CONFIG environment variable on every worker, e.g. TF_CONFIG='{example}'")
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task_type, task_index = config["task"]["type"], int(config["task"]["index"])
        if not isinstance(workers, list) or not workers or task_type not in config["cluster"] or task_index >= len(config["cluster"][task_type]):
            raise ValueError("the task is not in the cluster")
    except (ValueError, KeyError, TypeError) as exc:
        raise Task1aError(f"TF_CONFIG is not a valid cluster description ({exc}); set it as {example} (this worker's index in task)") from None
    return config


def distribution_strategy(distribute: str):
    """The ``tf.distribute`` strategy of ``learner.distribute``: None for ``none``, else created once per process.

    ``mirrored``: MirroredStrategy over every visible GPU (the CPU when there is none);
    ``multi_worker``: MultiWorkerMirroredStrategy over the cluster in ``TF_CONFIG`` (NCCL between
    GPUs, ring all-reduce over gRPC between CPUs, chosen by TensorFlow).
    """
    if distribute not in DISTRIBUTE_CHOICES:
        raise Task1aError(f"{DISTRIBUTE_KEY} must be one of {', '.join(DISTRIBUTE_CHOICES)}, got {distribute!r}; fix task1a.yaml")
    if distribute == "none":
        return None
    if distribute not in _STRATEGIES:
        import tensorflow as tf

        if distribute == "mirrored":
            _STRATEGIES[distribute] = tf.distribute.MirroredStrategy()
        else:
            _check_tf_config()
            _fix_keras_multi_worker_step_logs()
            try:
                _STRATEGIES[distribute] = tf.distribute.MultiWorkerMirroredStrategy()
            except RuntimeError as exc:  # "Collective ops must be configured at program startup"
                raise Task1aError(f"{DISTRIBUTE_KEY} multi_worker: {str(exc).splitlines()[0]}; run the training in a fresh process (TensorFlow must not have run anything before)") from exc
        LOGGER.info("%s: %d replicas in sync", distribute, _STRATEGIES[distribute].num_replicas_in_sync)
    return _STRATEGIES[distribute]


def _fix_keras_multi_worker_step_logs() -> None:
    """Make Keras' per-step log reduction work across workers (once per process).

    Keras 3 (3.15) averages a training step's logs over the replicas of a multi-worker cluster with
    ``strategy.reduce("MEAN", value, axis=0)``, which fails for the scalar logs every step returns
    ("Invalid reduction dimension 0 for input with 0 dimensions"), so ``fit`` cannot run. A scalar is
    averaged with ``axis=None`` here (the mean over replicas Keras means); everything else goes to
    Keras unchanged.
    """
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as keras_trainer

    keras_reduce = keras_trainer.reduce_per_replica
    if getattr(keras_reduce, "task1a_fixed", False):
        return

    def scalar_mean(value, strategy):
        local = strategy.experimental_local_results(value)[0] if isinstance(value, tf.distribute.DistributedValues) else value
        if getattr(local, "shape", None) is not None and local.shape.rank == 0:
            return strategy.reduce("MEAN", value, axis=None)
        return keras_reduce(value, strategy, reduction="auto")

    def reduce_per_replica(values, strategy, reduction):
        if reduction == "auto" and keras_trainer._collective_all_reduce_multi_worker(strategy):
            return tf.nest.map_structure(lambda value: scalar_mean(value, strategy), values)
        return keras_reduce(values, strategy, reduction)

    reduce_per_replica.task1a_fixed = True
    keras_trainer.reduce_per_replica = reduce_per_replica


def _batch_normalization_layers(layer) -> list:
    """Every BatchNormalization layer in ``layer`` (nested models included)."""
    import keras

    found = [layer] if isinstance(layer, keras.layers.BatchNormalization) else []
    for child in getattr(layer, "layers", []):
        found += _batch_normalization_layers(child)
    return found


def is_chief(strategy) -> bool:
    """Whether this process writes the outputs: always, except on a multi-worker cluster's non-chief workers.

    TensorFlow's rule: the ``chief`` task, or worker 0 when the cluster has no ``chief``.
    """
    resolver = getattr(strategy, "cluster_resolver", None) if strategy is not None else None
    cluster = resolver.cluster_spec().as_dict() if resolver is not None else {}
    if not cluster:
        return True
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in cluster)


def is_chief_worker(distribute: str) -> bool:
    """:func:`is_chief` for a ``learner.distribute`` value (what ``task1a.py`` asks before the later stages)."""
    return is_chief(distribution_strategy(distribute))


def _workers_agree(strategy, value: int) -> bool:
    """Whether every replica of every worker holds the same ``value`` (an all-gather; all workers must call it)."""
    import tensorflow as tf

    values = strategy.experimental_distribute_values_from_function(lambda context: tf.constant([value], dtype=tf.int64))
    gathered = strategy.gather(values, axis=0).numpy()
    return bool(np.all(gathered == gathered[0]))


def _checkpoint_code(path: Path) -> int:
    """A checksum of the checkpoint this worker would resume from (0: none)."""
    return zlib.crc32(path.read_bytes()) + 1 if path.is_file() else 0


# ----------------------------------------------------------------------------------------------
# Checkpoints


def _fingerprint(parameters: dict, seed: int, X_train, y_train, X_val, y_val, class_count: int) -> str:
    """What a checkpoint must share with the run resuming it: parameters (except the number of
    epochs and the selection delay, which a resume may change), seed and the data's identity."""
    kept = copy.deepcopy(parameters)
    kept.get("fit", {}).pop("epochs", None)
    kept.get("model_selection", {}).pop("initial_delay", None)
    kept.pop("iterations", None)
    digest = hashlib.sha256(json.dumps([kept, seed, class_count], sort_keys=True, default=str).encode())
    for X, y in ((X_train, y_train), (X_val, y_val)):
        if X is None:
            digest.update(b"none")
            continue
        digest.update(repr(tuple(X.shape)).encode())
        digest.update(np.ascontiguousarray(y).tobytes())
        digest.update(np.asarray(X[0], dtype=np.float32).tobytes())
        digest.update(np.asarray(X[X.shape[0] - 1], dtype=np.float32).tobytes())
    return digest.hexdigest()


def save_checkpoint(path: Path, model, state: dict, best_weights: list | None) -> None:
    """Write model variables (seed generators included), optimizer variables, best weights and ``state`` atomically."""
    arrays = {f"model_{i}": v.numpy() for i, v in enumerate(model.variables)}
    arrays.update({f"optimizer_{i}": v.numpy() for i, v in enumerate(model.optimizer.variables)})
    arrays.update({f"best_{i}": np.asarray(w) for i, w in enumerate(best_weights or [])})
    arrays["state"] = np.array(json.dumps(state))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)


def load_checkpoint(path: Path) -> tuple[dict, list, list, list]:
    """(state, model variable values, optimizer variable values, best weights) of a checkpoint."""
    try:
        with np.load(path, allow_pickle=False) as data:
            state = json.loads(str(data["state"]))

            def group(prefix: str) -> list:
                count = sum(1 for key in data.files if key.startswith(prefix))
                return [data[f"{prefix}{i}"] for i in range(count)]

            return state, group("model_"), group("optimizer_"), group("best_")
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise Task1aError(f"checkpoint {path} is unreadable ({exc}); delete it to start the training over") from exc


def _assign(variables, values, what: str) -> None:
    if len(variables) != len(values) or any(tuple(v.shape) != tuple(a.shape) for v, a in zip(variables, values)):
        raise ValueError(f"{what} in the checkpoint do not match the model")
    for variable, value in zip(variables, values):
        variable.assign(value)


def _resume_state(path: Path, model, fingerprint: str, epochs: int, first_selectable: int, mode: str, monitor: str):
    """Restore a checkpoint into ``model``; return (state, best weights) or (None, None) to start over."""
    if not path.is_file():
        return None, None
    state, model_values, optimizer_values, best_weights = load_checkpoint(path)
    if state.get("format") != CHECKPOINT_FORMAT or state.get("fingerprint") != fingerprint:
        LOGGER.warning("checkpoint %s was made with other parameters or data; training starts over", path)
        return None, None
    if state["epoch"] > epochs:
        LOGGER.warning("checkpoint %s is at epoch %d, beyond fit.epochs %d; training starts over", path, state["epoch"], epochs)
        return None, None
    if state["first_selectable_epoch"] != first_selectable:
        # The selection rule changed (other delay or epochs): the best epoch under the new rule must be
        # the one whose weights the checkpoint holds, or no epoch may be selectable yet.
        candidates = [row for row in state["history"] if row["epoch"] >= first_selectable and math.isfinite(row[monitor])]
        best_row = None
        for row in candidates:
            if best_row is None or _is_better(row[monitor], best_row[monitor], mode):
                best_row = row
        if best_row is None:
            state.update(best_epoch=None, best_value=None)
            best_weights = []
        elif best_row["epoch"] != state["best_epoch"]:
            LOGGER.warning("checkpoint %s lacks the weights of epoch %d selected by the new delay; training starts over", path, best_row["epoch"])
            return None, None
        state["first_selectable_epoch"] = first_selectable
    try:
        _assign(model.variables, model_values, "model variables")
        _assign(model.optimizer.variables, optimizer_values, "optimizer variables")
    except ValueError as exc:
        LOGGER.warning("checkpoint %s: %s; training starts over", path, exc)
        return None, None
    LOGGER.info("resuming from %s after epoch %d", path, state["epoch"])
    return state, (best_weights or None)


# ----------------------------------------------------------------------------------------------
# Outputs


def _write_training_log(path: Path, history: list[dict]) -> None:
    import pandas as pd

    write_text_atomic(path, pd.DataFrame(history).to_csv(index=False, float_format="%.6g"))


def plot_training_curves(path: Path, history: list[dict], metric: str, selected_epoch: int | None, first_selectable: int) -> None:
    """Loss and ``metric`` per epoch, training vs validation, with the selected epoch marked (PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    epochs = [row["epoch"] for row in history]
    figure = Figure(figsize=(10, 4), layout="constrained")
    FigureCanvasAgg(figure)
    for axis, name in zip(figure.subplots(1, 2), dict.fromkeys(("loss", metric))):
        # Training loss is on label-smoothed targets, so it does not fall as low as the validation loss.
        training_label = "training loss (smoothed targets)" if name == "loss" else f"training {name}"
        axis.plot(epochs, [row[name] for row in history], label=training_label)
        if f"val_{name}" in history[0]:
            axis.plot(epochs, [row[f"val_{name}"] for row in history], label=f"validation {name}")
        if first_selectable > 1:
            axis.axvspan(0.5, first_selectable - 0.5, color="0.9", label="not selectable (initial delay)")
        if selected_epoch is not None:
            axis.axvline(selected_epoch, color="k", linestyle="--", label=f"selected epoch {selected_epoch}")
        axis.set_xlabel("epoch")
        axis.set_ylabel(name)
        axis.legend(fontsize="small")
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)


# ----------------------------------------------------------------------------------------------
# The stage


def train_model(
    parameters: dict,
    X_train: Any,
    y_train: Any,
    X_val: Any,
    y_val: Any,
    output_dir: str | Path,
    seed: int = 0,
    deterministic: bool = False,
    progress: bool = True,
    class_count: int = 10,
    callbacks: Sequence = (),
    distribute: str = "none",
) -> dict:
    """Train one model (``parameters`` is the ``learner_method_parameters.cnn`` block) and keep its best epoch.

    ``X_train`` ``(n, n_mels, n_frames)`` float32 array-like (a memmap is read batch by batch),
    ``y_train`` ``(n,)`` class indices; the same for the validation split (``X_val=None``: no
    validation, the last epoch is kept). Writes to ``output_dir``: ``model.keras`` (the selected
    weights), ``checkpoint.npz`` (after every epoch; a rerun resumes from it), ``training_log.csv``
    and ``training_curves.png``. ``callbacks`` are extra Keras callbacks (run after the stage's own).
    ``distribute`` is ``learner.distribute`` (``none``, ``mirrored``, ``multi_worker``; see the module
    docstring): on a multi-worker cluster every worker calls this with the same arguments; only the
    chief writes ``output_dir`` (the others write to a temporary folder they delete) and resumes
    from ``output_dir/checkpoint.npz`` when every worker sees the same file there (a shared folder).

    Returns paths, the selected epoch, the selected model's validation accuracy and log loss, and
    ``chief`` (whether this process wrote the outputs).
    """
    import keras

    from utils.model import build_model, set_seeds

    settings = _check_parameters(parameters)
    strategy = distribution_strategy(distribute)
    y_train = _check_arrays(X_train, y_train, "training", class_count)
    has_validation = X_val is not None
    if has_validation:
        y_val = _check_arrays(X_val, y_val, "validation", class_count)
        if tuple(X_val.shape[1:]) != tuple(X_train.shape[1:]):
            raise Task1aError(f"validation features have shape {tuple(X_val.shape[1:])} per example, training {tuple(X_train.shape[1:])}; use one feature store")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "model": output_dir / MODEL_FILENAME,
        "checkpoint": output_dir / CHECKPOINT_FILENAME,
        "training_log": output_dir / TRAINING_LOG_FILENAME,
        "training_curves": output_dir / TRAINING_CURVES_FILENAME,
    }
    epochs, batch_size, monitor, mode = settings["epochs"], settings["batch_size"], settings["monitor"], settings["mode"]
    if has_validation:
        first_selectable, note = first_selectable_epoch(epochs, settings["initial_delay"])
    else:
        first_selectable, note = epochs, "no validation split: the last epoch is kept"
    if note:
        LOGGER.warning(note)
    chief = is_chief(strategy)
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    if batch_size % replicas:
        LOGGER.warning("fit.batch_size %d is not a multiple of the %d replicas: replicas get unequal parts of each batch (the gradient is then a mean of their means)", batch_size, replicas)
    # A non-chief worker writes what the chief writes (saving may involve collectives every worker
    # must join) into its own temporary folder.
    write_dir = output_dir if chief else Path(tempfile.mkdtemp(prefix="task1a_worker_"))
    if not chief:
        atexit.register(shutil.rmtree, write_dir, True)  # also when the training fails
    checkpoint_out = write_dir / CHECKPOINT_FILENAME

    set_seeds(seed, deterministic)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        model = build_model(parameters["model"], input_shape=(*X_train.shape[1:], 1), class_count=class_count)
        try:
            optimizer = keras.optimizers.get({"class_name": parameters["optimizer"]["class_name"], "config": parameters["optimizer"].get("config", {})})
        except (ValueError, TypeError) as exc:
            raise Task1aError(f"{PARAMETER_KEY}.optimizer: {str(exc).splitlines()[0]}; fix class_name or config") from exc
        try:
            model.compile(optimizer=optimizer, loss=settings["loss"], metrics=settings["metrics"])
        except (ValueError, TypeError) as exc:
            raise Task1aError(f"{PARAMETER_KEY}.compile: {str(exc).splitlines()[0]}; fix loss or metrics") from exc
        model.optimizer.build(model.trainable_variables)  # so a checkpoint's optimizer state can be restored
    # Batch normalisation over the global batch, as on one device: Keras' default takes each replica's
    # statistics and updates each replica's moving averages from its own share (aggregation "none"),
    # so replicas would end with different moving statistics (and a replica whose share of a last
    # batch is empty with NaN ones). Synchronised, every replica computes the same statistics.
    # Switched back before saving: the saved model is the single-device model.
    synchronized_layers = _batch_normalization_layers(model) if strategy is not None else []
    for layer in synchronized_layers:
        layer.synchronized = True
    if distribute == "multi_worker":
        # Keras 3.15 fit()/evaluate() first reduce a whole (x, y) batch with strategy.reduce to learn
        # its shapes, which MultiWorkerMirroredStrategy cannot do for a nested value across workers
        # ("Attempt to convert a value (PerReplica...)"). Without its own strategy the model defers
        # that build to tracing (Keras' compatibility path) and takes the strategy of the scope fit()
        # runs in, below.
        model._distribute_strategy = None
    fit_scope = strategy.scope if distribute == "multi_worker" else contextlib.nullcontext

    fingerprint = _fingerprint(parameters, seed, X_train, y_train, X_val if has_validation else None, y_val if has_validation else None, class_count)
    if strategy is not None:  # a checkpoint of another layout of replicas is not resumed
        fingerprint = hashlib.sha256(f"{fingerprint} {distribute} {replicas}".encode()).hexdigest()
    resumable = True
    if distribute == "multi_worker" and not _workers_agree(strategy, _checkpoint_code(paths["checkpoint"])):
        LOGGER.warning("the workers do not all see the same %s (the output folder must be shared to resume multi-worker training); training starts over", paths["checkpoint"])
        resumable = False
    state, best_weights = (None, None)
    if resumable:
        state, best_weights = _resume_state(paths["checkpoint"], model, fingerprint, epochs, first_selectable, mode, monitor)
    if state is None:
        state = {"format": CHECKPOINT_FORMAT, "fingerprint": fingerprint, "epoch": 0, "history": [], "best_epoch": None, "best_value": None, "first_selectable_epoch": first_selectable}
        best_weights = None

    train_targets = smooth_labels(y_train, class_count, settings["label_smoothing"])
    validation = None
    if has_validation:
        validation = batch_dataset(X_val, smooth_labels(y_val, class_count, 0.0), np.arange(len(y_val)), batch_size)
    step_count = math.ceil(len(y_train) / batch_size)
    own_callbacks = [_progress_callback(epochs, step_count)] if progress else []

    # One fit call per epoch: the epoch's batches come from its own (seed, epoch) order, which makes
    # resuming exact whatever Keras does with dataset iterators between epochs.
    for epoch in range(state["epoch"], epochs):
        started = time.monotonic()
        order = epoch_order(len(y_train), seed, epoch, settings["shuffle"])
        with fit_scope():
            history = model.fit(
                batch_dataset(X_train, train_targets, order, batch_size),
                validation_data=validation,
                initial_epoch=epoch,
                epochs=epoch + 1,
                shuffle=False,  # the order is the epoch's own (see epoch_order)
                verbose=0,
                callbacks=[*own_callbacks, *callbacks],
            )
        logs = {name: float(values[-1]) for name, values in history.history.items()}
        epoch_number = epoch + 1
        if epoch_number >= first_selectable and (not has_validation or _is_better(logs.get(monitor, math.nan), state["best_value"], mode)):
            state["best_epoch"], state["best_value"] = epoch_number, logs.get(monitor)
            best_weights = model.get_weights()
        state["history"].append({"epoch": epoch_number, **logs, "seconds": round(time.monotonic() - started, 3), "best_epoch": state["best_epoch"]})
        state["epoch"] = epoch_number
        save_checkpoint(checkpoint_out, model, state, best_weights)
        if chief:
            _write_training_log(paths["training_log"], state["history"])
        if model.stop_training:  # an extra callback (e.g. early stopping) asked to stop
            break

    if best_weights is None:
        LOGGER.warning("no epoch had a finite %s; the last epoch's weights are kept", monitor)
        state["best_epoch"] = state["epoch"]
    else:
        model.set_weights(best_weights)
    for layer in synchronized_layers:
        layer.synchronized = False
    with atomic_path(write_dir / MODEL_FILENAME) as tmp:
        model.save(tmp)
    if strategy is not None:
        # The model without the strategy (built outside its scope): what testing and export use.
        model = keras.models.load_model(write_dir / MODEL_FILENAME)
    if chief:
        _write_training_log(paths["training_log"], state["history"])
        metric = settings["metrics"][0] if settings["metrics"] else "loss"
        plot_training_curves(paths["training_curves"], state["history"], metric, state["best_epoch"], first_selectable)
    else:
        shutil.rmtree(write_dir, ignore_errors=True)

    result = {
        "model_path": paths["model"],
        "checkpoint_path": paths["checkpoint"],
        "training_log_path": paths["training_log"],
        "training_curves_path": paths["training_curves"],
        "epochs_trained": state["epoch"],
        "best_epoch": state["best_epoch"],
        "monitor": monitor,
        "best_monitor_value": state["best_value"],
        "first_selectable_epoch": first_selectable,
        "selection_note": note,
        "model": model,
        "history": state["history"],
        "chief": chief,
        "replicas": replicas,
    }
    if has_validation:
        scores = classification_scores(y_val, predict_proba(model, X_val, batch_size=batch_size))
        result.update(val_accuracy=scores["accuracy"], val_macro_accuracy=scores["macro_accuracy"], val_log_loss=scores["log_loss"])
    return result
