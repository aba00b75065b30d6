"""The challenge's system output format, the DCASE2023 Task 1 submission package and its validator.

Owns:

- the system output file (tab separated, header ``filename scene_label airport ... tram``, one row
  per audio file, the arg-max label and the ten class probabilities): :func:`write_system_output`,
  :func:`read_system_output`;
- the submission meta information (``LABEL.meta.yaml``) filled from what a run knows, over a
  template holding the fields only a person can fill (``meta/task1a_submission.meta.yaml``):
  :func:`build_submission_meta`;
- the package, laid out as the challenge's validator expects (``task1/LABEL/LABEL.output.csv`` and
  ``task1/LABEL/LABEL.meta.yaml`` in a zip): :func:`build_submission_package`;
- the validator, which makes the checks of the official one
  (toni-heittola/dcase2023_task1_submission_validator) and reports every problem, not just the
  first: :func:`validate_submission` and the module CLI::

    python -m utils.submission PACKAGE.zip [--expected-files N | --any-file-count]

The official validator's checks: header fields; 12 fields per row; ``.wav`` files with integer stems
in ``0 .. N-1`` (compared by base name, so ``0.wav`` and ``audio/0.wav`` both pass); no duplicates;
valid scene labels; numeric probabilities; N distinct files; the meta blocks and their required
fields; exactly one corresponding author; the label ``Lastname_Institute_task1_[1-4]``, matching the
file and folder names; an abbreviation of at most 10 characters; an integer ``total_parameters``.
It does not check that probabilities lie in [0, 1] or that the label is their arg-max (the task
page's own example does not satisfy either), so neither does this one. In addition this one reports
malformed files the official one crashes on (non-integer stems, short rows, broken YAML), values that
are not numeric, and any value still holding this project's template placeholder ("FILL IN").
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import re
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import yaml

from utils.dataset import DEVELOPMENT_DEVICES, SCENE_LABELS
from utils.errors import Task1aError
from utils.files import atomic_path

TASK_FOLDER = "task1"
OUTPUT_SUFFIX = ".output.csv"
META_SUFFIX = ".meta.yaml"
# The DCASE2023 Task 1 evaluation set: files 0.wav ... 118799.wav (the official validator's figures).
OFFICIAL_EVALUATION_FILE_COUNT = 118800
PROBABILITY_DECIMALS = 6
MAX_ABBREVIATION_LENGTH = 10
MAX_SUBMISSIONS = 4
LABEL_PATTERN = re.compile(r"^[^_\s/]+_[^_\s/]+_task1_[1-9]\d*$")
PLACEHOLDER_MARK = "FILL IN"
MAX_ROWS_PER_PROBLEM = 10
# Development-set figures in the meta: accuracy in % (as the challenge's meta files), rounded.
ACCURACY_DECIMALS = 2
LOGLOSS_DECIMALS = 3

SUBMISSION_FIELDS = ("label", "name", "abbreviation", "authors")
AUTHOR_FIELDS = ("lastname", "firstname", "email", "affiliation")
SYSTEM_FIELDS = ("description", "complexity", "energy_consumption", "external_datasets", "source_code")
DESCRIPTION_FIELDS = (
    "input_sampling_rate",
    "acoustic_features",
    "embeddings",
    "data_augmentation",
    "machine_learning_method",
    "ensemble_method_subsystem_count",
    "decision_making",
    "external_data_usage",
    "complexity_management",
    "pipeline",
    "framework",
)
COMPLEXITY_FIELDS = ("total_model_size", "total_parameters", "total_parameters_non_zero", "memory_use", "macs")
ENERGY_FIELDS = ("training", "inference", "baseline_inference")
EXTERNAL_DATASET_FIELDS = ("name", "url", "total_audio_length")
RESULT_FIELDS = ("accuracy", "logloss")


def output_header(scene_labels: Sequence[str] = SCENE_LABELS) -> list[str]:
    """``filename``, ``scene_label``, then one probability column per scene label."""
    return ["filename", "scene_label", *scene_labels]


# ---------------------------------------------------------------- system output file


def write_system_output(
    path: str | Path,
    filenames: Sequence[str],
    probabilities,
    scene_labels: Sequence[str] = SCENE_LABELS,
    decimals: int = PROBABILITY_DECIMALS,
) -> Path:
    """Write the system output atomically: one row per file, label = arg-max of its probabilities.

    ``probabilities`` ``(n_files, n_classes)`` in the column order of ``scene_labels``, each in
    [0, 1] (the testing stage renormalises the rows); written with ``decimals`` fixed decimals.
    """
    filenames = [str(name) for name in filenames]
    probabilities = np.asarray(probabilities, dtype=np.float64)
    scene_labels = list(scene_labels)
    if probabilities.ndim != 2 or probabilities.shape != (len(filenames), len(scene_labels)):
        raise Task1aError(
            f"system output for {path}: probabilities must have shape ({len(filenames)}, {len(scene_labels)}) "
            f"(one row per file, one column per scene label), got {probabilities.shape}"
        )
    if not np.all(np.isfinite(probabilities)) or probabilities.min(initial=0) < 0 or probabilities.max(initial=0) > 1:
        raise Task1aError(f"system output for {path}: probabilities must be finite and in [0, 1]; renormalise the model output first")
    bad = [name for name in filenames if not name or any(char in name for char in "\t\r\n")]
    if bad:
        raise Task1aError(f"system output for {path}: file name {bad[0]!r} is empty or holds a tab or line break; rename the file")
    duplicated = pd.Index(filenames)[pd.Index(filenames).duplicated()]
    if len(duplicated):
        raise Task1aError(f"system output for {path}: file {duplicated[0]!r} appears more than once; give each file one row")
    table = pd.DataFrame(probabilities, columns=scene_labels)
    table.insert(0, "scene_label", np.asarray(scene_labels, dtype=object)[np.argmax(probabilities, axis=1)] if len(filenames) else [])
    table.insert(0, "filename", filenames)
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format=f"%.{int(decimals)}f", lineterminator="\n")
    return Path(path)


def read_system_output(path: str | Path, scene_labels: Sequence[str] = SCENE_LABELS) -> tuple[list[str], list[str], np.ndarray]:
    """Read a system output file: ``(filenames, labels, probabilities (n_files, n_classes))``.

    Columns are found by header name (any order); probabilities come back in the order of
    ``scene_labels``. A malformed file raises one Task1aError naming the line.
    """
    path = Path(path)
    scene_labels = list(scene_labels)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise Task1aError(f"system output {path} not found; run the testing stage or give the right path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise Task1aError(f"cannot read system output {path}: {exc}; give a UTF-8 text file") from None
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter="\t"))
    if not rows:
        raise Task1aError(f"system output {path} is empty; it needs the header {' '.join(output_header(scene_labels))}")
    header = rows[0]
    missing = [field for field in output_header(scene_labels) if field not in header]
    if missing:
        raise Task1aError(
            f"system output {path} line 1: header lacks {missing} (expected tab-separated {' '.join(output_header(scene_labels))}); fix the header"
        )
    filename_column, label_column = header.index("filename"), header.index("scene_label")
    probability_columns = [header.index(label) for label in scene_labels]
    filenames, labels, probabilities = [], [], np.empty((len(rows) - 1, len(scene_labels)))
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise Task1aError(f"system output {path} line {number}: {len(row)} fields, expected {len(header)} (tab separated); fix the row")
        if row[label_column] not in scene_labels:
            raise Task1aError(f"system output {path} line {number}: unknown scene label {row[label_column]!r} (known: {', '.join(scene_labels)})")
        try:
            probabilities[number - 2] = [float(row[column]) for column in probability_columns]
        except ValueError:
            raise Task1aError(f"system output {path} line {number}: a probability is not a number; fix the row") from None
        filenames.append(row[filename_column])
        labels.append(row[label_column])
    return filenames, labels, probabilities


# ---------------------------------------------------------------- the meta information


def check_label(label: str) -> str:
    """Raise a Task1aError unless ``label`` has the challenge's form ``Lastname_Institute_task1_N``."""
    problem = _label_problem(label)
    if problem:
        raise Task1aError(f"submission label {label!r}: {problem}; fix --package / submission.label")
    return label


def _label_problem(label) -> str | None:
    if not isinstance(label, str) or not LABEL_PATTERN.match(label):
        return "must be [Last name of corresponding author]_[Institute abbreviation]_task1_[1-4], e.g. Martin_TAU_task1_1"
    if not 1 <= int(label.rsplit("_", 1)[1]) <= MAX_SUBMISSIONS:
        return f"the submission index (last part) must be 1-{MAX_SUBMISSIONS}"
    return None


def _section_parameters(parameters: Mapping, section: str) -> Mapping:
    """The resolved method parameters of a section (``ParameterContainer.resolve`` attaches them)."""
    try:
        return parameters[section]["parameters"]
    except (KeyError, TypeError):
        raise Task1aError(f"parameters lack '{section}.parameters'; pass ParameterContainer.resolve() output") from None


def description_from_parameters(parameters: Mapping) -> dict:
    """The ``system.description`` fields this run's parameters determine (resolved parameters)."""
    features = _section_parameters(parameters, "feature_extractor")
    try:
        sample_rate = float(features["fs"])
        method = parameters["learner"]["method"]
    except (KeyError, TypeError, ValueError):
        raise Task1aError("parameters lack feature_extractor fs or learner.method; pass ParameterContainer.resolve() output") from None
    return {
        "input_sampling_rate": f"{sample_rate / 1000:g}kHz",
        "acoustic_features": "log-mel energies" if features.get("logarithmic", True) else "mel energies",
        "embeddings": None,
        "data_augmentation": None,
        "machine_learning_method": {"cnn": "CNN"}.get(str(method), str(method)),
        "ensemble_method_subsystem_count": None,
        "decision_making": None,
        "external_data_usage": None,
        # The TFLite converter's post-training int8 quantization is part of every exported model.
        "complexity_management": "weight quantization",
        "pipeline": "training, weight quantization",
        "framework": "keras/tensorflow",
    }


def _figures(entry: Mapping | None) -> dict:
    if entry is None:
        return {"accuracy": None, "logloss": None}
    accuracy, logloss = entry.get("accuracy"), entry.get("logloss")
    return {
        "accuracy": None if accuracy is None else round(100 * float(accuracy), ACCURACY_DECIMALS),
        "logloss": None if logloss is None else round(float(logloss), LOGLOSS_DECIMALS),
    }


def development_results_block(results: Mapping, scene_labels: Sequence[str] = SCENE_LABELS) -> dict:
    """``results.development_dataset`` from evaluation results (or the mean of aggregated trials)."""
    if "mean" in results and "n_trials" in results:
        results = results["mean"]
    try:
        overall = {"accuracy": results["overall_accuracy"], "logloss": results["overall_logloss"]}
    except KeyError:
        raise Task1aError("development results lack overall_accuracy / overall_logloss; pass SceneClassificationMetrics.results() output") from None
    class_wise, device_wise = results.get("class_wise", {}), results.get("device_wise", {})
    return {
        "overall": _figures(overall),
        "class_wise": {label: _figures(class_wise.get(label)) for label in scene_labels},
        "device_wise": {device: _figures(device_wise.get(device)) for device in DEVELOPMENT_DEVICES},
    }


def _measured_block(values: Mapping | None, fields: Sequence[str], what: str) -> dict:
    if values is None:
        return {field: None for field in fields}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise Task1aError(f"{what} has unknown key(s) {unknown} (known: {', '.join(fields)}); rename them")
    return {field: values.get(field) for field in fields}


def load_meta_template(template_path: str | Path) -> dict:
    """The person-filled part of the meta (YAML mapping with the challenge's blocks)."""
    template_path = Path(template_path)
    try:
        data = yaml.safe_load(template_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Task1aError(f"meta template {template_path} not found; copy meta/task1a_submission.meta.yaml there and fill it in") from None
    except yaml.YAMLError as exc:
        raise Task1aError(f"meta template {template_path} is not valid YAML ({' '.join(str(exc).split())}); fix the file") from None
    if not isinstance(data, dict) or not isinstance(data.get("submission"), dict):
        raise Task1aError(f"meta template {template_path} needs a 'submission' block (name, abbreviation, authors); see meta/task1a_submission.meta.yaml")
    return data


def build_submission_meta(
    label: str,
    template_path: str | Path,
    parameters: Mapping,
    complexity: Mapping | None = None,
    energy: Mapping | None = None,
    development_results: Mapping | None = None,
) -> dict:
    """The DCASE2023 Task 1 meta information: the template's person fields plus what the run knows.

    - ``submission``: the template's (name, abbreviation, authors...), ``label`` = ``label``;
    - ``system.description``: from ``parameters`` (``ParameterContainer.resolve()`` output); a
      non-null template value wins, for systems changed by hand;
    - ``system.complexity``: ``complexity`` (keys total_model_size, total_parameters,
      total_parameters_non_zero, memory_use, macs), null where absent;
    - ``system.energy_consumption``: ``energy`` (training, inference, baseline_inference, kWh);
    - ``system.external_datasets`` and ``system.source_code``: the template's;
    - ``results.development_dataset``: overall / class_wise / device_wise accuracy (%) and log loss
      from ``development_results`` (evaluation results or aggregated trials), null without them.
    """
    check_label(label)
    template = load_meta_template(template_path)
    submission = dict(template["submission"])
    submission["label"] = label
    system_template = template.get("system") or {}
    description = description_from_parameters(parameters)
    for key, value in (system_template.get("description") or {}).items():
        if value is not None:
            description[key] = value
    if development_results is not None:
        development = development_results_block(development_results)
    else:
        development = {
            "overall": _figures(None),
            "class_wise": {scene: _figures(None) for scene in SCENE_LABELS},
            "device_wise": {device: _figures(None) for device in DEVELOPMENT_DEVICES},
        }
    return {
        "submission": submission,
        "system": {
            "description": description,
            "complexity": _measured_block(complexity, COMPLEXITY_FIELDS, "complexity"),
            "energy_consumption": _measured_block(energy, ENERGY_FIELDS, "energy"),
            "external_datasets": system_template.get("external_datasets") or [],
            "source_code": system_template.get("source_code"),
        },
        "results": {"development_dataset": development},
    }


def package_member_names(label: str) -> tuple[str, str]:
    """Where the two files go in the package: ``task1/LABEL/LABEL.output.csv`` and ``.meta.yaml``."""
    folder = f"{TASK_FOLDER}/{label}"
    return f"{folder}/{label}{OUTPUT_SUFFIX}", f"{folder}/{label}{META_SUFFIX}"


def build_submission_package(label: str, output_csv: str | Path, out_zip: str | Path, meta: Mapping) -> Path:
    """Write the submission zip atomically: the system output and the meta under ``task1/LABEL/``.

    The challenge's validator expects this layout (a folder ``task1`` with one folder per
    submission label; the technical report PDF goes beside them, added by hand).
    """
    check_label(label)
    meta_label = (meta.get("submission") or {}).get("label") if isinstance(meta, Mapping) else None
    if meta_label != label:
        raise Task1aError(f"meta submission.label {meta_label!r} differs from the package label {label!r}; build the meta with build_submission_meta(label, ...)")
    output_csv = Path(output_csv)
    try:
        output_bytes = output_csv.read_bytes()
    except OSError:
        raise Task1aError(f"system output {output_csv} not found; run the evaluation-set testing stage first") from None
    output_name, meta_name = package_member_names(label)
    meta_text = yaml.safe_dump(dict(meta), sort_keys=False, default_flow_style=False, allow_unicode=True)
    with atomic_path(out_zip) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(output_name, output_bytes)
            archive.writestr(meta_name, meta_text.encode("utf-8"))
    return Path(out_zip)


# ---------------------------------------------------------------- the validator


class _RowProblems:
    """Row-level problems by kind: the first few of each kind in full, then a count."""

    def __init__(self, source: str, limit: int):
        self.source, self.limit, self.kinds = source, limit, {}

    def add(self, kind: str, message: str) -> None:
        self.kinds.setdefault(kind, []).append(message)

    def messages(self) -> list[str]:
        out = []
        for kind, messages in self.kinds.items():
            out += [f"{self.source}: {message}" for message in messages[: self.limit]]
            if len(messages) > self.limit:
                out.append(f"{self.source}: ... and {len(messages) - self.limit} more rows with: {kind}")
        return out


def check_output_text(
    text: str,
    source: str,
    expected_file_count: int | None = OFFICIAL_EVALUATION_FILE_COUNT,
    scene_labels: Sequence[str] = SCENE_LABELS,
    max_rows_per_problem: int = MAX_ROWS_PER_PROBLEM,
) -> list[str]:
    """Every problem of a system output file's text (``source`` names it in the messages).

    ``expected_file_count``: the evaluation set's size N (files ``0.wav`` .. ``N-1.wav``); None
    skips the count and the upper index bound.
    """
    fields = output_header(scene_labels)
    problems: list[str] = []
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter="\t"))
    if not rows:
        return [f"{source}: empty file; it needs the header {' '.join(fields)} and one row per evaluation file"]
    header, data_rows, first_line = rows[0], rows[1:], 2
    if "filename" not in header:
        problems.append(f"{source}: no header row (the first line must be: {' '.join(fields)}); checked the rows in the official column order")
        header, data_rows, first_line = fields, rows, 1
    elif set(header) != set(fields) or len(header) != len(fields):
        missing = [field for field in fields if field not in header]
        unexpected = [field for field in header if field not in fields]
        problems.append(
            f"{source}: wrong header fields (missing {missing}, unexpected {unexpected}); the header must be: {' '.join(fields)}"
        )
    column = {name: index for index, name in reversed(list(enumerate(header)))}
    row_problems = _RowProblems(source, max_rows_per_problem)
    seen: dict[str, int] = {}
    for number, row in enumerate(data_rows, start=first_line):
        if len(row) != len(fields):
            row_problems.add("wrong field count", f"line {number}: {len(row)} fields, expected {len(fields)} (tab separated)")

        def value(name: str) -> str | None:
            index = column.get(name)
            return row[index] if index is not None and index < len(row) else None

        filename = value("filename")
        if filename is not None:
            base = PurePosixPath(filename.replace("\\", "/")).name
            stem, extension = (base[: -len(".wav")], ".wav") if base.endswith(".wav") else (base.rsplit(".", 1)[0], "")
            if base in seen:
                row_problems.add("duplicate file", f"line {number}: duplicate file {filename!r} (first on line {seen[base]})")
            else:
                seen[base] = number
            if not extension:
                row_problems.add("wrong file extension", f"line {number}: file {filename!r} must end in .wav")
            if not re.fullmatch(r"\d+", stem):
                row_problems.add("non-integer file name", f"line {number}: file {filename!r} is not an evaluation file name (integer.wav, e.g. 0.wav)")
            elif expected_file_count is not None and int(stem) >= expected_file_count:
                row_problems.add("file index too large", f"line {number}: file {filename!r}: index above {expected_file_count - 1}")
        label = value("scene_label")
        if label is not None and label not in scene_labels:
            row_problems.add("unknown scene label", f"line {number}: unknown scene label {label!r} (known: {', '.join(scene_labels)})")
        for scene in scene_labels:
            probability = value(scene)
            if probability is None:
                continue
            try:
                float(probability)
            except ValueError:
                row_problems.add("non-numeric probability", f"line {number}: {scene} = {probability!r} is not a number")
    problems += row_problems.messages()
    if expected_file_count is not None and len(seen) != expected_file_count:
        problems.append(f"{source}: {len(seen)} distinct files, the evaluation set has {expected_file_count}; output one row per evaluation file")
    return problems


def _is_number(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return math.isfinite(value)
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _is_integer(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, str) and re.fullmatch(r"\s*\d+\s*", value) is not None


def _missing(block, fields: Sequence[str]) -> list[str]:
    return [field for field in fields if not isinstance(block, Mapping) or field not in block]


def _placeholders(node, path: str) -> list[str]:
    if isinstance(node, Mapping):
        return [found for key, value in node.items() for found in _placeholders(value, f"{path}.{key}" if path else str(key))]
    if isinstance(node, list):
        return [found for index, value in enumerate(node) for found in _placeholders(value, f"{path}[{index}]")]
    return [path] if isinstance(node, str) and PLACEHOLDER_MARK in node else []


def check_meta(meta, source: str, scene_labels: Sequence[str] = SCENE_LABELS) -> list[str]:
    """Every problem of a parsed meta information file (``source`` names it in the messages)."""
    if not isinstance(meta, Mapping):
        return [f"{source}: not a YAML mapping; it needs the blocks submission, system and results"]
    problems = []

    def problem(message: str) -> None:
        problems.append(f"{source}: {message}")

    for block in ("submission", "system", "results"):
        if not isinstance(meta.get(block), Mapping):
            problem(f"'{block}' block missing; the blocks submission, system and results are required at top level")

    submission = meta.get("submission")
    if isinstance(submission, Mapping):
        missing = _missing(submission, SUBMISSION_FIELDS)
        if missing:
            problem(f"'submission' lacks {missing}")
        if "label" in submission:
            label_problem = _label_problem(submission["label"])
            if label_problem:
                problem(f"submission.label {submission['label']!r} {label_problem}")
        abbreviation = submission.get("abbreviation")
        if abbreviation is not None and len(str(abbreviation)) > MAX_ABBREVIATION_LENGTH:
            problem(f"submission.abbreviation {abbreviation!r} is longer than {MAX_ABBREVIATION_LENGTH} characters")
        authors = submission.get("authors")
        if "authors" in submission and (not isinstance(authors, list) or not authors):
            problem("submission.authors must be a list of authors")
        elif isinstance(authors, list):
            corresponding = 0
            for index, author in enumerate(authors):
                missing = _missing(author, AUTHOR_FIELDS)
                if missing:
                    problem(f"submission.authors[{index}] lacks {missing}")
                if isinstance(author, Mapping) and author.get("corresponding") is True:
                    corresponding += 1
            if corresponding != 1:
                problem(f"submission.authors has {corresponding} corresponding authors; mark exactly one with 'corresponding: true'")

    system = meta.get("system")
    if isinstance(system, Mapping):
        missing = _missing(system, SYSTEM_FIELDS)
        if missing:
            problem(f"'system' lacks {missing}")
        for block, fields in (("description", DESCRIPTION_FIELDS), ("complexity", COMPLEXITY_FIELDS), ("energy_consumption", ENERGY_FIELDS)):
            if block in system:
                missing = _missing(system[block], fields)
                if missing:
                    problem(f"system.{block} lacks {missing}")
        complexity = system.get("complexity")
        if isinstance(complexity, Mapping) and "total_parameters" in complexity and not _is_integer(complexity["total_parameters"]):
            if complexity["total_parameters"] is None:
                problem("system.complexity.total_parameters is empty; run the model size stage or fill in the parameter count")
            else:
                problem(f"system.complexity.total_parameters {complexity['total_parameters']!r} is not an integer")
        for block, fields in (("complexity", COMPLEXITY_FIELDS), ("energy_consumption", ENERGY_FIELDS)):
            values = system.get(block)
            for field in fields:
                if field == "total_parameters":
                    continue  # checked as an integer above
                if isinstance(values, Mapping) and values.get(field) is not None and not _is_number(values[field]):
                    problem(f"system.{block}.{field} {values[field]!r} is not a number")
        external = system.get("external_datasets")
        if external:
            if not isinstance(external, list):
                problem("system.external_datasets must be a list (empty when no external data was used)")
            else:
                for index, item in enumerate(external):
                    missing = _missing(item, EXTERNAL_DATASET_FIELDS)
                    if missing:
                        problem(f"system.external_datasets[{index}] lacks {missing}")

    results = meta.get("results")
    if isinstance(results, Mapping):
        development = results.get("development_dataset")
        if not isinstance(development, Mapping):
            problem("'results' lacks the 'development_dataset' block (overall, class_wise, device_wise)")
        else:
            missing = _missing(development, ("overall", "class_wise", "device_wise"))
            if missing:
                problem(f"results.development_dataset lacks {missing}")
            entries = [("overall", development["overall"])] if "overall" in development else []
            for block, keys in (("class_wise", scene_labels), ("device_wise", DEVELOPMENT_DEVICES)):
                items = development.get(block)
                if block in development:
                    missing = _missing(items, keys)
                    if missing:
                        problem(f"results.development_dataset.{block} lacks {missing}")
                if isinstance(items, Mapping):
                    entries += [(f"{block}.{key}", value) for key, value in items.items()]
            for name, entry in entries:
                missing = _missing(entry, RESULT_FIELDS)
                if missing:
                    problem(f"results.development_dataset.{name} lacks {missing}")
                    continue
                for field in RESULT_FIELDS:
                    if entry[field] is not None and not _is_number(entry[field]):
                        problem(f"results.development_dataset.{name}.{field} {entry[field]!r} is not a number")

    for path in _placeholders(meta, ""):
        problem(f"{path} still holds the template placeholder '{PLACEHOLDER_MARK}'; fill it in")
    return problems


def _read_entries(path: Path) -> tuple[dict, list[str]]:
    """The package's files by label: ``{label: {"output"|"meta": (name, bytes)}}`` and layout problems."""
    files: list[tuple[str, bytes | None, PurePosixPath]] = []
    problems: list[str] = []
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            if file.is_file() and (file.name.endswith(OUTPUT_SUFFIX) or file.name.endswith(META_SUFFIX)):
                files.append((str(file), file.read_bytes(), PurePosixPath(file.resolve().as_posix())))
        in_archive = False
    else:
        try:
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
                if bad:
                    problems.append(f"{path}: corrupt member {bad} in the zip; rebuild the package")
                for info in archive.infolist():
                    if info.is_dir():
                        continue
                    name = info.filename
                    if name.endswith(OUTPUT_SUFFIX) or name.endswith(META_SUFFIX):
                        files.append((f"{path}:{name}", archive.read(name), PurePosixPath(name)))
                    elif TASK_FOLDER in name and not name.lower().endswith(".pdf"):
                        problems.append(f"{path}:{name}: unexpected file (a submission holds LABEL.output.csv and LABEL.meta.yaml)")
        except zipfile.BadZipFile:
            return {}, [f"{path}: not a zip file; build the package with build_submission_package or give its folder"]
        in_archive = True
    entries: dict[str, dict] = {}
    for display, data, member in files:
        kind = "output" if member.name.endswith(OUTPUT_SUFFIX) else "meta"
        label = member.name[: -len(OUTPUT_SUFFIX if kind == "output" else META_SUFFIX)]
        if label in entries and kind in entries[label]:
            problems.append(f"{display}: a second {kind} file for submission {label}")
            continue
        entries.setdefault(label, {})[kind] = (display, data)
        parents = member.parts[:-1]
        well_placed = parents[-2:] == (TASK_FOLDER, label) and (not in_archive or len(parents) == 2)
        if not well_placed:
            problems.append(f"{display}: must be at {TASK_FOLDER}/{label}/{member.name} in the package")
    return entries, problems


def validate_submission(
    path: str | Path,
    expected_file_count: int | None = OFFICIAL_EVALUATION_FILE_COUNT,
    max_rows_per_problem: int = MAX_ROWS_PER_PROBLEM,
) -> list[str]:
    """Every problem of a submission package (zip, or a folder holding ``task1/LABEL/...``).

    Returns one line per problem (row-level problems: the first ``max_rows_per_problem`` of each
    kind, then a count); an empty list means the package passes. ``expected_file_count``: files in
    the evaluation set (the official 118,800; the demo evaluation set's size for demo runs; None
    to skip the count).
    """
    path = Path(path)
    if not path.exists():
        raise Task1aError(f"submission package {path} not found; give the zip (or folder) to check")
    entries, problems = _read_entries(path)
    if not entries:
        return problems + [f"{path}: no {TASK_FOLDER}/LABEL/LABEL{OUTPUT_SUFFIX} and LABEL{META_SUFFIX} found"]
    for label, entry in entries.items():
        label_problem = _label_problem(label)
        if label_problem:
            problems.append(f"{path}: file name label {label!r} {label_problem}")
        for kind, suffix in (("output", OUTPUT_SUFFIX), ("meta", META_SUFFIX)):
            if kind not in entry:
                problems.append(f"{path}: submission {label} has no {label}{suffix}")
        if "output" in entry:
            display, data = entry["output"]
            try:
                problems += check_output_text(data.decode("utf-8"), display, expected_file_count, max_rows_per_problem=max_rows_per_problem)
            except UnicodeDecodeError:
                problems.append(f"{display}: not UTF-8 text")
        if "meta" in entry:
            display, data = entry["meta"]
            try:
                meta = yaml.safe_load(data.decode("utf-8"))
            except (yaml.YAMLError, UnicodeDecodeError) as exc:
                problems.append(f"{display}: not valid YAML ({' '.join(str(exc).split())})")
                continue
            problems += check_meta(meta, display)
            meta_label = meta.get("submission", {}).get("label") if isinstance(meta, Mapping) and isinstance(meta.get("submission"), Mapping) else None
            if meta_label is not None and meta_label != label:
                problems.append(f"{display}: submission.label {meta_label!r} differs from the file and folder name {label!r}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m utils.submission",
        description="Check a DCASE2023 Task 1 submission package as the challenge's validator does; report every problem.",
    )
    parser.add_argument("package", help="the submission zip, or a folder holding task1/LABEL/LABEL.output.csv and LABEL.meta.yaml")
    count = parser.add_mutually_exclusive_group()
    count.add_argument(
        "--expected-files",
        type=int,
        default=OFFICIAL_EVALUATION_FILE_COUNT,
        help=f"files in the evaluation set (default: the official {OFFICIAL_EVALUATION_FILE_COUNT})",
    )
    count.add_argument("--any-file-count", action="store_true", help="do not check the number of files (e.g. a partial or demo output)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = parser.parse_args(argv)
    try:
        problems = validate_submission(args.package, None if args.any_file_count else args.expected_files)
    except Task1aError as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for line in problems:
        print(line)
    if problems:
        print(f"{len(problems)} problem(s) found in {args.package}; correct them before submitting", file=sys.stderr)
        return 1
    print(f"OK: {args.package} is a valid DCASE2023 Task 1 submission package")
    return 0


if __name__ == "__main__":
    sys.exit(main())
