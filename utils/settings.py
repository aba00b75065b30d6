"""Typed settings: the sections of a resolved parameter set as frozen dataclasses, built once per run.

The registry (:mod:`utils.parameters`: ``RULES``, ``METHODS``) checks every value of every layer when the
files are read. :func:`build_settings` then turns one checked, resolved set into these values, once, at
the stage boundary: the stages hand them down and library code takes them and re-checks nothing. What
the registry cannot say of one key alone is decided here, once, with a one-line error naming the key:
the rules that tie two keys together (the monitored metric must be logged) and the run paths (the
learner's files resolve against the run's root, ``--workdir``). Keras configs (layers, optimizer,
loss, callbacks) pass through as they are and are validated by Keras
(:func:`utils.learning.check_keras_configs`).

Library code imports these types, never the parameter container. A library module's own command-line
tool or a test builds its settings from the shipped defaults with overrides
(``learner_from_block(block)``), through the same registry.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from utils.errors import Task1aError
from utils.files import usable_cores

LEARNER_KEY = "learner_method_parameters.cnn"
DEMO_KEY = "dataset_method_parameters.demo"


def worker_count(n_jobs: int) -> int:
    """Workers for a ``-1 = all cores`` count (``feature_extractor.n_jobs``, ``recognizer.num_threads``, ...):
    the usable cores for -1, else the count itself (at least 1). The one place that reads -1."""
    return usable_cores() if n_jobs == -1 else max(1, int(n_jobs))


# ------------------------------------------------------------------------------ features
@dataclass(frozen=True)
class FeatureSettings:
    """``feature_extractor``: the front end (``method`` and its keyword arguments), the segment length, the
    store's row type and the extraction workers (``-1`` resolved to the usable cores)."""

    method: str  # mel | logmel32k (utils.parameters.METHODS)
    parameters: Mapping[str, Any]  # feature_extractor_method_parameters.<method>: the extractor's keyword arguments
    segment_length_seconds: float
    storage: str  # float32 | float16
    n_jobs: int

    @property
    def fs(self) -> int:
        """The sampling rate the front end reads audio at (Hz)."""
        return int(self.parameters["fs"])


# ------------------------------------------------------------------------------ learner
@dataclass(frozen=True)
class Mixup:
    alpha: float = 0.0  # 0: off


@dataclass(frozen=True)
class Mask:
    """SpecAugment masks along one axis; ``fill`` (frequency masks only): null is the example's mean."""

    count: int = 0
    max_width: int = 0
    fill: float | None = None


@dataclass(frozen=True)
class TimeRoll:
    max_shift: int = 0  # frames; 0: off


@dataclass(frozen=True)
class FreqMixStyle:
    p: float = 0.0  # 0: off
    alpha: float = 0.3


@dataclass(frozen=True)
class AugmentationSettings:
    """``learner_method_parameters.cnn.augmentation`` (utils.augmentation applies it); every one off by default."""

    mixup: Mixup = Mixup()
    time_mask: Mask = Mask()
    frequency_mask: Mask = Mask()
    time_roll: TimeRoll = TimeRoll()
    freq_mixstyle: FreqMixStyle = FreqMixStyle()

    @property
    def off(self) -> bool:
        """Whether every batch is left as it is."""
        masks = (self.time_mask, self.frequency_mask)
        return self.mixup.alpha == 0 and self.time_roll.max_shift == 0 and self.freq_mixstyle.p == 0 and all(m.count == 0 or m.max_width == 0 for m in masks)


@dataclass(frozen=True)
class DistillationSettings:
    """``learner_method_parameters.cnn.distillation`` when a teacher is given (its path resolved against the run's root)."""

    teacher_outputs: Path
    temperature: float = 2.0
    weight: float = 0.5


@dataclass(frozen=True)
class FitSettings:
    """``fit``: epochs, batches, shuffling, label smoothing, TensorBoard and the user's Keras callbacks (configs)."""

    epochs: int
    batch_size: int
    validation_batch_size: int
    steps_per_execution: int = 1
    shuffle: bool = True
    label_smoothing: float = 0.0
    tensorboard: bool = False
    callbacks: tuple = ()  # Keras callback configs ({class_name, config}), built by utils.learning.build_callbacks


@dataclass(frozen=True)
class SelectionSettings:
    """``model_selection``: which epoch is kept (``best`` of ``monitor`` from ``initial_delay + 2``, or the ``last``)."""

    monitor: str = "val_categorical_accuracy"
    initial_delay: int = 0
    rule: str = "best"

    @property
    def mode(self) -> str:
        """``min`` for a loss, ``max`` for anything else."""
        return "min" if self.monitor.endswith("loss") else "max"


@dataclass(frozen=True)
class ConversionSettings:
    """``conversion``: the exported TFLite variants and the representative examples of int8 calibration."""

    io: tuple[str, ...] = ("float", "int8")
    representative_examples: int = 100


@dataclass(frozen=True)
class LearnerSettings:
    """``learner_method_parameters.cnn``: the network, its training and its export.

    ``model``, ``optimizer`` and ``loss`` are Keras configs (or a builder name), passed through as written.
    ``identity``: what a checkpoint must share with the run resuming it (the learner hash's parameters less
    the resume-safe keys, :func:`utils.parameters.checkpoint_parameters`), computed once from the same data.
    """

    model: Mapping[str, Any]
    optimizer: Any
    loss: Any
    metrics: tuple[str, ...]
    fit: FitSettings
    model_selection: SelectionSettings
    augmentation: AugmentationSettings = AugmentationSettings()
    distillation: DistillationSettings | None = None
    initial_weights: Path | None = None
    trainable_layers: tuple[str, ...] | None = None
    conversion: ConversionSettings = ConversionSettings()
    validation_amount: float = 0.3
    validation_seed: int = 0
    iterations: int = 1
    identity: Mapping[str, Any] = field(default_factory=dict)

    def replace(self, **changes) -> "LearnerSettings":
        """A copy with ``changes`` (``dataclasses.replace``)."""
        import dataclasses

        return dataclasses.replace(self, **changes)


# ------------------------------------------------------------------------------ testing, evaluation, limits
@dataclass(frozen=True)
class RecognizerSettings:
    """``recognizer``: how a model is tested (its TFLite variant, batch size, interpreter threads)."""

    model_io: str
    batch_size: int
    num_threads: int  # -1: all cores (LiteRT's own convention)
    max_chunk_seconds: float
    baseline_model: str


@dataclass(frozen=True)
class EvaluatorSettings:
    """``evaluator``: how results are scored."""

    confidence_level: float


@dataclass(frozen=True)
class ModelSizeSettings:
    """``model_size``: the edition's complexity limits, how parameter memory is counted and when the gate stops a run."""

    max_macs: int
    max_memory_bytes: int
    enforce: str = "eval"  # eval | always | never
    parameter_bits: int | None = None  # None: bytes as stored (DCASE2023); 16: DCASE2024/2025

    def enforced(self, mode: str) -> bool:
        """Whether an over-limit network stops a run of ``general.mode`` ``mode``."""
        return self.enforce == "always" or (self.enforce == "eval" and mode == "eval")


@dataclass(frozen=True)
class DemoSettings:
    """``dataset_method_parameters.demo``: the synthetic demo dataset's recording plan (utils.demo_dataset).
    ``path`` is where it goes (resolved by the data stage), not what it contains; every other field is content."""

    path: str
    seed: int
    cities: tuple[str, ...]
    locations_per_city: int
    segments_per_location: int
    test_locations_per_scene: int
    test_segments_per_location: int
    subsegments_per_segment: int  # 1-s clips of a 10-s segment
    train_device_fraction: float
    evaluation_locations_per_scene: int
    evaluation_files: int
    location_variation: float
    sample_rate: int


@dataclass(frozen=True)
class Settings:
    """The typed sections of one resolved set: what the stages hand down instead of the parameters dict."""

    features: FeatureSettings
    learner: LearnerSettings
    recognizer: RecognizerSettings
    evaluator: EvaluatorSettings
    model_size: ModelSizeSettings
    normalization: str  # data_processing.normalization
    learner_method: str  # learner.method (the submission meta's machine_learning_method)


# ------------------------------------------------------------------------------ builders
def _fields(cls, values: Mapping) -> dict:
    from dataclasses import fields

    return {f.name: values[f.name] for f in fields(cls) if f.name in values}


def defaults_with(key_path: str, overrides: Mapping | None, source: str, path: str | Path | None = None) -> dict:
    """The block at ``key_path`` of a parameter file's ``defaults`` (the shipped task1a.yaml by default) with ``overrides``
    merged in (nested), the overrides checked by the registry first (their keys and values; one line naming the key
    and ``source``): how a library tool, a benchmark or a test gets a checked block without a parameter set."""
    from utils.parameters import DEFAULT_PARAMETER_FILE, check_structure, check_values, checked_defaults, merge

    block = checked_defaults(path or DEFAULT_PARAMETER_FILE)
    for key in key_path.split("."):
        block = block[key]
    overrides = dict(overrides or {})
    check_structure(block, overrides, key_path, source)
    check_values(overrides, source, key_path)
    return merge(block, overrides)


def features_from_block(overrides: Mapping | None = None, path: str | Path | None = None, source: str = "feature settings") -> FeatureSettings:
    """:class:`FeatureSettings` of a parameter file's defaults (the shipped task1a.yaml by default) with ``overrides`` of
    ``feature_extractor`` merged in (``method``, ``n_jobs``, ...) (:func:`defaults_with`): what a library tool
    (task1a-features), a benchmark or a test builds instead of a parameter set. ``source`` names the caller in errors."""
    from utils.parameters import DEFAULT_PARAMETER_FILE, checked_defaults

    section = defaults_with("feature_extractor", overrides, source, path)
    method_parameters = (checked_defaults(path or DEFAULT_PARAMETER_FILE).get("feature_extractor_method_parameters") or {}).get(section["method"])
    if not isinstance(method_parameters, dict):
        raise Task1aError(f"{path or DEFAULT_PARAMETER_FILE} has no defaults.feature_extractor_method_parameters.{section['method']}; "
                          "give a task1a.yaml with --params")
    return feature_settings(dict(section, parameters=method_parameters))


def model_size_settings(section: Mapping) -> ModelSizeSettings:
    """``model_size`` of a checked set (or of a parameter file's defaults)."""
    return ModelSizeSettings(**_fields(ModelSizeSettings, section))


def demo_settings(block: Mapping) -> DemoSettings:
    """``dataset_method_parameters.demo`` of a checked set as :class:`DemoSettings`. Refuses, in one line naming the key,
    what the registry cannot say of one key alone: more evaluation files than the evaluation locations give."""
    from utils.dataset import EVALUATION_DEVICES, SCENE_LABELS

    settings = DemoSettings(**{**_fields(DemoSettings, block), "cities": tuple(block["cities"]),
                               "train_device_fraction": float(block["train_device_fraction"]), "location_variation": float(block["location_variation"])})
    pool = len(SCENE_LABELS) * settings.evaluation_locations_per_scene * settings.subsegments_per_segment * len(EVALUATION_DEVICES)
    if settings.evaluation_files > pool:
        raise Task1aError(f"{DEMO_KEY}.evaluation_files = {settings.evaluation_files} exceeds the {pool} distinct clips of the evaluation "
                          "locations; lower it or raise evaluation_locations_per_scene")
    return settings


def demo_from_block(overrides: Mapping | None = None, source: str = "demo dataset") -> DemoSettings:
    """:class:`DemoSettings` of the shipped defaults' demo block with ``overrides`` merged in (:func:`defaults_with`):
    what the demo generator's own tool (task1a-demo) and the tests build instead of a parameter set."""
    return demo_settings(defaults_with(DEMO_KEY, overrides, source))


def feature_settings(section: Mapping) -> FeatureSettings:
    """``feature_extractor`` of a resolved set (``parameters`` attached by the container)."""
    return FeatureSettings(section["method"], copy.deepcopy(dict(section["parameters"])), float(section["segment_length_seconds"]),
                           section.get("storage", "float32"), worker_count(section.get("n_jobs", -1)))


def augmentation_settings(block: Mapping | None) -> AugmentationSettings:
    block = block or {}
    return AugmentationSettings(
        mixup=Mixup(**(block.get("mixup") or {})),
        time_mask=Mask(**(block.get("time_mask") or {})),
        frequency_mask=Mask(**(block.get("frequency_mask") or {})),
        time_roll=TimeRoll(**(block.get("time_roll") or {})),
        freq_mixstyle=FreqMixStyle(**(block.get("freq_mixstyle") or {})),
    )


def distillation_settings(block: Mapping | None) -> DistillationSettings | None:
    """``distillation`` of a checked learner block (its path resolved): None when off (no ``teacher_outputs``)."""
    block = block or {}
    if block.get("teacher_outputs") is None:
        return None
    return DistillationSettings(Path(block["teacher_outputs"]), **_fields(DistillationSettings, {k: v for k, v in block.items() if k != "teacher_outputs"}))


def resolve_path(root: Path | None, value) -> Path | None:
    """A run path: absolute (after ``~``) as is, relative under the run's root (``--workdir``; None: the current
    folder); None stays None. The one rule of every run path, the learner's files included."""
    if value is None:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() or root is None else Path(root) / path


def resolved_learner_block(block: Mapping, root: Path | None) -> dict:
    """The learner block with its file paths (``initial_weights``, ``distillation.teacher_outputs``) resolved
    against the run's root (``--workdir``): what the checkpoint identity and the input files' digests read."""
    block = copy.deepcopy(dict(block))
    if block.get("initial_weights") is not None:
        block["initial_weights"] = str(resolve_path(root, block["initial_weights"]))
    distillation = block.get("distillation") or {}
    if distillation.get("teacher_outputs") is not None:
        block["distillation"] = dict(distillation, teacher_outputs=str(resolve_path(root, distillation["teacher_outputs"])))
    return block


def learner_settings(block: Mapping, root: Path | None = None) -> LearnerSettings:
    """``learner_method_parameters.cnn`` of a checked set as :class:`LearnerSettings`; file paths resolved against
    ``root``. Refuses, in one line naming the key, a monitored metric the training does not log and a file
    that is not there."""
    from utils.parameters import checkpoint_parameters

    block = resolved_learner_block(block, root)
    fit, selection, compile_ = block["fit"], block["model_selection"], block["compile"]
    metrics = tuple(compile_.get("metrics") or ())
    monitor = selection.get("monitor", "val_categorical_accuracy")
    logged = ["val_loss"] + [f"val_{m}" for m in metrics]
    if monitor not in logged:
        raise Task1aError(f"{LEARNER_KEY}.model_selection.monitor {monitor!r} is not logged (known: {', '.join(logged)}); fix the value")
    initial = resolve_path(None, block.get("initial_weights"))
    if initial is not None and not initial.is_file():
        raise Task1aError(f"{LEARNER_KEY}.initial_weights {initial} not found; give a saved model (.keras) or weights (.weights.h5)")
    teacher = distillation_settings(block.get("distillation"))
    if teacher is not None and not teacher.teacher_outputs.is_file():
        raise Task1aError(f"{LEARNER_KEY}.distillation.teacher_outputs {teacher.teacher_outputs} not found; give a system-output CSV or .npy file")
    patterns = block.get("trainable_layers")
    batch_size = fit["batch_size"]
    return LearnerSettings(
        model=copy.deepcopy(block["model"]),
        optimizer=copy.deepcopy(block["optimizer"]),
        loss=copy.deepcopy(compile_.get("loss")),
        metrics=metrics,
        fit=FitSettings(epochs=fit["epochs"], batch_size=batch_size, validation_batch_size=fit.get("validation_batch_size", batch_size),
                        steps_per_execution=fit.get("steps_per_execution", 1), shuffle=fit.get("shuffle", True),
                        label_smoothing=float(fit.get("label_smoothing", 0.0)), tensorboard=fit.get("tensorboard", False),
                        callbacks=tuple(copy.deepcopy(fit.get("callbacks") or ()))),
        model_selection=SelectionSettings(monitor=monitor, initial_delay=selection.get("initial_delay", 0), rule=selection.get("rule") or "best"),
        augmentation=augmentation_settings(block.get("augmentation")),
        distillation=teacher,
        initial_weights=initial,
        trainable_layers=tuple(patterns) if patterns is not None else None,
        conversion=ConversionSettings(**_fields(ConversionSettings, {k: tuple(v) if k == "io" else v for k, v in (block.get("conversion") or {}).items()})),
        validation_amount=0.0 if block.get("validation_amount") is None else block["validation_amount"],
        validation_seed=block.get("validation_seed", 0),
        iterations=block.get("iterations", 1),
        identity=checkpoint_parameters(block),
    )


def learner_from_block(overrides: Mapping | None = None, root: Path | None = None) -> LearnerSettings:
    """:class:`LearnerSettings` of the shipped defaults' learner block with ``overrides`` merged in (nested,
    :func:`defaults_with`): what a library tool, a benchmark or a test builds instead of a parameter set."""
    return learner_settings(defaults_with(LEARNER_KEY, overrides, "learner settings"), root)


def build_settings(params: Mapping, root: Path | None = None) -> Settings:
    """The typed sections of a resolved (checked) set, built once per run; ``root``: the run's root (``--workdir``)."""
    return Settings(
        features=feature_settings(params["feature_extractor"]),
        learner=learner_settings(params["learner"]["parameters"], root),
        recognizer=RecognizerSettings(**_fields(RecognizerSettings, params["recognizer"])),
        evaluator=EvaluatorSettings(**_fields(EvaluatorSettings, params["evaluator"])),
        model_size=model_size_settings(params["model_size"]),
        normalization=params["data_processing"]["normalization"],
        learner_method=params["learner"]["method"],
    )
