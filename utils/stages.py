"""The stages of the application, each a function of parameters and paths returning what it wrote.

A stage writes into its own folder ``<system>/<stage>/<hash>/`` (:func:`utils.parameters.stage_hash`),
with a ``parameters.yaml`` saying what produced it, and treats its main output as the mark of
completion: without ``overwrite`` a finished stage is reused, an unfinished one resumes. ``task1a.py``
only wires these functions together.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from utils import dataset as tau
from utils.errors import Task1aError
from utils.files import file_digest, write_yaml_atomic
from utils.parameters import allowed, stage_hash, stage_parameters

log = logging.getLogger(__name__)

# sha256 of the official baseline's model file (../shared/reference/README.md): inference with it
# is the `baseline_inference` energy figure of the DCASE2023 submission meta.
OFFICIAL_MODEL_SHA256 = "c627fe9cab07709750072d3ba39a2944a3a33b5a63e2dda97195406fde5cfd9b"
# Parameters of the official baseline's Keras model (its README's network summary: 800, 64, 12,560, 64,
# 25,120, 128, 6,500, 1,010): the count its TFLite file cannot give (batch normalisation is folded away).
OFFICIAL_MODEL_KERAS_PARAMETERS = 46_246
OFFICIAL_MODEL_NORMALIZATION = "max_abs_int16"
REAL_DATASET_NAME = "TAU Urban Acoustic Scenes 2022 Mobile"
SYNTHETIC_LABEL = "SYNTHETIC demo data (not the real TAU dataset)"


# --------------------------------------------------------------------------------------- dataset
@dataclass
class DataContext:
    """The datasets of one run and how to label results obtained on them."""

    development: tau.TAUDevelopmentSet
    evaluation: tau.TAUEvaluationSet | None
    synthetic: bool
    name: str
    params: dict  # the parameters actually used (the dataset section may have fallen back to demo)

    @property
    def description(self) -> str:
        return f"{SYNTHETIC_LABEL}: {self.name}" if self.synthetic else f"{self.name} (real data)"


def resolve_path(root: Path, value: str | os.PathLike | None) -> Path | None:
    if value is None:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def development_set_found(params: dict, root: Path) -> bool:
    """Whether the real development set the parameters point at is there (the demo data always is)."""
    if params["dataset"]["method"] != "tau2022_mobile":
        return True
    return (resolve_path(root, params["dataset"]["parameters"]["development"]) / tau.META_FILENAME).is_file()


def prepare_data(params: dict, root: Path, progress: bool = True) -> DataContext:
    """Load the datasets a run needs, generating the demo data on first use.

    Raises :class:`Task1aError` when the configured real dataset is not found (``task1a.py`` falls
    back to the demo set before calling this, when allowed).
    """
    mode = params["general"]["mode"]
    method = params["dataset"]["method"]
    if method == "tau2022_mobile":
        settings = params["dataset"]["parameters"]
        development_path = resolve_path(root, settings["development"])
        if not development_set_found(params, root):
            raise Task1aError(
                f"development set not found at {development_path}; download it (python task1a.py --download_dataset {development_path.parent}) "
                "or set dataset_method_parameters.tau2022_mobile.development"
            )
        development = tau.TAUDevelopmentSet.load(development_path, train_split=params["dataset"]["train_split"])
        evaluation = None
        if mode == "eval":
            from utils import editions

            evaluation_path = resolve_path(root, settings["evaluation"])
            if not evaluation_path.is_dir():  # before any training: the edition names its evaluation set and the download command
                raise Task1aError(editions.of(params).missing_evaluation_set(evaluation_path))
            evaluation = tau.TAUEvaluationSet.load(evaluation_path, resolve_path(root, settings["evaluation_labels"]))
        return DataContext(development, evaluation, synthetic=False, name=f"{REAL_DATASET_NAME}, development set ({development_path})", params=params)
    if method != "demo":
        raise Task1aError(f"unknown dataset.method '{method}' (known: {', '.join(allowed('dataset'))}); fix task1a.yaml")
    from utils.demo_dataset import generate_demo_dataset

    settings = params["dataset"]["parameters"]
    demo_root = resolve_path(root, settings["path"])
    paths = generate_demo_dataset(demo_root, settings, progress=progress)
    development = tau.TAUDevelopmentSet.load(paths["development"], train_split=params["dataset"]["train_split"])
    evaluation = tau.TAUEvaluationSet.load(paths["evaluation"], paths["evaluation_labels"]) if mode == "eval" else None
    return DataContext(development, evaluation, synthetic=True, name=f"task1a demo dataset ({demo_root})", params=params)


def training_items(data: DataContext) -> pd.DataFrame:
    """Items to learn from, as the set's edition says (:meth:`utils.editions.base.Edition.training_items`)."""
    from utils import editions

    return editions.of(data.params).training_items(data)


def development_items(data: DataContext) -> pd.DataFrame:
    """Every development item the features are extracted for: the whole fold1_train (whatever the subset) and fold1_evaluate."""
    development = data.development
    train = development.train_fold if development.train_fold is not None else development.train
    return pd.concat([train, development.evaluate], ignore_index=True).drop_duplicates("filename")


def test_items(data: DataContext) -> tuple[pd.DataFrame, Path, bool]:
    """Items to test on, the folder their names are relative to, and whether they have labels."""
    if data.params["general"]["mode"] == "eval":
        return data.evaluation.test, data.evaluation.path, data.evaluation.labelled
    return data.development.evaluate, data.development.path, True


# --------------------------------------------------------------------------------- folders
def folder_hash(params: dict, stage: str, extra=None) -> str:
    """The name of a stage's folder: :func:`utils.parameters.stage_hash`, with the content of the files a
    training starts or learns from (:func:`utils.learning.research_fingerprints`: initial weights, a
    teacher's outputs) for the learner and every stage after it: another content under the same path is
    another training."""
    from utils.parameters import STAGE_HASH_INPUTS

    chain = list(STAGE_HASH_INPUTS)
    files = {}
    if chain.index(stage) >= chain.index("learner"):
        from utils.learning import research_fingerprints

        files = research_fingerprints(params["learner"]["parameters"])
    return stage_hash(params, stage, dict(extra or {}, input_files=files) if files else extra)


def stage_folder(params: dict, root: Path, stage: str, extra=None) -> Path:
    """``<system>/<stage>/<hash>``, created, with ``parameters.yaml`` beside the outputs."""
    folder = resolve_path(root, params["path"]["system"]) / stage / folder_hash(params, stage, extra)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise Task1aError(f"cannot create the output folder {folder}: {exc.strerror}; set path.system to a writable folder") from None
    record = folder / "parameters.yaml"
    if not record.exists():
        write_yaml_atomic(record, {"set_id": params["set_id"], "stage": stage, "extra": extra, "parameters": stage_parameters(params, stage)})
    return folder


# ------------------------------------------------------------------------- feature extraction
def feature_extraction_stage(params: dict, items: pd.DataFrame, audio_root: Path, store_dir: Path, overwrite: bool = False, progress: bool = True):
    """Extract log-mel features of every item into the store at ``store_dir``; return the open store.

    Reuses a complete store (unless ``overwrite``), resumes an interrupted one. Files that cannot be
    read stop the run with one line naming the first of them (a result on a silently shrunk test set
    would be wrong).
    """
    from utils import features
    from utils.feature_store import FeatureStore, extract_to_store

    if overwrite and store_dir.exists():
        shutil.rmtree(store_dir)
    keys = items["filename"].tolist()
    if store_dir.exists():
        store = FeatureStore(store_dir)
        if store.is_complete and set(keys) <= set(store.keys) and not store.failed:
            log.info("features: reusing %s (%d files)", store_dir, len(keys))
            return store
        done = len(set(keys) & set(store.keys))
        if done:
            log.info("features: resuming %s (%d of %d files already extracted)", store_dir, done, len(keys))
    log.info("features: extracting %d files into %s", len(keys), store_dir)
    section = params["feature_extractor"]
    store = extract_to_store(
        [audio_root / key for key in keys],
        keys,
        store_dir,
        features.build_extractor(params),
        segment_length_seconds=section["segment_length_seconds"],
        n_jobs=section["n_jobs"],
        progress=progress,
    )
    if store.failed:
        first, reason = next(iter(store.failed.items()))
        raise Task1aError(
            f"{len(store.failed)} audio file(s) of {audio_root} could not be read, first {first}: {reason}; "
            "restore or remove them (python -m utils.dataset PATH --check-audio lists them), then rerun"
        )
    return store


def segment_labels(store, items: pd.DataFrame, column: str) -> np.ndarray:
    """A per-item column repeated for each of the item's segments."""
    counts = np.asarray(store.segment_counts(items["filename"].tolist()))
    return np.repeat(items[column].to_numpy(), counts)


# ------------------------------------------------------------------------------------- learning
def check_learner_settings(params: dict, given_model: bool = False) -> None:
    """Fail before any work when the learner's settings (Keras configs included) are invalid, or (DCASE2025)
    when the device models' ``trainable_layers`` name no layer of the network, or the tested TFLite variant
    is not exported."""
    from utils.learning import check_settings

    learner = params["learner"]["parameters"]
    check_settings(learner)
    io = params["recognizer"]["model_io"]
    if not given_model and io not in learner["conversion"]["io"]:
        raise Task1aError(f"recognizer.model_io '{io}' is not exported (learner_method_parameters.{params['learner']['method']}.conversion.io: "
                          f"{learner['conversion']['io']}); add it there or choose another model_io")
    patterns = params["device_models"]["trainable_layers"] if params["device_models"]["enabled"] else None
    if patterns:
        from fnmatch import fnmatchcase

        from utils.complexity import network_input_shape
        from utils.model import build_model

        names = [layer.name for layer in build_model(learner["model"], network_input_shape(params), len(tau.SCENE_LABELS)).layers]
        for pattern in patterns:
            if not any(fnmatchcase(name, pattern) for name in names):
                raise Task1aError(f"device_models.trainable_layers: {pattern!r} matches no layer of the network (layers: {', '.join(names)}); fix the pattern")


def trial_seeds(params: dict) -> list[int]:
    """The training seeds of a run: ``general.seed`` and the next ``iterations - 1``."""
    return [params["general"]["seed"] + k for k in range(params["learner"]["parameters"]["iterations"])]


def trials_folder_name(seeds: list[int]) -> str:
    """The evaluator sub-folder of a run's results: ``seed_3`` for one training, ``seeds_0-9`` for trials."""
    return f"seed_{seeds[0]}" if len(seeds) == 1 else f"seeds_{seeds[0]}-{seeds[-1]}"


def run_results_path(params: dict, workdir=None, extra=None) -> Path:
    """Where a (dev-mode) run of ``params`` keeps its results: ``<system>/evaluator/<hash>/<seed_N or seeds_A-B>/results.yaml``."""
    from utils.paths import system_dir

    return system_dir(params, workdir) / "evaluator" / folder_hash(params, "evaluator", extra) / trials_folder_name(trial_seeds(params)) / "results.yaml"


def split_results(all_params: list[dict], workdir=None) -> list[tuple[int, dict]]:
    """``(train_split, results)`` of each run of a multi-set command that has results, in split order."""
    import yaml

    found = {}
    for params in all_params:
        path = run_results_path(params, workdir)
        if path.is_file():
            found[params["dataset"]["train_split"]] = yaml.safe_load(path.read_text())
    return sorted(found.items())


@dataclass
class TrainedModel:
    folder: Path
    seed: int
    tflite: dict  # io -> path
    keras: Path
    normalization: dict
    summary: dict = field(default_factory=dict)
    devices: dict = field(default_factory=dict)  # DCASE2025: device id -> its fine-tuned TrainedModel


def given_model(params: dict, model_path: Path) -> TrainedModel:
    """A ``.tflite`` model given on the command line, as the model the run tests (normalised as the parameters say)."""
    model_path = Path(model_path)
    if not model_path.is_file():
        raise Task1aError(f"--model {model_path} not found; give a .tflite file")
    normalization = {"method": params["data_processing"]["normalization"], "statistics": None}
    return TrainedModel(model_path.parent, params["general"]["seed"], {params["recognizer"]["model_io"]: model_path}, None, normalization)


def trained_model(params: dict, workdir=None, seed: int | None = None) -> TrainedModel:
    """The finished model a set's learning stage wrote for ``seed`` (default: its first trial seed), found by the layout."""
    import yaml

    from utils.paths import system_dir

    seed = trial_seeds(params)[0] if seed is None else seed
    folder = system_dir(params, workdir) / "learner" / folder_hash(params, "learner") / f"seed_{seed}"
    summary_path = folder / "learning.yaml"
    if not summary_path.is_file():
        raise Task1aError(f"no trained model of set {params['set_id']} (seed {seed}) at {folder}; train one (python task1a.py -s {params['set_id']}) or give --model")
    return _model_from_summary(folder, seed, yaml.safe_load(summary_path.read_text()))


def _model_from_summary(folder: Path, seed: int, summary: dict) -> TrainedModel:
    """The TrainedModel a finished learning stage's ``learning.yaml`` describes."""
    return TrainedModel(folder, seed, {io: folder / p for io, p in summary["tflite"].items()}, folder / summary["keras"], summary["normalization"], summary)


def _reused_model(folder: Path, seed: int, overwrite: bool, group) -> TrainedModel | None:
    """A finished training in ``folder`` (None: train); with ``overwrite`` the chief clears the folder first."""
    import yaml

    summary_path = folder / "learning.yaml"
    if overwrite and folder.exists() and group.chief:
        for child in folder.iterdir():
            if child.name != "parameters.yaml":
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    if not group.chief_value(summary_path.exists()):
        return None
    log.info("learning: reusing %s (seed %d)", folder, seed)
    if not group.chief:
        return TrainedModel(folder, seed, {}, None, {}, {"chief": False})
    return _model_from_summary(folder, seed, yaml.safe_load(summary_path.read_text()))


def learning_data(params: dict, items: pd.DataFrame, store, folder: Path, write: bool = True) -> dict:
    """The location-disjoint split of ``items`` (``validation_seed``), the normalisation fitted on its
    training side, and the normalised arrays: ``X_train`` ``(n, n_mels, n_frames)``, ``y_train`` ``(n,)``
    class indices, ``X_val``, ``y_val``, plus ``train_items`` and ``normalization``. With ``write``,
    ``split.yaml`` and ``normalization.yaml`` are saved in ``folder``."""
    from utils import features

    learner = params["learner"]["parameters"]
    if learner["validation_amount"]:
        train_index, validation_index = tau.location_disjoint_split(items, learner["validation_amount"], learner["validation_seed"])
        train_items, validation_items = items.iloc[train_index], items.iloc[validation_index]
    else:  # validation_amount 0: the whole of ``items`` trains, no hold-out (the official DCASE2024/2025 protocol)
        train_items, validation_items = items, items.iloc[:0]
    split = {
        "train_split": params["dataset"]["train_split"], "seed": learner["validation_seed"], "validation_amount": learner["validation_amount"],
        "train_locations": sorted(train_items["identifier"].unique().tolist()),
        "validation_locations": sorted(validation_items["identifier"].unique().tolist()),
        "train_count": int(len(train_items)), "validation_count": int(len(validation_items)),
    }
    method = params["data_processing"]["normalization"]
    statistics = features.fit_mean_std(store, train_items["filename"].tolist()) if method == "mean_std" else None
    normalization = {"method": method, "statistics": statistics}
    if write:
        write_yaml_atomic(folder / "split.yaml", split)
        write_yaml_atomic(folder / "normalization.yaml", normalization)
    normalizer = features.build_normalizer(method, statistics)
    class_index = {label: i for i, label in enumerate(tau.SCENE_LABELS)}
    data = {"train_items": train_items, "normalization": normalization}
    for side, side_items in (("train", train_items), ("val", validation_items)):
        held_out = side == "train" or len(side_items)
        data[f"X_{side}"] = features.load_normalized(store, side_items["filename"].tolist(), normalizer) if held_out else None
        data[f"y_{side}"] = np.array([class_index[s] for s in segment_labels(store, side_items, "scene_label")]) if held_out else None
    if data["y_val"] is None:
        log.info("learning: %d training segments (%d locations), no validation hold-out (validation_amount 0)", len(data["y_train"]),
                 train_items["identifier"].nunique())
    else:
        log.info("learning: %d training and %d validation segments (%d / %d locations), validation split seed %d", len(data["y_train"]),
                 len(data["y_val"]), train_items["identifier"].nunique(), validation_items["identifier"].nunique(), learner["validation_seed"])
    return data


def learning_stage(params: dict, items: pd.DataFrame, store, folder: Path, seed: int, overwrite: bool = False, progress: bool = True, group=None) -> TrainedModel:
    """Train one model (one seed) on ``items`` with a location-disjoint validation split, export TFLite.

    Writes into ``folder``: the split, normalisation statistics, checkpoints, ``model.keras``, the
    training log and curves, ``model_float.tflite`` / ``model_int8.tflite`` and ``learning.yaml``
    (the summary; the mark of completion). Resumes from the last checkpoint when interrupted. The
    validation split comes from ``validation_seed``, not ``seed``: every trial validates on the same
    clips. On a multi-worker cluster (``group``) the chief clears and reuses, the others follow its
    decision; only the chief exports.
    """
    from utils import learning, tflite
    from utils.distribute import WorkerGroup

    group = group or WorkerGroup()
    reused = _reused_model(folder, seed, overwrite, group)
    if reused is not None:
        return reused
    learner = params["learner"]["parameters"]
    data = learning_data(params, items, store, folder, write=group.chief)
    X_train, y_train, X_val, y_val, train_items = data["X_train"], data["y_train"], data["X_val"], data["y_val"], data["train_items"]
    if group.chief and not overwrite:
        learning.adopt_earlier_checkpoint(folder)  # a larger fit.epochs continues a shorter training of the same parameters
    trained = learning.train_model(learner, X_train, y_train, X_val, y_val, folder, seed=seed, deterministic=params["general"]["deterministic"],
                                   progress=progress, distribute=params["learner"]["distribute"],
                                   training_names=segment_labels(store, train_items, "filename"))
    if not trained["chief"]:  # a multi-worker non-chief worker: the chief exports, tests and evaluates
        return TrainedModel(folder, seed, {}, None, data["normalization"], {"chief": False})
    model = trained["model"]
    devices = segment_labels(store, train_items, "source_label")
    conversion = learner["conversion"]  # fewer training segments than representative_examples (a device's few clips): all of them
    exported = tflite.export_tflite_models(model, X_train, y_train, devices, folder, ios=tuple(conversion["io"]),
                                           n_examples=min(conversion["representative_examples"], len(y_train)), seed=seed)
    summary = {
        "seed": seed,
        "keras": Path(trained["model_path"]).name,
        "tflite": {io: Path(path).name for io, path in exported.items()},
        "normalization": data["normalization"],
        "best_epoch": trained["best_epoch"],
        "epochs_trained": trained["epochs_trained"],
        "stopped_early": trained["stopped_early"],
        "validation": {k: v for k, v in trained.items() if k.startswith("val")},
        "quantization": tflite.evaluate_quantization(model, exported, X_val, y_val) if X_val is not None else None,
        "keras_parameters": int(model.count_params()),
        "train_segments": int(len(y_train)),
        "validation_segments": int(len(y_val)) if y_val is not None else 0,
        "model_selection": learner["model_selection"].get("rule") or "best",
    }
    write_yaml_atomic(folder / "learning.yaml", plain_values(summary))
    return _model_from_summary(folder, seed, plain_values(summary))


def plain_values(value):
    """Numpy scalars and paths to plain YAML-able Python values."""
    if isinstance(value, dict):
        return {str(k): plain_values(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_values(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


# ----------------------------------------------------------------------------------- model size
def model_size_stage(tflite_path: Path, limits: dict, folder: Path, overwrite: bool = False) -> dict:
    """NeSsi figures of a TFLite model, saved in ``folder`` (an output folder, never beside a given input) as
    ``<name>.nessi.txt`` and ``.nessi.json``."""
    import json

    from model_size_calculation.nessi import format_nessi_table
    from utils.complexity import measure_tflite
    from utils.files import write_json_atomic, write_text_atomic

    json_path = Path(folder) / Path(tflite_path).with_suffix(".nessi.json").name
    if json_path.exists() and not overwrite and json_path.stat().st_mtime >= tflite_path.stat().st_mtime:
        figures = json.loads(json_path.read_text())
        if figures.get("limits", {}).get("macs") == limits["max_macs"] and figures["limits"].get("memory_bytes") == limits["max_memory_bytes"]:
            return figures
    figures = measure_tflite(str(tflite_path), limits)
    write_text_atomic(json_path.with_suffix("").with_suffix(".nessi.txt"), format_nessi_table(figures) + "\n")
    write_json_atomic(json_path, figures)
    return figures


def tflite_parameter_counts(tflite_path: Path) -> dict:
    """Elements (and non-zero elements) of a TFLite model's constant tensors: its parameters after conversion."""
    from ai_edge_litert.interpreter import Interpreter

    from model_size_calculation.tflite_reader import read_tflite_graph

    data = Path(tflite_path).read_bytes()
    graph = read_tflite_graph(data)
    interpreter = Interpreter(model_content=data)
    total = non_zero = 0
    for tensor in graph.tensors:
        if tensor.buffer_bytes > 0:
            total += tensor.element_count
            non_zero += int(np.count_nonzero(interpreter.get_tensor(tensor.id)))
    return {"parameters": int(total), "non_zero": int(non_zero)}


def model_parameter_count(keras_path: Path | None, tflite_path: Path, summary: dict | None = None) -> dict:
    """The model's own parameter count for the meta's ``total_parameters``, and how it was counted.

    A trained model: its Keras model's ``count_params()`` (batch normalisation included, as the official
    README's summary counts), non-zero: its non-zero weights. The official model file: its published
    Keras count (46,246), non-zero from the TFLite constants (no Keras weights). Any other
    given ``.tflite`` without a Keras model: the elements of its constant tensors (batch normalisation
    folded into the convolutions by the converter, so fewer than the Keras count).
    """
    counts = tflite_parameter_counts(tflite_path)
    non_zero = counts["non_zero"]
    if keras_path is not None and Path(keras_path).is_file():
        import keras

        model = keras.saving.load_model(keras_path, compile=False)
        total, how = int(model.count_params()), "the Keras model's count_params() (non-zero: its non-zero weights)"
        non_zero = int(sum(np.count_nonzero(w) for w in model.get_weights()))
    elif file_digest(tflite_path) == OFFICIAL_MODEL_SHA256:
        total, how = OFFICIAL_MODEL_KERAS_PARAMETERS, "the official baseline's published Keras model summary (its TFLite file has no Keras model)"
    else:
        total, how = counts["parameters"], "elements of the TFLite file's constant tensors (no Keras model given: batch normalisation is folded in, so this is below a Keras count)"
    return {"parameters": total, "non_zero": non_zero, "tflite_constants": counts["parameters"], "counted_as": how}


# --------------------------------------------------------------------------------------- testing
def testing_stage(model_path: Path, normalization: dict, items: pd.DataFrame, store, folder: Path, recognizer: dict, overwrite: bool = False, progress: bool = True) -> Path:
    """Run the TFLite model over ``items`` and write the system output ``folder/output.csv``."""
    from utils.features import build_normalizer
    from utils.system_output import write_system_output
    from utils.testing import predict_store
    from utils.tflite import TFLiteClassifier

    output = folder / "output.csv"
    if output.exists() and not overwrite:
        log.info("testing: reusing %s", output)
        return output
    classifier = TFLiteClassifier(model_path, batch_size=recognizer["batch_size"], num_threads=recognizer["num_threads"])
    normalizer = build_normalizer(normalization["method"], normalization.get("statistics"))
    keys = items["filename"].tolist()
    probabilities = predict_store(classifier, store, keys, normalizer, batch_size=recognizer["batch_size"], progress=progress)
    write_system_output(output, keys, probabilities, tau.SCENE_LABELS)
    log.info("testing: %d files -> %s", len(keys), output)
    return output


# ------------------------------------------------------------------------------------ evaluation
def evaluation_stage(output_csv: Path, items: pd.DataFrame, folder: Path, dataset_description: str, confidence_level: float, info: dict,
                     device_groups: dict | None = None) -> dict:
    """Score a system output against the items' labels; save results.yaml and the PNGs in ``folder``."""
    from utils import evaluation
    from utils.system_output import read_system_output

    filenames, _, probabilities = read_system_output(output_csv)
    order = pd.Series(np.arange(len(filenames)), index=filenames)
    missing = set(items["filename"]) - set(filenames)
    if missing:
        raise Task1aError(f"{output_csv} lacks {len(missing)} test file(s), first {sorted(missing)[0]}; rerun testing with -o")
    probabilities = np.asarray(probabilities)[order[items["filename"]].to_numpy()]
    metrics = evaluation.SceneClassificationMetrics(tau.SCENE_LABELS, confidence_level=confidence_level, device_groups=device_groups or tau.DEVICE_GROUPS)
    metrics.accumulate(items["scene_label"].tolist(), probabilities, items["source_label"].fillna("unknown").tolist())
    results = metrics.results()
    results.update(info)
    results["dataset"] = dataset_description
    folder.mkdir(parents=True, exist_ok=True)
    write_yaml_atomic(folder / "results.yaml", plain_values(results))
    evaluation.plot_confusion_matrix(results, folder / "confusion_matrix.png")
    evaluation.plot_device_accuracy(results, folder / "device_accuracy.png")
    return results


def trials_evaluation_stage(trials: list[dict], folder: Path, dataset_description: str, info: dict) -> tuple[dict, str]:
    """Mean and std over the trials' results (as the official README's "averaged over 10 iterations"),
    saved as ``folder/results.yaml``; returns them and their table."""
    from utils.evaluation import aggregate_trials, format_aggregated_table

    aggregated = aggregate_trials(trials)
    results = dict(aggregated["mean"], std=aggregated["std"], **info, dataset=dataset_description)
    folder.mkdir(parents=True, exist_ok=True)
    write_yaml_atomic(folder / "results.yaml", plain_values(results))
    return results, format_aggregated_table(aggregated, dataset_description)


def complexity_brief(complexity: dict | None) -> dict | None:
    """The NeSsi figures a results file keeps: MACs, weight and peak memory, and the verdicts."""
    if not complexity:
        return None
    keys = ("total_macs", "total_weight_bytes", "peak_memory_bytes", "macs_ok", "memory_ok")
    return {key: complexity.get(key) for key in keys}


class StageTimer:
    """Wall-clock seconds per stage, for the report."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str):
        timer = self

        class _Timing:
            def __enter__(self):
                self.start = time.perf_counter()

            def __exit__(self, *exc):
                timer.seconds[name] = timer.seconds.get(name, 0.0) + time.perf_counter() - self.start
                return False

        return _Timing()


# ------------------------------------------------------------------------------ energy per stage
def measured_stage(meter, phase: str, folder: Path, reused: bool, body, *, write: bool = True, overwrite: bool = False,
                   resumed_unrecorded: bool = False):
    """Run ``body()`` (a stage working in ``folder``) and give ``meter`` the energy of what it produced.

    A stage computed now: measured, the part recorded in the folder (also when interrupted) and, once
    the stage is complete, the sum of its parts (several when it resumed) stored as its ``energy.yaml``
    and reported. A reused stage (``reused``): not measured again; the figure stored when it ran is
    reported, marked as such. ``write`` is False on a worker that does not own the folder.
    """
    from utils.energy import clear_stage_energy, finish_stage_energy, record_stage_part, stored_stage_energy

    folder = Path(folder)
    if reused:
        result = body()
        meter.add_record(phase, stored_stage_energy(folder, phase))
        return result
    if overwrite and write:
        clear_stage_energy(folder)
    try:
        with meter.phase(phase, accumulate=False):
            result = body()
    finally:
        if write:
            folder.mkdir(parents=True, exist_ok=True)
            record_stage_part(folder, phase, meter.last_part(phase))
    total = finish_stage_energy(folder, phase, resumed_unrecorded) if write else None
    meter.add_record(phase, total if total is not None else meter.last_part(phase))
    return result


def learning_reused(folder: Path, overwrite: bool) -> bool:
    return not overwrite and (Path(folder) / "learning.yaml").exists()


def learning_resumes_unrecorded(folder: Path, overwrite: bool) -> bool:
    """A checkpoint left by a run that recorded no energy (killed): this run's figure misses that part."""
    from utils.energy import STAGE_ENERGY_PARTS_FILE
    from utils.learning import CHECKPOINT_FILENAME

    folder = Path(folder)
    return not overwrite and (folder / CHECKPOINT_FILENAME).exists() and not (folder / STAGE_ENERGY_PARTS_FILE).exists()


def feature_store_reused(store_dir: Path, items: pd.DataFrame, overwrite: bool) -> bool:
    from utils.feature_store import FeatureStore

    if overwrite or not Path(store_dir).exists():
        return False
    try:
        store = FeatureStore(store_dir)
    except Task1aError:
        return False
    return store.is_complete and set(items["filename"]) <= set(store.keys) and not store.failed


def testing_reused(folder: Path, overwrite: bool) -> bool:
    return not overwrite and (Path(folder) / "output.csv").exists()


# -------------------------------------------------------------------------- baseline inference
BASELINE_FOLDER = "baseline_inference"
"""In the recognizer folder: the official model's output over the same test items, and its energy."""


def baseline_model_path(params: dict, root: Path) -> Path:
    return resolve_path(root, params["recognizer"]["baseline_model"])


def baseline_model_problem(path: Path) -> str | None:
    """Why the official model at ``path`` cannot be used (with the command that fixes it), or None."""
    fix = f"python task1a.py --download_baseline_model {path}"
    if not path.is_file():
        return f"the official baseline model is not at {path} (recognizer.baseline_model); fetch it: {fix}"
    sha = file_digest(path)
    if sha != OFFICIAL_MODEL_SHA256:
        return f"{path} (recognizer.baseline_model) is not the official baseline model (sha256 {sha[:12]}...); delete it and run {fix}"
    return None


def baseline_inference_stage(model_path: Path, items: pd.DataFrame, store, folder: Path, recognizer: dict, overwrite: bool = False, progress: bool = True) -> Path:
    """The official model over the test items, with the run's batch size and threads.

    Its input is normalised the official way (``max_abs_int16``) whatever the run's
    ``data_processing.normalization``: the official model was trained on it.
    """
    folder.mkdir(parents=True, exist_ok=True)
    return testing_stage(model_path, {"method": OFFICIAL_MODEL_NORMALIZATION, "statistics": None}, items, store, folder, recognizer, overwrite, progress)


def run_baseline_inference(meter, params: dict, root: Path, items: pd.DataFrame, store, recognizer_dir: Path, overwrite: bool = False, progress: bool = True) -> Path | None:
    """The ``baseline_inference`` phase of a run: the official model right after testing, or one line saying why not.

    Returns the official model's system output, or None when the model is missing (the run goes on,
    the phase is "not measured" with the command that fixes it).
    """
    model_path = baseline_model_path(params, root)
    problem = baseline_model_problem(model_path)
    if problem:
        log.warning("baseline_inference: not measured (%s)", problem)
        meter.add_record("baseline_inference", {"measured": False, "reason": problem})
        return None
    if params["data_processing"]["normalization"] != OFFICIAL_MODEL_NORMALIZATION:
        log.info("baseline_inference: the official model's input is normalised the official way (%s), not with this run's %s",
                 OFFICIAL_MODEL_NORMALIZATION, params["data_processing"]["normalization"])
    folder = Path(recognizer_dir) / BASELINE_FOLDER
    return measured_stage(meter, "baseline_inference", folder, testing_reused(folder, overwrite),
                          lambda: baseline_inference_stage(model_path, items, store, folder, params["recognizer"], overwrite, progress),
                          overwrite=overwrite)


def meta_complexity(keras_path: Path | None, tflite_path: Path, summary: dict | None, complexity: dict) -> dict:
    """The meta's ``system.complexity`` block (README, "Submission meta: complexity figures").

    ``total_parameters``: the model's own parameter count (:func:`model_parameter_count`, how it was
    counted is logged); ``total_parameters_non_zero``: non-zero elements of the TFLite constants;
    ``total_model_size`` and ``memory_use`` (the template asks for bytes): NeSsi's total weight bytes,
    the parameter memory the challenge limits (128 KB) and ranks by; ``macs``: NeSsi's MACs per 1 s.
    """
    counts = model_parameter_count(keras_path, tflite_path, summary)
    log.info("meta total_parameters %d: %s (the TFLite file holds %d constant elements)", counts["parameters"], counts["counted_as"], counts["tflite_constants"])
    return {
        "total_model_size": complexity["total_weight_bytes"],
        "total_parameters": counts["parameters"],
        "total_parameters_non_zero": counts["non_zero"],
        "memory_use": complexity["total_weight_bytes"],
        "macs": complexity["total_macs"],
    }
