"""Learning: train the CNN with one Keras ``fit``, keep the best validation epoch, resume exactly.

What the official baseline does, kept: the YAML's optimizer and loss (Adam 0.001, categorical
cross-entropy), label smoothing on the training targets only (one-hot * 0.9 + 0.01 for 0.1),
shuffled mini-batches, and model selection on the best validation categorical accuracy as dcase_util's
StasherCallback counts it (:func:`first_selectable_epoch`), restored at the end. With
``model_selection.rule: last`` (the DCASE2024/2025 protocol; :mod:`utils.editions` fills it) the last
epoch is kept and a validation split, if any, is only monitored. The optimizer's config may hold a
learning-rate schedule (:mod:`utils.schedules`; ``TRAINING_STEPS`` becomes epochs x steps per epoch).

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

Research options, all off by default: training-batch augmentation in the feed
(:mod:`utils.augmentation`, drawn from (seed, epoch, batch)), knowledge distillation from a teacher's
outputs (:mod:`utils.distillation`), fine-tuning (``initial_weights``, ``trainable_layers``), and
extension: a larger ``fit.epochs`` continues a shorter training's checkpoint (``fit.epochs`` is out
of the checkpoint fingerprint; the caller brings the checkpoint over with
:func:`adopt_earlier_checkpoint`, as the learner folder's name includes the epochs).

Features are fed batch by batch from array-likes (numpy memmaps of the feature store included); the
training set is never copied whole. Distribution (``learner.distribute``) is :mod:`utils.distribute`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from utils import distribute as dist
from utils.errors import Task1aError
from utils.files import atomic_path, write_text_atomic
from utils.settings import AugmentationSettings, LearnerSettings, SelectionSettings

LOGGER = logging.getLogger(__name__)

PARAMETER_KEY = "learner_method_parameters.cnn"
MODEL_FILENAME = "model.keras"
CHECKPOINT_FILENAME = "checkpoint.npz"
TRAINING_LOG_FILENAME = "training_log.csv"
TRAINING_CURVES_FILENAME = "training_curves.png"
TENSORBOARD_DIRNAME = "tensorboard"
CHECKPOINT_FORMAT = 2
PREFETCH_BATCHES = 4  # batches the feed reads ahead of training
# Keras callback arguments that name a file or folder: a relative one is put in the model folder.
PATH_ARGUMENTS = ("filename", "filepath", "log_dir", "backup_dir")


# ----------------------------------------------------------------------------------------------
# Pure numeric helpers


def smooth_labels(y: np.ndarray, class_count: int, label_smoothing: float) -> np.ndarray:
    """Targets ``(n, class_count)`` float32: one-hot * (1 - label_smoothing) + label_smoothing / class_count.

    For 0.1 and 10 classes this is the official one-hot * 0.9 + 0.01; 0 gives plain one-hot.
    ``label_smoothing`` in [0, 1) (the registry's rule of ``fit.label_smoothing``).
    """
    y = np.asarray(y)
    one_hot = np.eye(class_count, dtype=np.float32)[y]
    return (one_hot * np.float32(1.0 - label_smoothing) + np.float32(label_smoothing / class_count)).astype(np.float32)


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """Order ``(n,)`` in which epoch ``epoch`` (0-based) visits the training examples.

    Derived from (seed, epoch) alone, so a resumed run needs no saved shuffling state.
    """
    if not shuffle:
        return np.arange(n)
    return np.random.default_rng([seed, epoch]).permutation(n)


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


# ----------------------------------------------------------------------------------------------
# Settings: typed once at the stage boundary (utils.settings); Keras configs validated by Keras


def _keras_error(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def build_optimizer(config: Any, training_steps: int = 1, key: str = f"{PARAMETER_KEY}.optimizer"):
    """A Keras optimizer from ``{class_name, config}`` (any Keras optimizer and argument, a learning-rate
    schedule config of Keras or :mod:`utils.schedules` included), validated by Keras. The string
    ``TRAINING_STEPS`` in it becomes ``training_steps`` (epochs x steps per epoch)."""
    import keras

    from utils.schedules import CUSTOM_OBJECTS, with_training_steps

    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str) or not isinstance(config.get("config", {}), dict):
        raise Task1aError(f"{key} must be {{class_name: Adam, config: {{learning_rate: 0.001, ...}}}}, got {config!r}; fix the value")
    try:
        with keras.saving.custom_object_scope(CUSTOM_OBJECTS):
            return keras.optimizers.get({"class_name": config["class_name"], "config": with_training_steps(dict(config.get("config") or {}), training_steps)})
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
    if not isinstance(configs, (list, tuple)):
        raise Task1aError(f"{key} must be a list of {{class_name, config}}, got {configs!r}; fix the value")
    callbacks = []
    for index, item in enumerate(configs):
        where = f"{key}[{index}]"
        if (not isinstance(item, dict) or not isinstance(item.get("class_name"), str) or not isinstance(item.get("config", {}) or {}, dict)
                or set(item) - {"class_name", "config"}):
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


CHECK_TRAINING_STEPS = 10**9
"""``TRAINING_STEPS`` while the settings are checked before the data are known (the real count replaces it in training)."""


def check_keras_configs(settings: LearnerSettings) -> None:
    """Before any work: what the registry hands on unchecked, validated by Keras (the optimizer and its schedule,
    the loss, the callbacks of ``fit.callbacks``, the metrics under distillation), and TensorBoard installed
    when ``fit.tensorboard``; one-line error naming the key. Every other value was checked by the registry
    and :func:`utils.settings.learner_settings` when the parameters were read."""
    if settings.fit.tensorboard and importlib.util.find_spec("tensorboard") is None:  # TensorFlow >= 2.21 does not bring it
        raise Task1aError(f"{PARAMETER_KEY}.fit.tensorboard is true but TensorBoard is not installed; pip install tensorboard "
                          "(a dependency of this project: reinstall it) or set fit.tensorboard: false")
    build_optimizer(settings.optimizer, CHECK_TRAINING_STEPS)
    build_loss(settings.loss)
    build_callbacks(settings.fit.callbacks)
    if settings.distillation is not None:
        from utils.distillation import sliced_metrics

        sliced_metrics(settings.metrics, 2)


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

    :meth:`dataset` is a ``tf.data.Dataset`` of batch numbers mapped to batches (:meth:`batch`),
    built once and re-read every epoch; each reading takes the order of :attr:`epoch` (set by
    :meth:`callback` at the start of every epoch, before the epoch's first batch is read), drawn once
    per epoch. ``X[indices]`` is read one batch at a time (a memmap stays on disk) and the next
    batches are prefetched while the current one trains. ``replicas``: see
    :func:`utils.distribute.batch_bounds`.
    """

    def __init__(self, X: Any, targets: np.ndarray, batch_size: int, seed: int = 0, shuffle: bool = False, replicas: int = 1,
                 augmentation: AugmentationSettings | None = None):
        self.X, self.targets, self.seed, self.shuffle = X, targets, seed, shuffle
        self.bounds = dist.batch_bounds(len(targets), batch_size, replicas)
        self.epoch = 0
        self.augmentation = augmentation  # utils.augmentation's settings (training feed only), None: none
        self._augment = augmentation is not None and not augmentation.off
        self._order = (None, None)  # (epoch, its order): drawn once per epoch

    def __len__(self) -> int:
        return len(self.bounds)

    def order(self, epoch: int) -> np.ndarray:
        """:func:`epoch_order` of ``epoch``, kept until another epoch is asked for."""
        cached_epoch, order = self._order
        if cached_epoch != epoch:
            order = epoch_order(len(self.targets), self.seed, epoch, self.shuffle)
            self._order = (epoch, order)
        return order

    def batch(self, epoch: int, number: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``number`` (0-based) of ``epoch`` as numpy arrays."""
        from utils import augmentation

        start, stop = self.bounds[number]
        indices = self.order(epoch)[start:stop]
        X, targets = np.asarray(self.X[indices], dtype=np.float32)[..., np.newaxis], self.targets[indices]
        if self._augment:  # drawn from (seed, epoch, batch): a resumed epoch sees the same batches
            X, targets = augmentation.augment_batch(X, targets, self.augmentation, augmentation.batch_rng(self.seed, epoch, number))
        return np.asarray(X, dtype=np.float32), np.asarray(targets, dtype=np.float32)

    def batches(self, epoch: int | None = None):
        """The batches of ``epoch`` (default :attr:`epoch`) as numpy arrays."""
        epoch = self.epoch if epoch is None else epoch
        for number in range(len(self)):
            yield self.batch(epoch, number)

    def dataset(self):
        import tensorflow as tf

        _, n_mels, n_frames = self.X.shape
        shapes = ((None, n_mels, n_frames, 1), (None, self.targets.shape[1]))

        def read(number):
            features, targets = tf.numpy_function(lambda n: self.batch(self.epoch, int(n)), [number], (tf.float32, tf.float32), stateful=True)
            return tf.ensure_shape(features, shapes[0]), tf.ensure_shape(targets, shapes[1])

        # Under a tf.distribute strategy each global batch is split into per-replica batches and each
        # worker keeps its own (DATA): every worker reads the same batches in the same order.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        # No autotuning: its model thread is started with every iterator and an iterator's end waits
        # for it, which took from a second up to minutes at each epoch start on a busy machine. A fixed
        # prefetch of a few batches keeps the next batches ready (reading is a copy: it needs no tuning).
        options.autotune.enabled = False
        return tf.data.Dataset.range(len(self)).map(read).prefetch(PREFETCH_BATCHES).with_options(options)

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


def _fingerprint(settings: LearnerSettings, seed: int, data: "TrainingData", class_count: int) -> str:
    """What a checkpoint must share with the run resuming it: the parameters the learner hash covers, less
    those a resume may change (``settings.identity``: :func:`utils.parameters.checkpoint_parameters`), the
    seed, the content of the files it learns from and the data's identity."""
    files = research_fingerprints(settings.initial_weights, settings.distillation.teacher_outputs if settings.distillation is not None else None)
    digest = hashlib.sha256(json.dumps([settings.identity, seed, class_count] + ([files] if files else []), sort_keys=True, default=str).encode())
    for X, y in ((data.X_train, data.y_train), (data.X_val, data.y_val)):
        if X is None:
            digest.update(b"none")
            continue
        digest.update(repr(tuple(X.shape)).encode())
        digest.update(np.ascontiguousarray(y).tobytes())
        digest.update(np.asarray(X[0], dtype=np.float32).tobytes())
        digest.update(np.asarray(X[X.shape[0] - 1], dtype=np.float32).tobytes())
    return digest.hexdigest()


def research_fingerprints(initial_weights: str | Path | None, teacher_outputs: str | Path | None) -> dict:
    """SHA-256 of the files a training starts from or learns from (``initial_weights``, the ``distillation``
    teacher's outputs: paths resolved against the run's root), by key; {} when none (or not there).

    Give it to the learner hash (:func:`utils.parameters.stage_hash`'s ``extra``): another file
    content is another training even under the same path.
    """
    from utils.files import file_digest

    files = {}
    for key, path in (("distillation", teacher_outputs), ("initial_weights", initial_weights)):
        if path is not None and Path(path).expanduser().is_file():
            files[key] = {"path": str(path), "sha256": file_digest(Path(path).expanduser())}
    return files


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


def _usable_checkpoint(path: Path, fingerprint: str, epochs: int, first_selectable: int, selection: SelectionSettings):
    """``(state, model values, optimizer values, best weights)`` of a checkpoint this run may resume, else None."""
    monitor, mode = selection.monitor, selection.mode
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
        from utils.callbacks import is_better

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


@dataclass(frozen=True)
class TrainingResult:
    """What :func:`train_model` returns: the files it wrote, how the training went and the selected model."""

    model_path: Path  # model.keras: the selected weights
    checkpoint_path: Path
    training_log_path: Path
    training_curves_path: Path
    epochs_trained: int
    stopped_early: bool  # a callback (EarlyStopping) stopped it before fit.epochs
    best_epoch: int | None  # the selected epoch (1-based)
    monitor: str
    best_monitor_value: float | None
    first_selectable_epoch: int
    selection_note: str | None
    model: Any  # the selected keras.Model (single-device)
    history: list  # one mapping of logged figures per epoch
    chief: bool  # whether this process wrote the outputs (False: a multi-worker non-chief worker)
    replicas: int
    val_accuracy: float | None = None  # the selected model on the validation split (None: no split)
    val_macro_accuracy: float | None = None
    val_log_loss: float | None = None

    @property
    def validation(self) -> dict:
        """The validation scores by name (``val_accuracy``, ``val_macro_accuracy``, ``val_log_loss``); {} without a split."""
        return {name: getattr(self, name) for name in ("val_accuracy", "val_macro_accuracy", "val_log_loss") if getattr(self, name) is not None}


@dataclass(frozen=True)
class TrainingData:
    """Checked arrays and the feeds' targets (:func:`_training_data`); the validation side None without a split."""

    X_train: Any  # (n, n_mels, n_frames)
    y_train: np.ndarray  # (n,) class indices
    train_targets: np.ndarray  # (n, class_count), or (n, 2 * class_count) with a teacher's probabilities
    X_val: Any = None
    y_val: np.ndarray | None = None
    val_targets: np.ndarray | None = None


@dataclass(frozen=True)
class _Run:
    """One call of :func:`train_model`: its settings and arguments, where it writes, how it is distributed."""

    settings: LearnerSettings
    output_dir: Path
    write_dir: Path  # output_dir on the chief, a temporary folder on another worker
    seed: int
    deterministic: bool
    progress: bool
    class_count: int
    callbacks: Sequence
    distribute: str
    strategy: Any
    first_selectable: int
    steps_per_epoch: int

    @property
    def chief(self) -> bool:
        return self.write_dir == self.output_dir


def train_model(
    settings: LearnerSettings,
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
    training_names: Sequence[str] | None = None,
) -> TrainingResult:
    """Train one model (``settings``: the typed ``learner_method_parameters.cnn``) and keep its selected epoch.

    ``X_train`` ``(n, n_mels, n_frames)`` float32 array-like (a memmap is read batch by batch),
    ``y_train`` ``(n,)`` class indices; the same for the validation split (``X_val=None``: no
    validation, the last epoch is kept). ``training_names`` ``(n,)``: each training segment's
    filename (needed to match a teacher's system-output CSV). Writes to ``output_dir``:
    ``model.keras`` (the selected weights), ``checkpoint.npz`` (after every epoch; a rerun resumes
    from it), ``training_log.csv``, ``training_curves.png`` and, with ``fit.tensorboard``,
    ``tensorboard/``. ``callbacks`` are extra Keras callbacks, run with those of ``fit.callbacks``.
    ``distribute`` is ``learner.distribute`` (:mod:`utils.distribute`): on a multi-worker cluster
    every worker calls this with the same arguments; only the chief writes ``output_dir`` (the
    others write to a temporary folder they delete) and all resume from ``output_dir/checkpoint.npz``
    when every worker sees the same file. The settings were checked when they were built (the Keras
    configs by :func:`check_keras_configs`, at the stage boundary); the arrays are checked here.
    """
    strategy = dist.distribution_strategy(distribute)  # first: a multi-worker strategy needs TensorFlow untouched
    LOGGER.info(dist.describe_devices(strategy))  # where training runs: CPU cores, which GPUs, how many replicas
    data = _training_data(settings, X_train, y_train, X_val, y_val, class_count, training_names)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    first_selectable, note = _selection_start(settings, data.X_val is not None)
    chief = dist.is_chief(strategy)
    # A non-chief worker writes what the chief writes (saving may involve collectives every worker
    # must join) into its own temporary folder.
    write_dir = output_dir if chief else Path(tempfile.mkdtemp(prefix="task1a_worker_"))
    steps_per_epoch = len(dist.batch_bounds(len(data.train_targets), settings.fit.batch_size, dist.replica_count(strategy)))
    run = _Run(settings, output_dir, write_dir, seed, deterministic, progress, class_count, callbacks, distribute, strategy, first_selectable, steps_per_epoch)
    try:
        model, state = _train(run, data)
    finally:
        if not chief:
            shutil.rmtree(write_dir, ignore_errors=True)
    if chief:
        metric = settings.metrics[0] if settings.metrics else "loss"
        _write_training_log(output_dir / TRAINING_LOG_FILENAME, state["history"])
        plot_training_curves(output_dir / TRAINING_CURVES_FILENAME, state["history"], metric, state["best_epoch"], first_selectable)
    return _result(run, data, model, state, note)


def _selection_start(settings: LearnerSettings, validated: bool) -> tuple[int, str | None]:
    """(first selectable epoch, a note to log) of ``model_selection``; ``validated``: whether there is a validation split."""
    rule = settings.model_selection.rule
    if validated and rule == "last":
        LOGGER.info("model_selection.rule last: the last epoch is kept; the validation split is only monitored")
        return settings.fit.epochs, None
    if validated:
        first_selectable, note = first_selectable_epoch(settings.fit.epochs, settings.model_selection.initial_delay)
    else:
        first_selectable, note = 1, (None if rule == "last" else "no validation split: the last epoch is kept")
    if note:
        LOGGER.warning(note)
    return first_selectable, note


def _result(run: _Run, data: TrainingData, model, state: dict, note: str | None) -> TrainingResult:
    from utils.evaluation import classification_scores

    settings, output_dir = run.settings, run.output_dir
    scores = {}
    if data.X_val is not None:
        found = classification_scores(data.y_val, predict_proba(model, data.X_val, batch_size=settings.fit.validation_batch_size))
        scores = {"val_accuracy": found["accuracy"], "val_macro_accuracy": found["macro_accuracy"], "val_log_loss": found["log_loss"]}
    return TrainingResult(
        model_path=output_dir / MODEL_FILENAME,
        checkpoint_path=output_dir / CHECKPOINT_FILENAME,
        training_log_path=output_dir / TRAINING_LOG_FILENAME,
        training_curves_path=output_dir / TRAINING_CURVES_FILENAME,
        epochs_trained=state["epoch"],
        stopped_early=bool(state.get("stopped")) and state["epoch"] < settings.fit.epochs,
        best_epoch=state["best_epoch"],
        monitor=settings.model_selection.monitor,
        best_monitor_value=state["best_value"],
        first_selectable_epoch=run.first_selectable,
        selection_note=note,
        model=model,
        history=state["history"],
        chief=run.chief,
        replicas=dist.replica_count(run.strategy),
        **scores,
    )


def _training_data(settings: LearnerSettings, X_train, y_train, X_val, y_val, class_count: int, training_names) -> TrainingData:
    """Checked arrays and the feeds' targets: ``(n, class_count)``, or ``(n, 2 * class_count)`` with the
    teacher's probabilities appended under distillation (zeros for validation rows: plain loss)."""
    y_train = _check_arrays(X_train, y_train, "training", class_count)
    if X_val is not None:
        y_val = _check_arrays(X_val, y_val, "validation", class_count)
        if tuple(X_val.shape[1:]) != tuple(X_train.shape[1:]):
            raise Task1aError(f"validation features have shape {tuple(X_val.shape[1:])} per example, training {tuple(X_train.shape[1:])}; "
                              "use one feature store")
    if training_names is not None and len(training_names) != len(y_train):
        raise Task1aError(f"training_names: {len(training_names)} names for {len(y_train)} training segments; give one filename per segment")
    train_targets = smooth_labels(y_train, class_count, settings.fit.label_smoothing)
    val_targets = smooth_labels(y_val, class_count, 0.0) if X_val is not None else None
    if settings.distillation is not None:
        from utils.distillation import load_teacher

        teacher = load_teacher(settings.distillation.teacher_outputs, len(y_train), class_count, training_names)
        train_targets = np.concatenate([train_targets, teacher], axis=1)
        if val_targets is not None:
            val_targets = np.concatenate([val_targets, np.zeros_like(val_targets)], axis=1)
    if X_val is None:
        return TrainingData(X_train, y_train, train_targets)
    return TrainingData(X_train, y_train, train_targets, X_val, y_val, val_targets)


def _train(run: _Run, data: TrainingData):
    """The fit itself (see :func:`train_model`); returns (the selected model, the final state)."""
    import keras

    from utils import callbacks as cb
    from utils.model import set_seeds

    settings, strategy, write_dir = run.settings, run.strategy, run.write_dir
    scope = strategy.scope if strategy is not None else contextlib.nullcontext
    set_seeds(run.seed, run.deterministic)
    network, model, optimizer = _compiled_model(run, data.X_train.shape[1:], scope)
    # Batch normalisation over the global batch, as on one device (Keras' default takes each
    # replica's own statistics, so replicas would end with different moving statistics). Switched
    # back before saving: the saved model is the single-device model.
    synchronized = dist.batch_normalization_layers(network) if strategy is not None else []
    for layer in synchronized:
        layer.synchronized = True
    group = dist.WorkerGroup(run.distribute) if run.distribute == "multi_worker" else None
    state, best_weights = _starting_state(run, data, network, optimizer, group)
    selection = cb.BestEpochSelection(network, settings.model_selection.monitor, settings.model_selection.mode, run.first_selectable, state["best_epoch"],
                                      state["best_value"], best_weights or None)
    replicas, fit = dist.replica_count(strategy), settings.fit
    train_feed = EpochFeed(data.X_train, data.train_targets, fit.batch_size, run.seed, fit.shuffle, replicas, settings.augmentation)
    all_callbacks = [train_feed.callback(), *_fit_callbacks(run, state, selection, network, optimizer)]
    if state["epoch"] < fit.epochs and not state.get("stopped"):
        validation = None
        if data.X_val is not None:
            validation = EpochFeed(data.X_val, data.val_targets, fit.validation_batch_size, replicas=replicas).dataset()
        with scope(), (group.collective() if group is not None else contextlib.nullcontext()):
            model.fit(train_feed.dataset(), validation_data=validation, epochs=fit.epochs, initial_epoch=state["epoch"], verbose=0, shuffle=False,
                      callbacks=all_callbacks)

    if selection.best_weights is None:
        if data.X_val is not None:
            LOGGER.warning("no epoch had a finite %s; the last epoch's weights are kept", settings.model_selection.monitor)
        state["best_epoch"] = state["epoch"]
    else:
        network.set_weights(selection.best_weights)
        state["best_epoch"], state["best_value"] = selection.best_epoch, selection.best_value
    for layer in synchronized:
        layer.synchronized = False
    if settings.distillation is not None:  # the saved model carries the plain loss and metrics (loadable anywhere)
        network.compile(optimizer=optimizer, loss=build_loss(settings.loss), metrics=list(settings.metrics))
    with atomic_path(write_dir / MODEL_FILENAME) as tmp:
        network.save(tmp)
    if strategy is not None:
        # The model without the strategy (built outside its scope): what testing and export use.
        network = keras.models.load_model(write_dir / MODEL_FILENAME)
    return network, state


def _compiled_model(run: _Run, feature_shape: tuple, scope):
    """(network, the model fit trains, optimizer): built, initial weights loaded, trainable layers set, compiled."""
    from utils.model import build_model

    settings, class_count = run.settings, run.class_count
    multi_worker = run.distribute == "multi_worker"
    with scope():
        network = build_model(settings.model, input_shape=(*feature_shape, 1), class_count=class_count)
        if settings.initial_weights is not None:
            load_initial_weights(network, settings.initial_weights)
        if settings.trainable_layers:
            set_trainable_layers(network, settings.trainable_layers)
    # On a cluster, fit trains a wrapper built outside the scope (utils.distribute.replica_logs_model).
    model = dist.replica_logs_model(network) if multi_worker else network
    steps_per_execution = settings.fit.steps_per_execution
    if multi_worker and steps_per_execution > 1:
        # Keras 3.15's multi-step loop fails across workers ("You must feed a value for placeholder tensor")
        LOGGER.info("multi_worker: fit.steps_per_execution %d -> 1 (several steps per call do not run across workers)", steps_per_execution)
        steps_per_execution = 1
    loss, metrics = build_loss(settings.loss), list(settings.metrics)
    if settings.distillation is not None:
        from utils.distillation import distillation_loss, sliced_metrics

        loss = distillation_loss(loss, class_count, settings.distillation.temperature, settings.distillation.weight)
        metrics = sliced_metrics(metrics, class_count)
    with scope():  # a schedule's TRAINING_STEPS: the optimizer steps of the whole training
        optimizer = build_optimizer(settings.optimizer, settings.fit.epochs * run.steps_per_epoch)
        try:
            model.compile(optimizer=optimizer, loss=loss, metrics=metrics, steps_per_execution=steps_per_execution)
        except (ValueError, TypeError) as exc:
            raise Task1aError(f"{PARAMETER_KEY}.compile: {_keras_error(exc)}; fix loss or metrics") from exc
        optimizer.build(network.trainable_variables)  # so a checkpoint's optimizer state can be restored
    return network, model, optimizer


def _starting_state(run: _Run, data: TrainingData, network, optimizer, group) -> tuple[dict, list | None]:
    """(state, best weights) of the checkpoint this run resumes, restored into network and optimizer; else a fresh state."""
    from utils import callbacks as cb

    settings, replicas = run.settings, dist.replica_count(run.strategy)
    fingerprint = _fingerprint(settings, run.seed, data, run.class_count)
    if run.strategy is not None:  # a checkpoint of another layout of replicas is not resumed
        fingerprint = hashlib.sha256(f"{fingerprint} {run.distribute} {replicas}".encode()).hexdigest()
    checkpoint_path = run.output_dir / CHECKPOINT_FILENAME
    found = None
    if group is not None and not group.agree(dist.checkpoint_code(checkpoint_path)):
        LOGGER.warning("the workers do not all see the same %s (the output folder must be shared to resume multi-worker training); training starts over",
                       checkpoint_path)
    else:
        found = _usable_checkpoint(checkpoint_path, fingerprint, settings.fit.epochs, run.first_selectable, settings.model_selection)
    if found is not None and not (cb.values_match(network.variables, found[1]) and cb.values_match(optimizer.variables, found[2])):
        LOGGER.warning("checkpoint %s does not match the model; training starts over", checkpoint_path)
        found = None
    if found is None:
        return _fresh_state(fingerprint, run.first_selectable), None
    state, model_values, optimizer_values, best_weights = found
    cb.assign_values(network.variables, model_values, "model variables")
    cb.assign_values(optimizer.variables, optimizer_values, "optimizer variables")
    LOGGER.info("resuming from %s after epoch %d", checkpoint_path, state["epoch"])
    return state, best_weights


def _fit_callbacks(run: _Run, state: dict, selection, network, optimizer) -> list:
    """The user's callbacks (YAML, then the caller's), then ours: selection, checkpoint, log, progress (and resume replay)."""
    from utils import callbacks as cb

    settings, output_dir, write_dir = run.settings, run.output_dir, run.write_dir
    epochs, monitor, first_selectable = settings.fit.epochs, settings.model_selection.monitor, run.first_selectable

    def save(current_state, best):
        save_checkpoint(write_dir / CHECKPOINT_FILENAME, *cb.checkpoint_values(network, optimizer), current_state, best)

    def write_log(history):
        _write_training_log(output_dir / TRAINING_LOG_FILENAME, history)

    user_callbacks = [*build_callbacks(settings.fit.callbacks, write_dir), *run.callbacks]
    own_callbacks = [
        selection,
        cb.TrainingCheckpoint(state, selection, save, write_log if run.chief else None),
        cb.EpochLog(state, epochs, monitor, first_selectable, network),
        cb.EpochProgress(epochs, state["epoch"], monitor, enabled=run.progress and run.chief),
    ]
    if settings.fit.tensorboard:
        own_callbacks.insert(0, cb.tensorboard(write_dir / TENSORBOARD_DIRNAME))
    if state["history"] and user_callbacks:
        saved = cb.checkpoint_values(network, optimizer)

        def restore():
            cb.assign_values(network.variables, saved[0], "model variables")
            cb.assign_values(optimizer.variables, saved[1], "optimizer variables")

        own_callbacks.append(cb.ResumeReplay(state["history"], user_callbacks, restore))
    return [*user_callbacks, *own_callbacks]


# ----------------------------------------------------------------------------------------------
# Fine-tuning and extension


def load_initial_weights(network, path: str | Path) -> None:
    """Set ``network``'s weights from a saved ``.keras`` model or ``.weights.h5`` file; one-line error naming the file on a mismatch."""
    import keras

    path = Path(path).expanduser()
    try:
        if path.name.endswith(".weights.h5"):
            network.load_weights(path)
            return
        saved = keras.models.load_model(path, compile=False).get_weights()
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise Task1aError(f"{PARAMETER_KEY}.initial_weights {path}: {_keras_error(exc)}; give weights of this model (same layers and shapes)") from None
    current = network.get_weights()
    if len(saved) != len(current) or any(a.shape != b.shape for a, b in zip(saved, current)):
        shapes = next(((a.shape, b.shape) for a, b in zip(saved, current) if a.shape != b.shape), (len(saved), len(current)))
        raise Task1aError(f"{PARAMETER_KEY}.initial_weights {path} does not match the model (weights {shapes[0]} vs {shapes[1]}); give a model of the same "
                          "network")
    network.set_weights(saved)


def set_trainable_layers(network, patterns: Sequence[str]) -> list[str]:
    """Freeze every layer whose name matches none of ``patterns`` (fnmatch, e.g. ``dense*``); return the trainable names.

    A frozen BatchNormalization layer also runs in inference mode (Keras 3), so its statistics stay.
    """
    from fnmatch import fnmatchcase

    names = [layer.name for layer in network.layers]
    for pattern in patterns:
        if not any(fnmatchcase(name, pattern) for name in names):
            raise Task1aError(f"{PARAMETER_KEY}.trainable_layers: {pattern!r} matches no layer (layers: {', '.join(names)}); fix the pattern")
    trainable = []
    for layer in network.layers:
        layer.trainable = any(fnmatchcase(layer.name, pattern) for pattern in patterns)
        if layer.trainable:
            trainable.append(layer.name)
    return trainable


def continuation_source(folder: str | Path) -> Path | None:
    """The checkpoint an extended training (larger ``fit.epochs``) continues from, else None.

    ``folder`` is ``<system>/learner/<hash>/seed_<n>`` (the learning stage's folder; its parent holds
    ``parameters.yaml``). Looks in the sibling ``<system>/learner/*`` folders for a record equal but
    for ``fit.epochs`` and picks the ``seed_<n>/checkpoint.npz`` with the most epochs trained, not
    more than this folder's ``fit.epochs`` (a longer training is not cut back: the shorter one
    starts over).
    """
    from utils import workspace

    folder = Path(folder)
    try:
        mine = workspace.read_parameters(folder.parent)
    except Task1aError:
        return None
    if mine is None:
        return None
    epochs = mine.learner_epochs
    if epochs is None:
        return None
    wanted, best = mine.without_learner_epochs(), None
    for sibling in workspace.sibling_stage_dirs(folder.parent):
        candidate = sibling / folder.name / CHECKPOINT_FILENAME
        if not candidate.is_file():
            continue
        try:
            if workspace.read_parameters(sibling).without_learner_epochs() != wanted:
                continue
            trained = load_checkpoint(candidate)[0]["epoch"]
        except (OSError, Task1aError, KeyError, TypeError, AttributeError):
            continue
        if trained <= epochs and (best is None or trained > best[0]):
            best = (trained, candidate)
    return best[1] if best else None


def adopt_earlier_checkpoint(folder: str | Path) -> Path | None:
    """Copy :func:`continuation_source`'s checkpoint into ``folder`` when it has none; return the source (None: nothing done).

    Call it on the chief before :func:`train_model`, unless the run overwrites: training then resumes
    after the earlier run's last epoch and trains only the extra ones.
    """
    folder = Path(folder)
    if (folder / CHECKPOINT_FILENAME).exists():
        return None
    source = continuation_source(folder)
    if source is not None:
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / CHECKPOINT_FILENAME) as tmp:
            shutil.copyfile(source, tmp)
        LOGGER.info("learning: continuing the training of %s (a run with fewer fit.epochs)", source.parent)
    return source
