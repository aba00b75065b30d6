"""Parameters: the dcase_util-style ``task1a.yaml``, its sets, validation and per-stage hashes.

The file has ``active_set``, ``sets`` (a list of ``{set_id, description, <section overrides>}``) and
``defaults`` (every section with every parameter). A run's parameters are ``defaults`` with the chosen
set's overrides merged in; a section with ``method: X`` then gets ``parameters`` from
``<section>_method_parameters.X``. A user file given with ``-p`` is merged over ``task1a.yaml``
first. ``defaults`` is the schema: a key it does not have (a typo such as ``epohcs``) or a value of
another type is rejected with the full key path, so nothing is silently ignored.

Owns the registry of values (:data:`RULES`, :data:`METHODS`, :func:`allowed`): every value is checked
when the files are read (:func:`check_values`), each layer naming its source, before any work. And
the stage hash chain (:data:`STAGE_HASH_INPUTS`): each stage's output folder is named by
:func:`stage_hash` of exactly the parameters it depends on.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from utils.errors import Task1aError
from utils.paths import default_parameter_file

# The shipped task1a.yaml: the clone's top-level file, or an installed wheel's packaged copy.
DEFAULT_PARAMETER_FILE = default_parameter_file()

# Lists whose items have their own structure (checked by the code that uses them, e.g. the model
# builder) are replaced whole rather than compared item by item.
_FREE_FORM_KEYS = {"config", "cities", "io", "metrics"}
# Values handed to Keras as they are (Keras configs: any class and argument, validated by Keras when
# the learning settings are checked, before any work), and the network's constants (any new name).
PASS_THROUGH_KEYS = {"optimizer", "loss", "callbacks", "constants"}
# ------------------------------------------------------------------------------ the stage hash chain
# The one description of which parameters name which stage's folder (the README and task1a.yaml point
# here). A stage writes to ``<path.system>/<stage>/<hash>/``; the hash (:func:`stage_hash`) covers the
# inputs listed for the stage and for every stage before it (the chain is in this order): key paths of
# the resolved parameters, a whole section (``S.parameters`` being ``S_method_parameters.<S.method>``)
# or one key. Changing a parameter recomputes the first stage listing it and every stage after.
STAGE_HASH_INPUTS = {
    "features": ("dataset", "feature_extractor"),
    "learner": ("dataset.train_split", "data_processing", "learner", "general.mode", "general.deterministic"),
    "device_models": ("device_models",),  # hashed only when device_models.enabled (SWITCHED_SECTIONS)
    "recognizer": ("recognizer",),  # (+ what was evaluated: stage_hash's ``extra``)
    "evaluator": ("evaluator",),
}
# Left out of the sections above, for they do not change a stage's output (workers, speed, logging;
# the number of trainings: `--trials 3` reuses a finished seed_0) or change a later stage only (the
# training subset: the features are extracted for the whole fold). A stage naming one of these keys
# itself (the learner, dataset.train_split) hashes it.
UNHASHED = (
    "dataset.train_split",
    "feature_extractor.n_jobs",
    "recognizer.batch_size",
    "recognizer.num_threads",
    "recognizer.max_chunk_seconds",
    "recognizer.baseline_model",
    "learner.parameters.iterations",
    "learner.parameters.fit.steps_per_execution",
    "learner.parameters.fit.tensorboard",
)
# Sections hashed only when their switch is on: off, they leave every folder name as it was before they existed.
SWITCHED_SECTIONS = {"device_models": "enabled"}
# The learner's research options when off: declared once, here. The typed settings' defaults
# (utils.settings.AugmentationSettings, distillation None) equal it (tests/test_augmentation.py holds them
# together), the hashes below leave an off option out (folders and checkpoints made before the option
# existed stay valid), and the checkpoint fingerprint derives from the same data.
RESEARCH_OFF = {
    "augmentation": {"mixup": {"alpha": 0.0}, "time_mask": {"count": 0, "max_width": 0}, "frequency_mask": {"count": 0, "max_width": 0, "fill": None},
                     "time_roll": {"max_shift": 0}, "freq_mixstyle": {"p": 0.0, "alpha": 0.3}},
    "distillation": {"teacher_outputs": None, "temperature": 2.0, "weight": 0.5},
    "initial_weights": None,
    "trainable_layers": None,
}
# Values hashed as if the key were absent, so the folders made before the key existed stay valid.
UNHASHED_VALUES = {
    "dataset.train_split": 100,
    "feature_extractor.storage": "float32",
    **{f"learner.parameters.{key}": value for key, value in RESEARCH_OFF.items()},
    "learner.parameters.model_selection.rule": "best",  # the 2023 protocol's (folders made before the key existed)
}
# Learner keys a training may change and still resume its checkpoint (how long and how fast it runs, what it
# logs; the number of trainings): the checkpoint fingerprint is the learner hash's parameters less these.
RESUME_SAFE = ("fit.epochs", "fit.steps_per_execution", "fit.tensorboard", "model_selection.initial_delay", "model_selection.rule", "iterations")


# ------------------------------------------------------------------------------ the value registry
# Every parameter of ``defaults`` has a rule here (or is listed in FREE_FORM): what values it accepts.
# The container checks each layer against it when the file is read (task1a.yaml's defaults and sets,
# the -p file, --set), so a bad value stops the run before any work, in one line naming the key
# path, the value, what is allowed and where it came from. The factories and the modules that use a
# value read the same rules (:func:`allowed`, :func:`rule_for`) instead of keeping their own lists.
# A key not in the registry still has its type checked against ``defaults`` (:func:`check_structure`);
# tests/test_parameters.py fails while a key of the shipped ``defaults`` has neither a rule nor a
# FREE_FORM entry, so a new key cannot go unchecked silently.


@dataclass(frozen=True)
class Rule:
    """The values one parameter accepts. Build rules with :func:`integer`, :func:`number`,
    :func:`choice`, :func:`flag`, :func:`text` and :func:`items`; :meth:`describe` says it in words."""

    kind: str  # "integer" | "number" | "choice" | "flag" | "text" | "list"
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself excluded (> low) rather than included (>= low)
    high_open: bool = False
    also: tuple = ()  # values accepted outside the range, e.g. -1 for "all cores"
    note: str = ""  # what ``also`` means, shown in the message
    choices: tuple = ()
    item: "Rule | None" = None  # a list's rule for each item
    distinct: bool = False  # a list's items must differ
    nonempty: bool = True  # a text or list must not be empty
    pattern: str | None = None  # a text must match it whole (``hint`` says it in words)
    hint: str = ""
    optional: bool = False  # null accepted

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if self.kind == "choice":
            return any(value == choice and type(value) is type(choice) for choice in self.choices)
        if self.kind == "flag":
            return isinstance(value, bool)
        if self.kind == "text":
            return isinstance(value, str) and (bool(value) or not self.nonempty) and (self.pattern is None or re.fullmatch(self.pattern, value) is not None)
        if self.kind == "list":
            return (isinstance(value, list) and (bool(value) or not self.nonempty) and all(self.item is None or self.item.accepts(v) for v in value)
                    and not (self.distinct and len({json.dumps(v, sort_keys=True) for v in value}) != len(value)))
        numeric = int if self.kind == "integer" else (int, float)
        if isinstance(value, bool) or not isinstance(value, numeric):
            return False
        if value in self.also:
            return True
        return ((self.low is None or (value > self.low if self.low_open else value >= self.low))
                and (self.high is None or (value < self.high if self.high_open else value <= self.high)))

    def describe(self) -> str:
        if self.kind == "choice":
            words = "one of " + ", ".join(map(str, self.choices))
        elif self.kind == "flag":
            words = "true or false"
        elif self.kind == "text":
            words = self.hint or ("a non-empty string" if self.nonempty else "a string")
        elif self.kind == "list":
            words = ("a non-empty list" if self.nonempty else "a list") + (" of distinct items" if self.distinct else "")
            words += f", each {self.item.describe()}" if self.item is not None else ""
        else:
            words = "an integer" if self.kind == "integer" else "a number"
            if self.low is not None and self.high is not None:
                words += f" in {'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"
            elif self.low is not None:
                words += f" {'>' if self.low_open else '>='} {self.low}"
            elif self.high is not None:
                words += f" {'<' if self.high_open else '<='} {self.high}"
            if self.also:
                words += " or " + " or ".join(map(str, self.also)) + (f" ({self.note})" if self.note else "")
        return words + (" or null" if self.optional else "")


def integer(low: int | None = None, high: int | None = None, also: tuple = (), note: str = "") -> Rule:
    """An integer (never true/false) in [low, high]; ``also``: other accepted values (e.g. -1)."""
    return Rule("integer", low, high, also=also, note=note)


def number(low: float | None = None, high: float | None = None, low_open: bool = False, high_open: bool = False, optional: bool = False) -> Rule:
    """A number (an integer too) between ``low`` and ``high``, each bound included unless ``*_open``."""
    return Rule("number", low, high, low_open, high_open, optional=optional)


def choice(*values, optional: bool = False) -> Rule:
    """One of ``values`` (of the same type: ``5`` and ``"5"`` differ); with ``optional`` also null."""
    return Rule("choice", choices=tuple(values), optional=optional)


def flag() -> Rule:
    return Rule("flag")


def text(pattern: str | None = None, hint: str = "", nonempty: bool = True, optional: bool = False) -> Rule:
    """A string (non-empty unless told), matching ``pattern`` whole when given (``hint`` describes it)."""
    return Rule("text", pattern=pattern, hint=hint, nonempty=nonempty, optional=optional)


def items(item: Rule | None = None, distinct: bool = True, nonempty: bool = True) -> Rule:
    """A list (non-empty unless told) whose items each follow ``item``."""
    return Rule("list", item=item, distinct=distinct, nonempty=nonempty)


POSITIVE = integer(1)  # a count
SEED = integer(0)  # numpy and TensorFlow seeds are non-negative
CORES = integer(1, also=(-1,), note="all cores")
SECONDS = number(0, low_open=True)
PATH = text()

# The method names each section's ``method`` accepts; each has its parameters in
# ``<section>_method_parameters.<method>`` of ``defaults``. A factory choosing the code for a
# method reads this (:func:`allowed`), so a name is added here and in task1a.yaml, nowhere else.
METHODS = {
    "dataset": ("tau2022_mobile", "demo"),
    "feature_extractor": ("mel", "logmel32k"),  # the 2023 baseline's log-mel | the DCASE2024/2025 baseline's 32 kHz front end
    "learner": ("cnn",),
}
TRAIN_SPLITS = (5, 10, 25, 50, 100)  # DCASE2024 training subsets, percent of fold1_train (utils.dataset reads this)
WINDOW_TYPES = ("hamming_asymmetric", "hamming_symmetric", "hamming", "hann_asymmetric", "hann_symmetric", "hann")
MODEL_IO = ("float", "int8", "float16")  # the exported TFLite variants: int8 weights with float32 | int8 io; float16 weights, float32 io

RULES: dict[str, Rule] = {
    "flow.model_size": flag(),
    "flow.evaluation": flag(),
    "flow.report": flag(),
    "general.mode": choice("dev", "eval"),
    "general.seed": SEED,
    "general.deterministic": flag(),
    "general.fallback_to_demo": flag(),
    "general.fallback_set": text(hint="a set id"),
    "general.energy": flag(),
    "general.country_iso_code": text(r"[A-Z]{3}", "an ISO 3166 alpha-3 country code such as FIN"),
    "path.root": PATH,
    "path.system": PATH,
    "path.log": PATH,
    "dataset.method": choice(*METHODS["dataset"]),
    "dataset.train_split": choice(*TRAIN_SPLITS),
    "dataset_method_parameters.tau2022_mobile.development": PATH,
    "dataset_method_parameters.tau2022_mobile.evaluation": text(optional=True),  # null: the edition's evaluation set (utils.editions)
    "dataset_method_parameters.tau2022_mobile.evaluation_labels": text(optional=True),
    # the synthetic demo generator (utils.settings.DemoSettings, built once by demo_settings; utils.demo_dataset takes it)
    "dataset_method_parameters.demo.path": PATH,
    "dataset_method_parameters.demo.seed": SEED,
    "dataset_method_parameters.demo.cities": items(text(r"[a-z]+", "a lower-case name of letters only (it goes into file names)")),
    "dataset_method_parameters.demo.locations_per_city": POSITIVE,
    "dataset_method_parameters.demo.segments_per_location": POSITIVE,
    "dataset_method_parameters.demo.test_locations_per_scene": POSITIVE,
    "dataset_method_parameters.demo.test_segments_per_location": POSITIVE,
    "dataset_method_parameters.demo.subsegments_per_segment": integer(1, 10),  # 1-s clips of a 10-s segment
    "dataset_method_parameters.demo.train_device_fraction": number(0, 1, low_open=True),
    "dataset_method_parameters.demo.evaluation_locations_per_scene": POSITIVE,
    "dataset_method_parameters.demo.evaluation_files": POSITIVE,
    "dataset_method_parameters.demo.location_variation": number(0),
    "dataset_method_parameters.demo.sample_rate": integer(8000),
    "feature_extractor.method": choice(*METHODS["feature_extractor"]),
    "feature_extractor.n_jobs": CORES,
    "feature_extractor.segment_length_seconds": SECONDS,
    "feature_extractor.storage": choice("float32", "float16"),  # the feature store's row type (utils.feature_store.STORAGE_TYPES)
    "feature_extractor_method_parameters.mel.fs": POSITIVE,
    "feature_extractor_method_parameters.mel.win_length_seconds": SECONDS,
    "feature_extractor_method_parameters.mel.hop_length_seconds": SECONDS,
    "feature_extractor_method_parameters.mel.spectrogram_type": choice("magnitude", "power"),
    "feature_extractor_method_parameters.mel.window_type": choice(*WINDOW_TYPES),
    "feature_extractor_method_parameters.mel.n_mels": POSITIVE,
    "feature_extractor_method_parameters.mel.n_fft": POSITIVE,
    "feature_extractor_method_parameters.mel.fmin": number(0),
    "feature_extractor_method_parameters.mel.fmax": number(0, low_open=True),
    "feature_extractor_method_parameters.mel.htk": flag(),
    "feature_extractor_method_parameters.mel.normalize_mel_bands": flag(),
    "feature_extractor_method_parameters.mel.logarithmic": flag(),
    "feature_extractor_method_parameters.logmel32k.fs": POSITIVE,
    "feature_extractor_method_parameters.logmel32k.resample_fs": POSITIVE,
    "feature_extractor_method_parameters.logmel32k.lowpass_filter_width": POSITIVE,
    "feature_extractor_method_parameters.logmel32k.rolloff": number(0, 1, low_open=True),
    "feature_extractor_method_parameters.logmel32k.n_fft": POSITIVE,
    "feature_extractor_method_parameters.logmel32k.win_length": POSITIVE,
    "feature_extractor_method_parameters.logmel32k.hop_length": POSITIVE,
    "feature_extractor_method_parameters.logmel32k.n_mels": POSITIVE,
    "feature_extractor_method_parameters.logmel32k.fmin": number(0),
    "feature_extractor_method_parameters.logmel32k.fmax": number(0, low_open=True),
    "feature_extractor_method_parameters.logmel32k.log_offset": number(0, low_open=True),
    "data_processing.normalization": choice("max_abs_int16", "none", "mean_std"),
    "learner.method": choice(*METHODS["learner"]),
    "learner.distribute": choice("none", "mirrored", "multi_worker"),
    "learner_method_parameters.cnn.iterations": POSITIVE,
    "learner_method_parameters.cnn.validation_amount": number(0, 1, high_open=True, optional=True),  # 0: no hold-out; null: the edition's
    "learner_method_parameters.cnn.validation_seed": SEED,
    "learner_method_parameters.cnn.compile.metrics": items(text(), nonempty=False),
    "learner_method_parameters.cnn.fit.epochs": POSITIVE,
    "learner_method_parameters.cnn.fit.batch_size": POSITIVE,
    "learner_method_parameters.cnn.fit.validation_batch_size": POSITIVE,
    "learner_method_parameters.cnn.fit.steps_per_execution": POSITIVE,
    "learner_method_parameters.cnn.fit.shuffle": flag(),
    "learner_method_parameters.cnn.fit.label_smoothing": number(0, 1, high_open=True),
    "learner_method_parameters.cnn.fit.tensorboard": flag(),
    "learner_method_parameters.cnn.model_selection.monitor": text(hint="a logged metric name such as val_categorical_accuracy"),
    "learner_method_parameters.cnn.model_selection.initial_delay": integer(0),
    "learner_method_parameters.cnn.model_selection.rule": choice("best", "last", optional=True),  # null: the edition's
    "learner_method_parameters.cnn.conversion.representative_examples": POSITIVE,
    "learner_method_parameters.cnn.conversion.io": items(choice(*MODEL_IO)),
    # learner_method_parameters.cnn: rules of new training keys (augmentation, distillation,
    # initial_weights, trainable_layers, ...) go here, one line per key path.
    "learner_method_parameters.cnn.augmentation.mixup.alpha": number(0),  # 0 off
    "learner_method_parameters.cnn.augmentation.time_mask.count": integer(0),
    "learner_method_parameters.cnn.augmentation.time_mask.max_width": integer(0),
    "learner_method_parameters.cnn.augmentation.frequency_mask.count": integer(0),
    "learner_method_parameters.cnn.augmentation.frequency_mask.max_width": integer(0),
    "learner_method_parameters.cnn.augmentation.frequency_mask.fill": number(-100, 100, optional=True),  # null: the example's mean; a log-domain value
    "learner_method_parameters.cnn.augmentation.time_roll.max_shift": integer(0),
    "learner_method_parameters.cnn.augmentation.freq_mixstyle.p": number(0, 1),  # 0 off
    "learner_method_parameters.cnn.augmentation.freq_mixstyle.alpha": number(0, low_open=True),
    "learner_method_parameters.cnn.distillation.teacher_outputs": text(hint="a system-output CSV or .npy path", optional=True),
    "learner_method_parameters.cnn.distillation.temperature": number(0, low_open=True),
    "learner_method_parameters.cnn.distillation.weight": number(0, 1),
    "learner_method_parameters.cnn.initial_weights": text(r".+\.(keras|weights\.h5)", "a .keras or .weights.h5 file path", optional=True),
    "learner_method_parameters.cnn.trainable_layers": Rule("list", item=text(hint="a layer name pattern"), distinct=True, optional=True),
    "recognizer.model_io": choice(*MODEL_IO),
    "recognizer.batch_size": POSITIVE,
    "recognizer.num_threads": CORES,
    "recognizer.baseline_model": PATH,
    "recognizer.max_chunk_seconds": SECONDS,
    "evaluator.confidence_level": number(0, 1, low_open=True, high_open=True),
    "device_models.enabled": flag(),
    "device_models.epochs": POSITIVE,
    "device_models.batch_size": POSITIVE,
    "device_models.label_smoothing": number(0, 1, high_open=True),
    "device_models.augmentation": flag(),
    "device_models.distillation": flag(),
    "device_models.validation_amount": number(0, 1, high_open=True),
    "device_models.model_selection_rule": choice("best", "last"),
    "device_models.trainable_layers": Rule("list", item=text(), distinct=True, optional=True),  # null: all layers; else fnmatch patterns
    "model_size.max_macs": POSITIVE,
    "model_size.max_memory_bytes": POSITIVE,
    "model_size.enforce": choice("eval", "always", "never"),
    "model_size.parameter_bits": Rule("choice", choices=(8, 16, 32), optional=True),  # null: bytes as stored (utils.complexity)
    "submission.label": text(),  # its format is checked when the package is written (utils.submission)
    "submission.meta_template": text(optional=True),
    "submission.edition": choice(2023, 2024, 2025),
}
# Key paths whose values are handed on as they are and checked by the code that uses them, before
# any work: Keras configs (utils.learning.check_keras_configs builds them) and the network's layers and constants.
FREE_FORM = {
    "learner_method_parameters.cnn.model",
    "learner_method_parameters.cnn.compile.loss",
    "learner_method_parameters.cnn.optimizer",
    "learner_method_parameters.cnn.fit.callbacks",
    "device_models.optimizer",
}


def rule_for(key_path: str) -> Rule | None:
    """The rule of a dotted key path of ``defaults`` (None: type-checked only, or free-form)."""
    return RULES.get(key_path)


def allowed(key: str) -> tuple:
    """The values a fixed-choice parameter accepts: a section name gives its ``method`` names
    (``allowed("dataset")``), a key path its choices (``allowed("learner.distribute")``, or a list's
    item choices: ``allowed("learner_method_parameters.cnn.conversion.io")``)."""
    if key in METHODS:
        return METHODS[key]
    rule = RULES.get(key)
    rule = rule.item if rule is not None and rule.kind == "list" else rule
    if rule is None or rule.kind != "choice":
        raise KeyError(f"{key} is not a fixed-choice parameter of the registry (utils.parameters.RULES)")
    return rule.choices


def value_error(key_path: str, value: Any, source: str) -> Task1aError:
    """The one-line error of a value its rule refuses: ``source: 'key' must be <rule>, got <value>; fix the value``."""
    return Task1aError(f"{source}: '{key_path}' must be {RULES[key_path].describe()}, got {value!r}; fix the value")


def check_values(tree: Any, source: str, prefix: str = "") -> None:
    """Raise :class:`Task1aError` for the first value of ``tree`` its rule (:data:`RULES`) refuses.

    ``tree``: ``defaults``, a set's overrides, a ``-p`` layer, the ``--set`` layer or resolved
    parameters (``S.parameters``, a copy of checked method parameters, and keys the registry does not
    know are passed over); ``source`` says where it came from (``task1a.yaml sets[demo]``).
    """
    if not isinstance(tree, dict):
        return
    for key, value in tree.items():
        key_path = f"{prefix}.{key}" if prefix else str(key)
        if key_path in FREE_FORM:
            continue
        rule = RULES.get(key_path)
        if rule is not None:
            if not rule.accepts(value):
                raise value_error(key_path, value, source)
        elif isinstance(value, dict):
            check_values(value, source, key_path)


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping; one-line error naming the file (and line) when it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise Task1aError(f"parameter file {path} not found; give an existing YAML file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise Task1aError(f"{path}{where}: malformed YAML ({problem}); fix the syntax") from exc
    except UnicodeDecodeError as exc:
        raise Task1aError(f"{path} is not a UTF-8 text file; give a YAML parameter file") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise Task1aError(f"{path}: the top level must be a mapping (active_set, sets, defaults); fix the file")
    return data


def _type_name(value: Any) -> str:
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a mapping"}.get(type(value), type(value).__name__)


def check_structure(reference: Any, value: Any, key_path: str, source: str) -> None:
    """Raise :class:`Task1aError` if ``value`` has a key ``reference`` lacks or a value of another type.

    ``None`` in the reference accepts anything; an int is accepted where a float is expected.
    """
    if reference is None:
        return
    if key_path.rsplit(".", 1)[-1] in PASS_THROUGH_KEYS:
        if not isinstance(value, type(reference)) and not (isinstance(reference, (str, dict)) and isinstance(value, (str, dict))):
            raise Task1aError(f"{source}: '{key_path}' must be {_type_name(reference)}, got {value!r}; fix the value")
        return
    if key_path.split(".")[-2:] == ["model", "config"] and isinstance(value, (str, dict)):
        return  # the network as a functional graph or a builder name: checked by utils.model.build_model
    if isinstance(reference, dict):
        if not isinstance(value, dict):
            raise Task1aError(f"{source}: '{key_path}' must be a mapping, got {_type_name(value)}; fix the value")
        for key, item in value.items():
            if key not in reference:
                known = ", ".join(str(k) for k in reference) or "none"
                raise Task1aError(f"{source}: unknown parameter '{key_path}.{key}' (known here: {known}); fix the key" if key_path else
                                  f"{source}: unknown parameter '{key}' (known here: {known}); fix the key")
            check_structure(reference[key], item, f"{key_path}.{key}" if key_path else str(key), source)
        return
    if isinstance(reference, bool) or isinstance(value, bool):
        ok = isinstance(reference, bool) and isinstance(value, bool)
    elif isinstance(reference, float):
        ok = isinstance(value, (int, float))
    else:
        ok = isinstance(value, type(reference))
    if not ok:
        raise Task1aError(f"{source}: '{key_path}' must be {_type_name(reference)}, got {value!r}; fix the value")
    if isinstance(reference, list) and key_path.rsplit(".", 1)[-1] not in _FREE_FORM_KEYS and reference and value:
        for index, item in enumerate(value):
            check_structure(reference[0], item, f"{key_path}[{index}]", source)


def merge(base: Any, override: Any) -> Any:
    """Deep merge: mappings merge key by key, anything else in ``override`` replaces ``base``.

    One exception: a network (``model``) whose ``config`` is a functional graph or a builder name
    replaces the earlier network whole, so the layer list's constants do not reach it (utils.model).
    """
    if isinstance(base, dict) and isinstance(override, dict):
        merged = copy.deepcopy(base)
        for key, value in override.items():
            whole_network = key == "model" and isinstance(value, dict) and isinstance(value.get("config"), (str, dict))
            merged[key] = merge(base.get(key), value) if key in base and not whole_network else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def _sets_by_id(sets: Any, source: str) -> dict[str, dict]:
    if sets is None:
        return {}
    if not isinstance(sets, list):
        raise Task1aError(f"{source}: 'sets' must be a list of {{set_id, description, ...}}; fix the file")
    by_id: dict[str, dict] = {}
    for index, entry in enumerate(sets):
        if not isinstance(entry, dict) or not isinstance(entry.get("set_id"), str):
            raise Task1aError(f"{source}: sets[{index}] needs a 'set_id' string; fix the file")
        if entry["set_id"] in by_id:
            raise Task1aError(f"{source}: set '{entry['set_id']}' is defined twice; rename one")
        by_id[entry["set_id"]] = entry
    return by_id


class ParameterContainer:
    """``task1a.yaml`` (with an optional user file merged over it), validated, with its sets.

    Parameters
    ----------
    path : the main parameter file (default: the shipped ``task1a.yaml``, :data:`DEFAULT_PARAMETER_FILE`)
    override_path : optional YAML of the same structure merged over it (``-p``)
    """

    def __init__(self, path: str | Path = DEFAULT_PARAMETER_FILE, override_path: str | Path | None = None):
        self.path = Path(path)
        data = load_yaml(self.path)
        self._check_top(data, str(self.path))
        self.defaults = data["defaults"]  # with the -p file's defaults merged in, below (the defaults a run starts from)
        self.base_defaults = self.defaults
        main = self.path.name if self.path == Path(DEFAULT_PARAMETER_FILE) else str(self.path)
        check_values(self.defaults, f"{main} defaults")
        self.sets = _sets_by_id(data.get("sets"), str(self.path))
        self.active_set = data.get("active_set")
        for set_id, entry in self.sets.items():
            self._check_set(entry, f"{main} sets[{set_id}]")
        # The user's file (-p) is a layer of its own: what the user writes last wins, so its defaults
        # come after every set of task1a.yaml, and its sets after those (see resolve()).
        self.user_source = str(override_path) if override_path is not None else None
        self.user_defaults: dict = {}
        self.user_sets: dict[str, dict] = {}
        if override_path is not None:
            source = self.user_source
            extra = load_yaml(override_path)
            self._check_top(extra, source, require_defaults=False)
            if "defaults" in extra:
                check_structure(self.defaults, extra["defaults"], "defaults", source)
                check_values(extra["defaults"], f"-p {source} defaults")
                self.user_defaults = extra["defaults"] or {}
                self.defaults = merge(self.defaults, self.user_defaults)
            for set_id, entry in _sets_by_id(extra.get("sets"), source).items():
                self._check_set(entry, f"-p {source} sets[{set_id}]")
                self.user_sets[set_id] = entry
                self.sets.setdefault(set_id, {"set_id": set_id})
                if "description" in entry:
                    self.sets[set_id] = dict(self.sets[set_id], description=entry["description"])
            if "active_set" in extra:
                self.active_set = extra["active_set"]
        if self.active_set is not None and self.active_set not in self.sets:
            raise Task1aError(f"active_set '{self.active_set}' is not among the sets ({', '.join(self.sets)}); fix active_set")

    def layers(self, set_id: str) -> list[tuple[str, dict]]:
        """The parameter layers of a set, first to last (a later one wins): ``(source, overrides)``."""
        def sections(entry: dict) -> dict:
            return {k: v for k, v in entry.items() if k not in ("set_id", "description")}

        layers = [(f"{self.path.name} defaults", self.base_defaults), (f"{self.path.name} set {set_id}", sections(self.sets.get(set_id, {})))]
        if self.user_source is not None:
            layers += [(f"{self.user_source} defaults", self.user_defaults), (f"{self.user_source} set {set_id}", sections(self.user_sets.get(set_id, {})))]
        return [(source, body) for source, body in layers if body]

    @staticmethod
    def _check_top(data: dict, source: str, require_defaults: bool = True) -> None:
        unknown = set(data) - {"active_set", "sets", "defaults"}
        if unknown:
            raise Task1aError(f"{source}: unknown top-level key(s) {sorted(unknown)} (known: active_set, sets, defaults); fix the file")
        if require_defaults and not isinstance(data.get("defaults"), dict):
            raise Task1aError(f"{source}: a 'defaults' mapping with every section is required; restore it from task1a.yaml")
        if "active_set" in data and not isinstance(data["active_set"], str):
            raise Task1aError(f"{source}: 'active_set' must be a set id string; fix the value")

    def _check_set(self, entry: dict, source: str) -> None:
        if "description" in entry and not isinstance(entry["description"], str):
            raise Task1aError(f"{source}: 'description' must be a string; fix the value")
        sections = {k: v for k, v in entry.items() if k not in ("set_id", "description")}
        check_structure(self.defaults, sections, "sets", source)
        check_values(sections, source)

    def set_ids(self) -> list[str]:
        return list(self.sets)

    def resolve(self, set_id: str | None = None, instead_of: str | None = None, command_line: dict | None = None) -> dict:
        """The parameters of one set, each ``method``'s parameters attached.

        Layers, a later one winning: task1a.yaml ``defaults``, its set, the ``-p`` file's ``defaults``,
        the ``-p`` file's set, ``command_line`` (nested, from ``--set`` and flags). ``instead_of``: the
        set asked for when ``set_id`` runs in its place (the demo fallback): that set's own overrides
        are kept after ``set_id``'s, except where its data come from (``dataset.method``,
        ``dataset_method_parameters``). Every section ``S`` with a ``method`` key gets
        ``S["parameters"]`` = ``S_method_parameters[method]``. The result also has ``set_id`` and
        ``description``.
        """
        set_id = set_id or self.active_set
        for wanted in (set_id, instead_of):
            if wanted is not None and wanted not in self.sets:
                raise Task1aError(f"unknown parameter set '{wanted}' (known: {', '.join(self.sets)}); choose one with -s")
        params = {}
        for _, body in self.resolution_layers(set_id, instead_of, command_line):
            params = merge(params, body)
        for section, body in list(params.items()):
            if isinstance(body, dict) and "method" in body:
                methods = params.get(f"{section}_method_parameters", {})
                if body["method"] not in methods:
                    raise Task1aError(
                        f"{section}.method '{body['method']}' has no parameters in {section}_method_parameters (known: {', '.join(methods)}); fix the method"
                    )
                body["parameters"] = copy.deepcopy(methods[body["method"]])
        params["set_id"] = set_id
        params["description"] = self.sets[set_id].get("description", "")
        # The parameters left null take the values of the set's edition. utils.editions sits above this module
        # (it imports the parameter rules): it is loaded by name, a registry of plugins, so imports run downwards only.
        importlib.import_module("utils.editions").apply_protocol(params)
        check_values(params, f"set {set_id}")
        fallback = params["general"]["fallback_set"]
        if params["general"]["fallback_to_demo"] and fallback not in self.sets:
            raise Task1aError(f"set {set_id}: 'general.fallback_set' '{fallback}' is not among the sets ({', '.join(self.sets)}); fix the value")
        return params

    def resolution_layers(self, set_id: str, instead_of: str | None = None, command_line: dict | None = None) -> list[tuple[str, dict]]:
        """``(source, overrides)`` in the order :meth:`resolve` merges them."""
        layers = self.layers(set_id)
        if instead_of is not None:
            for source, body in self.layers(instead_of):
                if source.endswith(f"set {instead_of}"):
                    kept = copy.deepcopy(body)
                    kept.get("dataset", {}).pop("method", None)
                    kept.pop("dataset_method_parameters", None)
                    layers.append((f"{source} (kept on the {set_id} data)", kept))
        if command_line:
            layers.append(("command line", command_line))
        return layers

    def describe(self, params: dict, command_line: dict | None = None) -> str:
        """``--show_parameters``: a resolved set as YAML, then where its values come from (as comments)."""
        lines = [yaml.safe_dump(params, sort_keys=False, default_flow_style=False),
                 f"# where the values of set {params['set_id']} come from, when not from task1a.yaml's defaults (a later source wins):\n"]
        lines += [f"#   {key}: {source}\n" for key, source in self.provenance(params["set_id"], command_line=command_line).items()]
        return "".join(lines)

    def provenance(self, set_id: str, instead_of: str | None = None, command_line: dict | None = None) -> dict[str, str]:
        """``dotted key -> source`` of every value set by a layer after task1a.yaml's defaults."""
        sources: dict[str, str] = {}
        for source, body in self.resolution_layers(set_id, instead_of, command_line)[1:]:
            for key in _leaf_keys(body):
                sources[key] = source
        return sources


def checked_defaults(path: str | Path = DEFAULT_PARAMETER_FILE) -> dict:
    """The ``defaults`` of a parameter file (the shipped ``task1a.yaml`` by default), checked against the registry:
    what a library module's own command-line tool starts from (it never handles the container or a set)."""
    return ParameterContainer(path).defaults


def _leaf_keys(tree: Any, prefix: str = "") -> list[str]:
    if isinstance(tree, dict) and tree and prefix.rsplit(".", 1)[-1] not in PASS_THROUGH_KEYS:
        return [key for name, value in tree.items() for key in _leaf_keys(value, f"{prefix}.{name}" if prefix else str(name))]
    return [prefix] if prefix else []


def command_line_layer(assignments: list[str], defaults: dict) -> dict:
    """``--set section.key=value`` assignments as a nested mapping, checked against ``defaults``.

    The value is read as YAML (``3``, ``0.5``, ``true``, ``[a, b]``, ``{class_name: SGD}``); one-line
    error naming the assignment otherwise.
    """
    layer: dict = {}
    for assignment in assignments or []:
        key, separator, raw = assignment.partition("=")
        if not separator or not key or any(not part for part in key.split(".")):
            raise Task1aError(f"--set {assignment!r}: write section.key=value, e.g. --set learner_method_parameters.cnn.fit.epochs=3")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            raise Task1aError(f"--set {assignment!r}: the value is not valid YAML; quote it") from None
        node = layer
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    if layer:
        check_structure(defaults, layer, "", "--set")
        check_values(layer, "--set")
    return layer


def apply_overrides(params: dict, overrides: dict) -> dict:
    """Set values by dotted key (``{"general.seed": 3}``), re-attaching method parameters; returns a copy."""
    params = copy.deepcopy(params)
    for dotted, value in overrides.items():
        node = params
        *parents, last = dotted.split(".")
        for key in parents:
            node = node[key]
        node[last] = value
    for section, body in params.items():
        if isinstance(body, dict) and "method" in body:
            body["parameters"] = copy.deepcopy(params[f"{section}_method_parameters"][body["method"]])
    return params


_ABSENT = object()


def stage_inputs(stage: str) -> list[str]:
    """The key paths a stage's hash covers: its :data:`STAGE_HASH_INPUTS` and those of the stages before it."""
    if stage not in STAGE_HASH_INPUTS:
        raise ValueError(f"unknown stage {stage!r} (known: {', '.join(STAGE_HASH_INPUTS)})")
    chain = list(STAGE_HASH_INPUTS)
    return [key for earlier in chain[: chain.index(stage) + 1] for key in STAGE_HASH_INPUTS[earlier]]


def _lookup(tree: Any, key_path: str) -> Any:
    for key in key_path.split("."):
        if not isinstance(tree, dict) or key not in tree:
            return _ABSENT
        tree = tree[key]
    return tree


def stage_parameters(params: dict, stage: str) -> dict:
    """Exactly the parameters a stage's outputs depend on, as described by :data:`STAGE_HASH_INPUTS`
    less :data:`UNHASHED` (unless the stage names the key) and :data:`UNHASHED_VALUES`: a nested mapping."""
    inputs = stage_inputs(stage)
    selected: dict = {}
    for key_path in inputs:
        value = _lookup(params, key_path)
        if value is _ABSENT:
            continue
        *parents, last = key_path.split(".")
        node = selected
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = copy.deepcopy(value)
    dropped = [key for key in UNHASHED if key not in inputs]
    dropped += [key for key, value in UNHASHED_VALUES.items() if _lookup(params, key) == value]
    dropped += [section for section, switch in SWITCHED_SECTIONS.items() if _lookup(params, f"{section}.{switch}") is False]
    for key_path in dropped:
        *parents, last = key_path.split(".")
        node = _lookup(selected, ".".join(parents)) if parents else selected
        if isinstance(node, dict):
            node.pop(last, None)
    return selected


def stage_hash(params: dict, stage: str, extra: Any = None) -> str:
    """MD5 of the canonical JSON of :func:`stage_parameters` (plus ``extra``), as dcase_util names folders."""
    payload = {"stage": stage, "parameters": stage_parameters(params, stage), "extra": extra}
    return hashlib.md5(json.dumps(payload, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def checkpoint_parameters(learner: dict) -> dict:
    """The learner method's parameters a checkpoint must share with the run resuming it: what the learner hash
    covers of them (:func:`stage_parameters`: off options and unhashed keys left out) less :data:`RESUME_SAFE`."""
    kept = stage_parameters({"learner": {"parameters": learner}}, "learner").get("learner", {}).get("parameters", {})
    for key_path in RESUME_SAFE:
        *parents, last = key_path.split(".")
        node = _lookup(kept, ".".join(parents)) if parents else kept
        if isinstance(node, dict):
            node.pop(last, None)
    return kept
