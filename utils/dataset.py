"""The TAU Urban Acoustic Scenes 2022 Mobile datasets: metadata, folds and the validation split.

Owns reading the official layout (``meta.csv``, ``evaluation_setup/fold1_{train,evaluate,test}.csv``,
``audio/``), the DCASE2024 data-efficient training subsets (``split_setup/split{5,10,25,50}.csv``),
the scene labels in the official order, item attributes (device, identifier, city), the
location-disjoint validation split of the training fold, and the dataset check of the module CLI::

    python -m utils.dataset PATH [--json] [--check-audio] [--train-split {5,10,25,50,100}]

All tables are pandas DataFrames with one row per audio file and at least the columns
``filename`` (as in the CSV, e.g. ``audio/airport-lisbon-1000-40000-0-a.wav``), ``scene_label``
(``None`` when unknown), ``identifier`` (``city-location``), ``city`` and ``source_label`` (device).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from utils import cli
from utils.errors import Task1aError, run_cli
from utils.parameters import allowed

SCENE_LABELS = (
    "airport",
    "bus",
    "metro",
    "metro_station",
    "park",
    "public_square",
    "shopping_mall",
    "street_pedestrian",
    "street_traffic",
    "tram",
)
DEVELOPMENT_DEVICES = ("a", "b", "c", "s1", "s2", "s3", "s4", "s5", "s6")
EVALUATION_DEVICES = ("a", "b", "c", "d", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11")
# Device groups of the official result tables.
DEVICE_GROUPS = {
    "real": ("a", "b", "c"),
    "seen_simulated": ("s1", "s2", "s3"),
    "unseen_simulated": ("s4", "s5", "s6"),
}

# [scene]-[city]-[location id]-[segment id]-[sub-segment]-[device].wav (2022); the 2019/2020 names
# lack the sub-segment. Scene names contain underscores, never hyphens.
_FILENAME_PATTERN = (
    r"^(?:.*/)?(?P<scene>[a-z_]+)-(?P<city>[a-z]+)-(?P<location>\d+)-(?P<segment>\d+)"
    r"(?:-(?P<subsegment>\d+))?-(?P<device>[a-z0-9]+)\.wav$"
)

META_FILENAME = "meta.csv"
SETUP_FOLDER = "evaluation_setup"
FOLD_FILES = {"train": "fold1_train.csv", "evaluate": "fold1_evaluate.csv", "test": "fold1_test.csv"}

# DCASE2024 Task 1 data-efficient training subsets: ``split{N}.csv`` (filename, scene_label; tab
# separated) holds about N % of fold1_train.csv, in whole 10-s recordings; 100 is fold1_train.csv
# itself. The official baseline (CPJKU/dcase2024_task1_baseline) keeps them in ``split_setup/``; in
# a dataset folder they are looked for in ``split_setup/`` beside meta.csv, then in
# ``dcase2024_split_setup/`` (the name of the team's shared copy of the metadata).
TRAIN_SPLITS = allowed("dataset.train_split")  # (5, 10, 25, 50, 100): the parameter registry's
SPLIT_FOLDER = "split_setup"
SPLIT_FOLDERS = (SPLIT_FOLDER, "dcase2024_split_setup")
TRAIN_SPLIT_KEY = "dataset.train_split"


def split_filename(train_split: int) -> str:
    """The official name of a DCASE2024 training-subset file, e.g. ``split25.csv``."""
    return f"split{train_split}.csv"


def check_train_split(value) -> int:
    """``value`` as a training-subset percentage; one-line error naming ``dataset.train_split`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in TRAIN_SPLITS:
        raise Task1aError(
            f"{TRAIN_SPLIT_KEY} must be one of {', '.join(map(str, TRAIN_SPLITS))} (percent of fold1_train, the DCASE2024 "
            f"data-efficient subsets), got {value!r}; fix the value"
        )
    return value


def find_split_file(path: str | Path, train_split: int) -> Path:
    """Where ``split{N}.csv`` of ``train_split`` is in the dataset folder ``path``.

    Raises :class:`Task1aError` naming the expected path and the command that downloads the file.
    """
    path = Path(path)
    name = split_filename(check_train_split(train_split))
    for folder in SPLIT_FOLDERS:
        candidate = path / folder / name
        if candidate.is_file():
            return candidate
    raise Task1aError(
        f"{path / SPLIT_FOLDER / name} not found ({TRAIN_SPLIT_KEY}: {train_split}); download the DCASE2024 split files "
        f"with `python -m utils.download {path} --train-splits` or set {TRAIN_SPLIT_KEY}: 100"
    )


def parse_filenames(filenames) -> pd.DataFrame:
    """Attributes encoded in official file names, vectorised.

    Returns a DataFrame (one row per name) with columns ``scene_label``, ``city``, ``identifier``
    (``city-location``) and ``source_label`` (device); NaN where a name does not follow the pattern
    (e.g. ``audio/0.wav`` of the evaluation set).
    """
    parts = pd.Series(list(filenames), dtype="object").str.extract(_FILENAME_PATTERN)
    return pd.DataFrame(
        {
            "scene_label": parts["scene"],
            "city": parts["city"],
            "identifier": parts["city"] + "-" + parts["location"],
            "source_label": parts["device"],
        }
    )


def read_metadata_csv(path: str | Path, required_columns: tuple[str, ...]) -> pd.DataFrame:
    """Read an official tab-separated metadata file (CRLF or LF) and check its header.

    Raises :class:`Task1aError` naming the file when it is missing, not tab separated, lacks a
    required column or has rows with missing fields.
    """
    path = Path(path)
    if not path.is_file():
        raise Task1aError(f"{path} not found; give the folder of a dataset in the official layout (meta.csv, evaluation_setup/, audio/)")
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, na_values=[], skip_blank_lines=True)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise Task1aError(f"{path} is not a tab-separated metadata file ({str(exc).splitlines()[0]}); restore the official file") from exc
    table.columns = [str(column).strip() for column in table.columns]
    missing = [column for column in required_columns if column not in table.columns]
    if missing:
        header = ",".join(table.columns)
        hint = ("it looks comma separated; the official files are tab separated" if ("," in header and len(table.columns) == 1)
                else f"found header {list(table.columns)}")
        raise Task1aError(f"{path} lacks column(s) {missing} ({hint}); restore the official file")
    table = table[list(dict.fromkeys(list(required_columns) + list(table.columns)))]
    for column in required_columns:
        values = table[column].str.strip()
        if (values == "").any():
            line = int(np.flatnonzero((values == "").to_numpy())[0]) + 2
            raise Task1aError(f"{path} line {line}: empty '{column}'; fix or remove that row")
        table[column] = values
    return table.reset_index(drop=True)


def _check_rows(table: pd.DataFrame, path: Path, check_scene: bool, allowed_devices) -> pd.DataFrame:
    duplicated = table["filename"].duplicated()
    if duplicated.any():
        first = table.loc[duplicated, "filename"].iloc[0]
        raise Task1aError(f"{path}: {int(duplicated.sum())} duplicated row(s), first '{first}'; remove the duplicates")
    if check_scene and "scene_label" in table:
        unknown = ~table["scene_label"].isin(SCENE_LABELS)
        if unknown.any():
            row = int(np.flatnonzero(unknown.to_numpy())[0])
            raise Task1aError(
                f"{path} line {row + 2}: unknown scene '{table['scene_label'].iloc[row]}' (known: {', '.join(SCENE_LABELS)}); fix that row"
            )
    if allowed_devices is not None and "source_label" in table:
        unknown = ~table["source_label"].isin(allowed_devices)
        if unknown.any():
            row = int(np.flatnonzero(unknown.to_numpy())[0])
            raise Task1aError(
                f"{path} line {row + 2}: unknown device '{table['source_label'].iloc[row]}' (known: {', '.join(allowed_devices)}); fix that row"
            )
    return table


@dataclass
class TAUDevelopmentSet:
    """The development set in the official layout under ``path``.

    ``meta`` has one row per file of ``meta.csv`` with ``city`` added; the fold tables (``train``,
    ``evaluate``, ``test``) carry the same columns, joined from ``meta.csv`` (hash join: seconds for
    the 230,350 official rows) or, for files meta.csv lacks, parsed from the file name.
    """

    path: Path
    meta: pd.DataFrame
    train: pd.DataFrame
    evaluate: pd.DataFrame
    test: pd.DataFrame
    # The DCASE2024 training subset in use: ``train`` is the rows of fold1_train.csv listed in
    # ``split_file`` (in fold1_train order); ``train_fold`` is always the whole fold1_train.csv.
    train_split: int = 100
    train_fold: pd.DataFrame | None = None
    split_file: Path | None = None

    @classmethod
    def load(cls, path: str | Path, train_split: int = 100) -> "TAUDevelopmentSet":
        """Read the dataset folder ``path``; ``train`` is the ``train_split`` % subset of fold1_train
        (``split_setup/split{N}.csv``; 100: the whole fold)."""
        path = Path(path)
        train_split = check_train_split(train_split)
        if not path.is_dir():
            raise Task1aError(f"dataset folder {path} not found; download it (python task1a.py --download_dataset PATH) or set dataset_method_parameters in "
                              "task1a.yaml")
        meta_path = path / META_FILENAME
        meta = read_metadata_csv(meta_path, ("filename", "scene_label", "identifier", "source_label"))
        meta = _check_rows(meta, meta_path, check_scene=True, allowed_devices=DEVELOPMENT_DEVICES)
        meta["city"] = meta["identifier"].str.split("-").str[0]
        folds = {}
        for split, columns in (("train", ("filename", "scene_label")), ("evaluate", ("filename", "scene_label")), ("test", ("filename",))):
            fold_path = path / SETUP_FOLDER / FOLD_FILES[split]
            fold = _check_rows(read_metadata_csv(fold_path, columns), fold_path, check_scene=True, allowed_devices=None)
            folds[split] = _attach_meta(fold[list(columns)], meta, fold_path)
        shared = folds["train"]["filename"][folds["train"]["filename"].isin(folds["evaluate"]["filename"])]
        if len(shared):  # a test file learned from would give an optimistic result without a word
            raise Task1aError(
                f"{path / SETUP_FOLDER / FOLD_FILES['train']}: {len(shared)} file(s) also in {FOLD_FILES['evaluate']}, first '{shared.iloc[0]}'; "
                "restore the official fold files (train and evaluate must not share files)"
            )
        train_fold, split_file = folds["train"], None
        if train_split != 100:
            split_file = find_split_file(path, train_split)
            folds["train"] = read_train_subset(split_file, train_fold)
        return cls(path=path, meta=meta, **folds, train_split=train_split, train_fold=train_fold, split_file=split_file)


def read_train_subset(split_file: str | Path, train_fold: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``train_fold`` (fold1_train with its attributes) listed in a DCASE2024 ``split{N}.csv``.

    The file must be a tab-separated ``filename``, ``scene_label`` table whose rows are all in
    fold1_train.csv with the same labels (the official subsets are); anything else is a one-line
    error naming the file. Rows keep the order of fold1_train.csv.
    """
    split_file = Path(split_file)
    subset = _check_rows(read_metadata_csv(split_file, ("filename", "scene_label")), split_file, check_scene=True, allowed_devices=None)
    labels = subset[["filename", "scene_label"]].merge(train_fold[["filename", "scene_label"]], on="filename", how="left", suffixes=("", "_fold"))
    outside = labels["scene_label_fold"].isna()
    if outside.any():
        raise Task1aError(
            f"{split_file}: {int(outside.sum())} file(s) not in {FOLD_FILES['train']}, first '{labels.loc[outside, 'filename'].iloc[0]}'; "
            "a training subset must be part of the training fold: restore the official split file"
        )
    _check_labels_agree(labels, "scene_label_fold", split_file, FOLD_FILES["train"], "restore the official split file")
    return train_fold[train_fold["filename"].isin(subset["filename"])].reset_index(drop=True)


def _check_labels_agree(labels: pd.DataFrame, other: str, path: Path, other_name: str, fix: str) -> None:
    """One-line error when ``labels['scene_label']`` (from ``path``) and ``labels[other]`` (from ``other_name``) differ."""
    differ = labels["scene_label"] != labels[other]
    if differ.any():
        row = labels[differ].iloc[0]
        raise Task1aError(
            f"{path}: '{row['filename']}' is labelled '{row['scene_label']}' but {other_name} says '{row[other]}' "
            f"({int(differ.sum())} such row(s)); {fix}"
        )


def _attach_meta(fold: pd.DataFrame, meta: pd.DataFrame, fold_path: Path) -> pd.DataFrame:
    """Add identifier, city and device from meta.csv (or the file name) to a fold table."""
    columns = ["filename", "identifier", "city", "source_label"] + ([] if "scene_label" in fold else ["scene_label"])
    if "scene_label" in fold:  # a fold file and meta.csv that disagree on a label: one of them is damaged
        labels = fold[["filename", "scene_label"]].merge(meta[["filename", "scene_label"]], on="filename", how="inner", suffixes=("", "_meta"))
        _check_labels_agree(labels, "scene_label_meta", fold_path, META_FILENAME, "restore the official metadata files")
    joined = fold.merge(meta[columns], on="filename", how="left", validate="one_to_one")
    lacking = joined["identifier"].isna()
    if lacking.any():
        parsed = parse_filenames(joined.loc[lacking, "filename"])
        parsed.index = joined.index[lacking]
        for column in ("identifier", "city", "source_label") + (("scene_label",) if "scene_label" not in fold else ()):
            joined.loc[lacking, column] = parsed[column]
        unparsed = joined["identifier"].isna()
        if unparsed.any():
            name = joined.loc[unparsed, "filename"].iloc[0]
            raise Task1aError(f"{fold_path}: '{name}' is neither in meta.csv nor named like an official file; add it to meta.csv")
    return joined


@dataclass
class TAUEvaluationSet:
    """The evaluation set (challenge mode): ``audio/0.wav ...`` listed in ``evaluation_setup/fold1_test.csv``.

    ``test`` has ``filename``, ``device_id`` (the list's ``device_id`` column, as the official DCASE2025
    list gives the device at inference; None when the list has none) and, when a labels file is given
    (the demo evaluation set has one), the ``scene_label``, ``identifier``, ``city`` and ``source_label``
    columns; otherwise those are None, except ``source_label`` when the list gives the device. A
    system takes a clip's device from ``device_id`` only (:mod:`utils.editions`), never from the labels.
    """

    path: Path
    test: pd.DataFrame
    labelled: bool

    @classmethod
    def load(cls, path: str | Path, labels_path: str | Path | None = None) -> "TAUEvaluationSet":
        path = Path(path)
        if not path.is_dir():
            raise Task1aError(f"evaluation set folder {path} not found; download it (python task1a.py --download_dataset PATH) or set "
                              "dataset_method_parameters in task1a.yaml")
        fold_path = path / SETUP_FOLDER / FOLD_FILES["test"]
        listed = _check_rows(read_metadata_csv(fold_path, ("filename",)), fold_path, check_scene=False, allowed_devices=None)
        # DCASE2025 gives the recording device at inference time in the list's device_id column (older lists
        # with a source_label column are read the same way); it is the device a system may use
        device_column = next((column for column in ("device_id", "source_label") if column in listed), None)
        devices = listed[device_column] if device_column else None
        test = listed[["filename"]].copy()
        labelled = labels_path is not None
        if labelled:
            labels_path = Path(labels_path)
            labels = read_metadata_csv(labels_path, ("filename", "scene_label"))
            labels = _check_rows(labels, labels_path, check_scene=True, allowed_devices=None)
            for column in ("identifier", "source_label"):
                if column not in labels:
                    labels[column] = None
            test = test.merge(labels[["filename", "scene_label", "identifier", "source_label"]], on="filename", how="left", validate="one_to_one")
            if test["scene_label"].isna().any():
                name = test.loc[test["scene_label"].isna(), "filename"].iloc[0]
                raise Task1aError(f"{labels_path} has no label for '{name}' of {fold_path}; give the complete labels file")
            test["city"] = test["identifier"].str.split("-").str[0]
        else:
            for column in ("scene_label", "identifier", "city", "source_label"):
                test[column] = None
        test["device_id"] = devices.to_numpy() if devices is not None else None
        if devices is not None:  # scoring per device: the labels file's device, else the list's
            test["source_label"] = test["source_label"].where(test["source_label"].notna(), devices.to_numpy())
        return cls(path=path, test=test, labelled=labelled)


def location_disjoint_split(items: pd.DataFrame, validation_amount: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split items into training and validation so that no recording location is on both sides.

    Locations (``identifier``) are assigned whole. For each scene, its locations are shuffled with
    ``seed``, interleaved across cities, and moved to validation one at a time while that brings the
    scene's validation share closer to ``validation_amount``. Then every city with two or more
    locations is put on both sides (its smallest location is moved across when one side lacks it).
    So no location is shared, every city is on both sides as far as it has locations, and every scene
    gets close to ``validation_amount`` of its items in validation.

    (The official 2022/23 code claims this but balances by class only: its location mode fails on
    2022 file names. This one is really location-disjoint.)

    Parameters
    ----------
    items : DataFrame with columns ``scene_label``, ``identifier`` and ``city``, one row per clip
    validation_amount : fraction of items wanted in validation, in (0, 1)
    seed : random seed (0 is a seed)

    Returns
    -------
    train_index, validation_index : np.ndarray of row positions (sorted), disjoint, covering all rows
    """
    if not 0.0 < float(validation_amount) < 1.0:
        raise Task1aError(f"validation_amount must be in (0, 1), got {validation_amount}; fix learner_method_parameters in task1a.yaml")
    for column in ("scene_label", "identifier", "city"):
        if column not in items or items[column].isna().any():
            raise Task1aError(f"the validation split needs '{column}' for every training item; take it from meta.csv or official file names")
    rng = np.random.default_rng(seed)
    locations = items.groupby("identifier", sort=True).agg(scene=("scene_label", "first"), city=("city", "first"), n=("scene_label", "size"))
    validation = pd.Series(False, index=locations.index)
    for _, scene_locations in locations.groupby("scene", sort=True):
        if len(scene_locations) < 2:
            continue
        shuffled = scene_locations.iloc[rng.permutation(len(scene_locations))]
        # round-robin over cities (rank within city first), so validation spreads across cities
        rank = shuffled.groupby("city", sort=False).cumcount()
        ordered = shuffled.assign(rank=rank.to_numpy()).sort_values("rank", kind="stable")
        target, taken, chosen = validation_amount * scene_locations["n"].sum(), 0, 0
        for identifier, n in zip(ordered.index, ordered["n"]):
            if chosen == len(ordered) - 1:
                break
            if chosen == 0 or abs(taken + n - target) < abs(taken - target):
                validation[identifier] = True
                taken, chosen = taken + n, chosen + 1
    for _, city_locations in locations.groupby("city", sort=True):
        if len(city_locations) < 2:
            continue
        side = validation[city_locations.index]
        for lacking in (True, False):  # a city without validation locations, then one without training locations
            if not (side == lacking).any():
                candidates = city_locations[side != lacking]
                validation[candidates["n"].idxmin()] = lacking
                side = validation[city_locations.index]
    is_validation = items["identifier"].map(validation).to_numpy(dtype=bool)
    return np.flatnonzero(~is_validation), np.flatnonzero(is_validation)


def split_summary(items: pd.DataFrame) -> dict:
    """Counts of one split, as the module CLI prints them."""
    return {
        "count": int(len(items)),
        "locations": sorted(items["identifier"].dropna().unique().tolist()),
        "devices": {str(k): int(v) for k, v in items["source_label"].value_counts().sort_index().items()},
        "scenes": {str(k): int(v) for k, v in items["scene_label"].value_counts().reindex(SCENE_LABELS, fill_value=0).items()},
    }


def check_audio_files(root: Path, filenames, max_listed: int = 5) -> dict:
    """Check that every listed audio file exists, is readable by soundfile (header only) and, for WAV, is not truncated.

    Returns ``{"checked": N, "missing": {"count", "first"}, "unreadable": {"count", "first"}}``.
    """
    import soundfile

    from utils.audio import wav_truncation

    missing, unreadable = [], []
    for name in filenames:
        path = root / name
        if not path.is_file():
            missing.append(name)
            continue
        try:
            info = soundfile.info(str(path))
            truncation = wav_truncation(path) if path.suffix.lower() == ".wav" else None
            if info.frames <= 0:
                unreadable.append(f"{name} (no samples)")
            elif truncation:
                unreadable.append(f"{name} (truncated: {truncation})")
        except (RuntimeError, soundfile.LibsndfileError) as exc:
            unreadable.append(f"{name} ({str(exc).splitlines()[0]})")
    return {
        "checked": len(filenames),
        "missing": {"count": len(missing), "first": missing[:max_listed]},
        "unreadable": {"count": len(unreadable), "first": unreadable[:max_listed]},
    }


def check_listed_in_meta(dataset: TAUDevelopmentSet, max_listed: int = 3) -> None:
    """Raise :class:`Task1aError` unless every row of the fold files and of the DCASE2024 split files
    found in the folder is in ``meta.csv``, naming the file and its first ``max_listed`` such rows."""
    listed = set(dataset.meta["filename"])
    tables = [(dataset.path / SETUP_FOLDER / FOLD_FILES[split], table) for split, table in
              (("train", dataset.train_fold), ("evaluate", dataset.evaluate), ("test", dataset.test))]
    for folder in SPLIT_FOLDERS:
        for train_split in TRAIN_SPLITS[:-1]:
            split_file = dataset.path / folder / split_filename(train_split)
            if split_file.is_file():
                tables.append((split_file, read_metadata_csv(split_file, ("filename", "scene_label"))))
    for file, table in tables:
        missing = np.flatnonzero(~table["filename"].isin(listed).to_numpy())
        if len(missing):
            rows = ", ".join(f"line {row + 2} '{table['filename'].iloc[row]}'" for row in missing[:max_listed])
            more = f" and {len(missing) - max_listed} more" if len(missing) > max_listed else ""
            raise Task1aError(f"{file}: {len(missing)} row(s) not in {META_FILENAME}: {rows}{more}; restore the official metadata files")


def check_dataset(path: str | Path, check_audio: bool = False, validation_amount: float = 0.3, seed: int = 0, train_split: int = 100) -> dict:
    """Verify a development-set folder and count its splits.

    Returns ``{"meta": {"count"}, "train_split": ..., "train": ..., "validation": ..., "test": ...}``
    where train and validation are the location-disjoint split of the training items (fold1_train.csv,
    or its DCASE2024 ``train_split`` % subset) and test is fold1_evaluate.csv, each as
    :func:`split_summary`; ``train_split`` holds the subset's percentage, file, size, the size of
    fold1_train and the locations on each side of the validation split (``shared_locations`` is 0);
    with ``check_audio`` also ``"audio"`` (see :func:`check_audio_files`). Every row of the fold and
    split files must be in meta.csv (:func:`check_listed_in_meta`).
    """
    dataset = TAUDevelopmentSet.load(path, train_split=train_split)
    check_listed_in_meta(dataset)
    train_index, validation_index = location_disjoint_split(dataset.train, validation_amount, seed)
    train, validation = dataset.train.iloc[train_index], dataset.train.iloc[validation_index]
    train_locations, validation_locations = set(train["identifier"]), set(validation["identifier"])
    report = {
        "meta": {"count": int(len(dataset.meta))},
        "train_split": {
            "percent": dataset.train_split,
            "file": None if dataset.split_file is None else str(dataset.split_file),
            "subset": int(len(dataset.train)),
            "fold1_train": int(len(dataset.train_fold)),
            "validation": int(len(validation)),
            "train_locations": len(train_locations),
            "validation_locations": len(validation_locations),
            "shared_locations": len(train_locations & validation_locations),
        },
        "train": split_summary(train),
        "validation": split_summary(validation),
        "test": split_summary(dataset.evaluate),
    }
    if check_audio:
        listed = pd.unique(pd.concat([dataset.meta["filename"], dataset.train_fold["filename"], dataset.evaluate["filename"]]))
        report["audio"] = check_audio_files(dataset.path, list(listed))
    return report


def _format_report(path: Path, report: dict) -> str:
    lines = [f"dataset {path}", f"  meta.csv: {report['meta']['count']} files"]
    subset = report["train_split"]
    source = "fold1_train.csv" if subset["file"] is None else subset["file"]
    lines.append(
        f"  train_split {subset['percent']} %: {subset['subset']} of {subset['fold1_train']} fold1_train clips ({source}); "
        f"validation {subset['validation']} clips inside it; {subset['train_locations']} training / "
        f"{subset['validation_locations']} validation locations, {subset['shared_locations']} on both sides"
    )
    for split in ("train", "validation", "test"):
        summary = report[split]
        devices = " ".join(f"{d}:{n}" for d, n in summary["devices"].items())
        lines.append(f"  {split:<10} {summary['count']:>7} clips, {len(summary['locations']):>3} locations, devices {devices}")
    if "audio" in report:
        audio = report["audio"]
        lines.append(f"  audio: {audio['checked']} checked, {audio['missing']['count']} missing, {audio['unreadable']['count']} unreadable")
        for kind in ("missing", "unreadable"):
            for name in audio[kind]["first"]:
                lines.append(f"    {kind}: {name}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = cli.ArgumentParser(prog=cli.prog("utils.dataset"),
                                description="Verify a TAU Urban Acoustic Scenes 2022 Mobile development-set folder and print counts.")
    parser.add_argument("path", help="dataset folder (meta.csv, evaluation_setup/, audio/)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--check-audio", action="store_true", help="also check that every listed audio file exists and is readable")
    parser.add_argument("--validation-amount", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-split", "--train_split", type=int, default=100, metavar="{5,10,25,50,100}",
                        help="DCASE2024 training subset: percent of fold1_train (split_setup/split{N}.csv; default 100, the whole fold)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)

    def body() -> int:
        report = check_dataset(args.path, args.check_audio, args.validation_amount, args.seed, args.train_split)
        print(json.dumps(report) if args.json else _format_report(Path(args.path), report))
        audio = report.get("audio")
        return 1 if audio and (audio["missing"]["count"] or audio["unreadable"]["count"]) else 0

    return run_cli(body, args.debug)


if __name__ == "__main__":
    sys.exit(main())
