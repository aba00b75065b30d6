"""The challenge's system output file: its header, writer, reader and checker.

Owns the official Task 1 system output (tab separated, header ``filename scene_label airport ...
tram``, one row per audio file: the arg-max label and the ten class probabilities), the same in
every edition (DCASE2023, 2024 and 2025; 2024 asks for one such file per training split, named by
:mod:`utils.submission`):

- :func:`write_system_output` (the testing stage and ``--predict``) and :func:`read_system_output`
  (the evaluation stage), both raising one :class:`~utils.errors.Task1aError` on a bad input;
- :func:`check_output_text`, which lists every problem of a file's text as the challenge's
  validator sees it (the submission validator calls it once per output file).

Probabilities are written as given (finite, in [0, 1]); a model whose rows do not sum to one (a
dequantized int8 softmax) is renormalised by the caller with
:func:`utils.evaluation.normalise_probabilities` if it wants them to.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from utils.dataset import SCENE_LABELS
from utils.errors import Task1aError
from utils.files import atomic_path

PROBABILITY_DECIMALS = 6
MAX_ROWS_PER_PROBLEM = 10


def output_header(scene_labels: Sequence[str] = SCENE_LABELS) -> list[str]:
    """``filename``, ``scene_label``, then one probability column per scene label."""
    return ["filename", "scene_label", *scene_labels]


def write_system_output(
    path: str | Path,
    filenames: Sequence[str],
    probabilities,
    scene_labels: Sequence[str] = SCENE_LABELS,
    decimals: int = PROBABILITY_DECIMALS,
) -> Path:
    """Write the system output atomically: one row per file, label = arg-max of its probabilities.

    ``probabilities`` ``(n_files, n_classes)`` in the column order of ``scene_labels``, each in
    [0, 1]; written with ``decimals`` fixed decimals.
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


# ---------------------------------------------------------------- the checker


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


def _check_filename(filename: str, number: int, expected_file_count: int | None, seen: dict, rows: _RowProblems) -> None:
    """One row's file name: ``integer.wav`` (compared by base name), unique, inside ``0 .. N-1``."""
    base = PurePosixPath(filename.replace("\\", "/")).name
    stem, extension = (base[: -len(".wav")], ".wav") if base.endswith(".wav") else (base.rsplit(".", 1)[0], "")
    if base in seen:
        rows.add("duplicate file", f"line {number}: duplicate file {filename!r} (first on line {seen[base]})")
    else:
        seen[base] = number
    if not extension:
        rows.add("wrong file extension", f"line {number}: file {filename!r} must end in .wav")
    if not re.fullmatch(r"\d+", stem):
        rows.add("non-integer file name", f"line {number}: file {filename!r} is not an evaluation file name (integer.wav, e.g. 0.wav)")
    elif expected_file_count is not None and int(stem) >= expected_file_count:
        rows.add("file index too large", f"line {number}: file {filename!r}: index above {expected_file_count - 1}")


def check_output_text(
    text: str,
    source: str,
    expected_file_count: int | None = None,
    scene_labels: Sequence[str] = SCENE_LABELS,
    max_rows_per_problem: int = MAX_ROWS_PER_PROBLEM,
) -> list[str]:
    """Every problem of a system output file's text (``source`` names it in the messages).

    The official validators' checks: header fields; 12 fields per row; ``.wav`` files with integer
    stems in ``0 .. N-1``; no duplicates; valid scene labels; numeric probabilities; N distinct
    files. ``expected_file_count``: the evaluation set's size N; None skips the count and the upper
    index bound. Row-level problems: the first ``max_rows_per_problem`` of each kind, then a count.
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
            _check_filename(filename, number, expected_file_count, seen, row_problems)
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
