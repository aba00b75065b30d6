"""Scene classification metrics against values computed by hand or directly (numpy / scikit-learn)."""

import math

import numpy as np
import pytest
import yaml
from sklearn.metrics import log_loss

from utils.dataset import SCENE_LABELS
from utils.errors import Task1aError
from utils.evaluation import (
    SceneClassificationMetrics,
    aggregate_trials,
    format_aggregated_table,
    format_results_table,
    plot_confusion_matrix,
    plot_device_accuracy,
)

Z_95 = 1.959963984540054  # standard normal 97.5 % quantile
LABELS = ("x", "y", "z")

# Seven items of three classes on devices a, b (real) and s4 (unseen simulated).
# item: (true, probabilities, device); the arg-max and the true-class probability are noted.
ITEMS = [
    ("x", [0.7, 0.2, 0.1], "a"),  # -> x correct, p_true 0.7
    ("x", [0.2, 0.5, 0.3], "b"),  # -> y wrong,   p_true 0.2
    ("y", [0.1, 0.8, 0.1], "a"),  # -> y correct, p_true 0.8
    ("y", [0.6, 0.3, 0.1], "s4"),  # -> x wrong,  p_true 0.3
    ("z", [0.2, 0.2, 0.6], "s4"),  # -> z correct, p_true 0.6
    ("z", [2.0, 1.0, 1.0], "b"),  # unnormalised: [0.5, 0.25, 0.25] -> x wrong, p_true 0.25
    ("x", [0.4, 0.35, 0.25], "a"),  # -> x correct, p_true 0.4
]


def mean_neg_log(*probabilities):
    return -sum(math.log(p) for p in probabilities) / len(probabilities)


@pytest.fixture(scope="module")
def hand_results():
    metrics = SceneClassificationMetrics(scene_labels=LABELS)
    first, second = ITEMS[:4], ITEMS[4:]  # accumulate in two calls
    for part in (first, second):
        metrics.accumulate([t for t, _, _ in part], np.array([p for _, p, _ in part]), [d for _, _, d in part])
    return metrics.results()


def test_overall_figures_match_hand_computation(hand_results):
    r = hand_results
    assert r["n_items"] == 7
    # class accuracies x 2/3, y 1/2, z 1/2
    assert r["overall_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1 / 2) / 3)
    assert r["micro_accuracy"] == pytest.approx(4 / 7)
    assert r["overall_logloss"] == pytest.approx(mean_neg_log(0.7, 0.2, 0.8, 0.3, 0.6, 0.25, 0.4))
    assert r["confusion_matrix"] == [[2, 1, 0], [1, 1, 0], [1, 0, 1]]


def test_class_wise_figures(hand_results):
    cw = hand_results["class_wise"]
    assert cw["x"] == {"accuracy": pytest.approx(2 / 3), "logloss": pytest.approx(mean_neg_log(0.7, 0.2, 0.4)), "n": 3}
    assert cw["y"]["accuracy"] == pytest.approx(0.5) and cw["y"]["logloss"] == pytest.approx(mean_neg_log(0.8, 0.3))
    assert cw["z"]["logloss"] == pytest.approx(mean_neg_log(0.6, 0.25)) and cw["z"]["n"] == 2


def test_device_wise_accuracy_is_macro_over_classes_present(hand_results):
    dw = hand_results["device_wise"]
    assert list(dw) == ["a", "b", "s4"]
    assert dw["a"]["accuracy"] == pytest.approx(1.0)  # x: 2/2, y: 1/1
    assert dw["a"]["logloss"] == pytest.approx(mean_neg_log(0.7, 0.8, 0.4))
    assert dw["b"]["accuracy"] == pytest.approx(0.0) and dw["b"]["logloss"] == pytest.approx(mean_neg_log(0.2, 0.25))
    assert dw["s4"]["accuracy"] == pytest.approx(0.5)  # y: 0/1, z: 1/1 (micro would also be 0.5)
    assert dw["s4"]["n"] == 2


def test_class_device_and_group_figures(hand_results):
    cdw = hand_results["class_device_wise"]
    assert cdw["x"]["a"] == {"accuracy": pytest.approx(1.0), "logloss": pytest.approx(mean_neg_log(0.7, 0.4)), "n": 2}
    assert set(cdw["x"]) == {"a", "b"} and set(cdw["y"]) == {"a", "s4"}
    groups = hand_results["device_groups"]
    assert set(groups) == {"real", "unseen_simulated"}  # no s1-s3 items, no unknown devices
    assert groups["real"]["devices"] == ["a", "b"]
    # real: x items 1, 2, 7 -> 2/3; y item 3 -> 1; z item 6 -> 0
    assert groups["real"]["accuracy"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert groups["real"]["logloss"] == pytest.approx(mean_neg_log(0.7, 0.2, 0.8, 0.25, 0.4))
    assert groups["unseen_simulated"]["accuracy"] == pytest.approx(0.5)


def test_unknown_devices_form_their_own_group():
    metrics = SceneClassificationMetrics(scene_labels=LABELS)
    metrics.accumulate(["x", "y", "z", "x"], np.eye(3)[[0, 1, 2, 1]], ["a", "s7", "d", "s10"])
    results = metrics.results()
    assert results["device_groups"]["other_devices"]["devices"] == ["d", "s7", "s10"]
    assert list(results["device_wise"]) == ["a", "d", "s7", "s10"]


def test_zero_probability_is_clipped_as_scikit_learn_does():
    probabilities = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    results = SceneClassificationMetrics(scene_labels=LABELS).accumulate(["y", "y"], probabilities, ["a", "a"]).results()
    eps = np.finfo(np.float64).eps
    assert results["overall_logloss"] == pytest.approx((-math.log(eps) - math.log(1 - eps)) / 2)
    assert results["overall_logloss"] == pytest.approx(log_loss([1, 1], probabilities, labels=[0, 1, 2]))


def direct_macro_accuracy(true, predicted):
    return np.mean([np.mean(predicted[true == c] == c) for c in np.unique(true)])


def direct_jackknife(statistic, n):
    leave_one_out = np.array([statistic(np.delete(np.arange(n), i)) for i in range(n)])
    se = math.sqrt((n - 1) / n * np.sum((leave_one_out - leave_one_out.mean()) ** 2))
    estimate = statistic(np.arange(n))
    return [estimate - Z_95 * se, estimate + Z_95 * se]


def test_jackknife_intervals_match_direct_leave_one_out():
    rng = np.random.default_rng(3)
    n = 40
    true = rng.integers(0, 10, n)
    true[0] = 9
    true[true == 9] = 8
    true[0] = 9  # class 9 has a single item: leaving it out removes the class from the macro mean
    probabilities = rng.dirichlet(np.ones(10), n)
    probabilities[np.arange(n), true] += rng.uniform(0, 0.5, n)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    predicted = probabilities.argmax(axis=1)
    results = SceneClassificationMetrics().accumulate([SCENE_LABELS[c] for c in true], probabilities, ["a"] * n).results()

    expected_logloss = direct_jackknife(lambda keep: log_loss(true[keep], probabilities[keep], labels=list(range(10))), n)
    expected_accuracy = direct_jackknife(lambda keep: direct_macro_accuracy(true[keep], predicted[keep]), n)
    assert results["overall_logloss_ci"] == pytest.approx(expected_logloss, rel=1e-9)
    assert results["overall_accuracy_ci"] == pytest.approx(expected_accuracy, rel=1e-9)
    assert results["device_wise"]["a"]["accuracy_ci"] == pytest.approx(expected_accuracy, rel=1e-9)


def test_micro_accuracy_wilson_interval_matches_formula(hand_results):
    k, n, z = 4, 7, Z_95
    p = k / n
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    assert hand_results["micro_accuracy_ci"] == pytest.approx([centre - half, centre + half])
    assert hand_results["interval_methods"] == {"logloss": "jackknife", "accuracy": "jackknife", "micro_accuracy": "wilson"}


def test_results_are_plain_yaml(hand_results):
    assert yaml.safe_load(yaml.safe_dump(hand_results)) == hand_results


@pytest.mark.parametrize(
    "y_true, probabilities, devices, message",
    [
        (["x", "w"], np.full((2, 3), 1 / 3), ["a", "a"], "unknown scene label(s) ['w']"),
        (["x", "y"], np.full((2, 4), 0.25), ["a", "a"], "shape (n_items, 3)"),
        (["x", "y"], np.full((2, 3), 1 / 3), ["a"], "one entry per item"),
        (["x", "y"], np.array([[0.5, 0.5, np.nan], [1, 0, 0]]), ["a", "a"], "NaN"),
        (["x", "y"], np.array([[0, 0, 0], [1, 0, 0]]), ["a", "a"], "sums to zero"),
    ],
)
def test_bad_inputs_raise_one_clear_error(y_true, probabilities, devices, message):
    with pytest.raises(Task1aError) as error:
        SceneClassificationMetrics(scene_labels=LABELS).accumulate(y_true, probabilities, devices)
    assert message in str(error.value)


def test_no_items_is_an_error():
    with pytest.raises(Task1aError, match="no items"):
        SceneClassificationMetrics().results()


def random_results(seed, n=200):
    """One trial: the same test set (labels, devices) for every seed, the seed's probabilities."""
    test_set = np.random.default_rng(100)
    true = test_set.integers(0, 10, n)
    devices = test_set.choice(["a", "b", "c", "s1", "s2", "s3", "s4", "s5", "s6"], n)
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.ones(10), n)
    probabilities[np.arange(n), true] += 0.2
    return SceneClassificationMetrics().accumulate([SCENE_LABELS[c] for c in true], probabilities, devices).results()


def test_aggregate_trials_mean_and_std_of_every_figure():
    trials = [random_results(seed) for seed in range(3)]
    aggregated = aggregate_trials(trials)
    accuracies = [t["overall_accuracy"] for t in trials]
    assert aggregated["n_trials"] == 3
    assert aggregated["mean"]["overall_accuracy"] == pytest.approx(np.mean(accuracies))
    assert aggregated["std"]["overall_accuracy"] == pytest.approx(np.std(accuracies, ddof=1))
    device_b = [t["device_wise"]["b"]["logloss"] for t in trials]
    assert aggregated["std"]["device_wise"]["b"]["logloss"] == pytest.approx(np.std(device_b, ddof=1))
    np.testing.assert_allclose(aggregated["mean"]["confusion_matrix"], np.mean([t["confusion_matrix"] for t in trials], axis=0))
    assert aggregated["mean"]["scene_labels"] == list(SCENE_LABELS)
    single = aggregate_trials(trials[:1])
    assert single["std"]["overall_logloss"] == 0.0


def test_aggregate_trials_refuses_different_test_sets():
    with pytest.raises(Task1aError, match="differ"):
        aggregate_trials([random_results(0), random_results(1, n=30)])


def table_cells(table: str, row_name: str) -> list[str]:
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0] == row_name:
            return cells
    raise AssertionError(f"no row {row_name!r} in\n{table}")


def test_results_table_layout(hand_results):
    table = format_results_table(hand_results, "synthetic demo data (NOT the real TAU dataset)")
    assert table.splitlines()[0].startswith("Evaluation results: synthetic demo data (NOT the real TAU dataset)")
    header = table_cells(table, "Scene label")
    assert header == ["Scene label", "Log loss", "A", "B", "C", "S1", "S2", "S3", "S4", "S5", "S6", "Accuracy"]
    x_row = table_cells(table, "x")
    assert x_row[1] == f"{mean_neg_log(0.7, 0.2, 0.4):.3f}"
    assert x_row[2] == f"{mean_neg_log(0.7, 0.4):.3f}"  # x on device A
    assert x_row[4] == "-"  # no x item on device C
    assert x_row[-1] == "66.7%"
    device_logloss = table_cells(table, "Log loss (device-wise)")
    assert device_logloss[1] == f"{mean_neg_log(0.7, 0.2, 0.8, 0.3, 0.6, 0.25, 0.4):.3f}"
    assert device_logloss[3] == f"{mean_neg_log(0.2, 0.25):.3f}"
    device_accuracy = table_cells(table, "Accuracy (device-wise)")
    assert device_accuracy[2] == "100.0%" and device_accuracy[8] == "50.0%" and device_accuracy[-1] == "55.6%"


def test_aggregated_table_shows_mean_and_std():
    trials = [random_results(seed) for seed in range(2)]
    table = format_aggregated_table(aggregate_trials(trials), "TAU Urban Acoustic Scenes 2022 Mobile, development set")
    assert "averaged over 2 iterations" in table.splitlines()[0]
    accuracies = [100 * t["overall_accuracy"] for t in trials]
    expected = f"{np.mean(accuracies):.1f} +/- {np.std(accuracies, ddof=1):.1f}%"
    assert table_cells(table, "Accuracy (device-wise)")[-1] == expected


def test_plots_are_written_atomically(tmp_path, hand_results):
    confusion = plot_confusion_matrix(hand_results, tmp_path / "confusion.png")
    devices = plot_device_accuracy(hand_results, tmp_path / "devices.png")
    for path in (confusion, devices):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["confusion.png", "devices.png"]
    with pytest.raises(Task1aError, match="confusion matrix must be"):
        plot_confusion_matrix(np.ones((2, 2)), tmp_path / "bad.png", scene_labels=LABELS)
