"""Distillation: teacher outputs read and checked, the loss as documented, and a tiny run that learns from the teacher."""

import numpy as np
import pytest

from utils import distillation
from utils.dataset import SCENE_LABELS
from utils.errors import Task1aError
from utils.files import file_digest
from utils.settings import learner_from_block

C = len(SCENE_LABELS)


def write_system_output(path, names, probabilities):
    lines = ["\t".join(["filename", "scene_label", *SCENE_LABELS])]
    for name, row in zip(names, probabilities):
        lines.append("\t".join([name, SCENE_LABELS[int(np.argmax(row))], *(f"{p:.6f}" for p in row)]))
    path.write_text("\n".join(lines) + "\n")
    return path


def reference_loss(targets, teacher, p, temperature, weight):
    """numpy: weight * T^2 * KL(softmax(log q / T) || softmax(log p / T)) + (1 - weight) * CE(targets, p)."""
    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    eps = distillation.LOG_EPSILON
    student = log_softmax(np.log(np.clip(p, eps, 1)) / temperature)
    soft = log_softmax(np.log(np.clip(teacher, eps, 1)) / temperature)
    kl = (np.exp(soft) * (soft - student)).sum(axis=1)
    ce = -(targets * np.log(np.clip(p, eps, 1))).sum(axis=1)
    return weight * temperature**2 * kl + (1 - weight) * ce


def test_loss_is_the_documented_mix_and_one_hot_teacher_at_t1_is_cross_entropy():
    import keras

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(C), size=5).astype(np.float32)
    teacher = rng.dirichlet(np.ones(C), size=5).astype(np.float32)
    targets = np.eye(C, dtype=np.float32)[[0, 3, 5, 7, 9]]
    base = keras.losses.CategoricalCrossentropy()
    loss = distillation.distillation_loss(base, C, temperature=2.0, weight=0.3)
    got = float(loss(np.concatenate([targets, teacher], axis=1), p))
    assert got == pytest.approx(reference_loss(targets, teacher, p, 2.0, 0.3).mean(), rel=1e-4)
    # weight 1, T = 1 and a one-hot teacher: the soft-target term alone is the cross-entropy
    only_teacher = distillation.distillation_loss(base, C, temperature=1.0, weight=1.0)
    assert float(only_teacher(np.concatenate([targets, targets], axis=1), p)) == pytest.approx(float(base(targets, p)), rel=1e-4)
    # rows without a teacher (validation) get the plain loss
    assert float(loss(np.concatenate([targets, np.zeros_like(targets)], axis=1), p)) == pytest.approx(float(base(targets, p)), rel=1e-5)


def test_teacher_rows_from_csv_by_filename_and_from_npy(tmp_path):
    rng = np.random.default_rng(1)
    probabilities = rng.dirichlet(np.ones(C), size=3)
    csv = write_system_output(tmp_path / "teacher.csv", ["audio/a.wav", "audio/b.wav", "audio/c.wav"], probabilities)
    rows = distillation.load_teacher(csv, 4, C, ["audio/c.wav", "audio/a.wav", "audio/a.wav", "b.wav"])  # segments repeat a file; a basename matches
    np.testing.assert_allclose(rows, probabilities[[2, 0, 0, 1]], atol=1e-5)
    np.save(tmp_path / "teacher.npy", probabilities)
    np.testing.assert_allclose(distillation.load_teacher(tmp_path / "teacher.npy", 3, C), probabilities, rtol=1e-6)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d, p: write_system_output(d / "t.csv", ["audio/a.wav"], p[:1]), "no row for training file audio/zz.wav"),
        (lambda d, p: (np.save(d / "t.npy", p[:, :5]), d / "t.npy")[1], "expected \\(2, 10\\)|5 classes per row"),
        (lambda d, p: (np.save(d / "t.npy", p * 3), d / "t.npy")[1], "row 0 is not a probability distribution"),
        (lambda d, p: d / "missing.npy", "not found"),
    ],
)
def test_bad_teacher_outputs_are_one_line_errors(tmp_path, make, message):
    probabilities = np.random.default_rng(2).dirichlet(np.ones(C), size=2)
    path = make(tmp_path, probabilities)
    with pytest.raises(Task1aError, match=message) as raised:
        distillation.load_teacher(path, 2, C, ["audio/a.wav", "audio/zz.wav"])
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("config, message", [
    ({"temperature": 0}, "'learner_method_parameters.cnn.distillation.temperature' must be a number > 0"),
    ({"weight": 1.5}, r"'learner_method_parameters.cnn.distillation.weight' must be a number in \[0, 1\]"),
    ({"teacher": "x"}, "unknown parameter 'learner_method_parameters.cnn.distillation.teacher'"),
])
def test_bad_settings(config, message):
    """Refused once, when the settings are typed (the registry); distillation trusts them."""
    with pytest.raises(Task1aError, match=message) as raised:
        learner_from_block({"distillation": config})
    assert "\n" not in str(raised.value)


def test_a_tiny_run_learns_what_the_teacher_says(tmp_path):
    """weight 1: only the teacher counts. A teacher that names the NEXT class makes the student predict it."""
    from tests.test_learning import small_cnn_parameters, toy_problem
    from utils.learning import predict_proba, research_fingerprints, train_model

    X, y = toy_problem(120, seed=3)
    names = [f"audio/item_{i}.wav" for i in range(100)]
    teacher = np.full((100, C), 0.02)
    teacher[np.arange(100), (y[:100] + 1) % C] = 0.82
    csv = write_system_output(tmp_path / "teacher.csv", names, teacher)
    parameters = small_cnn_parameters(epochs=3, initial_delay=0)
    parameters["distillation"] = {"teacher_outputs": str(csv), "temperature": 1.0, "weight": 1.0}
    settings = learner_from_block(parameters)
    assert settings.distillation.temperature == 1.0 and settings.distillation.weight == 1.0
    result = train_model(settings, X[:100], y[:100], X[100:], y[100:], tmp_path / "model", progress=False, training_names=names)
    assert all(np.isfinite(row["loss"]) for row in result.history)
    predicted = predict_proba(result.model, X[:100], 50).argmax(axis=1)
    assert np.mean(predicted == (y[:100] + 1) % C) > 0.8  # the teacher's (shifted) classes, not the labels
    # metrics see the hard targets (the first 10 columns): the shifted predictions score low there
    assert result.history[-1]["categorical_accuracy"] < 0.3 and result.history[-1]["val_categorical_accuracy"] < 0.3
    # the saved model loads without this module's loss
    import keras

    keras.models.load_model(result.model_path)
    assert research_fingerprints(None, settings.distillation.teacher_outputs)["distillation"]["sha256"] == file_digest(csv)


def test_a_missing_teacher_file_stops_the_settings_check(tmp_path):
    with pytest.raises(Task1aError, match="learner_method_parameters.cnn.distillation.teacher_outputs .*nope.csv not found"):
        learner_from_block({"distillation": {"teacher_outputs": str(tmp_path / "nope.csv")}})
