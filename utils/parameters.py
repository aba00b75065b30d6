"""Parameters: the dcase_util-style ``task1a.yaml``, its sets, validation and per-stage hashes.

The file has ``active_set``, ``sets`` (a list of ``{set_id, description, <section overrides>}``) and
``defaults`` (every section with every parameter). A run's parameters are ``defaults`` with the chosen
set's overrides merged in; a section with ``method: X`` then gets ``parameters`` from
``<section>_method_parameters.X``. A user file given with ``-p`` is merged over ``task1a.yaml``
first. ``defaults`` is the schema: a key it does not have (a typo such as ``epohcs``) or a value of
another type is rejected with the full key path, so nothing is silently ignored.

Each stage's output folder is named by :func:`stage_hash` of exactly the parameters it depends on.
"""

from __future__ import annotations

import copy
import hashlib
import json
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
# Parameters with a fixed set of values, checked when a set is resolved so that a bad value stops the
# run at once rather than after feature extraction.
CHOICES = {
    ("general", "mode"): ("dev", "eval"),
    ("dataset", "train_split"): (5, 10, 25, 50, 100),  # DCASE2024 training subsets (utils.dataset.TRAIN_SPLITS)
    ("data_processing", "normalization"): ("max_abs_int16", "none", "mean_std"),
    ("learner", "distribute"): ("none", "mirrored", "multi_worker"),
    ("recognizer", "model_io"): ("float", "int8"),
}
# Parameters that do not change a stage's output and so stay out of its hash (key paths in a section).
# The number of trainings is not a learner parameter either: `--trials 3` reuses a finished seed_0.
_UNHASHED = {
    ("feature_extractor", "n_jobs"),
    ("recognizer", "batch_size"),
    ("recognizer", "num_threads"),
    ("recognizer", "max_chunk_seconds"),
    ("recognizer", "baseline_model"),
    ("learner", "parameters", "iterations"),
    ("learner", "parameters", "fit", "steps_per_execution"),
    ("learner", "parameters", "fit", "tensorboard"),
}


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
    """Deep merge: mappings merge key by key, anything else in ``override`` replaces ``base``."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = copy.deepcopy(base)
        for key, value in override.items():
            merged[key] = merge(base.get(key), value) if key in base else copy.deepcopy(value)
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
        self.sets = _sets_by_id(data.get("sets"), str(self.path))
        self.active_set = data.get("active_set")
        for set_id, entry in self.sets.items():
            self._check_set(entry, f"{self.path} (set {set_id})")
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
                self.user_defaults = extra["defaults"] or {}
                self.defaults = merge(self.defaults, self.user_defaults)
            for set_id, entry in _sets_by_id(extra.get("sets"), source).items():
                self._check_set(entry, f"{source} (set {set_id})")
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
        check_choices(params, f"set {set_id}")
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

    def provenance(self, set_id: str, instead_of: str | None = None, command_line: dict | None = None) -> dict[str, str]:
        """``dotted key -> source`` of every value set by a layer after task1a.yaml's defaults."""
        sources: dict[str, str] = {}
        for source, body in self.resolution_layers(set_id, instead_of, command_line)[1:]:
            for key in _leaf_keys(body):
                sources[key] = source
        return sources


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
    return layer


def check_choices(params: dict, source: str) -> None:
    """Raise :class:`Task1aError` for a parameter outside its fixed set of values (:data:`CHOICES`)."""
    for (section, key), allowed in CHOICES.items():
        value = params.get(section, {}).get(key)
        if value not in allowed:
            raise Task1aError(f"{source}: '{section}.{key}' must be one of {', '.join(map(str, allowed))}, got {value!r}; fix the value")


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


def section_for_hash(params: dict, section: str) -> dict:
    """A section as it enters a hash: the method's parameters only, minus keys that do not change outputs."""
    body = copy.deepcopy(params.get(section, {}))
    for owner, *path in _UNHASHED:
        node = body if owner == section else None
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None)
    return body


def stage_parameters(params: dict, stage: str) -> dict:
    """Exactly the parameters a stage's outputs depend on (each stage includes its predecessors').

    features: dataset + feature_extractor; learner: features + data_processing + learner + mode and
    seeding; recognizer: learner + recognizer; evaluator: recognizer + evaluator.
    """
    chain = {
        "features": ["dataset", "feature_extractor"],
        "learner": ["dataset", "feature_extractor", "data_processing", "learner"],
        "recognizer": ["dataset", "feature_extractor", "data_processing", "learner", "recognizer"],
        "evaluator": ["dataset", "feature_extractor", "data_processing", "learner", "recognizer", "evaluator"],
    }
    if stage not in chain:
        raise ValueError(f"unknown stage {stage!r}")
    selected = {section: section_for_hash(params, section) for section in chain[stage]}
    # The training subset (DCASE2024) changes what is learned from, not the features (extracted for the
    # whole fold); the whole fold (100) leaves every hash as it was before the parameter existed.
    if stage == "features" or selected["dataset"].get("train_split") == 100:
        selected["dataset"].pop("train_split", None)
    if stage != "features":
        selected["general"] = {key: params["general"][key] for key in ("mode", "deterministic")}
    return selected


def stage_hash(params: dict, stage: str, extra: Any = None) -> str:
    """MD5 of the canonical JSON of :func:`stage_parameters` (plus ``extra``), as dcase_util names folders."""
    payload = {"stage": stage, "parameters": stage_parameters(params, stage), "extra": extra}
    return hashlib.md5(json.dumps(payload, sort_keys=True, default=str).encode("utf-8")).hexdigest()
