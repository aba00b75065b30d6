"""Learning: train the CNN with one Keras ``fit``, keep the best validation epoch, resume exactly.

What the official baseline does, kept: the YAML's optimizer and loss (Adam 0.001, categorical
cross-entropy), label smoothing on the training targets only (one-hot * 0.9 + 0.01 for 0.1),
shuffled mini-batches, and model selection on the best validation categorical accuracy as dcase_util's
StasherCallback counts it (:func:`first_selectable_epoch`), restored at the end.

How it runs: one ``model.fit`` over all epochs. The batches of an epoch come from its own (seed,
epoch) order (:class:`EpochFeed`, a ``tf.data`` pipeline re-read every epoch), so a killed run
resumes with exactly the batches an uninterrupted run would see. Everything between epochs is a
Keras callback: best-epoch selection (:class:`BestEpochSelection`), the checkpoint after every epoch
(:class:`TrainingCheckpoint`: model variables including the dropout seed generators, optimizer state,
history, best weights), one log line per epoch (:class:`EpochLog`), one progress bar over the epochs
(:class:`EpochProgress`). Users add any Keras callback in YAML (``fit.callbacks``); on resume they are
shown the epochs already trained (``on_epoch_end`` with the logged figures), so an ``EarlyStopping``
or ``ReduceLROnPlateau`` continues with the state it had. ``fit.steps_per_execution`` runs several
steps per call into TensorFlow (same updates, less Python per step).

Features are fed batch by batch from array-likes (numpy memmaps of the feature store included); the
training set is never copied whole. Distribution (``learner.distribute``) is :mod:`utils.distribute`.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib
import json
import logging
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from utils import distribute as dist
from utils.errors import Task1aError
from utils.files import atomic_path, write_text_atomic

LOGGER = logging.getLogger(__name__)

PARAMETER_KEY = "learner_method_parameters.cnn"
MODEL_FILENAME = "model.keras"
CHECKPOINT_FILENAME = "checkpoint.npz"
TRAINING_LOG_FILENAME = "training_log.csv"
TRAINING_CURVES_FILENAME = "training_curves.png"
TENSORBOARD_DIRNAME = "tensorboard"
CHECKPOINT_FORMAT = 2
# Columns of a history row that are ours, not Keras' logs.
OWN_COLUMNS = ("epoch", "seconds", "best_epoch")
# Keras callback arguments that name a file or folder: a relative one is put in the model folder.
PATH_ARGUMENTS = ("filename", "filepath", "log_dir", "backup_dir")
# Settings that change how fast training runs or what it logs, never its result: out of the checkpoint fingerprint.
_NOT_FINGERPRINTED = (("fit", "epochs"), ("fit", "steps_per_execution"), ("fit", "tensorboard"), ("model_selection", "initial_delay"), ("iterations",))


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
    """First epoch (1-based) model selection considers, and a note when the delay leaves only the last one.

    As dcase_util's StasherCallback: it sees the 0-based epoch index and considers an epoch only when
    that index is greater than ``initial_delay``, so a delay of 50 makes the 52nd epoch the first
    candidate. A delay at or beyond the last index leaves the last epoch, not none.
    """
    first = initial_delay + 2
    if first <= epochs:
        return first, None
    return epochs, (
        f"model_selection.initial_delay ({initial_delay}) is at or beyond the last epoch index ({epochs - 1}): "
        "only the last epoch can be selected"
    )


def is_better(value: float, best: float | None, mode: str) -> bool:
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best if mode == "max" else value < best


# ----------------------------------------------------------------------------------------------
# Settings: the application's keys strictly, Keras configs passed to Keras


def _check_int(value: Any, key: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise Task1aError(f"{PARAMETER_KEY}.{key} must be an integer >= {minimum}, got {value!r}; fix the value")
    return value


def _keras_error(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def build_optimizer(config: Any):
    """A Keras optimizer from ``{class_name, config}`` (any Keras optimizer and argument), validated by Keras."""
    import keras

    key = f"{PARAMETER_KEY}.optimizer"
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str) or not isinstance(config.get("config", {}), dict):
        raise Task1aError(f"{key} must be {{class_name: Adam, config: {{learning_rate: 0.001, ...}}}}, got {config!r}; fix the value")
    try:
        return keras.optimizers.get({"class_name": config["class_name"], "config": dict(config.get("config") or {})})
    except (ValueError, TypeError, KeyError) as exc:
        raise Task1aError(f"{key}: {_keras_error(exc)}; fix class_name or config (any keras.optimizers class and its arguments)") from None


def build_loss(config: Any):
    """A Keras loss from a name or ``{class_name, config}``, validated by Keras."""
    import keras

    key = f"{PARAMETER_KEY}.compile.loss"
    if not isinstance(config, (str, dict)) or (isinstance(config, dict) and not isinstance(config.get("class_name"), str)):
        raise Task1aError(f"{key} must be a Keras loss name or {{class_name, config}}, got {config!r}; fix the value")
    try:
        loss = keras.losses.get(config if isinstance(config, str) else {"class_name": config["class_name"], "config": dict(config.get("config") or {})})
    except (ValueError, TypeError, KeyError) as exc:
        raise Task1aError(f"{key}: {_keras_error(exc)}; fix the loss (any keras.losses name or class and its arguments)") from None
    if loss is None:
        raise Task1aError(f"{key}: unknown loss {config!r}; use a keras.losses name or class")
    return loss


def _callback_class(class_name: str, key: str):
    import keras

    if "." in class_name:  # a user's own callback: package.module.ClassName
        module_name, _, attribute = class_name.rpartition(".")
        try:
            found = getattr(importlib.import_module(module_name), attribute, None)
        except ImportError as exc:
            raise Task1aError(f"{key}.class_name: cannot import {module_name} ({exc}); fix the module path") from None
    else:
        found = getattr(keras.callbacks, class_name, None)
    if not (isinstance(found, type) and issubclass(found, keras.callbacks.Callback)):
        raise Task1aError(f"{key}.class_name: {class_name!r} is not a Keras callback; use a class of keras.callbacks or package.module.Class")
    return found


def build_callbacks(configs: Any, folder: Path | None = None) -> list:
    """Keras callbacks from ``fit.callbacks`` (a list of ``{class_name, config}``), validated by Keras.

    A relative file or folder argument (``filename``, ``filepath``, ``log_dir``, ``backup_dir``) is
    taken inside ``folder`` (the model folder), so a callback's files land beside the model.
    """
    key = f"{PARAMETER_KEY}.fit.callbacks"
    if not isinstance(configs, list):
        raise Task1aError(f"{key} must be a list of {{class_name, config}}, got {configs!r}; fix the value")
    callbacks = []
    for index, item in enumerate(configs):
        where = f"{key}[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("class_name"), str) or not isinstance(item.get("config", {}) or {}, dict) or set(item) - {"class_name", "config"}:
            raise Task1aError(f"{where} must be {{class_name: EarlyStopping, config: {{...}}}}, got {item!r}; fix the value")
        config = dict(item.get("config") or {})
        if folder is not None:
            for name in PATH_ARGUMENTS:
                if isinstance(config.get(name), str) and not Path(config[name]).expanduser().is_absolute():
                    config[name] = str(Path(folder) / config[name])
        klass = _callback_class(item["class_name"], where)
        try:
            callbacks.append(klass(**config))
        except (ValueError, TypeError, KeyError) as exc:
            raise Task1aError(f"{where}.config: {_keras_error(exc)}; fix the arguments of {item['class_name']}") from None
    return callbacks


def check_settings(parameters: dict) -> dict:
    """The settings :func:`train_model` uses, validated (Keras configs by building them); one-line error naming the key."""
    if not isinstance(parameters, dict):
        raise Task1aError(f"{PARAMETER_KEY} must be a mapping (model, compile, optimizer, fit, model_selection)")
    for section in ("model", "compile", "optimizer", "fit", "model_selection"):
        if not isinstance(parameters.get(section), dict):
            raise Task1aError(f"{PARAMETER_KEY}.{section} is missing or not a mapping; add it (see task1a.yaml)")
    fit, compile_, selection = (parameters[k] for k in ("fit", "compile", "model_selection"))
    for key in ("epochs", "batch_size", "shuffle", "label_smoothing"):
        if key not in fit:
            raise Task1aError(f"{PARAMETER_KEY}.fit.{key} is missing; add it (see task1a.yaml)")
    if not isinstance(fit["shuffle"], bool):
        raise Task1aError(f"{PARAMETER_KEY}.fit.shuffle must be true or false, got {fit['shuffle']!r}")
    if isinstance(fit["label_smoothing"], bool) or not isinstance(fit["label_smoothing"], (int, float)) or not 0 <= fit["label_smoothing"] < 1:
        raise Task1aError(f"{PARAMETER_KEY}.fit.label_smoothing must be a number in [0, 1), got {fit['label_smoothing']!r}")
    metrics = compile_.get("metrics", [])
    if not isinstance(metrics, list) or not all(isinstance(m, str) for m in metrics):
        raise Task1aError(f"{PARAMETER_KEY}.compile.metrics must be a list of Keras metric names, got {metrics!r}")
    monitor = selection.get("monitor", "val_categorical_accuracy")
    known = ["val_loss"] + [f"val_{m}" for m in metrics]
    if monitor not in known:
        raise Task1aError(f"{PARAMETER_KEY}.model_selection.monitor {monitor!r} is not logged (known: {', '.join(known)}); fix the value")
    if not isinstance(fit.get("tensorboard", False), bool):
        raise Task1aError(f"{PARAMETER_KEY}.fit.tensorboard must be true or false, got {fit['tensorboard']!r}")
    build_optimizer(parameters["optimizer"])
    build_loss(compile_.get("loss"))
    build_callbacks(fit.get("callbacks", []))
    batch_size = _check_int(fit["batch_size"], "fit.batch_size", 1)
    return {
        "epochs": _check_int(fit["epochs"], "fit.epochs", 1),
        "batch_size": batch_size,
        "validation_batch_size": _check_int(fit.get("validation_batch_size", batch_size), "fit.validation_batch_size", 1),
        "steps_per_execution": _check_int(fit.get("steps_per_execution", 1), "fit.steps_per_execution", 1),
        "shuffle": fit["shuffle"],
        "label_smoothing": float(fit["label_smoothing"]),
        "tensorboard": fit.get("tensorboard", False),
        "initial_delay": _check_int(selection.get("initial_delay", 0), "model_selection.initial_delay", 0),
        "monitor": monitor,
        "mode": "min" if monitor.endswith("loss") else "max",
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


class EpochFeed:
    """The batches of one epoch, ``(features (b, n_mels, n_frames, 1) float32, targets (b, n_classes))``, in its (seed, epoch) order.

    :meth:`dataset` is a ``tf.data.Dataset`` that ``fit`` re-reads every epoch; each reading takes
    the order of :attr:`epoch` (set by :meth:`callback` at the start of every epoch). ``X[indices]``
    is read one batch at a time (a memmap stays on disk) and the next batch is prefetched while the
    current one trains. ``replicas``: see :func:`utils.distribute.batch_bounds`.
    """

    def __init__(self, X: Any, targets: np.ndarray, batch_size: int, seed: int = 0, shuffle: bool = False, replicas: int = 1):
        self.X, self.targets, self.seed, self.shuffle = X, targets, seed, shuffle
        self.bounds = dist.batch_bounds(len(targets), batch_size, replicas)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.bounds)

    def batches(self, epoch: int | None = None):
        """The batches of ``epoch`` (default :attr:`epoch`) as numpy arrays."""
        order = epoch_order(len(self.targets), self.seed, self.epoch if epoch is None else epoch, self.shuffle)
        for start, stop in self.bounds:
            indices = order[start:stop]
            yield np.asarray(self.X[indices], dtype=np.float32)[..., np.newaxis], self.targets[indices]

    def dataset(self):
        import tensorflow as tf

        _, n_mels, n_frames = self.X.shape
        dataset = tf.data.Dataset.from_generator(
            self.batches,
            output_signature=(tf.TensorSpec((None, n_mels, n_frames, 1), tf.float32), tf.TensorSpec((None, self.targets.shape[1]), tf.float32)),
        )
        # Under a tf.distribute strategy each global batch is split into per-replica batches and each
        # worker keeps its own (DATA): every worker runs this same generator in the same order.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return dataset.with_options(options).apply(tf.data.experimental.assert_cardinality(len(self))).prefetch(tf.data.AUTOTUNE)

    def callback(self):
        """A Keras callback that points the feed at each epoch as it begins."""
        import keras

        feed = self

        class FeedEpoch(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                feed.epoch = epoch

        return FeedEpoch()


def predict_proba(model, X: Any, batch_size: int) -> np.ndarray:
    """Class probabilities ``(n, n_classes)`` float64 of a Keras model for ``X`` ``(n, n_mels, n_frames)``, in chunks."""
    chunks = [
        model.predict_on_batch(np.asarray(X[start : start + batch_size], dtype=np.float32)[..., np.newaxis])
        for start in range(0, X.shape[0], batch_size)
    ]
    return np.concatenate(chunks).astype(np.float64)


# ----------------------------------------------------------------------------------------------
# Checkpoints


def _fingerprint(parameters: dict, seed: int, X_train, y_train, X_val, y_val, class_count: int) -> str:
    """What a checkpoint must share with the run resuming it: parameters (except those a resume may
    change, :data:`_NOT_FINGERPRINTED`), seed and the data's identity."""
    kept = copy.deepcopy(parameters)
    for path in _NOT_FINGERPRINTED:
        node = kept
        for key in path[:-1]:
            node = node.get(key, {})
        node.pop(path[-1], None)
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


def save_checkpoint(path: Path, model_values: list, optimizer_values: list, state: dict, best_weights: list | None) -> None:
    """Write model variable values (seed generators included), optimizer variable values, best weights and ``state`` atomically."""
    arrays = {f"model_{i}": np.asarray(v) for i, v in enumerate(model_values)}
    arrays.update({f"optimizer_{i}": np.asarray(v) for i, v in enumerate(optimizer_values)})
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


def _usable_checkpoint(path: Path, fingerprint: str, epochs: int, first_selectable: int, mode: str, monitor: str):
    """``(state, model values, optimizer values, best weights)`` of a checkpoint this run may resume, else None."""
    if not path.is_file():
        return None
    state, model_values, optimizer_values, best_weights = load_checkpoint(path)
    if state.get("format") != CHECKPOINT_FORMAT or state.get("fingerprint") != fingerprint:
        LOGGER.warning("checkpoint %s was made with other parameters or data; training starts over", path)
        return None
    if state["epoch"] > epochs:
        LOGGER.warning("checkpoint %s is at epoch %d, beyond fit.epochs %d; training starts over", path, state["epoch"], epochs)
        return None
    if state["first_selectable_epoch"] != first_selectable:
        # The selection rule changed (other delay or epochs): the best epoch under the new rule must be
        # the one whose weights the checkpoint holds, or no epoch may be selectable yet.
        best_row = None
        for row in state["history"]:
            if row["epoch"] >= first_selectable and is_better(row.get(monitor), best_row[monitor] if best_row else None, mode):
                best_row = row
        if best_row is None:
            state.update(best_epoch=None, best_value=None)
            best_weights = []
        elif best_row["epoch"] != state["best_epoch"]:
            LOGGER.warning("checkpoint %s lacks the weights of epoch %d selected by the new delay; training starts over", path, best_row["epoch"])
            return None
        state["first_selectable_epoch"] = first_selectable
    if state.get("stopped") and state["epoch"] < epochs:
        LOGGER.info("checkpoint %s: training had stopped early after epoch %d (a callback asked to)", path, state["epoch"])
    return state, model_values, optimizer_values, best_weights


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


def _fresh_state(fingerprint: str, first_selectable: int) -> dict:
    return {"format": CHECKPOINT_FORMAT, "fingerprint": fingerprint, "epoch": 0, "history": [], "best_epoch": None, "best_value": None,
            "first_selectable_epoch": first_selectable, "stopped": False}


def values_match(variables, values) -> bool:
    """Whether saved ``values`` fit ``variables`` one for one, shape for shape."""
    return len(variables) == len(values) and all(tuple(v.shape) == tuple(a.shape) for v, a in zip(variables, values))


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
    weights), ``checkpoint.npz`` (after every epoch; a rerun resumes from it), ``training_log.csv``,
    ``training_curves.png`` and, with ``fit.tensorboard``, ``tensorboard/``. ``callbacks`` are extra
    Keras callbacks, run with those of ``fit.callbacks``. ``distribute`` is ``learner.distribute``
    (:mod:`utils.distribute`): on a multi-worker cluster every worker calls this with the same
    arguments; only the chief writes ``output_dir`` (the others write to a temporary folder they
    delete) and all resume from ``output_dir/checkpoint.npz`` when every worker sees the same file.

    Returns paths, the selected epoch, the selected model's validation accuracy and log loss, and
    ``chief`` (whether this process wrote the outputs).
    """
    strategy = dist.distribution_strategy(distribute)  # first: a multi-worker strategy needs TensorFlow untouched
    settings = check_settings(parameters)
    y_train = _check_arrays(X_train, y_train, "training", class_count)
    has_validation = X_val is not None
    if has_validation:
        y_val = _check_arrays(X_val, y_val, "validation", class_count)
        if tuple(X_val.shape[1:]) != tuple(X_train.shape[1:]):
            raise Task1aError(f"validation features have shape {tuple(X_val.shape[1:])} per example, training {tuple(X_train.shape[1:])}; use one feature store")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    epochs = settings["epochs"]
    if has_validation:
        first_selectable, note = first_selectable_epoch(epochs, settings["initial_delay"])
    else:
        first_selectable, note = 1, "no validation split: the last epoch is kept"
    if note:
        LOGGER.warning(note)
    chief = dist.is_chief(strategy)
    # A non-chief worker writes what the chief writes (saving may involve collectives every worker
    # must join) into its own temporary folder.
    write_dir = output_dir if chief else Path(tempfile.mkdtemp(prefix="task1a_worker_"))
    try:
        trained = _train(parameters, settings, X_train, y_train, X_val if has_validation else None, y_val if has_validation else None,
                         output_dir, write_dir, seed, deterministic, progress, class_count, callbacks, distribute, strategy, first_selectable)
    finally:
        if not chief:
            shutil.rmtree(write_dir, ignore_errors=True)
    paths = {name: output_dir / filename for name, filename in (("model", MODEL_FILENAME), ("checkpoint", CHECKPOINT_FILENAME),
                                                                ("training_log", TRAINING_LOG_FILENAME), ("training_curves", TRAINING_CURVES_FILENAME))}
    model, state = trained
    if chief:
        metric = settings["metrics"][0] if settings["metrics"] else "loss"
        _write_training_log(paths["training_log"], state["history"])
        plot_training_curves(paths["training_curves"], state["history"], metric, state["best_epoch"], first_selectable)
    result = {
        "model_path": paths["model"],
        "checkpoint_path": paths["checkpoint"],
        "training_log_path": paths["training_log"],
        "training_curves_path": paths["training_curves"],
        "epochs_trained": state["epoch"],
        "stopped_early": bool(state.get("stopped")) and state["epoch"] < epochs,
        "best_epoch": state["best_epoch"],
        "monitor": settings["monitor"],
        "best_monitor_value": state["best_value"],
        "first_selectable_epoch": first_selectable,
        "selection_note": note,
        "model": model,
        "history": state["history"],
        "chief": chief,
        "replicas": dist.replica_count(strategy),
    }
    if has_validation:
        scores = classification_scores(y_val, predict_proba(model, X_val, batch_size=settings["validation_batch_size"]))
        result.update(val_accuracy=scores["accuracy"], val_macro_accuracy=scores["macro_accuracy"], val_log_loss=scores["log_loss"])
    return result


def _train(parameters, settings, X_train, y_train, X_val, y_val, output_dir, write_dir, seed, deterministic, progress, class_count,
           extra_callbacks, distribute, strategy, first_selectable):
    """The fit itself (see :func:`train_model`); returns (the selected model, the final state)."""
    import keras

    from utils import callbacks as cb
    from utils.model import build_model, set_seeds

    epochs, monitor, mode = settings["epochs"], settings["monitor"], settings["mode"]
    replicas = dist.replica_count(strategy)
    multi_worker = distribute == "multi_worker"
    scope = strategy.scope if strategy is not None else contextlib.nullcontext
    set_seeds(seed, deterministic)
    with scope():
        network = build_model(parameters["model"], input_shape=(*X_train.shape[1:], 1), class_count=class_count)
    # On a cluster, fit trains a wrapper built outside the scope (utils.distribute.replica_logs_model).
    model = dist.replica_logs_model(network) if multi_worker else network
    steps_per_execution = settings["steps_per_execution"]
    if multi_worker and steps_per_execution > 1:
        # Keras 3.15's multi-step loop fails across workers ("You must feed a value for placeholder tensor")
        LOGGER.info("multi_worker: fit.steps_per_execution %d -> 1 (several steps per call do not run across workers)", steps_per_execution)
        steps_per_execution = 1
    with scope():
        optimizer = build_optimizer(parameters["optimizer"])
        try:
            model.compile(optimizer=optimizer, loss=build_loss(parameters["compile"]["loss"]), metrics=settings["metrics"],
                          steps_per_execution=steps_per_execution)
        except (ValueError, TypeError) as exc:
            raise Task1aError(f"{PARAMETER_KEY}.compile: {_keras_error(exc)}; fix loss or metrics") from exc
        optimizer.build(network.trainable_variables)  # so a checkpoint's optimizer state can be restored
    # Batch normalisation over the global batch, as on one device (Keras' default takes each
    # replica's own statistics, so replicas would end with different moving statistics). Switched
    # back before saving: the saved model is the single-device model.
    synchronized = dist.batch_normalization_layers(network) if strategy is not None else []
    for layer in synchronized:
        layer.synchronized = True

    fingerprint = _fingerprint(parameters, seed, X_train, y_train, X_val, y_val, class_count)
    if strategy is not None:  # a checkpoint of another layout of replicas is not resumed
        fingerprint = hashlib.sha256(f"{fingerprint} {distribute} {replicas}".encode()).hexdigest()
    checkpoint_path = output_dir / CHECKPOINT_FILENAME
    group = dist.WorkerGroup(distribute) if multi_worker else None
    found = None
    if group is not None and not group.agree(dist.checkpoint_code(checkpoint_path)):
        LOGGER.warning("the workers do not all see the same %s (the output folder must be shared to resume multi-worker training); training starts over", checkpoint_path)
    else:
        found = _usable_checkpoint(checkpoint_path, fingerprint, epochs, first_selectable, mode, monitor)
    if found is not None and not (values_match(network.variables, found[1]) and values_match(optimizer.variables, found[2])):
        LOGGER.warning("checkpoint %s does not match the model; training starts over", checkpoint_path)
        found = None
    if found is not None:
        state, model_values, optimizer_values, best_weights = found
        cb.assign_values(network.variables, model_values, "model variables")
        cb.assign_values(optimizer.variables, optimizer_values, "optimizer variables")
        LOGGER.info("resuming from %s after epoch %d", checkpoint_path, state["epoch"])
    else:
        state, best_weights = _fresh_state(fingerprint, first_selectable), None

    selection = cb.BestEpochSelection(network, monitor, mode, first_selectable, state["best_epoch"], state["best_value"], best_weights or None)

    def save(current_state, best):
        save_checkpoint(write_dir / CHECKPOINT_FILENAME, *cb.checkpoint_values(network, optimizer), current_state, best)

    chief = write_dir == output_dir
    user_callbacks = [*build_callbacks(parameters["fit"].get("callbacks", []), write_dir), *extra_callbacks]
    train_feed = EpochFeed(X_train, smooth_labels(y_train, class_count, settings["label_smoothing"]), settings["batch_size"], seed, settings["shuffle"], replicas)
    own_callbacks = [
        selection,
        cb.TrainingCheckpoint(state, selection, save, (lambda history: _write_training_log(output_dir / TRAINING_LOG_FILENAME, history)) if chief else None),
        cb.EpochLog(state, epochs, monitor, first_selectable, network),
        cb.EpochProgress(epochs, state["epoch"], monitor, enabled=progress and chief),
    ]
    if settings["tensorboard"]:
        own_callbacks.insert(0, cb.tensorboard(write_dir / TENSORBOARD_DIRNAME))
    if state["history"] and user_callbacks:
        saved = cb.checkpoint_values(network, optimizer)

        def restore():
            cb.assign_values(network.variables, saved[0], "model variables")
            cb.assign_values(optimizer.variables, saved[1], "optimizer variables")

        own_callbacks.append(cb.ResumeReplay(state["history"], user_callbacks, restore))

    if state["epoch"] < epochs and not state.get("stopped"):
        validation = None
        if X_val is not None:
            validation = EpochFeed(X_val, smooth_labels(y_val, class_count, 0.0), settings["validation_batch_size"], replicas=replicas).dataset()
        with scope(), (group.collective() if group is not None else contextlib.nullcontext()):
            model.fit(train_feed.dataset(), validation_data=validation, epochs=epochs, initial_epoch=state["epoch"], verbose=0, shuffle=False,
                      callbacks=[train_feed.callback(), *user_callbacks, *own_callbacks])

    if selection.best_weights is None:
        if X_val is not None:
            LOGGER.warning("no epoch had a finite %s; the last epoch's weights are kept", monitor)
        state["best_epoch"] = state["epoch"]
    else:
        network.set_weights(selection.best_weights)
        state["best_epoch"], state["best_value"] = selection.best_epoch, selection.best_value
    for layer in synchronized:
        layer.synchronized = False
    with atomic_path(write_dir / MODEL_FILENAME) as tmp:
        network.save(tmp)
    if strategy is not None:
        # The model without the strategy (built outside its scope): what testing and export use.
        network = keras.models.load_model(write_dir / MODEL_FILENAME)
    return network, state
