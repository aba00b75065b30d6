"""Training callbacks: the Keras callbacks the learning stage is made of.

- :class:`BestEpochSelection`: the best epoch on the validation monitor, from the first selectable
  epoch on (dcase_util's StasherCallback), its weights kept in memory;
- :class:`TrainingCheckpoint`: after every epoch, the history row and a checkpoint a killed run
  resumes from, and the CSV training log;
- :class:`EpochLog`: one INFO line per epoch (console and log file, with or without bars);
- :class:`EpochProgress`: one progress bar over the epochs, with an ETA;
- :class:`ResumeReplay`: on resume, shows the other callbacks the epochs already trained.

Importing this module imports Keras.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import keras

# Columns of a history row that are ours, not Keras' logs.
OWN_COLUMNS = ("epoch", "seconds", "best_epoch")


def is_better(value: float, best: float | None, mode: str) -> bool:
    """Whether ``value`` of the monitored metric beats ``best`` (``mode``: "max" or "min"); never a NaN or infinity."""
    if value is None or not math.isfinite(value):
        return False
    if best is None:
        return True
    return value > best if mode == "max" else value < best


def values_match(variables, values) -> bool:
    """Whether saved ``values`` fit ``variables`` one for one, shape for shape."""
    return len(variables) == len(values) and all(tuple(v.shape) == tuple(a.shape) for v, a in zip(variables, values))

LOGGER = logging.getLogger(__name__)


class BestEpochSelection(keras.callbacks.Callback):
    """Keep the weights of the best epoch (1-based ``epoch >= first_selectable``) by ``monitor``.

    Without validation (``monitor`` absent from the logs) the last epoch is the one kept.
    ``network`` is the model whose weights are kept (the wrapped network on a cluster).
    """

    def __init__(self, network, monitor: str, mode: str, first_selectable: int, best_epoch=None, best_value=None, best_weights=None):
        super().__init__()
        self.network, self.monitor, self.mode, self.first_selectable = network, monitor, mode, first_selectable
        self.best_epoch, self.best_value, self.best_weights = best_epoch, best_value, best_weights

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        number = epoch + 1
        if number < self.first_selectable:
            return
        if self.monitor not in logs or is_better(logs[self.monitor], self.best_value, self.mode):
            self.best_epoch, self.best_value = number, (float(logs[self.monitor]) if self.monitor in logs else None)
            self.best_weights = self.network.get_weights()


class TrainingCheckpoint(keras.callbacks.Callback):
    """After every epoch: append the history row to ``state``, save the checkpoint, write the CSV log.

    ``save(state, best_weights)`` writes the checkpoint; ``write_log(history)`` the CSV (None: not
    this worker's to write). Place it after the callbacks whose decisions it records (selection,
    early stopping).
    """

    def __init__(self, state: dict, selection: BestEpochSelection, save, write_log=None):
        super().__init__()
        self.state, self.selection, self.save, self.write_log = state, selection, save, write_log
        self.started = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        logs = {name: float(value) for name, value in (logs or {}).items()}
        self.state["history"].append({"epoch": epoch + 1, **logs, "seconds": round(time.monotonic() - self.started, 3),
                                      "best_epoch": self.selection.best_epoch})
        self.state.update(epoch=epoch + 1, best_epoch=self.selection.best_epoch, best_value=self.selection.best_value, stopped=bool(self.model.stop_training))
        self.save(self.state, self.selection.best_weights)
        if self.write_log is not None:
            self.write_log(self.state["history"])


def format_epoch_line(row: dict, epochs: int, monitor: str, first_selectable: int) -> str:
    """``epoch 3/20: loss 1.2345, categorical_accuracy 0.5123, val_loss ..., 12.3 s; best epoch 2 (val_... 0.6100)``."""
    figures = ", ".join(f"{name} {value:.4f}" for name, value in row.items() if name not in OWN_COLUMNS)
    best = row.get("best_epoch")
    if best is None:
        verdict = f"no epoch selected yet (selection starts at epoch {first_selectable})"
    else:
        verdict = f"best epoch {best}"
    return f"epoch {row['epoch']}/{epochs}: {figures}, {row['seconds']:.1f} s; {verdict}"


class EpochLog(keras.callbacks.Callback):
    """One INFO line per epoch from the history ``state`` (after :class:`TrainingCheckpoint`), and the model summary."""

    def __init__(self, state: dict, epochs: int, monitor: str, first_selectable: int, network=None):
        super().__init__()
        self.state, self.epochs, self.monitor, self.first_selectable, self.network = state, epochs, monitor, first_selectable, network

    def on_train_begin(self, logs=None):
        if self.network is not None:
            lines = []
            self.network.summary(print_fn=lambda line, *args, **kwargs: lines.append(line))
            LOGGER.debug("model summary:\n%s", "\n".join(lines))
        LOGGER.info("training epochs %d..%d of %d (best epoch selected from epoch %d on by %s)",
                    self.state["epoch"] + 1, self.epochs, self.epochs, self.first_selectable, self.monitor)

    def on_epoch_end(self, epoch, logs=None):
        LOGGER.info(format_epoch_line(self.state["history"][-1], self.epochs, self.monitor, self.first_selectable))


class EpochProgress(keras.callbacks.Callback):
    """One tqdm bar over the epochs with an ETA; off when ``enabled`` is False or stderr is not a terminal."""

    def __init__(self, epochs: int, initial_epoch: int, monitor: str, enabled: bool = True):
        super().__init__()
        self.epochs, self.initial_epoch, self.monitor, self.enabled = epochs, initial_epoch, monitor, enabled
        self.bar = None

    def on_train_begin(self, logs=None):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.epochs, initial=self.initial_epoch, desc="training", unit="epoch", disable=None if self.enabled else True)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        shown = {name: f"{float(logs[name]):.4f}" for name in ("loss", self.monitor) if name in logs}
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(1)

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()


class ResumeReplay(keras.callbacks.Callback):
    """On resume, show ``callbacks`` the epochs already trained, then put the checkpoint's state back.

    Place it last: Keras calls every callback's ``on_train_begin`` first (which resets e.g. an
    EarlyStopping), then this one calls their ``on_epoch_end`` with each logged epoch, so a patience
    counter or a learning-rate reduction continues where it was. ``restore()`` then re-assigns the
    checkpoint's model and optimizer variables (a replayed ReduceLROnPlateau must not lower the
    restored learning rate twice).
    """

    def __init__(self, history: list[dict], callbacks, restore):
        super().__init__()
        self.history, self.callbacks, self.restore = history, list(callbacks), restore

    def on_train_begin(self, logs=None):
        for row in self.history:
            logged = {name: value for name, value in row.items() if name not in OWN_COLUMNS}
            for callback in self.callbacks:
                callback.on_epoch_end(row["epoch"] - 1, dict(logged))
        self.restore()
        self.model.stop_training = False


def checkpoint_values(network, optimizer) -> tuple[list, list]:
    """Current values of the network's variables (seed generators included) and the optimizer's."""
    return [v.numpy() for v in network.variables], [v.numpy() for v in optimizer.variables]


def assign_values(variables, values, what: str) -> None:
    """Assign saved ``values`` to ``variables``; ValueError when they do not match."""
    if not values_match(variables, values):
        raise ValueError(f"{what} in the checkpoint do not match the model")
    for variable, value in zip(variables, values):
        variable.assign(value)


def tensorboard(folder: Path):
    return keras.callbacks.TensorBoard(log_dir=str(folder))
