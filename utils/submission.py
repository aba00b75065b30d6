"""The DCASE Task 1 submission: its meta information, its package and its validator, per edition.

Owns, for the editions 2023, 2024 and 2025 (:data:`EDITIONS`; the system output file itself is
:mod:`utils.system_output`'s):

- the submission meta information (``LABEL.meta.yaml``) filled from what a run knows, over a
  template holding the fields only a person can fill (``meta/task1a_submission.meta.yaml`` for
  2023, ``meta/task1a_submission_2024.meta.yaml``, ``meta/task1a_submission_2025.meta.yaml``):
  :func:`build_submission_meta`;
- the package, laid out as the challenge's validator expects (``task1/LABEL/LABEL.output.csv``, or
  one ``LABEL.output.split_N.csv`` per training split in 2024, and ``task1/LABEL/LABEL.meta.yaml``
  in a zip): :func:`build_submission_package`;
- the validator, which makes the checks of the official ones
  (toni-heittola/dcase2023_task1_submission_validator, .../dcase2024_task1_submission_validator)
  for the edition it is given and reports every problem, not just the first:
  :func:`validate_submission` and the module CLI::

    python -m utils.submission PACKAGE.zip [--edition 2023|2024|2025] [--expected-files N | --any-file-count]

The edition: :func:`build_submission_meta` records it as ``submission.edition`` in the meta (an
extra field the official validators ignore). The validator checks the edition given by
``--edition``, and reports a meta recorded for another one; without ``--edition`` it checks the
edition the meta records, else 2023.

What differs between editions (:class:`SubmissionRules`, held by each edition of :mod:`utils.editions`):

- 2023: one output file (118,800 evaluation files); ``system`` has description (11 fields),
  complexity (5 fields), energy_consumption, external_datasets, source_code;
  ``results.development_dataset`` holds overall / class_wise / device_wise figures.
- 2024 ("data-efficient"): one output file per training split, ``LABEL.output.split_5.csv`` ...
  ``split_100`` (135,730 evaluation files each); no energy block; description drops embeddings,
  ensemble count and decision making and adds ``split_adaptations`` and ``system_adaptations``;
  complexity needs total_model_size, total_parameters and macs; ``results.development_dataset``
  holds one figures block per split (``split_5`` ... ``split_100``). All of this is the official
  2024 validator's.
- 2025 ("device information"): one output file; no energy block; 2024's description without the
  split fields; ``system.complexity`` holds the general model's figures and ``device_models``, the
  figures of each device-specific model (device id -> figures; empty when the general model serves
  every device); ``results.development_dataset`` holds ``general_model`` and
  ``device_specific_models``, each a figures block plus ``known_devices`` and ``unknown_devices``
  (devices with / without training data: :data:`DEVICE_GROUPS_2025`). The official 2025 meta
  template could not be consulted: this layout is this project's, and the evaluation set's size is
  not checked (give ``--expected-files``).

Every edition: the complexity limits of the challenge, 30,000,000 MACs and 128,000 B of parameter
memory (NeSsi's limits) per model, 2025's device models included; the memory figure is
``memory_use`` in 2023, ``total_model_size`` in 2024 and 2025 (the field those metas have).

The official validators' meta checks: the blocks and their required fields; exactly one
corresponding author; the label ``Lastname_Institute_task1_[1-4]``, matching the file and folder
names; an abbreviation of at most 10 characters; an integer ``total_parameters``. In addition this
one reports malformed files the official one crashes on (broken YAML), values that are not
numeric, figures over the complexity limits, and any value still holding this project's template
placeholder ("FILL IN").
"""

from __future__ import annotations

import math
import re
import sys
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from model_size_calculation.nessi import OFFICIAL_MAX_MACS, OFFICIAL_MAX_MEMORY_BYTES
from utils import cli
from utils.dataset import DEVELOPMENT_DEVICES, SCENE_LABELS, TRAIN_SPLITS
from utils.errors import Task1aError, run_cli
from utils.files import atomic_path
from utils.settings import Settings
from utils.system_output import MAX_ROWS_PER_PROBLEM, check_output_text

TASK_FOLDER = "task1"
META_SUFFIX = ".meta.yaml"
OUTPUT_NAME = re.compile(r"^(?P<label>.+?)\.output(?:\.(?P<key>[^.]+))?\.csv$")
MAX_ABBREVIATION_LENGTH = 10
MAX_SUBMISSIONS = 4
LABEL_PATTERN = re.compile(r"^[^_\s/]+_[^_\s/]+_task1_[1-9]\d*$")
PLACEHOLDER_MARK = "FILL IN"
# Development-set figures in the meta: accuracy in % (as the challenge's meta files), rounded.
ACCURACY_DECIMALS = 2
LOGLOSS_DECIMALS = 3
# The challenge's complexity limits, per model (every edition): NeSsi's, 128 kB = 128,000 B.
MAX_MACS = OFFICIAL_MAX_MACS
MAX_MEMORY_BYTES = OFFICIAL_MAX_MEMORY_BYTES

SUBMISSION_FIELDS = ("label", "name", "abbreviation", "authors")
AUTHOR_FIELDS = ("lastname", "firstname", "email", "affiliation")
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
# 2024 (the official 2024 validator's list) and 2025: without embeddings, ensemble count, decision making.
_DESCRIPTION_FIELDS_2025 = tuple(f for f in DESCRIPTION_FIELDS if f not in ("embeddings", "ensemble_method_subsystem_count", "decision_making"))
DESCRIPTION_FIELDS_2024 = _DESCRIPTION_FIELDS_2025 + ("split_adaptations", "system_adaptations")
COMPLEXITY_FIELDS = ("total_model_size", "total_parameters", "total_parameters_non_zero", "memory_use", "macs")
ENERGY_FIELDS = ("training", "inference", "baseline_inference")
EXTERNAL_DATASET_FIELDS = ("name", "url", "total_audio_length")
RESULT_FIELDS = ("accuracy", "logloss")
RESULT_BLOCKS = ("overall", "class_wise", "device_wise")

SPLITS_2024 = tuple(f"split_{split}" for split in TRAIN_SPLITS)
# 2025: the development-train split (2024's 25 %) holds devices a, b, c, s1-s3; s4-s6 are unknown.
DEVICE_GROUPS_2025 = {"known_devices": ("a", "b", "c", "s1", "s2", "s3"), "unknown_devices": ("s4", "s5", "s6")}
# Device ids a device model may be given for (the official 2025 complexity check's list).
DEVICES_2025 = ("a", "b", "c", *(f"s{index}" for index in range(1, 11)))
MODELS_2025 = ("general_model", "device_specific_models")


@dataclass(frozen=True)
class SubmissionRules:
    """What the validator checks for one challenge edition (see the module docstring). Each edition's
    object (:mod:`utils.editions`) holds its rules; :data:`EDITIONS` reads them from that registry."""

    year: int
    task: str
    description_fields: tuple[str, ...]
    complexity_required: tuple[str, ...]
    memory_field: str  # the complexity figure held to MAX_MEMORY_BYTES
    energy: bool  # system.energy_consumption present
    output_keys: tuple[str, ...]  # "" -> LABEL.output.csv; "split_5" -> LABEL.output.split_5.csv
    evaluation_file_count: int | None  # rows of each output file; None: not checked
    result_groups: tuple[str, ...]  # () -> development_dataset is one figures block, else one per group
    group_figures: tuple[str, ...] = ()  # figures entries each block has beyond overall (2025)
    device_models: bool = False  # system.complexity.device_models (2025)
    group_prefix: str = ""  # an integer results / outputs key k stands for f"{group_prefix}{k}" (2024: "split_")
    max_macs: int = MAX_MACS
    max_memory_bytes: int = MAX_MEMORY_BYTES

    @property
    def system_fields(self) -> tuple[str, ...]:
        return ("description", "complexity", *(("energy_consumption",) if self.energy else ()), "external_datasets", "source_code")

    @property
    def name(self) -> str:
        return f"DCASE{self.year} Task 1 ({self.task})"


class _RegisteredRules(Mapping):
    """``{year: SubmissionRules}`` of every edition registered in :mod:`utils.editions` (read when used)."""

    @staticmethod
    def _rules() -> dict:
        import importlib

        # utils.editions sits above this module (each edition holds its SubmissionRules built here): loaded by
        # name, a registry of plugins, so imports run downwards only
        editions = importlib.import_module("utils.editions")
        return {year: edition.rules for year, edition in editions.REGISTRY.items()}

    def __getitem__(self, year):
        return self._rules()[year]

    def __iter__(self):
        return iter(self._rules())

    def __len__(self) -> int:
        return len(self._rules())


EDITIONS = _RegisteredRules()
DEFAULT_EDITION = 2023
# The evaluation set of the DCASE2023 edition: files 0.wav ... 118799.wav (the official validator's figures).
OFFICIAL_EVALUATION_FILE_COUNT = 118800
OFFICIAL = "official"  # validate_submission's expected_file_count: the edition's own evaluation set size


def get_edition(edition) -> SubmissionRules:
    """The validator rules of ``edition`` (a registered year; SubmissionRules pass through)."""
    if isinstance(edition, SubmissionRules):
        return edition
    if isinstance(edition, bool) or not isinstance(edition, int) or edition not in EDITIONS:
        raise Task1aError(f"submission edition {edition!r} is unknown; choose one of {', '.join(map(str, EDITIONS))} (submission.edition / --edition)")
    return EDITIONS[edition]


def output_member_name(label: str, key: str = "") -> str:
    """``LABEL.output.csv``, or ``LABEL.output.KEY.csv`` for one of an edition's several outputs."""
    return f"{label}.output.{key}.csv" if key else f"{label}.output.csv"


def package_member_names(label: str, edition=DEFAULT_EDITION) -> tuple[dict[str, str], str]:
    """Where the files go in the package: ``{output key: task1/LABEL/<output name>}`` and the meta's path."""
    folder = f"{TASK_FOLDER}/{label}"
    outputs = {key: f"{folder}/{output_member_name(label, key)}" for key in get_edition(edition).output_keys}
    return outputs, f"{folder}/{label}{META_SUFFIX}"


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


def description_from_settings(settings: Settings) -> dict:
    """The ``system.description`` fields this run's settings determine (the front end's rate and log scale, the learner method)."""
    return {
        "input_sampling_rate": f"{settings.features.fs / 1000:g}kHz",
        "acoustic_features": "log-mel energies" if settings.features.parameters.get("logarithmic", True) else "mel energies",
        "embeddings": None,
        "data_augmentation": None,
        "machine_learning_method": {"cnn": "CNN"}.get(settings.learner_method, settings.learner_method),
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


def development_results_block(results: Mapping | None, scene_labels: Sequence[str] = SCENE_LABELS, groups: Sequence[str] = ()) -> dict:
    """One figures block (overall, class_wise, device_wise) from evaluation results, null without them.

    ``results``: ``SceneClassificationMetrics.results()`` output, or aggregated trials (their mean).
    ``groups``: device groups of the results (``results["device_groups"][name]``) added as entries
    of their own (2025: known_devices, unknown_devices); a group the results lack stays null.
    """
    if results is None:
        results = {"overall_accuracy": None, "overall_logloss": None}
    if "mean" in results and "n_trials" in results:
        results = results["mean"]
    try:
        overall = {"accuracy": results["overall_accuracy"], "logloss": results["overall_logloss"]}
    except KeyError:
        raise Task1aError("development results lack overall_accuracy / overall_logloss; pass SceneClassificationMetrics.results() output") from None
    class_wise, device_wise = results.get("class_wise", {}), results.get("device_wise", {})
    block = {
        "overall": _figures(overall),
        "class_wise": {label: _figures(class_wise.get(label)) for label in scene_labels},
        "device_wise": {device: _figures(device_wise.get(device)) for device in DEVELOPMENT_DEVICES},
    }
    for group in groups:
        block[group] = _figures(results.get("device_groups", {}).get(group))
    return block


def _group_key(key, rules: SubmissionRules) -> str:
    """A results / outputs key of an edition with several (2024: 25 or "split_25" -> "split_25")."""
    name = f"{rules.group_prefix}{key}" if rules.group_prefix and isinstance(key, int) and not isinstance(key, bool) else key
    if name not in (rules.result_groups or rules.output_keys):
        raise Task1aError(f"{rules.name}: unknown key {key!r} (known: {', '.join(rules.result_groups or rules.output_keys)}); rename it")
    return name


def _development_block(development_results: Mapping | None, rules: SubmissionRules) -> dict:
    """``results.development_dataset`` of the edition: one block, or one per split (2024) / model (2025)."""
    if not rules.result_groups:
        return development_results_block(development_results, groups=rules.group_figures)
    given = {_group_key(key, rules): value for key, value in (development_results or {}).items()}
    return {group: development_results_block(given.get(group), groups=rules.group_figures) for group in rules.result_groups}


def _measured_block(values: Mapping | None, fields: Sequence[str], what: str) -> dict:
    if values is None:
        return {field: None for field in fields}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise Task1aError(f"{what} has unknown key(s) {unknown} (known: {', '.join(fields)}); rename them")
    return {field: values.get(field) for field in fields}


def _complexity_block(complexity: Mapping | None, rules: SubmissionRules) -> dict:
    """``system.complexity``: COMPLEXITY_FIELDS (null where absent); 2025 adds ``device_models``."""
    complexity = dict(complexity or {})
    device_models = complexity.pop("device_models", None) if rules.device_models else None
    block = _measured_block(complexity or None, COMPLEXITY_FIELDS, "complexity")
    if rules.device_models:
        unknown = sorted(set(device_models or {}) - set(DEVICES_2025))
        if unknown:
            raise Task1aError(f"complexity.device_models has unknown device(s) {unknown} (known: {', '.join(DEVICES_2025)}); rename them")
        block["device_models"] = {device: _measured_block(values, COMPLEXITY_FIELDS, f"complexity.device_models.{device}")
                                  for device, values in (device_models or {}).items()}
    return block


def load_meta_template(template_path: str | Path) -> dict:
    """The person-filled part of the meta (YAML mapping with the challenge's blocks)."""
    template_path = Path(template_path)
    try:
        data = yaml.safe_load(template_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise Task1aError(f"meta template {template_path} not found; copy meta/task1a_submission.meta.yaml (or the _2024 / _2025 one) there "
                          "and fill it in") from None
    except yaml.YAMLError as exc:
        raise Task1aError(f"meta template {template_path} is not valid YAML ({' '.join(str(exc).split())}); fix the file") from None
    if not isinstance(data, dict) or not isinstance(data.get("submission"), dict):
        raise Task1aError(f"meta template {template_path} needs a 'submission' block (name, abbreviation, authors); see meta/task1a_submission.meta.yaml")
    return data


def build_submission_meta(
    label: str,
    template_path: str | Path,
    settings: Settings,
    complexity: Mapping | None = None,
    energy: Mapping | None = None,
    development_results: Mapping | None = None,
    edition: int = DEFAULT_EDITION,
) -> dict:
    """The meta information of ``edition``: the template's person fields plus what the run knows.

    - ``submission``: the template's (name, abbreviation, authors...), ``label`` = ``label``,
      ``edition`` = ``edition`` (a template recording another edition is refused);
    - ``system.description``: the edition's fields from the run's ``settings`` (:func:`description_from_settings`);
      a non-null template value wins, for systems changed by hand and the fields only a
      person knows (2024's split_adaptations, system_adaptations);
    - ``system.complexity``: ``complexity`` (keys total_model_size, total_parameters,
      total_parameters_non_zero, memory_use, macs; :func:`utils.stages.meta_complexity`), null
      where absent; 2025: the general model's, plus ``device_models``: ``{device: the same keys}``;
    - ``system.energy_consumption`` (2023 only): ``energy`` (training, inference, baseline_inference, kWh);
    - ``system.external_datasets`` and ``system.source_code``: the template's;
    - ``results.development_dataset``: accuracy (%) and log loss from ``development_results``,
      null without them: 2023 one results mapping (evaluation results or aggregated trials);
      2024 ``{split: results}`` (keys 5 ... 100 or "split_5" ...); 2025 ``{"general_model":
      results, "device_specific_models": results}``, each evaluated with
      ``SceneClassificationMetrics(device_groups=DEVICE_GROUPS_2025)`` for the known / unknown figures.
    """
    rules = get_edition(edition)
    check_label(label)
    template = load_meta_template(template_path)
    template_edition = template["submission"].get("edition")
    if template_edition is not None and template_edition != rules.year:
        raise Task1aError(f"meta template {template_path} is for edition {template_edition}, not {rules.year}; use "
                          f"meta/task1a_submission_{rules.year}.meta.yaml or change submission.edition")
    if energy is not None and not rules.energy:
        raise Task1aError(f"{rules.name} has no energy_consumption block; pass energy=None")
    submission = {**template["submission"], "label": label, "edition": rules.year}
    system_template = template.get("system") or {}
    derived = description_from_settings(settings)
    description = {field: derived.get(field) for field in rules.description_fields}
    description.update({key: value for key, value in (system_template.get("description") or {}).items() if value is not None})
    system = {"description": description, "complexity": _complexity_block(complexity, rules)}
    if rules.energy:
        system["energy_consumption"] = _measured_block(energy, ENERGY_FIELDS, "energy")
    system["external_datasets"] = system_template.get("external_datasets") or []
    system["source_code"] = system_template.get("source_code")
    return {"submission": submission, "system": system, "results": {"development_dataset": _development_block(development_results, rules)}}


def _outputs_by_key(label: str, outputs, rules: SubmissionRules) -> dict[str, Path]:
    """The system output file(s) of a package: one path, or ``{key: path}`` for 2024's splits."""
    if rules.output_keys == ("",):
        if isinstance(outputs, Mapping):
            raise Task1aError(f"{rules.name} has one system output file; pass its path, not a mapping")
        return {"": Path(outputs)}
    if not isinstance(outputs, Mapping):
        raise Task1aError(f"{rules.name} has one system output per split; pass {{split: path}} for {', '.join(rules.output_keys)}")
    given = {_group_key(key, rules): Path(path) for key, path in outputs.items()}
    missing = [key for key in rules.output_keys if key not in given]
    if missing:
        raise Task1aError(f"submission {label}: no system output for {missing}; run the evaluation-set testing of those splits first")
    return given


def build_submission_package(label: str, output_csv, out_zip: str | Path, meta: Mapping) -> Path:
    """Write the submission zip atomically: the system output(s) and the meta under ``task1/LABEL/``.

    The edition is the meta's ``submission.edition`` (2023 when absent). ``output_csv``: the
    system output's path; 2024: ``{split: path}`` for every split (keys 5 ... 100 or "split_5" ...).
    The challenge's validator expects this layout (a folder ``task1`` with one folder per
    submission label; the technical report PDF goes beside them, added by hand).
    """
    check_label(label)
    submission = (meta.get("submission") or {}) if isinstance(meta, Mapping) else {}
    if submission.get("label") != label:
        raise Task1aError(f"meta submission.label {submission.get('label')!r} differs from the package label {label!r}; build the meta with "
                          "build_submission_meta(label, ...)")
    rules = get_edition(submission.get("edition", DEFAULT_EDITION))
    members, meta_name = package_member_names(label, rules)
    contents = {}
    for key, path in _outputs_by_key(label, output_csv, rules).items():
        try:
            contents[members[key]] = path.read_bytes()
        except OSError:
            raise Task1aError(f"system output {path} not found; run the evaluation-set testing stage first") from None
    meta_text = yaml.safe_dump(dict(meta), sort_keys=False, default_flow_style=False, allow_unicode=True)
    with atomic_path(out_zip) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, data in contents.items():
                archive.writestr(name, data)
            archive.writestr(meta_name, meta_text.encode("utf-8"))
    return Path(out_zip)


# ---------------------------------------------------------------- the validator


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


def _require(block, fields: Sequence[str], name: str, problem) -> None:
    """Report the ``fields`` that ``block`` (called ``name`` in the message) lacks."""
    missing = _missing(block, fields)
    if missing:
        problem(f"{name} lacks {missing}")


def _placeholders(node, path: str) -> list[str]:
    if isinstance(node, Mapping):
        return [found for key, value in node.items() for found in _placeholders(value, f"{path}.{key}" if path else str(key))]
    if isinstance(node, list):
        return [found for index, value in enumerate(node) for found in _placeholders(value, f"{path}[{index}]")]
    return [path] if isinstance(node, str) and PLACEHOLDER_MARK in node else []


def _check_submission(submission: Mapping, problem) -> None:
    _require(submission, SUBMISSION_FIELDS, "'submission'", problem)
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
        for index, author in enumerate(authors):
            _require(author, AUTHOR_FIELDS, f"submission.authors[{index}]", problem)
        corresponding = sum(isinstance(author, Mapping) and author.get("corresponding") is True for author in authors)
        if corresponding != 1:
            problem(f"submission.authors has {corresponding} corresponding authors; mark exactly one with 'corresponding: true'")


def _check_numbers(values, fields: Sequence[str], name: str, problem) -> None:
    """Report the non-null ``fields`` of ``values`` that are not numbers."""
    for field in fields:
        if isinstance(values, Mapping) and values.get(field) is not None and not _is_number(values[field]):
            problem(f"{name}.{field} {values[field]!r} is not a number")


def _check_model_complexity(complexity, name: str, rules: SubmissionRules, problem) -> None:
    """One model's complexity figures: present, numeric, ``total_parameters`` an integer, within the limits."""
    _require(complexity, rules.complexity_required, name, problem)
    if not isinstance(complexity, Mapping):
        return
    parameters = complexity.get("total_parameters", 0)
    if parameters is None:
        problem(f"{name}.total_parameters is empty; run the model size stage or fill in the parameter count")
    elif not _is_integer(parameters):
        problem(f"{name}.total_parameters {parameters!r} is not an integer")
    _check_numbers(complexity, [field for field in COMPLEXITY_FIELDS if field != "total_parameters"], name, problem)
    for field, limit, unit in (("macs", rules.max_macs, "MACs per inference"), (rules.memory_field, rules.max_memory_bytes, "B of parameter memory")):
        value = complexity.get(field)
        if _is_number(value) and float(value) > limit:
            problem(f"{name}.{field} {float(value):,.0f} exceeds the challenge's limit of {limit:,} {unit} per model; reduce the model")


def _check_complexity(complexity, rules: SubmissionRules, problem) -> None:
    _check_model_complexity(complexity, "system.complexity", rules, problem)
    if not rules.device_models or not isinstance(complexity, Mapping):
        return
    device_models = complexity.get("device_models")
    if not isinstance(device_models, Mapping):
        problem("system.complexity.device_models must be a mapping device -> complexity figures (empty when the general model serves every device)")
        return
    for device, figures in device_models.items():
        if device not in DEVICES_2025:
            problem(f"system.complexity.device_models: unknown device {device!r} (known: {', '.join(DEVICES_2025)})")
        _check_model_complexity(figures, f"system.complexity.device_models.{device}", rules, problem)


def _check_system(system: Mapping, rules: SubmissionRules, problem) -> None:
    _require(system, rules.system_fields, "'system'", problem)
    if "description" in system:
        _require(system["description"], rules.description_fields, "system.description", problem)
    if "complexity" in system:
        _check_complexity(system["complexity"], rules, problem)
    if rules.energy and "energy_consumption" in system:
        _require(system["energy_consumption"], ENERGY_FIELDS, "system.energy_consumption", problem)
        _check_numbers(system["energy_consumption"], ENERGY_FIELDS, "system.energy_consumption", problem)
    external = system.get("external_datasets")
    if external and not isinstance(external, list):
        problem("system.external_datasets must be a list (empty when no external data was used)")
    elif external:
        for index, item in enumerate(external):
            _require(item, EXTERNAL_DATASET_FIELDS, f"system.external_datasets[{index}]", problem)


def _check_figures_block(block, name: str, rules: SubmissionRules, scene_labels: Sequence[str], problem) -> None:
    """One figures block: overall (and the edition's group figures), class_wise, device_wise; numbers."""
    if not isinstance(block, Mapping):
        problem(f"{name} must be a mapping with {', '.join(RESULT_BLOCKS + rules.group_figures)}")
        return
    _require(block, RESULT_BLOCKS + rules.group_figures, name, problem)
    entries = [(entry, block[entry]) for entry in ("overall", *rules.group_figures) if entry in block]
    for part, keys in (("class_wise", scene_labels), ("device_wise", DEVELOPMENT_DEVICES)):
        if part in block:
            _require(block[part], keys, f"{name}.{part}", problem)
        if isinstance(block.get(part), Mapping):
            entries += [(f"{part}.{key}", value) for key, value in block[part].items()]
    for entry, figures in entries:
        if _missing(figures, RESULT_FIELDS):
            _require(figures, RESULT_FIELDS, f"{name}.{entry}", problem)
        else:
            _check_numbers(figures, RESULT_FIELDS, f"{name}.{entry}", problem)


def _check_results(results: Mapping, rules: SubmissionRules, scene_labels: Sequence[str], problem) -> None:
    development = results.get("development_dataset")
    name = "results.development_dataset"
    if not isinstance(development, Mapping):
        problem(f"'results' lacks the 'development_dataset' block ({', '.join(rules.result_groups or RESULT_BLOCKS)})")
    elif not rules.result_groups:
        _check_figures_block(development, name, rules, scene_labels, problem)
    else:
        _require(development, rules.result_groups, name, problem)
        for group in rules.result_groups:
            if group in development:
                _check_figures_block(development[group], f"{name}.{group}", rules, scene_labels, problem)


def check_meta(meta, source: str, edition=DEFAULT_EDITION, scene_labels: Sequence[str] = SCENE_LABELS) -> list[str]:
    """Every problem of a parsed meta information file under ``edition``'s rules (``source`` names it)."""
    rules = get_edition(edition)
    if not isinstance(meta, Mapping):
        return [f"{source}: not a YAML mapping; it needs the blocks submission, system and results"]
    problems: list[str] = []

    def problem(message: str) -> None:
        problems.append(f"{source}: {message}")

    checks = {"submission": _check_submission, "system": lambda b, p: _check_system(b, rules, p),
              "results": lambda b, p: _check_results(b, rules, scene_labels, p)}
    for block, check in checks.items():
        if isinstance(meta.get(block), Mapping):
            check(meta[block], problem)
        else:
            problem(f"'{block}' block missing; the blocks submission, system and results are required at top level")
    for path in _placeholders(meta, ""):
        problem(f"{path} still holds the template placeholder '{PLACEHOLDER_MARK}'; fill it in")
    return problems


def _archive_files(path: Path) -> tuple[list[tuple[str, bytes, PurePosixPath]], list[str], bool]:
    """The package's output and meta files ``(shown name, bytes, member path)``, layout problems, whether a zip."""
    def wanted(name: str) -> bool:
        return OUTPUT_NAME.match(PurePosixPath(name).name) is not None or name.endswith(META_SUFFIX)

    if path.is_dir():
        return [(str(file), file.read_bytes(), PurePosixPath(file.resolve().as_posix()))
                for file in sorted(path.rglob("*")) if file.is_file() and wanted(file.name)], [], False
    files, problems = [], []
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad:
                problems.append(f"{path}: corrupt member {bad} in the zip; rebuild the package")
            for info in archive.infolist():
                name = info.filename
                if info.is_dir():
                    continue
                if wanted(name):
                    files.append((f"{path}:{name}", archive.read(name), PurePosixPath(name)))
                elif TASK_FOLDER in name and not name.lower().endswith(".pdf"):
                    problems.append(f"{path}:{name}: unexpected file (a submission holds LABEL.output.csv and LABEL.meta.yaml)")
    except zipfile.BadZipFile:
        problems.append(f"{path}: not a zip file; build the package with build_submission_package or give its folder")
    return files, problems, True


def _read_entries(path: Path) -> tuple[dict, list[str]]:
    """The package's files by label: ``{label: {"outputs": {key: (name, bytes)}, "meta": (name, bytes)}}`` and layout problems."""
    files, problems, in_archive = _archive_files(path)
    entries: dict[str, dict] = {}
    for display, data, member in files:
        match = OUTPUT_NAME.match(member.name)
        if match:
            label, key = match["label"], match["key"] or ""
            slot, place = entries.setdefault(label, {"outputs": {}}).get("outputs"), key
        else:
            label = member.name[: -len(META_SUFFIX)]
            slot, place = entries.setdefault(label, {"outputs": {}}), "meta"
        if place in slot:
            problems.append(f"{display}: a second {'meta' if place == 'meta' else 'output'} file {member.name} for submission {label}")
            continue
        slot[place] = (display, data)
        parents = member.parts[:-1]
        if not (parents[-2:] == (TASK_FOLDER, label) and (not in_archive or len(parents) == 2)):
            problems.append(f"{display}: must be at {TASK_FOLDER}/{label}/{member.name} in the package")
    return entries, problems


def _entry_edition(meta, edition, display: str, problems: list[str]) -> SubmissionRules:
    """The edition a submission is checked under: ``edition`` if given, else the meta's, else 2023."""
    recorded = meta["submission"].get("edition") if isinstance(meta, Mapping) and isinstance(meta.get("submission"), Mapping) else None
    if recorded is not None and (isinstance(recorded, bool) or not isinstance(recorded, int) or recorded not in EDITIONS):
        problems.append(f"{display}: submission.edition {recorded!r} is not one of {', '.join(map(str, EDITIONS))}")
        recorded = None
    if edition is None:
        return EDITIONS[recorded or DEFAULT_EDITION]
    rules = get_edition(edition)
    if recorded is not None and recorded != rules.year:
        problems.append(f"{display}: submission.edition {recorded} differs from the edition checked ({rules.year}); "
                        f"build the package for {rules.year} or check it with --edition {recorded}")
    return rules


def _check_outputs(label: str, outputs: dict, rules: SubmissionRules, file_count, path: Path, max_rows: int) -> list[str]:
    """The edition's output files of one submission: each present, each well formed, no other."""
    problems = []
    for key in rules.output_keys:
        if key not in outputs:
            problems.append(f"{path}: submission {label} has no {output_member_name(label, key)} (a {rules.name} submission has "
                            f"{', '.join(output_member_name(label, k) for k in rules.output_keys)})")
    for key, (display, data) in outputs.items():
        if key not in rules.output_keys:
            problems.append(f"{display}: not a {rules.name} output file name (expected {', '.join(output_member_name(label, k) for k in rules.output_keys)})")
            continue
        try:
            problems += check_output_text(data.decode("utf-8"), display, file_count, max_rows_per_problem=max_rows)
        except UnicodeDecodeError:
            problems.append(f"{display}: not UTF-8 text")
    return problems


def _load_meta(entry: dict, problems: list[str]) -> tuple[object, bool]:
    """The submission's parsed meta and whether there is one to check (missing or broken: no; the problem is recorded)."""
    if "meta" not in entry:
        return None, False
    display, data = entry["meta"]
    try:
        return yaml.safe_load(data.decode("utf-8")), True
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        problems.append(f"{display}: not valid YAML ({' '.join(str(exc).split())})")
        return None, False


def validate_submission(
    path: str | Path,
    expected_file_count: int | None | str = OFFICIAL,
    max_rows_per_problem: int = MAX_ROWS_PER_PROBLEM,
    edition: int | None = None,
) -> list[str]:
    """Every problem of a submission package (zip, or a folder holding ``task1/LABEL/...``).

    Returns one line per problem (row-level problems: the first ``max_rows_per_problem`` of each
    kind, then a count); an empty list means the package passes. ``edition``: the rules to check
    (2023, 2024, 2025); None: the edition each meta records (``submission.edition``), else 2023.
    ``expected_file_count``: rows of each output file; ``OFFICIAL``: the edition's evaluation set
    (2023: 118,800; 2024: 135,730; 2025: not checked); an int (e.g. a demo evaluation set's size);
    None to skip the count.
    """
    path = Path(path)
    if not path.exists():
        raise Task1aError(f"submission package {path} not found; give the zip (or folder) to check")
    if edition is not None:
        get_edition(edition)
    entries, problems = _read_entries(path)
    if not entries:
        return problems + [f"{path}: no {TASK_FOLDER}/LABEL/LABEL.output.csv and LABEL{META_SUFFIX} found"]
    for label, entry in entries.items():
        label_problem = _label_problem(label)
        if label_problem:
            problems.append(f"{path}: file name label {label!r} {label_problem}")
        meta, readable = _load_meta(entry, problems)
        display = entry["meta"][0] if "meta" in entry else str(path)
        rules = _entry_edition(meta, edition, display, problems)
        file_count = rules.evaluation_file_count if expected_file_count == OFFICIAL else expected_file_count
        problems += _check_outputs(label, entry["outputs"], rules, file_count, path, max_rows_per_problem)
        if "meta" not in entry:
            problems.append(f"{path}: submission {label} has no {label}{META_SUFFIX}")
        elif readable:
            problems += check_meta(meta, display, rules)
            meta_label = meta.get("submission", {}).get("label") if isinstance(meta, Mapping) and isinstance(meta.get("submission"), Mapping) else None
            if meta_label is not None and meta_label != label:
                problems.append(f"{display}: submission.label {meta_label!r} differs from the file and folder name {label!r}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = cli.ArgumentParser(
        prog=cli.prog("utils.submission"),
        description="Check a DCASE Task 1 submission package as the challenge's validator does; report every problem.",
    )
    parser.add_argument("package", help="the submission zip, or a folder holding task1/LABEL/LABEL.output.csv and LABEL.meta.yaml")
    parser.add_argument("--edition", type=int, choices=sorted(EDITIONS), default=None,
                        help=f"the challenge edition whose rules to check (default: the meta's submission.edition, else {DEFAULT_EDITION})")
    count = parser.add_mutually_exclusive_group()
    count.add_argument("--expected-files", type=int, default=None,
                       help="files in the evaluation set (default: the edition's official count; 2023: 118800, 2024: 135730, 2025: not checked)")
    count.add_argument("--any-file-count", action="store_true", help="do not check the number of files (e.g. a partial or demo output)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = parser.parse_args(argv)

    def body() -> int:
        file_count = None if args.any_file_count else (OFFICIAL if args.expected_files is None else args.expected_files)
        problems = validate_submission(args.package, file_count, edition=args.edition)
        for line in problems:
            print(line)
        if problems:
            print(f"{len(problems)} problem(s) found in {args.package}; correct them before submitting", file=sys.stderr)
            return 1
        checked = "the edition its meta records" if args.edition is None else f"DCASE{args.edition}"
        print(f"OK: {args.package} is a valid submission package ({checked})")
        return 0

    return run_cli(body, args.debug)


if __name__ == "__main__":
    sys.exit(main())
