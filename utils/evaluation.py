"""Scene classification metrics of the DCASE Task 1 results: accumulate, then report.

Owns the figures the official baseline and the challenge results publish: multi-class log loss
(scikit-learn ``log_loss`` with all ten labels) and macro-averaged accuracy (the mean of the
class-wise accuracies), overall, per class, per device, per class x device and per device group,
with confidence intervals; the results table laid out as the official README's; the mean and
standard deviation over independent trainings ("averaged over 10 iterations"); and the confusion
matrix and per-device accuracy figures.

Confidence intervals: jackknife (leave one item out) for the log loss, as the DCASE results
pages do, and for the macro accuracies too, because a mean of class-wise accuracies is not a
binomial proportion; the Wilson score interval for the micro accuracy, which is one.

Usage, as sed_eval's scene metrics::

    metrics = SceneClassificationMetrics()
    metrics.accumulate(y_true, probabilities, devices)   # any number of times
    results = metrics.results()                          # plain Python types, YAML-able
    print(format_results_table(results, "TAU Urban Acoustic Scenes 2022 Mobile, development set"))
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import scipy.stats
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix, log_loss

from utils.dataset import DEVELOPMENT_DEVICES, DEVICE_GROUPS, SCENE_LABELS
from utils.errors import Task1aError
from utils.files import atomic_path

DEFAULT_CONFIDENCE_LEVEL = 0.95
# Devices of the evaluation set that are in none of the development set's groups (d, s7..s11).
OTHER_DEVICES_GROUP = "other_devices"
INTERVAL_METHODS = {"logloss": "jackknife", "accuracy": "jackknife", "micro_accuracy": "wilson"}


# ---------------------------------------------------------------- numeric core (pure functions)


def normalise_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """Rows divided by their sums, as float64: ``(n_items, n_classes)``.

    A dequantized int8 softmax does not sum to one; log loss needs probabilities that do.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def item_log_losses(class_indices: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Per-item negative log-likelihood of the true class, ``(n_items,)``.

    scikit-learn's ``log_loss`` only returns the mean; the jackknife needs each item's term. The
    clipping is scikit-learn's (>= 1.5): to ``[eps, 1 - eps]`` of the dtype, no renormalisation,
    so ``item_log_losses(...).mean() == log_loss(...)`` for float64 input.
    """
    eps = np.finfo(probabilities.dtype).eps
    true_class_probability = probabilities[np.arange(len(class_indices)), class_indices]
    return -np.log(np.clip(true_class_probability, eps, 1 - eps))


def macro_accuracy(class_indices: np.ndarray, correct: np.ndarray, n_classes: int) -> float:
    """Mean of the class-wise accuracies over the classes present in ``class_indices``."""
    counts = np.bincount(class_indices, minlength=n_classes)
    hits = np.bincount(class_indices, weights=correct.astype(np.float64), minlength=n_classes)
    present = counts > 0
    return float(np.mean(hits[present] / counts[present]))


def classification_scores(class_indices: np.ndarray, probabilities: np.ndarray) -> dict:
    """Accuracy, macro (class-wise averaged) accuracy and log loss of ``probabilities`` ``(n, n_classes)``.

    Rows are renormalised first (:func:`normalise_probabilities`): float32 softmax rows and
    dequantized int8 ones miss 1 by more than scikit-learn's float64 tolerance. The learning stage's
    validation figures and the quantization check use this one function.
    """
    class_indices = np.asarray(class_indices)
    probabilities = normalise_probabilities(probabilities)
    correct = probabilities.argmax(axis=1) == class_indices
    return {
        "accuracy": float(correct.mean()),
        "macro_accuracy": macro_accuracy(class_indices, correct, probabilities.shape[1]),
        "log_loss": float(log_loss(class_indices, probabilities, labels=np.arange(probabilities.shape[1]))),
    }


def jackknife_interval(estimate: float, leave_one_out: np.ndarray, confidence_level: float) -> list[float] | None:
    """Normal-approximation interval ``estimate +/- z * SE_jackknife``; None below two items.

    ``leave_one_out`` holds the statistic recomputed without each item, ``(n_items,)``;
    ``SE_jackknife = sqrt((n - 1) / n * sum((theta_i - mean(theta))^2))``.
    """
    n = len(leave_one_out)
    if n < 2:
        return None
    standard_error = math.sqrt((n - 1) / n * float(np.sum((leave_one_out - leave_one_out.mean()) ** 2)))
    z = float(scipy.stats.norm.ppf(0.5 + confidence_level / 2))
    return [float(estimate - z * standard_error), float(estimate + z * standard_error)]


def leave_one_out_mean(values: np.ndarray) -> np.ndarray:
    """The mean of ``values`` without each item in turn, ``(n_items,)`` (n >= 2)."""
    return (values.sum() - values) / (len(values) - 1)


def leave_one_out_macro_accuracy(class_indices: np.ndarray, correct: np.ndarray, n_classes: int) -> np.ndarray:
    """The macro accuracy without each item in turn, ``(n_items,)`` (n >= 2), in O(n).

    Leaving item i out changes only its own class's accuracy; a class left without items drops
    out of the mean, as it would in a direct recomputation.
    """
    counts = np.bincount(class_indices, minlength=n_classes).astype(np.float64)
    hits = np.bincount(class_indices, weights=correct.astype(np.float64), minlength=n_classes)
    present = counts > 0
    class_accuracy = np.divide(hits, counts, out=np.zeros(n_classes), where=present)
    accuracy_sum, n_present = class_accuracy[present].sum(), int(present.sum())
    own_count = counts[class_indices]
    own_accuracy = class_accuracy[class_indices]
    with np.errstate(divide="ignore", invalid="ignore"):
        own_without = (hits[class_indices] - correct) / (own_count - 1)
    emptied = own_count == 1
    total = np.where(emptied, accuracy_sum - own_accuracy, accuracy_sum - own_accuracy + own_without)
    divisor = np.where(emptied, n_present - 1, n_present)
    return total / divisor


def wilson_interval(successes: int, trials: int, confidence_level: float) -> list[float] | None:
    """Wilson score interval of a binomial proportion (scipy); None without trials."""
    if trials == 0:
        return None
    interval = scipy.stats.binomtest(successes, trials).proportion_ci(confidence_level, method="wilson")
    return [float(interval.low), float(interval.high)]


def device_sort_key(device: str) -> tuple:
    """Development devices in their official order, then the others naturally (d, s7, ..., s11)."""
    if device in DEVELOPMENT_DEVICES:
        return (0, DEVELOPMENT_DEVICES.index(device), "", 0)
    match = re.fullmatch(r"([^\d]*)(\d*)", device)
    return (1, 0, match.group(1), int(match.group(2) or 0))


# ---------------------------------------------------------------- metrics container


class SceneClassificationMetrics:
    """Accumulates (true scene, class probabilities, device) items; reports every published figure.

    Parameters
    ----------
    scene_labels : class names in the column order of the probabilities (official: alphabetical)
    confidence_level : of the intervals (``evaluator.confidence_level``)
    device_groups : group name -> devices; devices in no group form the group ``other_devices``
    """

    def __init__(
        self,
        scene_labels: Sequence[str] = SCENE_LABELS,
        confidence_level: float = DEFAULT_CONFIDENCE_LEVEL,
        device_groups: Mapping[str, Sequence[str]] = DEVICE_GROUPS,
    ):
        scene_labels = [str(label) for label in scene_labels]
        if len(scene_labels) < 2 or len(set(scene_labels)) != len(scene_labels):
            raise Task1aError(f"scene_labels must be at least two distinct names, got {scene_labels}; fix the label list")
        if not 0 < float(confidence_level) < 1:
            raise Task1aError(f"evaluator.confidence_level must be between 0 and 1 (e.g. 0.95), got {confidence_level}; fix the parameter")
        self.scene_labels = scene_labels
        self.confidence_level = float(confidence_level)
        self.device_groups = {str(name): tuple(devices) for name, devices in device_groups.items()}
        self._class_indices: list[np.ndarray] = []
        self._probabilities: list[np.ndarray] = []
        self._devices: list[np.ndarray] = []

    def accumulate(self, y_true: Sequence[str], probabilities, devices: Sequence[str]) -> "SceneClassificationMetrics":
        """Add items: ``y_true`` scene labels ``(n_items,)``, ``probabilities`` ``(n_items, n_classes)``
        in the order of ``scene_labels`` (renormalised per row here), ``devices`` ids ``(n_items,)``."""
        y_true = [str(label) for label in y_true]
        devices = [str(device) for device in devices]
        probabilities = np.asarray(probabilities, dtype=np.float64)
        n_classes = len(self.scene_labels)
        if probabilities.ndim != 2 or probabilities.shape[1] != n_classes:
            raise Task1aError(
                f"probabilities must have shape (n_items, {n_classes}) (one column per scene label), got {probabilities.shape}; "
                "pass the model's output rows"
            )
        if not len(y_true) == len(devices) == len(probabilities):
            raise Task1aError(
                f"y_true ({len(y_true)}), probabilities ({len(probabilities)}) and devices ({len(devices)}) must have one entry per item; "
                "pass aligned sequences"
            )
        index_of = {label: index for index, label in enumerate(self.scene_labels)}
        unknown = sorted({label for label in y_true if label not in index_of})
        if unknown:
            raise Task1aError(f"unknown scene label(s) {unknown} in y_true (known: {', '.join(self.scene_labels)}); fix the reference labels")
        if not np.all(np.isfinite(probabilities)) or np.any(probabilities < 0):
            raise Task1aError("probabilities contain negative, NaN or infinite values; check the model output")
        if np.any(probabilities.sum(axis=1) <= 0):
            raise Task1aError("a probability row sums to zero and cannot be renormalised; check the model output")
        self._class_indices.append(np.array([index_of[label] for label in y_true], dtype=np.int64))
        self._probabilities.append(normalise_probabilities(probabilities))
        self._devices.append(np.array(devices, dtype=object))
        return self

    def results(self) -> dict:
        """Every figure as plain Python types (accuracies as fractions in [0, 1])."""
        if not self._class_indices or sum(len(part) for part in self._class_indices) == 0:
            raise Task1aError("no items to evaluate; accumulate the system output and reference labels first")
        classes = np.concatenate(self._class_indices)
        probabilities = np.concatenate(self._probabilities)
        devices = np.concatenate(self._devices)
        n_classes = len(self.scene_labels)
        predicted = np.argmax(probabilities, axis=1)
        correct = predicted == classes
        losses = item_log_losses(classes, probabilities)

        def figures(mask: np.ndarray, with_intervals: bool) -> dict:
            subset_classes, subset_correct = classes[mask], correct[mask]
            entry = {
                "accuracy": macro_accuracy(subset_classes, subset_correct, n_classes),
                "logloss": float(log_loss(subset_classes, probabilities[mask], labels=list(range(n_classes)))),
                "n": int(mask.sum()),
            }
            if with_intervals:
                several = entry["n"] >= 2
                entry["accuracy_ci"] = (
                    jackknife_interval(entry["accuracy"], leave_one_out_macro_accuracy(subset_classes, subset_correct, n_classes), self.confidence_level)
                    if several
                    else None
                )
                entry["logloss_ci"] = (
                    jackknife_interval(entry["logloss"], leave_one_out_mean(losses[mask]), self.confidence_level) if several else None
                )
            return entry

        everything = np.ones(len(classes), dtype=bool)
        overall = figures(everything, with_intervals=True)
        device_ids = sorted(set(devices.tolist()), key=device_sort_key)
        groups = {name: [d for d in members if d in device_ids] for name, members in self.device_groups.items()}
        grouped = {d for members in self.device_groups.values() for d in members}
        groups[OTHER_DEVICES_GROUP] = [d for d in device_ids if d not in grouped]

        results = {
            "overall_accuracy": overall["accuracy"],
            "overall_accuracy_ci": overall["accuracy_ci"],
            "overall_logloss": overall["logloss"],
            "overall_logloss_ci": overall["logloss_ci"],
            "micro_accuracy": float(correct.mean()),
            "micro_accuracy_ci": wilson_interval(int(correct.sum()), len(correct), self.confidence_level),
            "n_items": len(classes),
            "confidence_level": self.confidence_level,
            "interval_methods": dict(INTERVAL_METHODS),
            "scene_labels": list(self.scene_labels),
            "class_wise": {
                label: figures(classes == index, with_intervals=False)
                for index, label in enumerate(self.scene_labels)
                if np.any(classes == index)
            },
            "device_wise": {device: figures(devices == device, with_intervals=True) for device in device_ids},
            "class_device_wise": {},
            "device_groups": {
                name: {"devices": members, **figures(np.isin(devices, members), with_intervals=True)}
                for name, members in groups.items()
                if members
            },
            "confusion_matrix": confusion_matrix(classes, predicted, labels=list(range(n_classes))).tolist(),
        }
        for index, label in enumerate(self.scene_labels):
            per_device = {}
            for device in device_ids:
                mask = (classes == index) & (devices == device)
                if np.any(mask):
                    per_device[device] = figures(mask, with_intervals=False)
            if per_device:
                results["class_device_wise"][label] = per_device
        return results


# ---------------------------------------------------------------- several trainings


def _aggregate(values: list, path: str):
    first = values[0]
    if isinstance(first, Mapping):
        keys = list(first)
        for value in values[1:]:
            if not isinstance(value, Mapping) or set(value) != set(keys):
                raise Task1aError(f"trial results differ in their keys at '{path or 'top level'}'; aggregate results of the same test set only")
        pairs = {key: _aggregate([value[key] for value in values], f"{path}.{key}" if path else key) for key in keys}
        return {key: pair[0] for key, pair in pairs.items()}, {key: pair[1] for key, pair in pairs.items()}
    if any(value is None for value in values):
        return None, None
    is_text = isinstance(first, (bool, str)) or (isinstance(first, (list, tuple)) and any(isinstance(item, str) for item in first))
    if is_text:
        if any(value != first for value in values):
            raise Task1aError(f"trial results differ at '{path}' ({values[0]!r} vs others); aggregate results of the same test set only")
        return first, first
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise Task1aError(f"trial results at '{path}' are not numeric or differ in shape; aggregate results of the same test set only") from exc
    mean = array.mean(axis=0)
    std = array.std(axis=0, ddof=1) if len(values) > 1 else np.zeros_like(mean)
    return mean.tolist(), std.tolist()


def aggregate_trials(list_of_results: Sequence[dict]) -> dict:
    """Mean and standard deviation of every figure over independent trainings.

    Returns ``{"n_trials": N, "mean": results, "std": results}`` where ``mean`` and ``std`` have
    the structure of one trial's results (lists element-wise; the sample standard deviation,
    ddof=1, and 0 for a single trial). Labels, methods and counts must agree across trials.
    """
    list_of_results = list(list_of_results)
    if not list_of_results:
        raise Task1aError("no trial results to aggregate; run at least one training")
    mean, std = _aggregate(list_of_results, "")
    return {"n_trials": len(list_of_results), "mean": mean, "std": std}


# ---------------------------------------------------------------- the results table


def _format_logloss(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def _format_accuracy(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _dig(tree: Mapping, *keys):
    node = tree
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _device_columns(results: Mapping) -> list[str]:
    present = list(results.get("device_wise", {}))
    return list(DEVELOPMENT_DEVICES) + [device for device in sorted(present, key=device_sort_key) if device not in DEVELOPMENT_DEVICES]


def _render_table(title: str, results: Mapping, cell: Callable[[str, tuple], str]) -> str:
    """The README layout; ``cell(kind, keys)`` formats the figure at ``keys`` ("logloss"/"accuracy")."""
    devices = _device_columns(results)
    header = ["Scene label", "Log loss"] + [device.upper() for device in devices] + ["Accuracy"]
    rows = []
    for label in results["scene_labels"]:
        rows.append(
            [label, cell("logloss", ("class_wise", label, "logloss"))]
            + [cell("logloss", ("class_device_wise", label, device, "logloss")) for device in devices]
            + [cell("accuracy", ("class_wise", label, "accuracy"))]
        )
    footer = [
        ["Log loss (device-wise)", cell("logloss", ("overall_logloss",))]
        + [cell("logloss", ("device_wise", device, "logloss")) for device in devices]
        + [""],
        ["Accuracy (device-wise)", ""]
        + [cell("accuracy", ("device_wise", device, "accuracy")) for device in devices]
        + [cell("accuracy", ("overall_accuracy",))],
    ]
    widths = [max(len(str(row[column])) for row in [header] + rows + footer) for column in range(len(header))]

    def line(row: list) -> str:
        cells = [str(row[0]).ljust(widths[0])] + [str(value).rjust(width) for value, width in zip(row[1:], widths[1:])]
        return "| " + " | ".join(cells) + " |"

    separator = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return "\n".join([title, "", line(header), separator] + [line(row) for row in rows] + [separator] + [line(row) for row in footer])


def _interval_text(interval, kind: str, method: str, level: float) -> str:
    if interval is None:
        return ""
    low, high = interval
    if kind == "accuracy":
        return f" ({100 * level:g}% CI {100 * low:.1f}-{100 * high:.1f}%, {method})"
    return f" ({100 * level:g}% CI {low:.3f}-{high:.3f}, {method})"


def format_results_table(results: Mapping, dataset_description: str) -> str:
    """The official README's table for one evaluation, titled with the data it comes from.

    Rows are scenes (log loss, class x device log losses, accuracy); the footer rows are the
    device-wise log loss and accuracy with the overall figures in the first and last columns;
    then the overall figures with their confidence intervals and the device groups.
    """

    def cell(kind: str, keys: tuple) -> str:
        value = _dig(results, *keys)
        return _format_logloss(value) if kind == "logloss" else _format_accuracy(value)

    methods = results.get("interval_methods", INTERVAL_METHODS)
    level = results.get("confidence_level", DEFAULT_CONFIDENCE_LEVEL)
    title = f"Evaluation results: {dataset_description} ({results['n_items']} items)"
    lines = [
        _render_table(title, results, cell),
        "",
        f"Overall log loss {results['overall_logloss']:.3f}"
        + _interval_text(results.get("overall_logloss_ci"), "logloss", methods["logloss"], level),
        f"Overall accuracy {_format_accuracy(results['overall_accuracy'])} (macro: mean of class-wise accuracies)"
        + _interval_text(results.get("overall_accuracy_ci"), "accuracy", methods["accuracy"], level),
        f"Micro accuracy   {_format_accuracy(results['micro_accuracy'])} (correct items / items)"
        + _interval_text(results.get("micro_accuracy_ci"), "accuracy", methods["micro_accuracy"], level),
    ]
    for name, group in results.get("device_groups", {}).items():
        lines.append(
            f"  {name.replace('_', ' ')} ({', '.join(group['devices'])}; {group['n']} items): "
            f"log loss {group['logloss']:.3f}, accuracy {_format_accuracy(group['accuracy'])}"
        )
    return "\n".join(lines)


def format_aggregated_table(aggregated: Mapping, dataset_description: str) -> str:
    """The table of :func:`aggregate_trials` output: every cell ``mean +/- std`` over the trials."""
    mean, std, n_trials = aggregated["mean"], aggregated["std"], aggregated["n_trials"]

    def cell(kind: str, keys: tuple) -> str:
        value, spread = _dig(mean, *keys), _dig(std, *keys)
        if value is None:
            return "-"
        if kind == "logloss":
            return f"{value:.3f} +/- {spread:.3f}"
        return f"{100 * value:.1f} +/- {100 * spread:.1f}%"

    title = f"Evaluation results: {dataset_description}, averaged over {n_trials} iterations (mean +/- std; {mean['n_items']:.0f} items)"
    lines = [
        _render_table(title, mean, cell),
        "",
        f"Overall log loss {cell('logloss', ('overall_logloss',))}",
        f"Overall accuracy {cell('accuracy', ('overall_accuracy',))} (macro: mean of class-wise accuracies)",
        f"Micro accuracy   {cell('accuracy', ('micro_accuracy',))}",
    ]
    for name, group in mean.get("device_groups", {}).items():
        lines.append(
            f"  {name.replace('_', ' ')} ({', '.join(group['devices'])}): log loss {cell('logloss', ('device_groups', name, 'logloss'))}, "
            f"accuracy {cell('accuracy', ('device_groups', name, 'accuracy'))}"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- figures (I/O edge)


def _save_figure(figure: Figure, path: str | Path) -> Path:
    FigureCanvasAgg(figure)  # Agg canvas on this figure only: no pyplot state, no display needed
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    return Path(path)


def plot_confusion_matrix(results_or_counts, path: str | Path, scene_labels: Sequence[str] | None = None, title: str | None = None) -> Path:
    """Confusion matrix PNG (rows = true scene, normalised per row, in %), written atomically.

    ``results_or_counts`` is a results dict (its ``confusion_matrix`` and ``scene_labels``) or a
    count matrix ``(n_classes, n_classes)`` with rows = true classes.
    """
    if isinstance(results_or_counts, Mapping):
        if "confusion_matrix" not in results_or_counts:
            raise Task1aError("results have no 'confusion_matrix'; pass the output of SceneClassificationMetrics.results()")
        counts = np.asarray(results_or_counts["confusion_matrix"], dtype=np.float64)
        scene_labels = scene_labels or results_or_counts.get("scene_labels")
    else:
        counts = np.asarray(results_or_counts, dtype=np.float64)
    scene_labels = list(scene_labels or SCENE_LABELS)
    if counts.ndim != 2 or counts.shape != (len(scene_labels), len(scene_labels)):
        raise Task1aError(f"confusion matrix must be ({len(scene_labels)}, {len(scene_labels)}) for labels {scene_labels}, got {counts.shape}")
    row_sums = counts.sum(axis=1, keepdims=True)
    percent = np.divide(100 * counts, row_sums, out=np.zeros_like(counts), where=row_sums > 0)
    figure = Figure(figsize=(9, 8), layout="constrained")
    axes = figure.add_subplot()
    display = ConfusionMatrixDisplay(percent, display_labels=scene_labels)
    display.plot(ax=axes, values_format=".0f", cmap="Blues", colorbar=True, xticks_rotation=45)
    axes.set_title(title or "Confusion matrix (% of each true scene)")
    return _save_figure(figure, path)


def plot_device_accuracy(results: Mapping, path: str | Path, title: str | None = None) -> Path:
    """Bar chart of the device-wise accuracy with its confidence interval, coloured by device group."""
    device_wise = results.get("device_wise") or {}
    if not device_wise:
        raise Task1aError("results have no 'device_wise' figures; pass the output of SceneClassificationMetrics.results()")
    devices = sorted(device_wise, key=device_sort_key)
    accuracy = np.array([100 * device_wise[d]["accuracy"] for d in devices])
    errors = np.zeros((2, len(devices)))
    for column, device in enumerate(devices):
        interval = device_wise[device].get("accuracy_ci")
        if interval is not None:
            errors[:, column] = [max(accuracy[column] - 100 * interval[0], 0), max(100 * interval[1] - accuracy[column], 0)]
    group_of = {d: name for name, group in (results.get("device_groups") or {}).items() for d in group["devices"]}
    group_names = list(dict.fromkeys(group_of.get(d, OTHER_DEVICES_GROUP) for d in devices))
    palette = {name: f"C{index}" for index, name in enumerate(group_names)}
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axes = figure.add_subplot()
    colours = [palette[group_of.get(d, OTHER_DEVICES_GROUP)] for d in devices]
    axes.bar([d.upper() for d in devices], accuracy, yerr=errors, color=colours, capsize=3)
    overall = axes.axhline(100 * results["overall_accuracy"], color="black", linestyle="--", linewidth=1)
    handles = [Patch(color=palette[name], label=name.replace("_", " ")) for name in group_names]
    figure.legend(handles=handles + [overall], labels=[h.get_label() for h in handles] + ["overall"], loc="outside right upper")
    axes.set_ylabel("Accuracy (%, macro over scenes)")
    axes.set_xlabel("Device")
    axes.set_ylim(0, 100)
    level = results.get("confidence_level", DEFAULT_CONFIDENCE_LEVEL)
    axes.set_title(title or f"Device-wise accuracy ({100 * level:g}% confidence intervals)")
    return _save_figure(figure, path)

