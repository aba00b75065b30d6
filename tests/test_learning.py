"""Learning: label smoothing, honest validation, best-epoch selection and restore, exact resume."""

import copy

import keras
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from utils import learning
from utils.errors import Task1aError
from utils.learning import epoch_order, first_selectable_epoch, load_checkpoint, smooth_labels, train_model
from utils.parameters import DEFAULT_PARAMETER_FILE, load_yaml
from utils.settings import learner_from_block

CLASS_COUNT = 10


def toy_problem(n, seed):
    """Separable toy features (n, 40, 51): class c raises mel bands 4c..4c+3 above the noise."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % CLASS_COUNT)
    X = rng.normal(0.0, 0.3, (n, 40, 51)).astype(np.float32)
    for label in range(CLASS_COUNT):
        X[y == label, 4 * label : 4 * label + 4, :] += 1.0
    return X, y


def small_cnn_parameters(epochs, initial_delay, batch_size=16):
    """The YAML's cnn block with a small network (dropout and batch normalisation kept: they carry state)."""
    parameters = copy.deepcopy(load_yaml(DEFAULT_PARAMETER_FILE)["defaults"]["learner_method_parameters"]["cnn"])
    parameters["model"] = {
        "constants": {"FILTERS": 4},
        "config": [
            {"class_name": "Conv2D", "config": {"filters": "FILTERS", "kernel_size": 3, "padding": "same"}},
            {"class_name": "BatchNormalization", "config": {"axis": -1}},
            {"class_name": "Activation", "config": {"activation": "relu"}},
            {"class_name": "MaxPooling2D", "config": {"pool_size": [4, 5]}},
            {"class_name": "Dropout", "config": {"rate": 0.3}},
            {"class_name": "Flatten", "config": {}},
            {"class_name": "Dense", "config": {"units": "CLASS_COUNT", "activation": "softmax"}},
        ],
    }
    parameters["fit"].update(epochs=epochs, batch_size=batch_size)
    parameters["optimizer"]["config"]["learning_rate"] = 0.01  # learns the toy problem in 2-3 epochs
    parameters["model_selection"]["initial_delay"] = initial_delay
    return parameters


class WeightRecorder(keras.callbacks.Callback):
    """Weights at the end of every epoch (1-based)."""

    def __init__(self):
        super().__init__()
        self.weights = {}

    def on_epoch_end(self, epoch, logs=None):
        self.weights[epoch + 1] = self.model.get_weights()


class Interrupted(Exception):
    pass


class KillDuringEpoch(keras.callbacks.Callback):
    """Raise in the middle of epoch ``epoch`` (1-based), as a killed process would stop."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.kill_epoch, self.kill_batch, self.epoch = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_begin(self, batch, logs=None):
        if self.epoch == self.kill_epoch and batch == self.kill_batch:
            raise Interrupted


class EpochCounter(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch + 1)


def saved_weights(path):
    return keras.models.load_model(path).get_weights()


def assert_same_weights(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_label_smoothing_values():
    y = np.array([0, 3, 9])
    smoothed = smooth_labels(y, 10, 0.1)
    expected = np.full((3, 10), 0.01)
    expected[np.arange(3), y] = 0.91  # the official one-hot * 0.9 + 0.01
    np.testing.assert_allclose(smoothed, expected, rtol=1e-6)
    np.testing.assert_allclose(smoothed.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(smooth_labels(y, 10, 0.0), np.eye(10)[y])
    # a label_smoothing outside [0, 1) is refused when the settings are typed (test_bad_learner_settings_...)


def test_epoch_order_depends_on_seed_and_epoch_only():
    order = epoch_order(50, seed=3, epoch=7)
    assert sorted(order) == list(range(50))
    np.testing.assert_array_equal(order, epoch_order(50, seed=3, epoch=7))
    assert not np.array_equal(order, epoch_order(50, seed=3, epoch=8))
    assert not np.array_equal(order, epoch_order(50, seed=4, epoch=7))
    np.testing.assert_array_equal(epoch_order(5, 0, 0, shuffle=False), np.arange(5))


def test_the_feed_reads_each_epochs_order_batch_by_batch_without_autotuning():
    X, y = toy_problem(50, seed=3)
    targets = smooth_labels(y, CLASS_COUNT, 0.1)
    feed = learning.EpochFeed(X, targets, 16, seed=4, shuffle=True)
    dataset = feed.dataset()  # built once, re-read every epoch as fit does
    for epoch in (3, 0, 3):
        feed.epoch = epoch
        read = list(dataset.as_numpy_iterator())
        assert [len(batch_targets) for _, batch_targets in read] == [16, 16, 16, 2]
        order = epoch_order(50, seed=4, epoch=epoch)
        np.testing.assert_array_equal(np.concatenate([features for features, _ in read])[..., 0], X[order])
        np.testing.assert_array_equal(np.concatenate([batch_targets for _, batch_targets in read]), targets[order])
    # No autotuning: its model thread made every epoch start wait (bench/learning.py).
    assert dataset.options().autotune.enabled is False


def test_first_selectable_epoch_counts_as_the_official_stasher():
    # StasherCallback compares the 0-based epoch index with initial_delay: index 51 (epoch 52) is the first candidate.
    assert first_selectable_epoch(200, 50) == (52, None)
    assert first_selectable_epoch(20, 0) == (2, None)
    assert first_selectable_epoch(20, 18) == (20, None)
    # A delay at or beyond the last index leaves only the last epoch, not none.
    for delay in (19, 50):
        first, note = first_selectable_epoch(20, delay)
        assert first == 20 and "only the last epoch" in note


def test_training_targets_smoothed_validation_targets_not(tmp_path, monkeypatch):
    seen = []

    class SpyFeed(learning.EpochFeed):
        def __init__(self, X, targets, *args, **kwargs):
            seen.append(np.array(targets))
            super().__init__(X, targets, *args, **kwargs)

    monkeypatch.setattr(learning, "EpochFeed", SpyFeed)
    X, y = toy_problem(60, seed=1)
    result = train_model(learner_from_block(small_cnn_parameters(epochs=1, initial_delay=0)), X[:40], y[:40], X[40:], y[40:], tmp_path, progress=False)
    training_targets, validation_targets = seen[0], seen[1]  # the training feed is built first
    np.testing.assert_allclose(training_targets, smooth_labels(y[:40], CLASS_COUNT, 0.1))
    np.testing.assert_array_equal(validation_targets, np.eye(CLASS_COUNT)[y[40:]])
    # The logged validation loss is the plain log loss of the model's predictions.
    model = keras.models.load_model(result.model_path)
    probabilities = model.predict_on_batch(X[40:, ..., None]).astype(np.float64)
    expected = log_loss(y[40:], probabilities / probabilities.sum(axis=1, keepdims=True), labels=range(CLASS_COUNT))
    logged = pd.read_csv(result.training_log_path)
    assert logged["val_loss"].iloc[0] == pytest.approx(expected, rel=1e-4)
    assert result.val_log_loss == pytest.approx(expected, rel=1e-4)


def test_selection_restores_the_best_epoch_after_the_delay(tmp_path):
    X, y = toy_problem(240, seed=2)
    store = tmp_path / "features.npy"
    np.save(store, X[:160])
    X_train = np.load(store, mmap_mode="r")  # the stage reads a memmap batch by batch
    # Validation labels shifted by one class: the better the model learns the true classes, the
    # worse its validation loss, so the best epoch is an early one and differs from the last.
    y_val = (y[160:] + 1) % CLASS_COUNT
    parameters = small_cnn_parameters(epochs=4, initial_delay=1)
    parameters["model_selection"]["monitor"] = "val_loss"
    recorder = WeightRecorder()
    result = train_model(learner_from_block(parameters), X_train, y[:160], X[160:], y_val, tmp_path / "model", progress=False, callbacks=[recorder])

    logged = pd.read_csv(result.training_log_path)
    assert list(logged["epoch"]) == [1, 2, 3, 4]
    selectable = logged[logged["epoch"] >= 3]  # initial_delay 1: as the official StasherCallback, epoch 3 (index 2 > 1) is the first candidate
    expected_best = int(selectable.loc[selectable["val_loss"].idxmin(), "epoch"])
    assert result.best_epoch == expected_best == int(logged["best_epoch"].iloc[-1])
    assert expected_best != 4, "toy setup no longer makes the last epoch worse; the test would not tell restore from keep-last"
    assert_same_weights(saved_weights(result.model_path), recorder.weights[expected_best])
    assert result.training_curves_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_after_interruption_gives_the_uninterrupted_weights(tmp_path):
    X, y = toy_problem(150, seed=3)
    parameters = small_cnn_parameters(epochs=3, initial_delay=0)
    parameters["fit"]["steps_per_execution"] = 2  # 7 batches an epoch: calls start at batches 0, 2, 4, 6
    arguments, settings = (X[:100], y[:100], X[100:], y[100:]), learner_from_block(parameters)

    uninterrupted = train_model(settings, *arguments, tmp_path / "whole", seed=7, deterministic=True, progress=False)

    with pytest.raises(Interrupted):
        train_model(settings, *arguments, tmp_path / "killed", seed=7, deterministic=True, progress=False, callbacks=[KillDuringEpoch(epoch=3, batch=2)])
    state, *_ = load_checkpoint(tmp_path / "killed" / learning.CHECKPOINT_FILENAME)
    assert state["epoch"] == 2 and not (tmp_path / "killed" / learning.MODEL_FILENAME).exists()

    counter = EpochCounter()
    resumed = train_model(settings, *arguments, tmp_path / "killed", seed=7, deterministic=True, progress=False, callbacks=[counter])
    assert counter.epochs == [3]  # only the unfinished epoch was trained again
    assert resumed.best_epoch == uninterrupted.best_epoch
    assert_same_weights(saved_weights(resumed.model_path), saved_weights(uninterrupted.model_path))
    columns = ["epoch", "loss", "categorical_accuracy", "val_loss", "val_categorical_accuracy", "best_epoch"]
    pd.testing.assert_frame_equal(pd.read_csv(resumed.training_log_path)[columns], pd.read_csv(uninterrupted.training_log_path)[columns])
    # The selected epoch is the first best validation accuracy, recomputed from the log.
    logged = pd.read_csv(uninterrupted.training_log_path)
    assert uninterrupted.best_epoch == int(logged.loc[logged["val_categorical_accuracy"].idxmax(), "epoch"])

    # A finished run is not trained again.
    counter = EpochCounter()
    again = train_model(settings, *arguments, tmp_path / "whole", seed=7, deterministic=True, progress=False, callbacks=[counter])
    assert counter.epochs == [] and again.best_epoch == uninterrupted.best_epoch
    assert again.val_accuracy == uninterrupted.val_accuracy


def test_without_validation_the_last_epoch_is_kept(tmp_path):
    X, y = toy_problem(40, seed=5)
    recorder = WeightRecorder()
    result = train_model(learner_from_block(small_cnn_parameters(epochs=2, initial_delay=0)), X, y, None, None, tmp_path, progress=False, callbacks=[recorder])
    assert result.best_epoch == 2 and result.val_accuracy is None and result.validation == {}
    assert_same_weights(saved_weights(result.model_path), recorder.weights[2])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda p, d: p["optimizer"].update(class_name="Adamm"), "learner_method_parameters.cnn.optimizer"),
        (lambda p, d: d.update(y_train=d["y_train"] + 10), "training labels must be class indices"),
        (lambda p, d: d.update(X_val=d["X_val"][:, :, :5]), "validation features have shape"),
        (lambda p, d: d.update(X_train=d["X_train"][:, 0]), "training features must be an array of shape"),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path, change, message):
    X, y = toy_problem(20, seed=4)
    parameters = small_cnn_parameters(epochs=1, initial_delay=0)
    data = {"X_train": X[:10], "y_train": y[:10], "X_val": X[10:], "y_val": y[10:]}
    change(parameters, data)
    with pytest.raises(Task1aError, match=message) as raised:
        train_model(learner_from_block(parameters), data["X_train"], data["y_train"], data["X_val"], data["y_val"], tmp_path, progress=False)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda p: p["model_selection"].update(monitor="val_auc"), "cnn.model_selection.monitor 'val_auc' is not logged"),
        (lambda p: p["model_selection"].update(rule="first"), "'learner_method_parameters.cnn.model_selection.rule' must be one of best, last"),
        (lambda p: p["model_selection"].update(initial_delay=-1), "'learner_method_parameters.cnn.model_selection.initial_delay' must be an integer >= 0"),
        (lambda p: p["fit"].update(epochs=0), "'learner_method_parameters.cnn.fit.epochs' must be an integer >= 1"),
        (lambda p: p["fit"].update(batch_size=0), "'learner_method_parameters.cnn.fit.batch_size' must be an integer >= 1"),
        (lambda p: p["fit"].update(steps_per_execution=0), "'learner_method_parameters.cnn.fit.steps_per_execution' must be an integer >= 1"),
        (lambda p: p["fit"].update(label_smoothing=1.0), r"'learner_method_parameters.cnn.fit.label_smoothing' must be a number in \[0, 1\)"),
        (lambda p: p["fit"].update(label_smoothing=1.5), r"'learner_method_parameters.cnn.fit.label_smoothing' must be a number in \[0, 1\)"),
        (lambda p: p["fit"].update(shuffle="yes"), "'learner_method_parameters.cnn.fit.shuffle' must be true"),
        (lambda p: p["fit"].update(tensorboard=1), "'learner_method_parameters.cnn.fit.tensorboard' must be true"),
        (lambda p: p["compile"].update(metrics="categorical_accuracy"), "'learner_method_parameters.cnn.compile.metrics' must be a list"),
        (lambda p: p.update(trainable_layers=[]), "'learner_method_parameters.cnn.trainable_layers' must be a non-empty list"),
    ],
)
def test_bad_learner_settings_are_refused_once_when_the_settings_are_typed(change, message):
    """The registry and utils.settings refuse what learning used to re-check; learning trusts the typed settings."""
    parameters = small_cnn_parameters(epochs=1, initial_delay=0)
    change(parameters)
    with pytest.raises(Task1aError, match=message) as raised:
        learner_from_block(parameters)
    assert "\n" not in str(raised.value)


def test_keras_configs_from_the_yaml_reach_keras(tmp_path):
    X, y = toy_problem(60, seed=6)
    parameters = small_cnn_parameters(epochs=2, initial_delay=0)
    parameters["optimizer"] = {"class_name": "SGD", "config": {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}}
    parameters["compile"]["loss"] = {"class_name": "CategoricalCrossentropy", "config": {"from_logits": False}}
    parameters["fit"]["callbacks"] = [{"class_name": "CSVLogger", "config": {"filename": "keras_log.csv"}}]
    result = train_model(learner_from_block(parameters), X[:40], y[:40], X[40:], y[40:], tmp_path, progress=False)
    optimizer = keras.models.load_model(result.model_path).optimizer
    assert type(optimizer).__name__ == "SGD" and optimizer.momentum == 0.9 and optimizer.nesterov
    logged = pd.read_csv(tmp_path / "keras_log.csv")  # a relative callback path lands in the model folder
    assert list(logged["epoch"]) == [0, 1]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda p: p["optimizer"].update(config={"learning_rate": 0.1, "beta_one": 0.8}), "learner_method_parameters.cnn.optimizer: .*beta_one"),
        (lambda p: p["optimizer"].update(class_name="Adamm"), "learner_method_parameters.cnn.optimizer"),
        (lambda p: p["compile"].update(loss={"class_name": "NoSuchLoss", "config": {}}), "learner_method_parameters.cnn.compile.loss"),
        (lambda p: p["fit"].update(callbacks=[{"class_name": "EarlyStoping", "config": {}}]), r"fit.callbacks\[0\].class_name: 'EarlyStoping'"),
        (lambda p: p["fit"].update(callbacks=[{"class_name": "EarlyStopping", "config": {"patients": 3}}]), r"fit.callbacks\[0\].config: .*patients"),
    ],
)
def test_bad_keras_configs_are_one_line_errors_naming_the_key(change, message):
    parameters = small_cnn_parameters(epochs=1, initial_delay=0)
    change(parameters)
    with pytest.raises(Task1aError, match=message) as raised:
        learning.check_keras_configs(learner_from_block(parameters))
    assert "\n" not in str(raised.value)


def early_stopping_parameters():
    parameters = small_cnn_parameters(epochs=30, initial_delay=0)
    # Validation labels shifted by one class (as above): validation loss rises as training succeeds, so
    # EarlyStopping(patience 2) stops long before epoch 30.
    parameters["fit"]["callbacks"] = [{"class_name": "EarlyStopping", "config": {"monitor": "val_loss", "patience": 2}}]
    parameters["fit"]["steps_per_execution"] = 2
    return parameters


def test_early_stopping_from_the_yaml_stops_and_a_killed_run_resumes_to_the_same_weights(tmp_path):
    X, y = toy_problem(150, seed=2)
    arguments = (X[:100], y[:100], X[100:], (y[100:] + 1) % CLASS_COUNT)
    settings = learner_from_block(early_stopping_parameters())
    whole = train_model(settings, *arguments, tmp_path / "whole", seed=5, deterministic=True, progress=False)
    assert whole.stopped_early and 3 <= whole.epochs_trained < 30

    # Killed in the epoch before the one EarlyStopping stops at: its patience must survive the resume.
    kill_epoch = whole.epochs_trained - 1
    with pytest.raises(Interrupted):
        train_model(settings, *arguments, tmp_path / "killed", seed=5, deterministic=True, progress=False,
                    callbacks=[KillDuringEpoch(epoch=kill_epoch, batch=2)])
    counter = EpochCounter()
    resumed = train_model(settings, *arguments, tmp_path / "killed", seed=5, deterministic=True, progress=False, callbacks=[counter])
    assert counter.epochs == list(range(kill_epoch, whole.epochs_trained + 1))
    assert resumed.stopped_early and resumed.epochs_trained == whole.epochs_trained and resumed.best_epoch == whole.best_epoch
    assert_same_weights(saved_weights(resumed.model_path), saved_weights(whole.model_path))

    # A finished, early-stopped run trains nothing more.
    counter = EpochCounter()
    train_model(settings, *arguments, tmp_path / "whole", seed=5, deterministic=True, progress=False, callbacks=[counter])
    assert counter.epochs == []


def test_one_log_line_per_epoch_and_the_model_summary(tmp_path, caplog):
    import logging

    X, y = toy_problem(60, seed=1)
    with caplog.at_level(logging.DEBUG, logger="utils"):
        train_model(learner_from_block(small_cnn_parameters(epochs=3, initial_delay=0)), X[:40], y[:40], X[40:], y[40:], tmp_path, progress=False)
    lines = [record.getMessage() for record in caplog.records if record.name in ("utils.learning", "utils.callbacks")]
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epoch_lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all("val_loss" in line and "categorical_accuracy" in line and " s; " in line for line in epoch_lines)
    assert "selection starts at epoch 2" in epoch_lines[0] and "best epoch" in epoch_lines[2]
    assert any(line.startswith("model summary:") and "Conv2D" in line for line in lines)


def test_fine_tuning_starts_at_the_saved_model_and_trains_only_the_chosen_layers(tmp_path):
    X, y = toy_problem(150, seed=3)
    arguments = (X[:100], y[:100], X[100:], y[100:])
    parameters = small_cnn_parameters(epochs=3, initial_delay=0)
    source = train_model(learner_from_block(parameters), *arguments, tmp_path / "source", seed=1, progress=False)
    assert source.val_accuracy > 0.5, "the toy source model no longer learns; the test would not tell a start from chance"

    tuned_parameters = small_cnn_parameters(epochs=1, initial_delay=0)
    tuned_parameters["initial_weights"] = str(source.model_path)
    tuned_parameters["trainable_layers"] = ["dense*"]
    tuned_parameters["optimizer"]["config"]["learning_rate"] = 1e-4
    tuned = train_model(learner_from_block(tuned_parameters), *arguments, tmp_path / "tuned", seed=2, progress=False)
    assert tuned.history[0]["val_categorical_accuracy"] == pytest.approx(source.val_accuracy, abs=0.1)
    before, after = keras.models.load_model(source.model_path), keras.models.load_model(tuned.model_path)
    for old_layer, new_layer in zip(before.layers, after.layers):
        changed = any(not np.array_equal(a, b) for a, b in zip(old_layer.get_weights(), new_layer.get_weights()))
        assert changed == (new_layer.name.startswith("dense") and bool(new_layer.get_weights())), new_layer.name


@pytest.mark.parametrize(
    "change, message, refused_by",
    [
        (lambda p, d: p.update(initial_weights=str(d / "nothing.keras")), "initial_weights .*nothing.keras not found", "settings"),
        (lambda p, d: p.update(initial_weights=str(d / "model.h5")), "'learner_method_parameters.cnn.initial_weights' must be a .keras", "settings"),
        (lambda p, d: p.update(trainable_layers=["lstm*"]), "trainable_layers: 'lstm\\*' matches no layer", "training"),
    ],
)
def test_bad_fine_tuning_settings_are_one_line_errors(tmp_path, change, message, refused_by):
    X, y = toy_problem(20, seed=4)
    parameters = small_cnn_parameters(epochs=1, initial_delay=0)
    change(parameters, tmp_path)
    with pytest.raises(Task1aError, match=message):
        settings = learner_from_block(parameters)
        assert refused_by == "training", "the typed settings took a value they must refuse"
        train_model(settings, X[:10], y[:10], X[10:], y[10:], tmp_path / "m", progress=False)


def test_initial_weights_of_another_network_are_refused_naming_the_file(tmp_path):
    X, y = toy_problem(20, seed=4)
    other = small_cnn_parameters(epochs=1, initial_delay=0)
    other["model"]["constants"]["FILTERS"] = 6
    saved = train_model(learner_from_block(other), X[:10], y[:10], None, None, tmp_path / "other", progress=False)
    parameters = small_cnn_parameters(epochs=1, initial_delay=0)
    parameters["initial_weights"] = str(saved.model_path)
    with pytest.raises(Task1aError, match=f"{saved.model_path} does not match the model"):
        train_model(learner_from_block(parameters), X[:10], y[:10], None, None, tmp_path / "m", progress=False)


def write_learner_record(folder, parameters):
    """What the stage runner writes beside a learner hash folder (utils.workspace.ParametersRecord)."""
    import yaml

    folder.mkdir(parents=True, exist_ok=True)
    record = {"set_id": "x", "stage": "learner", "extra": None, "parameters": {"learner": {"parameters": copy.deepcopy(parameters)}}}
    (folder / "parameters.yaml").write_text(yaml.safe_dump(record))
    return folder / "seed_7"


def test_extending_epochs_continues_the_shorter_training(tmp_path):
    X, y = toy_problem(150, seed=3)
    arguments = (X[:100], y[:100], X[100:], y[100:])
    short, long = small_cnn_parameters(epochs=2, initial_delay=0), small_cnn_parameters(epochs=3, initial_delay=0)
    whole = train_model(learner_from_block(long), *arguments, tmp_path / "whole", seed=7, deterministic=True, progress=False)

    short_folder = write_learner_record(tmp_path / "learner" / "aaa", short)
    train_model(learner_from_block(short), *arguments, short_folder, seed=7, deterministic=True, progress=False)
    other = copy.deepcopy(long)
    other["fit"]["batch_size"] = 8  # not the same training: never a continuation source
    write_learner_record(tmp_path / "learner" / "ccc", other)
    long_folder = write_learner_record(tmp_path / "learner" / "bbb", long)
    assert learning.adopt_earlier_checkpoint(long_folder) == short_folder / learning.CHECKPOINT_FILENAME
    counter = EpochCounter()
    extended = train_model(learner_from_block(long), *arguments, long_folder, seed=7, deterministic=True, progress=False, callbacks=[counter])
    assert counter.epochs == [3]  # only the extra epoch
    assert extended.best_epoch == whole.best_epoch and len(extended.history) == 3
    assert_same_weights(saved_weights(extended.model_path), saved_weights(whole.model_path))
    # A longer training is never cut back: a shorter fit.epochs finds no source and starts over.
    assert learning.continuation_source(write_learner_record(tmp_path / "learner" / "ddd", small_cnn_parameters(epochs=1, initial_delay=0))) is None
    # A folder that already has its own checkpoint keeps it.
    assert learning.adopt_earlier_checkpoint(long_folder) is None
