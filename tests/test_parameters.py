"""Parameter sets, merging, strict validation and stage hashes of task1a.yaml."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from utils.errors import Task1aError
from utils.parameters import ParameterContainer, apply_overrides, merge, stage_hash

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_shipped_sets_resolve_with_method_parameters():
    container = ParameterContainer()
    assert {"dcase2023_baseline", "dcase2023_baseline_eval", "demo"} <= set(container.set_ids())
    baseline = container.resolve("dcase2023_baseline")
    assert baseline["learner"]["parameters"]["fit"]["batch_size"] == 16
    assert baseline["learner"]["parameters"]["fit"]["epochs"] == 200
    assert baseline["learner"]["parameters"]["model_selection"]["initial_delay"] == 50
    assert baseline["feature_extractor"]["parameters"]["n_mels"] == 40
    assert baseline["dataset"]["method"] == "tau2022_mobile"
    assert container.resolve("dcase2023_baseline_eval")["general"]["mode"] == "eval"
    assert container.resolve("dcase2023_baseline_batch64")["learner"]["parameters"]["fit"]["batch_size"] == 64
    demo = container.resolve("demo")
    assert demo["dataset"]["method"] == "demo"
    assert demo["dataset"]["parameters"] == container.defaults["dataset_method_parameters"]["demo"]
    assert demo["learner"]["parameters"]["fit"]["epochs"] < 200
    # the set overrides one key, the rest of the section stays
    assert demo["learner"]["parameters"]["fit"]["batch_size"] == 16


def test_merge_is_deep_and_does_not_alias():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 3}
    merged = merge(base, {"a": {"b": 5}})
    assert merged == {"a": {"b": 5, "c": [1, 2]}, "d": 3}
    merged["a"]["c"].append(3)
    assert base["a"]["c"] == [1, 2]


def test_param_file_merges_over_defaults_and_adds_sets(tmp_path):
    user = write(tmp_path, "user.yaml", {
        "active_set": "mine",
        "defaults": {"learner_method_parameters": {"cnn": {"fit": {"epochs": 7}}}},
        "sets": [{"set_id": "mine", "description": "x", "general": {"seed": 5}}],
    })
    container = ParameterContainer(override_path=user)
    params = container.resolve()
    assert params["set_id"] == "mine"
    assert params["general"]["seed"] == 5
    assert params["learner"]["parameters"]["fit"]["epochs"] == 7
    assert params["learner"]["parameters"]["fit"]["batch_size"] == 16


@pytest.mark.parametrize("data, key", [
    ({"defaults": {"learner_method_parameters": {"cnn": {"fit": {"epohcs": 3}}}}}, "defaults.learner_method_parameters.cnn.fit.epohcs"),
    ({"sets": [{"set_id": "x", "genral": {"seed": 1}}]}, "sets.genral"),
    ({"defaults": {"general": {"seed": "zero"}}}, "defaults.general.seed"),
    ({"defaults": {"general": {"energy": 1}}}, "defaults.general.energy"),
    ({"defaults": {"learner_method_parameters": {"cnn": {"validation_seed": "a lot"}}}}, "defaults.learner_method_parameters.cnn.validation_seed"),
    ({"activ_set": "demo"}, "activ_set"),
])
def test_typos_and_wrong_types_are_rejected_with_the_key_path(tmp_path, data, key):
    with pytest.raises(Task1aError) as error:
        ParameterContainer(override_path=write(tmp_path, "bad.yaml", data))
    message = str(error.value)
    assert key in message and "bad.yaml" in message and "\n" not in message


def test_int_accepted_for_float_but_not_bool_for_int(tmp_path):
    ok = ParameterContainer(override_path=write(tmp_path, "ok.yaml",
                                                {"defaults": {"learner_method_parameters": {"cnn": {"optimizer": {"config": {"learning_rate": 1}}}}}}))
    assert ok.resolve()["learner"]["parameters"]["optimizer"]["config"]["learning_rate"] == 1
    with pytest.raises(Task1aError, match="must be an integer"):
        ParameterContainer(override_path=write(tmp_path, "b.yaml", {"defaults": {"general": {"seed": True}}}))


def test_malformed_yaml_and_unknown_set_and_method(tmp_path):
    with pytest.raises(Task1aError, match=r"bad\.yaml line \d+: malformed YAML"):
        ParameterContainer(override_path=write(tmp_path, "bad.yaml", "defaults: {general: [\n"))
    with pytest.raises(Task1aError, match="unknown parameter set 'nope'"):
        ParameterContainer().resolve("nope")
    with pytest.raises(Task1aError, match=r"m\.yaml defaults: 'learner\.method' must be one of cnn, got 'transformer'"):
        ParameterContainer(override_path=write(tmp_path, "m.yaml", {"defaults": {"learner": {"method": "transformer"}}}))


def test_stage_hashes_change_only_downstream():
    params = ParameterContainer().resolve("demo")
    base = {stage: stage_hash(params, stage) for stage in ("features", "learner", "recognizer", "evaluator")}
    learner_change = apply_overrides(params, {"learner_method_parameters.cnn.fit.epochs": 3})
    assert stage_hash(learner_change, "features") == base["features"]
    assert stage_hash(learner_change, "learner") != base["learner"]
    assert stage_hash(learner_change, "recognizer") != base["recognizer"]
    feature_change = apply_overrides(params, {"feature_extractor_method_parameters.mel.n_mels": 64})
    assert all(stage_hash(feature_change, s) != h for s, h in base.items())
    recognizer_change = apply_overrides(params, {"recognizer.model_io": "int8"})
    assert stage_hash(recognizer_change, "learner") == base["learner"]
    assert stage_hash(recognizer_change, "recognizer") != base["recognizer"]
    # worker count does not change outputs
    jobs = apply_overrides(params, {"feature_extractor.n_jobs": 1})
    assert stage_hash(jobs, "features") == base["features"]
    # demo and real data never share a folder
    real = ParameterContainer().resolve("dcase2023_baseline")
    assert stage_hash(real, "features") != base["features"]
    # the challenge-mode model is trained on other data
    assert stage_hash(apply_overrides(params, {"general.mode": "eval"}), "learner") != base["learner"]


def run_cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "task1a.py", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_cli_show_sets_parameters_and_errors(tmp_path):
    shown = run_cli("--show_sets")
    assert shown.returncode == 0 and "demo" in shown.stdout and "dcase2023_baseline_eval" in shown.stdout
    params = run_cli("--show_parameters", "-s", "demo", "-r", "0")
    assert params.returncode == 0
    parsed = yaml.safe_load(params.stdout)
    assert parsed["set_id"] == "demo" and parsed["general"]["seed"] == 0
    bad = run_cli("-p", str(write(tmp_path, "typo.yaml", {"defaults": {"learner_method_parameters": {"cnn": {"fit": {"epohcs": 3}}}}})), "--show_parameters")
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("error:") and "epohcs" in bad.stderr and "Traceback" not in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    unknown = run_cli("-s", "nope", "--show_parameters")
    assert unknown.returncode == 1 and "nope" in unknown.stderr
    version = run_cli("-v")
    assert version.returncode == 0 and "task1a" in version.stdout


def test_values_outside_their_choices_are_rejected_when_the_file_is_read(tmp_path):
    with pytest.raises(Task1aError, match="d.yaml defaults: 'learner.distribute' must be one of none, mirrored, multi_worker, got 'horovod'"):
        ParameterContainer(override_path=write(tmp_path, "d.yaml", {"defaults": {"learner": {"distribute": "horovod"}}}))
    with pytest.raises(Task1aError, match=r"n\.yaml sets\[demo\]: 'data_processing.normalization' must be one of"):
        ParameterContainer(override_path=write(tmp_path, "n.yaml", {"sets": [{"set_id": "demo", "data_processing": {"normalization": "zscore"}}]}))
    # threads and batch size of the interpreter do not change results, so they stay out of the hash
    params = ParameterContainer().resolve("demo")
    assert stage_hash(apply_overrides(params, {"recognizer.num_threads": 1}), "recognizer") == stage_hash(params, "recognizer")


def test_keras_configs_pass_through_while_the_application_keys_stay_strict(tmp_path):
    user = write(tmp_path, "user.yaml", {"defaults": {"learner_method_parameters": {"cnn": {
        "optimizer": {"class_name": "SGD", "config": {"learning_rate": 0.01, "momentum": 0.9}},
        "model": {"constants": {"MY_NEW_CONSTANT": 5}},
        "fit": {"callbacks": [{"class_name": "EarlyStopping", "config": {"monitor": "val_loss", "patience": 10}}]},
    }}}})
    learner = ParameterContainer(override_path=user).resolve("dcase2023_baseline")["learner"]["parameters"]
    assert learner["optimizer"]["config"]["momentum"] == 0.9 and learner["model"]["constants"]["MY_NEW_CONSTANT"] == 5
    assert learner["fit"]["callbacks"][0]["config"]["patience"] == 10
    typo = write(tmp_path, "typo.yaml", {"defaults": {"learner_method_parameters": {"cnn": {"fit": {"epohcs": 3}}}}})
    with pytest.raises(Task1aError, match="unknown parameter 'defaults.learner_method_parameters.cnn.fit.epohcs'"):
        ParameterContainer(override_path=typo)


def test_learner_hash_ignores_what_never_changes_a_trained_model():
    params = ParameterContainer().resolve("dcase2023_baseline")
    key = "learner_method_parameters.cnn"
    same = [{f"{key}.iterations": 3}, {f"{key}.fit.steps_per_execution": 1}, {f"{key}.fit.tensorboard": True}]
    for overrides in same:  # --trials 3 reuses a finished seed_0; speed and logging settings reuse it too
        assert stage_hash(apply_overrides(params, overrides), "learner") == stage_hash(params, "learner"), overrides
    for overrides in ({f"{key}.validation_seed": 1}, {f"{key}.fit.batch_size": 64}, {f"{key}.optimizer.config.learning_rate": 0.01}):
        assert stage_hash(apply_overrides(params, overrides), "learner") != stage_hash(params, "learner"), overrides


def test_train_split_enters_the_learner_hash_not_the_features_hash():
    params = ParameterContainer().resolve("dcase2023_baseline")
    assert params["dataset"]["train_split"] == 100
    subset = apply_overrides(params, {"dataset.train_split": 25})
    assert stage_hash(subset, "features") == stage_hash(params, "features")  # features: the whole fold, once
    for stage in ("learner", "recognizer", "evaluator"):
        assert stage_hash(subset, stage) != stage_hash(params, stage)
    # the whole fold leaves every hash as it was before the parameter existed
    without = {key: value for key, value in params["dataset"].items() if key != "train_split"}
    assert stage_hash(dict(params, dataset=without), "learner") == stage_hash(params, "learner")


def test_what_the_user_writes_last_wins(tmp_path):
    from utils.parameters import command_line_layer

    key = ("learner_method_parameters", "cnn", "fit")
    fit = lambda params: params[key[0]][key[1]][key[2]]  # noqa: E731
    base = ParameterContainer()
    assert fit(base.resolve("demo"))["epochs"] == 20  # the set over task1a.yaml's defaults (200)
    user = write(tmp_path, "short.yaml", {"defaults": {"learner_method_parameters": {"cnn": {"fit": {"epochs": 3, "batch_size": 8}}}},
                                          "sets": [{"set_id": "demo", "learner_method_parameters": {"cnn": {"fit": {"batch_size": 4}}}}]})
    container = ParameterContainer(override_path=user)
    demo = container.resolve("demo")
    assert fit(demo)["epochs"] == 3  # -p defaults over task1a.yaml's set
    assert fit(demo)["batch_size"] == 4  # the -p file's set over its own defaults
    assert fit(container.resolve("dcase2023_baseline"))["batch_size"] == 8
    command_line = command_line_layer(["learner_method_parameters.cnn.fit.epochs=5", "general.seed=7"], container.defaults)
    last = container.resolve("demo", command_line=command_line)
    assert fit(last)["epochs"] == 5 and last["general"]["seed"] == 7 and last["learner"]["parameters"]["fit"]["epochs"] == 5  # --set over everything
    sources = container.provenance("demo", command_line=command_line)
    assert sources["learner_method_parameters.cnn.fit.epochs"] == "command line"
    assert sources["learner_method_parameters.cnn.fit.batch_size"] == f"{user} set demo"
    assert sources["learner_method_parameters.cnn.model_selection.initial_delay"] == "task1a.yaml set demo"
    for bad, message in ((["learner_method_parameters.cnn.fit.epohcs=3"], "unknown parameter 'learner_method_parameters.cnn.fit.epohcs'"),
                         (["general.seed"], "write section.key=value"), (["general.seed=seven"], "'general.seed' must be an integer")):
        with pytest.raises(Task1aError, match=message):
            command_line_layer(bad, container.defaults)


def test_the_demo_fallback_keeps_the_values_of_the_set_asked_for():
    container = ParameterContainer()
    fallback = container.resolve("demo", instead_of="dcase2023_baseline_batch64")
    assert fallback["learner"]["parameters"]["fit"]["batch_size"] == 64 and fallback["dataset"]["method"] == "demo"
    assert fallback["learner"]["parameters"]["fit"]["epochs"] == 20  # the demo set's own shorter training stays
    assert container.resolve("demo", instead_of="dcase2023_baseline_eval")["general"]["mode"] == "eval"
    assert container.resolve("demo", instead_of="dcase2024_split25")["dataset"]["train_split"] == 25


# ------------------------------------------------------------------------------ the value registry
def _leaves(tree, prefix=""):
    """``(dotted key, value)`` of every leaf of a nested mapping (a list is a leaf)."""
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            yield from _leaves(value, path)
        else:
            yield path, value


def test_every_key_of_the_shipped_defaults_has_a_rule_or_is_free_form():
    from utils.parameters import FREE_FORM, METHODS, RULES

    defaults = ParameterContainer().defaults
    unchecked = [key for key, _ in _leaves(defaults)
                 if key not in RULES and not any(key == free or key.startswith(free + ".") for free in FREE_FORM)]
    assert not unchecked, f"add a rule to utils.parameters.RULES (or list the key in FREE_FORM) for {unchecked}"
    leaves = dict(_leaves(defaults))
    stale = [key for key in list(RULES) + sorted(FREE_FORM) if key not in leaves and not any(leaf.startswith(key + ".") for leaf in leaves)]
    assert not stale, f"rules of keys that task1a.yaml's defaults lack: {stale}"
    for section, methods in METHODS.items():  # each method name has its parameters, and no parameters lack a name
        assert set(methods) == set(defaults[f"{section}_method_parameters"]), section


def _refused(rule):
    """A value of the right type that ``rule`` refuses (None when every value of its type is fine)."""
    if rule.kind == "choice":
        return type(rule.choices[0])(7777) if not isinstance(rule.choices[0], str) else "nope"
    if rule.kind in ("integer", "number"):
        if rule.low is not None:
            return rule.low if rule.low_open else rule.low - 1
        return rule.high if rule.high_open else rule.high + 1
    if rule.kind == "text":
        return "" if rule.pattern is None else "Not Valid 1"
    if rule.kind == "list":
        return [] if rule.nonempty else [""]
    return None


def test_each_rule_refuses_a_bad_value_in_one_line_naming_key_value_rule_and_source():
    from utils.parameters import RULES, check_values

    for key, rule in RULES.items():
        bad = _refused(rule)
        if bad is None:  # true/false: the type check is the whole rule
            continue
        tree = {}
        node = tree
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = bad
        with pytest.raises(Task1aError) as raised:
            check_values(tree, "task1a.yaml sets[x]")
        assert str(raised.value) == f"task1a.yaml sets[x]: '{key}' must be {rule.describe()}, got {bad!r}; fix the value"


@pytest.mark.parametrize("key, value, words", [
    ("learner_method_parameters.cnn.fit.batch_size", 0, "an integer >= 1"),
    ("learner_method_parameters.cnn.fit.epochs", -1, "an integer >= 1"),
    ("learner_method_parameters.cnn.validation_amount", 1.0, "a number in [0, 1) or null"),
    ("learner_method_parameters.cnn.fit.label_smoothing", 1, "a number in [0, 1)"),
    ("learner_method_parameters.cnn.model_selection.initial_delay", -1, "an integer >= 0"),
    ("learner_method_parameters.cnn.conversion.io", ["float", "int4"], "a non-empty list of distinct items, each one of float, int8"),
    ("feature_extractor.n_jobs", 0, "an integer >= 1 or -1 (all cores)"),
    ("feature_extractor_method_parameters.mel.hop_length_seconds", 0, "a number > 0"),
    ("recognizer.num_threads", -2, "an integer >= 1 or -1 (all cores)"),
    ("evaluator.confidence_level", 0, "a number in (0, 1)"),
    ("dataset.method", "tau2019", "one of tau2022_mobile, demo"),
    ("dataset_method_parameters.demo.cities", ["lyon", "lyon"], "a non-empty list of distinct items"),
    ("general.country_iso_code", "fi", "an ISO 3166 alpha-3 country code"),
])
def test_a_bad_value_stops_the_container_naming_where_it_came_from(tmp_path, key, value, words):
    from utils.parameters import command_line_layer

    def nested(leaf):
        tree = {}
        node = tree
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = leaf
        return tree

    cases = {
        "defaults": (write(tmp_path, "d.yaml", {"defaults": nested(value)}), "-p {} defaults"),
        "set": (write(tmp_path, "s.yaml", {"sets": [{"set_id": "demo", **nested(value)}]}), "-p {} sets[demo]"),
    }
    for path, source in cases.values():
        with pytest.raises(Task1aError) as raised:
            ParameterContainer(override_path=path)
        message = str(raised.value)
        assert message.startswith(source.format(path) + f": '{key}' must be {words}") and f"got {value!r}" in message and "\n" not in message
    shipped = yaml.safe_load((REPO / "task1a.yaml").read_text())
    shipped["sets"].append({"set_id": "broken", **nested(value)})
    with pytest.raises(Task1aError, match=re.escape(f"sets[broken]: '{key}' must be {words}")):
        ParameterContainer(write(tmp_path, "task1a.yaml", shipped))
    with pytest.raises(Task1aError, match=re.escape(f"--set: '{key}' must be {words}")):
        command_line_layer([f"{key}={yaml.safe_dump(value, default_flow_style=True).strip()}"], ParameterContainer().defaults)


def test_allowed_reads_the_registry_for_methods_and_choices():
    from utils.parameters import allowed

    assert allowed("dataset") == ("tau2022_mobile", "demo") and allowed("learner") == ("cnn",)
    assert allowed("learner.distribute") == ("none", "mirrored", "multi_worker")
    assert allowed("dataset.train_split") == (5, 10, 25, 50, 100)
    assert allowed("learner_method_parameters.cnn.conversion.io") == ("float", "int8", "float16")
    with pytest.raises(KeyError):
        allowed("learner_method_parameters.cnn.fit.epochs")


def test_the_registry_agrees_with_the_code_that_uses_the_values():
    """Until those modules read the registry (allowed()), their own lists must say the same."""
    from utils import dataset, features, tflite
    from utils.parameters import allowed

    assert allowed("recognizer.model_io") == allowed("learner_method_parameters.cnn.conversion.io") == tuple(tflite.IO_TYPES)

    assert allowed("feature_extractor_method_parameters.mel.window_type") == tuple(features.WINDOW_TYPES)
    assert allowed("feature_extractor_method_parameters.mel.spectrogram_type") == tuple(features.SPECTROGRAM_TYPES)
    assert allowed("data_processing.normalization") == tuple(features.NORMALIZATIONS)
    assert dataset.TRAIN_SPLITS == allowed("dataset.train_split")


def test_an_unknown_fallback_set_is_refused_before_any_work(tmp_path):
    container = ParameterContainer(override_path=write(tmp_path, "f.yaml", {"defaults": {"general": {"fallback_set": "demoo"}}}))
    with pytest.raises(Task1aError, match="'general.fallback_set' 'demoo' is not among the sets"):
        container.resolve("dcase2023_baseline")


def test_cli_refuses_bad_values_before_showing_parameters(tmp_path):
    bad = run_cli("--set", "learner_method_parameters.cnn.fit.epochs=-1", "--show_parameters")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.strip() == "error: --set: 'learner_method_parameters.cnn.fit.epochs' must be an integer >= 1, got -1; fix the value"
    user = write(tmp_path, "user.yaml", {"sets": [{"set_id": "mine", "recognizer": {"batch_size": 0}}]})
    bad = run_cli("-p", str(user), "-s", "mine", "--show_parameters")
    assert bad.returncode == 1 and bad.stdout == "" and f"-p {user} sets[mine]: 'recognizer.batch_size' must be an integer >= 1, got 0" in bad.stderr


# ------------------------------------------------------------------------------ the stage hash chain
def _first_stage(key):
    """The first stage whose hash covers a resolved key path, read from the description alone (None: no stage)."""
    from utils.parameters import STAGE_HASH_INPUTS, UNHASHED

    def under(path, prefix):
        return path == prefix or path.startswith(prefix + ".")

    for stage, inputs in STAGE_HASH_INPUTS.items():
        named = any(key == item for item in inputs)
        if named or (any(under(key, item) for item in inputs) and not any(under(key, left_out) for left_out in UNHASHED)):
            return stage
    return None


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list):
        return value + value[:1] if value else ["x"]
    return "x"


def test_the_hash_chain_description_holds_for_every_parameter():
    """Changing a parameter changes the hash of the first stage listing it (STAGE_HASH_INPUTS) and of
    every later stage, and no other hash."""
    from utils.parameters import STAGE_HASH_INPUTS, allowed

    container = ParameterContainer()
    params = apply_overrides(container.resolve("demo"), {"device_models.enabled": True})  # a switched section counts when on
    stages = list(STAGE_HASH_INPUTS)
    base = {stage: stage_hash(params, stage) for stage in stages}
    checked = 0
    for key, _ in _leaves(container.defaults):
        section, _, rest = key.partition(".")
        value = params
        for part in key.split("."):
            value = value[part]
        if rest == "method":
            others = [name for name in allowed(section) if name != value]
            if not others:  # a section with one method: nothing to change it to
                continue
            value_changed = others[0]
        else:
            value_changed = _changed(value)
        resolved = key
        if section.endswith("_method_parameters"):
            owner, method, inner = section[: -len("_method_parameters")], *rest.split(".", 1)
            resolved = f"{owner}.parameters.{inner}" if params[owner]["method"] == method else None
        first = _first_stage(resolved) if resolved else None
        if rest == "method":
            first = _first_stage(section)
        changed = apply_overrides(params, {key: value_changed})
        for index, stage in enumerate(stages):
            expected = first is not None and index >= stages.index(first)
            assert (stage_hash(changed, stage) != base[stage]) == expected, (key, stage, first)
        checked += 1
    assert checked > 80


def test_shipped_folder_names_stay_the_same():
    """Folders already computed are found again: the hashes of the shipped sets are those of before the
    chain was written as data (change them only with a note in the README, since it recomputes runs)."""
    container = ParameterContainer()
    got = {set_id: [stage_hash(container.resolve(set_id), stage)[:12] for stage in ("features", "learner", "recognizer", "evaluator")]
           for set_id in ("dcase2023_baseline", "demo", "dcase2024_split25")}
    assert got == PINNED_HASHES


PINNED_HASHES = {  # first 12 hex digits of the features, learner, recognizer and evaluator hashes
    "dcase2023_baseline": ["74ed4d276c87", "8e923699101b", "dbe33eb4efd8", "b49dc2c3d239"],
    "demo": ["95f4175bd2ce", "58b69db98477", "168eb6ee519e", "c9b7c14641f2"],
    # DCASE2024 as its official protocol (issue 22): the 2024 evaluation set's folder, no hold-out, the last epoch
    "dcase2024_split25": ["02140e93cc19", "69c06051c4c6", "e8cce101ac44", "9e0377bf87a1"],
}


def test_a_switched_off_section_changes_no_folder_name():
    from utils.parameters import STAGE_HASH_INPUTS

    params = ParameterContainer().resolve("demo")
    assert params["device_models"]["enabled"] is False
    changed = apply_overrides(params, {"device_models.epochs": 99, "device_models.learning_rate": 0.5})
    for stage in STAGE_HASH_INPUTS:
        assert stage_hash(changed, stage) == stage_hash(params, stage)
    switched_on = apply_overrides(params, {"device_models.enabled": True})
    assert stage_hash(switched_on, "learner") == stage_hash(params, "learner")  # the general model is the same
    assert stage_hash(switched_on, "device_models") != stage_hash(params, "device_models")
